/* server/cmd_generate.c — `diffusiond generate`: load a checkpoint, run sd_txt2img on
 * the CPU backend (or, with --device cuda, the CUDA backend in --dtype), write PNG/JPEG
 * files, print timings (docs/cli.md). */
#include "server/cmd_generate.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/img2img.h" /* the start image's limits */
#include "api/image_decode.h"
#include "api/image_encode.h"
#include "api/image_mask.h"
#include "api/inpaint.h"
#include "engine/workspace.h"
#include "models/pipeline.h"
#include "models/sd_model.h"
#include "server/device.h"


#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

struct gen_cli {
    const char *model, *config_dir, *out, *prompt, *negative, *sampler, *scheduler;
    const char *device, *dtype; /* NULL: cpu; f16 on cuda */
    const char *cuda_plan;      /* NULL: the CUDA backend's defaults */
    const char *init_image;     /* img2img's start image file; NULL: txt2img */
    const char *mask;           /* inpainting's mask file (with init_image); NULL: none */
    int width, height, steps, clip_skip, n, threads, quality, mask_blur;
    double cfg, strength;
    bool has_seed, fp16, mask_invert;
    enum api_inpaint_fill fill;
    uint64_t seed;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: diffusiond generate --prompt TEXT --out FILE [options]\n"
            "\n"
            "  --model PATH            diffusers folder or single-file .safetensors\n"
            "                          (default: $DIFFUSIOND_MODEL, else the bundled model)\n"
            "  --prompt TEXT           what to draw\n"
            "  --negative-prompt TEXT  what to avoid (with --cfg > 1)\n"
            "  --width N, --height N   pixels, multiples of 8 (default: the model's size)\n"
            "  --steps N               denoising steps (default: the model's)\n"
            "  --cfg X                 guidance scale; <= 1 turns CFG off (default: the model's)\n"
            "  --seed N|random         noise seed; image i of -n uses seed + i (default: random)\n"
            "  --sampler NAME          euler, euler_a, ddim, dpmpp_2m, dpmpp_2m_karras, ddpm, lcm\n"
            "                          (A1111 names too: \"Euler a\", \"DPM++ 2M Karras\")\n"
            "  --scheduler NAME        default, karras, leading, linspace, trailing (sgm_uniform)\n"
            "  --clip-skip N           A1111's Clip skip: 1 = last layer (default), 2 = penultimate\n"
            "  -n N                    images (FILE-1.png, FILE-2.png, ... when N > 1)\n"
            "  --init-image FILE       img2img: start from this PNG, JPEG or WebP (resized to\n"
            "                          --width x --height; default its size rounded down to 8)\n"
            "  --strength X            img2img: in (0, 1], int(steps x X) steps run (default 0.75)\n"
            "  --mask FILE             inpainting (with --init-image): white repaints, black keeps\n"
            "                          (its luma, as A1111's mask); resized with the image\n"
            "  --mask-invert           repaint the black area instead\n"
            "  --mask-blur N           Gaussian blur radius of the mask (default 0)\n"
            "  --inpaint-fill MODE     what the masked area starts from: original (default),\n"
            "                          fill (its surroundings), latent-noise, latent-nothing\n"
            "  --threads N             CPU threads (default: all)\n"
            "  --device cpu|cuda       where to run (default cpu; cuda needs a CUDA build)\n"
            "  --dtype f32|f16|bf16    cuda: weights and activations (default f16)\n"
            "  --cuda-plan PLAN        cuda: planning choices, key=value,... (docs/cuda.md)\n"
            "  --quality N             JPEG quality 1-100 (default 90)\n"
            "  --fp16                  load *.fp16.* weight variants of a diffusers folder\n"
            "  --config-dir DIR        single file: take the component configs from this\n"
            "                          diffusers folder (non-standard widths need it)\n"
            "  --out FILE              output: PNG, or JPEG for .jpg/.jpeg\n"
            "  --help                  this text\n"
            "\n"
            "Exit status: 0 done, 1 runtime error, 2 usage error.\n");
}

/* --- arguments ---------------------------------------------------------------------- */

static bool parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

static bool parse_seed(const char *s, struct gen_cli *c)
{
    if (strcmp(s, "random") == 0 || strcmp(s, "-1") == 0) {
        c->has_seed = false;
        return true;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-')
        return false;
    c->seed = (uint64_t)v;
    c->has_seed = true;
    return true;
}

enum opt_id {
    O_MODEL = 256, O_PROMPT, O_NEG, O_WIDTH, O_HEIGHT, O_STEPS, O_CFG, O_SEED, O_SAMPLER,
    O_SCHEDULER, O_CLIP_SKIP, O_THREADS, O_OUT, O_QUALITY, O_FP16, O_HELP, O_CONFIG_DIR,
    O_DEVICE, O_DTYPE, O_CUDA_PLAN, O_INIT_IMAGE, O_STRENGTH, O_MASK, O_MASK_INVERT,
    O_MASK_BLUR, O_INPAINT_FILL
};

/* --inpaint-fill's names, in enum api_inpaint_fill order. */
static bool parse_fill(const char *v, enum api_inpaint_fill *out)
{
    static const char *const NAMES[API_FILL_COUNT_] = {"original", "fill", "latent-noise",
                                                       "latent-nothing"};
    for (int i = 0; i < API_FILL_COUNT_; i++)
        if (strcmp(v, NAMES[i]) == 0) {
            *out = (enum api_inpaint_fill)i;
            return true;
        }
    return false;
}

static bool apply_opt(int id, const char *v, struct gen_cli *c)
{
    char *end;
    switch (id) {
    case O_MODEL: c->model = v; return true;
    case O_CONFIG_DIR: c->config_dir = v; return true;
    case O_PROMPT: c->prompt = v; return true;
    case O_NEG: c->negative = v; return true;
    case O_SAMPLER: c->sampler = v; return true;
    case O_SCHEDULER: c->scheduler = v; return true;
    case O_OUT: c->out = v; return true;
    case O_DEVICE: c->device = v; return !strcmp(v, "cpu") || !strcmp(v, "cuda");
    case O_CUDA_PLAN: c->cuda_plan = v; return true; /* checked when the backend is made */
    case O_DTYPE:
        c->dtype = v;
        return !strcmp(v, "f32") || !strcmp(v, "f16") || !strcmp(v, "bf16");
    case O_WIDTH: return parse_int(v, 1, 1 << 20, &c->width);
    case O_HEIGHT: return parse_int(v, 1, 1 << 20, &c->height);
    case O_STEPS: return parse_int(v, 0, 1 << 20, &c->steps);
    case O_CLIP_SKIP: return parse_int(v, 1, 1000, &c->clip_skip);
    case 'n': return parse_int(v, 1, GEN_MAX_IMAGES, &c->n);
    case O_THREADS: return parse_int(v, 0, 4096, &c->threads);
    case O_QUALITY: return parse_int(v, 1, 100, &c->quality);
    case O_SEED: return parse_seed(v, c);
    case O_INIT_IMAGE: c->init_image = v; return true;
    case O_MASK: c->mask = v; return true;
    case O_MASK_BLUR: return parse_int(v, 0, (int)IMAGE_MASK_BLUR_MAX, &c->mask_blur);
    case O_INPAINT_FILL: return parse_fill(v, &c->fill);
    case O_STRENGTH:
        errno = 0;
        c->strength = strtod(v, &end);
        return !errno && end != v && !*end; /* the range is gen_params_validate's */
    case O_CFG:
        errno = 0;
        c->cfg = strtod(v, &end);
        return !errno && end != v && !*end;
    default: return false;
    }
}

/* 0: parsed; EXIT_USAGE: bad arguments (reported); -1: --help printed. */
static int parse_args(int argc, char **argv, struct gen_cli *c)
{
    static const struct option opts[] = {
        {"model", required_argument, NULL, O_MODEL},
        {"prompt", required_argument, NULL, O_PROMPT},
        {"negative-prompt", required_argument, NULL, O_NEG},
        {"width", required_argument, NULL, O_WIDTH},
        {"height", required_argument, NULL, O_HEIGHT},
        {"steps", required_argument, NULL, O_STEPS},
        {"cfg", required_argument, NULL, O_CFG},
        {"seed", required_argument, NULL, O_SEED},
        {"sampler", required_argument, NULL, O_SAMPLER},
        {"scheduler", required_argument, NULL, O_SCHEDULER},
        {"clip-skip", required_argument, NULL, O_CLIP_SKIP},
        {"threads", required_argument, NULL, O_THREADS},
        {"out", required_argument, NULL, O_OUT},
        {"quality", required_argument, NULL, O_QUALITY},
        {"fp16", no_argument, NULL, O_FP16},
        {"config-dir", required_argument, NULL, O_CONFIG_DIR},
        {"device", required_argument, NULL, O_DEVICE},
        {"dtype", required_argument, NULL, O_DTYPE},
        {"cuda-plan", required_argument, NULL, O_CUDA_PLAN},
        {"init-image", required_argument, NULL, O_INIT_IMAGE},
        {"strength", required_argument, NULL, O_STRENGTH},
        {"mask", required_argument, NULL, O_MASK},
        {"mask-invert", no_argument, NULL, O_MASK_INVERT},
        {"mask-blur", required_argument, NULL, O_MASK_BLUR},
        {"inpaint-fill", required_argument, NULL, O_INPAINT_FILL},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0}};
    memset(c, 0, sizeof *c);
    c->cfg = -1;
    c->strength = API_IMG2IMG_DEFAULT_STRENGTH;
    c->steps = -1;
    c->n = 1;
    c->quality = 90;
    optind = 1;
    opterr = 0;
    int id, li = -1;
    while ((id = getopt_long(argc, argv, ":n:h", opts, &li)) != -1) {
        if (id == O_HELP || id == 'h') {
            usage(stdout);
            return -1;
        }
        if (id == O_FP16 || id == O_MASK_INVERT) {
            *(id == O_FP16 ? &c->fp16 : &c->mask_invert) = true;
            continue;
        }
        if (id == '?' || id == ':') {
            fprintf(stderr, "diffusiond generate: %s option '%s'\n",
                    id == '?' ? "unknown" : "missing value for", argv[optind - 1]);
            return EXIT_USAGE;
        }
        if (!apply_opt(id, optarg, c)) {
            fprintf(stderr, "diffusiond generate: bad value '%s' for %s%s\n", optarg,
                    id == 'n' ? "-" : "--", id == 'n' ? "n" : opts[li].name);
            return EXIT_USAGE;
        }
        li = -1;
    }
    if (optind < argc) {
        fprintf(stderr, "diffusiond generate: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (!c->prompt || !c->out) {
        fprintf(stderr, "diffusiond generate: %s is required (see --help)\n",
                !c->prompt ? "--prompt" : "--out");
        return EXIT_USAGE;
    }
    if (c->mask && !c->init_image) {
        fprintf(stderr, "diffusiond generate: --mask needs --init-image (the image it masks)\n");
        return EXIT_USAGE;
    }
    return 0;
}

/* --model, else $DIFFUSIOND_MODEL, else the bundled model when it exists. */
static const char *resolve_model(const struct gen_cli *c)
{
    if (c->model)
        return c->model;
    const char *env = getenv("DIFFUSIOND_MODEL");
    if (env && env[0])
        return env;
    return sd_model_bundled_path();
}

static uint64_t random_seed(void)
{
    uint64_t v = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f) {
        if (fread(&v, sizeof v, 1, f) != 1)
            v = 0;
        fclose(f);
    }
    if (!v) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
    }
    return v & 0xffffffffull; /* A1111-sized seeds are easy to retype */
}

/* The whole file into *bytes (malloc'ed, *n bytes; at most 64 MiB); false with errno or
 * *bytes NULL on failure (the caller reports it). */
static bool read_file(const char *path, uint8_t **bytes, size_t *n, bool *opened)
{
    FILE *f = fopen(path, "rb");
    *bytes = NULL;
    *n = 0;
    size_t cap = 0;
    bool ok = f != NULL;
    *opened = ok;
    while (ok) {
        if (*n == cap) {
            uint8_t *grown = cap < (64u << 20) ? realloc(*bytes, cap ? 2 * cap : 1 << 16) : NULL;
            ok = grown != NULL;
            *bytes = ok ? grown : *bytes;
            cap = ok ? (cap ? 2 * cap : 1 << 16) : cap;
        }
        const size_t got = ok ? fread(*bytes + *n, 1, cap - *n, f) : 0;
        *n += got;
        if (ok && got == 0) {
            ok = !ferror(f);
            break;
        }
    }
    if (f)
        fclose(f);
    if (!ok) {
        free(*bytes);
        *bytes = NULL;
    }
    return ok;
}

static const char *read_error(bool opened)
{
    return opened ? "read error or larger than 64 MiB" : strerror(errno);
}

/* --init-image decoded into *img (limits of the A1111 route); EXIT_USAGE (reported). */
static int read_init_image(const char *path, struct image_rgb8 *img)
{
    uint8_t *bytes;
    size_t n;
    bool opened;
    const bool ok = read_file(path, &bytes, &n, &opened);
    struct errbuf err;
    const enum status s = ok ? image_decode(bytes, n, API_IMG2IMG_MAX_SIDE, API_IMG2IMG_MAX_PIXELS,
                                            img, &err)
                             : STATUS_IO;
    free(bytes);
    if (s == STATUS_OK)
        return 0;
    fprintf(stderr, "diffusiond generate: --init-image %s: %s\n", path,
            ok ? err.msg : read_error(opened));
    return EXIT_USAGE;
}

/* --mask read (A1111's rule: its luma, white repaints), inverted, blurred and resized to
 * the request's size into p (init_mask, inpaint_fill; --inpaint-fill fill changes init);
 * EXIT_USAGE (reported). */
static int read_mask(const struct gen_cli *c, struct api_inpaint *in, struct image_rgb8 *init,
                     struct gen_params *p)
{
    uint8_t *bytes;
    size_t n;
    bool opened;
    if (!read_file(c->mask, &bytes, &n, &opened)) {
        fprintf(stderr, "diffusiond generate: --mask %s: %s\n", c->mask, read_error(opened));
        return EXIT_USAGE;
    }
    struct api_error e;
    enum status s = api_inpaint_take(bytes, n, API_MASK_A1111, "--mask", in, &e);
    in->invert = c->mask_invert;
    in->blur_x = in->blur_y = c->mask_blur;
    in->fill = c->fill;
    if (s == STATUS_OK)
        s = api_inpaint_finish("--mask", in, init, p, &e);
    if (s == STATUS_OK)
        return 0;
    fprintf(stderr, "diffusiond generate: %s (%s)\n", e.message, c->mask);
    return EXIT_USAGE;
}

/* The request from the flags over the model's defaults; EXIT_USAGE on a bad value.
 * img2img: *init holds the image resized to the request's size, inpainting *in the mask
 * (the caller frees them). */
static int build_params(const struct sd_model *m, const struct gen_cli *c, struct gen_params *p,
                        struct image_rgb8 *init, struct api_inpaint *in)
{
    struct errbuf err;
    gen_params_default(m, p);
    p->prompt = c->prompt;
    p->negative_prompt = c->negative ? c->negative : "";
    if (c->init_image) {
        struct image_rgb8 src = {0};
        if (read_init_image(c->init_image, &src) != 0)
            return EXIT_USAGE;
        p->width = src.width / m->size_multiple * m->size_multiple;
        p->height = src.height / m->size_multiple * m->size_multiple;
        if (c->width)
            p->width = c->width;
        if (c->height)
            p->height = c->height;
        const bool fits = p->width <= GEN_MAX_SIDE && p->height <= GEN_MAX_SIDE;
        enum status rs = p->width > 0 && p->height > 0
                             ? STATUS_OK
                             : status_fail(&err, STATUS_INVALID_ARGUMENT,
                                           "a %dx%d image is too small", src.width, src.height);
        if (rs == STATUS_OK && fits) /* else gen_params_validate names the side */
            rs = image_resize(&src, p->width, p->height, init, &err);
        image_rgb8_free(&src);
        if (rs != STATUS_OK) {
            fprintf(stderr, "diffusiond generate: --init-image %s: %s\n", c->init_image, err.msg);
            return EXIT_USAGE;
        }
        p->init_image = init->rgb;
        p->strength = c->strength;
    }
    if (c->width)
        p->width = c->width;
    if (c->height)
        p->height = c->height;
    if (c->steps >= 0)
        p->steps = c->steps;
    if (c->cfg >= 0)
        p->guidance = c->cfg;
    p->seed = c->has_seed ? c->seed : random_seed();
    p->clip_skip = c->clip_skip ? clip_skip_from_a1111(c->clip_skip) : 0;
    p->n = c->n;
    enum status s = STATUS_OK;
    if (c->sampler)
        s = sampler_kind_parse(c->sampler, &p->sampler, &err);
    if (s == STATUS_OK && c->scheduler)
        s = sd_scheduler_parse(c->scheduler, &p->scheduler, &err);
    if (s == STATUS_OK)
        s = gen_params_validate(m, p, &err);
    if (s != STATUS_OK) {
        fprintf(stderr, "diffusiond generate: %s\n", err.msg);
        return EXIT_USAGE;
    }
    return c->mask ? read_mask(c, in, init, p) : 0;
}

/* --- progress and output ------------------------------------------------------------- */

struct progress {
    bool tty;
    double t0;
    int last_logged;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void on_progress(void *user, int done, int total)
{
    struct progress *pr = user;
    const double dt = now_s() - pr->t0;
    const double rate = dt > 0 ? done / dt : 0;
    if (pr->tty) {
        char bar[31];
        const int fill = total ? 30 * done / total : 30;
        for (int i = 0; i < 30; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[30] = '\0';
        fprintf(stderr, "\r[%s] %d/%d steps  %.2f steps/s", bar, done, total, rate);
        if (done == total)
            fputc('\n', stderr);
    } else if (done == total || done - pr->last_logged >= (total + 9) / 10) {
        fprintf(stderr, "generate: step %d/%d (%.2f steps/s)\n", done, total, rate);
        pr->last_logged = done;
    }
    fflush(stderr);
}

/* FILE, or FILE with -i before the extension when there are several images. */
static void output_name(const char *out, int i, int n, char *buf, size_t cap)
{
    if (n == 1) {
        snprintf(buf, cap, "%s", out);
        return;
    }
    const char *slash = strrchr(out, '/');
    const char *dot = strrchr(out, '.');
    if (!dot || (slash && dot < slash) || dot == out || (slash && dot == slash + 1))
        snprintf(buf, cap, "%s-%d", out, i + 1);
    else
        snprintf(buf, cap, "%.*s-%d%s", (int)(dot - out), out, i + 1, dot);
}

static int write_images(const struct sd_model *m, const struct gen_cli *c,
                        const struct gen_params *p, const struct sd_image *imgs, double *secs)
{
    const double t0 = now_s();
    const enum image_format fmt = image_format_for_path(c->out);
    for (int i = 0; i < p->n; i++) {
        char path[4096];
        output_name(c->out, i, p->n, path, sizeof path);
        struct image_meta meta = image_meta_for(p, m->name, &imgs[i]);
        meta.mask_blur = p->init_mask ? c->mask_blur : 0;
        struct errbuf err;
        if (image_write_file(path, fmt, imgs[i].rgb, imgs[i].width, imgs[i].height, c->quality,
                             &meta, &err) != STATUS_OK) {
            fprintf(stderr, "diffusiond generate: %s\n", err.msg);
            return EXIT_RUNTIME;
        }
        printf("wrote %s (%dx%d, seed %" PRIu64 ")\n", path, imgs[i].width, imgs[i].height,
               imgs[i].seed);
    }
    *secs = now_s() - t0;
    return 0;
}

/* --- the run ------------------------------------------------------------------------- */

struct session {
    struct backend *backend;
    struct workspace ws;
    bool ws_ok;
    struct sd_model *model;
    struct sd_image *images;
    int n_images;
    struct image_rgb8 init; /* img2img's start image at the request's size */
    struct api_inpaint mask; /* inpainting's mask (init_mask points into it) */
};

static void session_close(struct session *s)
{
    for (int i = 0; s->images && i < s->n_images; i++)
        sd_image_free(&s->images[i]);
    free(s->images);
    image_rgb8_free(&s->init);
    api_inpaint_free(&s->mask);
    sd_model_free(s->model);
    if (s->ws_ok)
        workspace_destroy(&s->ws);
    if (s->backend)
        backend_destroy(s->backend);
}

/* The backend --device names: the CPU's, or the CUDA backend with --dtype weights. */
static enum status make_backend(const struct gen_cli *c, struct backend **out, struct errbuf *err)
{
    return device_backend_create(c->device, c->dtype, c->cuda_plan, c->threads, out, NULL, err);
}

static int load(struct session *s, const struct gen_cli *c, const char *path, double *secs)
{
    const double t0 = now_s();
    struct errbuf err;
    if (make_backend(c, &s->backend, &err) != STATUS_OK ||
        workspace_init(&s->ws, s->backend, backend_weight_dtype(s->backend), 0, &err) !=
            STATUS_OK) {
        fprintf(stderr, "diffusiond generate: backend: %s\n", err.msg);
        return EXIT_RUNTIME;
    }
    s->ws_ok = true;
    struct sd_model_options opt;
    sd_model_options_default(&opt);
    opt.backend = s->backend;
    opt.prefer_fp16 = c->fp16;
    opt.config_dir = c->config_dir;
    if (sd_model_load(path, &opt, &s->model, &err) != STATUS_OK) {
        fprintf(stderr, "diffusiond generate: cannot load model '%s': %s\n", path, err.msg);
        return EXIT_RUNTIME;
    }
    *secs = now_s() - t0;
    return 0;
}

static void print_timings(const struct sd_timings *t, double load_s, double encode_s,
                          double total_s)
{
    printf("timings: load %.3f s, text encode %.3f s, denoise %.3f s (%d steps, %.2f steps/s), "
           "decode %.3f s, encode %.3f s, total %.3f s\n",
           load_s, t->text_encode, t->denoise, t->steps,
           t->denoise > 0 ? t->steps / t->denoise : 0.0, t->decode, encode_s, total_s);
}

static int run(struct session *s, const struct gen_cli *c, const char *path)
{
    const double t0 = now_s();
    double load_s = 0, encode_s = 0;
    int rc = load(s, c, path, &load_s);
    struct gen_params p;
    if (rc == 0)
        rc = build_params(s->model, c, &p, &s->init, &s->mask);
    if (rc != 0)
        return rc;
    fprintf(stderr, "generate: %s (%s), %dx%d, %d steps, %s, cfg %g, seed %" PRIu64 ", %d image(s)\n",
            s->model->name, checkpoint_family_name(s->model->family), p.width, p.height, p.steps,
            sd_sampler_display_name(p.sampler, p.scheduler), p.guidance, p.seed, p.n);
    if (p.init_image)
        fprintf(stderr, "generate: img2img from %s, strength %g: %d of the %d steps run\n",
                c->init_image, p.strength, sd_img2img_steps(p.steps, p.strength), p.steps);
    if (p.init_mask)
        fprintf(stderr, "generate: inpainting with the mask %s%s\n", c->mask,
                c->mask_invert ? " (inverted)" : "");
    s->images = calloc((size_t)p.n, sizeof *s->images);
    s->n_images = p.n;
    struct progress pr = {.tty = isatty(STDERR_FILENO) == 1, .t0 = now_s()};
    struct sd_timings t;
    struct errbuf err;
    if (!s->images ||
        sd_txt2img(s->model, &s->ws, &p, 1, false, on_progress, &pr, s->images, &t, &err) !=
            STATUS_OK) {
        fprintf(stderr, "diffusiond generate: %s\n", s->images ? err.msg : "out of memory");
        return EXIT_RUNTIME;
    }
    rc = write_images(s->model, c, &p, s->images, &encode_s);
    if (rc == 0)
        print_timings(&t, load_s, encode_s, now_s() - t0);
    return rc;
}

int cmd_generate_main(int argc, char **argv)
{
    struct gen_cli c;
    int rc = parse_args(argc, argv, &c);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    const char *path = resolve_model(&c);
    if (!path) {
        fprintf(stderr, "diffusiond generate: --model is required (the bundled default model "
                        "is not installed and DIFFUSIOND_MODEL is not set)\n");
        return EXIT_USAGE;
    }
    struct session s;
    memset(&s, 0, sizeof s);
    rc = run(&s, &c, path);
    session_close(&s);
    return rc;
}
