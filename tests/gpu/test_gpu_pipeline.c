/* tests/gpu/test_gpu_pipeline.c — the tiny fixture pipelines (tests/fixtures/sd:
 * sd1-tiny, sd2-tiny, and sd1-tiny's img2img, which runs the VAE encoder too, and its
 * inpainting, whose kept latent pixels are reset on the device after every step) end to
 * end through sd_txt2img on the CUDA backend against the
 * CPU backend: same prompt, seed and sampler; PSNR of the decoded images (the [0,1]
 * floats) must be ≥ 35 dB for the f32 runs (TF32 on, then off).  f16 and bf16 runs
 * (weights and workspace in that dtype: backend_weight_dtype) are reported with their
 * PSNR but not yet held to the bound.  Then U-Net graphs (sd_unet_step_graphs): the
 * same two requests stepped eagerly and through recorded graphs on CUDA f16 must give
 * the same images (PSNR ≥ 60 dB; bit-identical expected) with graphs replayed, and each
 * step must return with its device work done (a sync right after the steps takes < 10 %
 * of their time: the scheduler times steps and admits arrivals between them).
 *
 * Usage: test_gpu_pipeline <source dir> [results.json]   exit 0 pass, 1 fail, 77 no GPU.
 * Plain C (no Check). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/cpu/cpu_backend.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/workspace.h"
#include "models/pipeline.h"
#include "models/sd_model.h"

#define N_IMAGES 2
#define MIN_PSNR 35.0

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* img2img's start image: w×h RGB8 gradients (malloc'ed). */
static uint8_t *start_image(int w, int h)
{
    uint8_t *rgb = malloc((size_t)w * (size_t)h * 3);
    for (int y = 0; rgb && y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *px = rgb + ((size_t)y * (size_t)w + (size_t)x) * 3;
            px[0] = (uint8_t)(x * 255 / w);
            px[1] = (uint8_t)(y * 255 / h);
            px[2] = (uint8_t)((x + y) * 2);
        }
    return rgb;
}

/* Inpainting's mask: w×h, 255 (repaint) inside a centred disc, 0 outside (malloc'ed). */
static uint8_t *start_mask(int w, int h)
{
    uint8_t *m = malloc((size_t)w * (size_t)h);
    for (int y = 0; m && y < h; y++)
        for (int x = 0; x < w; x++) {
            const int dx = 2 * x - w, dy = 2 * y - h, r = w < h ? w / 2 : h / 2;
            m[(size_t)y * (size_t)w + (size_t)x] = dx * dx + dy * dy <= r * r ? 255 : 0;
        }
    return m;
}

enum gen_mode { MODE_TXT2IMG, MODE_IMG2IMG, MODE_INPAINT };

/* Generates N_IMAGES images of `dir` on b (img2img: from start_image at strength 0.6,
 * which runs the VAE encoder too; inpaint: the same through start_mask, whose kept
 * pixels are reset after every step); *secs the sd_txt2img wall time. */
static enum status generate(const char *dir, struct backend *b, enum gen_mode mode,
                            struct sd_image *img, double *secs, struct errbuf *err)
{
    const bool img2img = mode != MODE_TXT2IMG;
    struct sd_model_options opt;
    sd_model_options_default(&opt);
    opt.backend = b;
    struct sd_model *m = NULL;
    TRY(sd_model_load(dir, &opt, &m, err));
    struct workspace ws;
    enum status s = workspace_init(&ws, b, backend_weight_dtype(b), 0, err);
    if (s != STATUS_OK) {
        sd_model_free(m);
        return s;
    }
    struct gen_params p;
    gen_params_default(m, &p);
    p.prompt = "a red cube on a wooden table, studio light";
    p.negative_prompt = "blurry";
    p.steps = 12;
    p.guidance = 7.5;
    p.seed = 1234;
    p.n = N_IMAGES;
    uint8_t *start = img2img ? start_image(p.width, p.height) : NULL;
    uint8_t *mask = mode == MODE_INPAINT ? start_mask(p.width, p.height) : NULL;
    p.init_image = start;
    p.init_mask = mask;
    p.strength = 0.6;
    double t0 = now_s();
    s = (img2img && !start) || (mode == MODE_INPAINT && !mask)
            ? status_fail(err, STATUS_OUT_OF_MEMORY, "start image")
            : sd_txt2img(m, &ws, &p, 1, true, NULL, NULL, img, NULL, err);
    *secs = now_s() - t0;
    free(start);
    free(mask);
    workspace_destroy(&ws);
    sd_model_free(m);
    return s;
}

static double psnr(const struct sd_image *a, const struct sd_image *b)
{
    size_t n = (size_t)a->width * (size_t)a->height * 3;
    double se = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a->unit[i] - (double)b->unit[i];
        se += d * d;
    }
    double mse = se / (double)n;
    return mse > 0 ? 10.0 * log10(1.0 / mse) : INFINITY;
}

/* One fixture (txt2img, img2img or inpaint): CPU reference, then CUDA with TF32 on and
 * off.  Returns failures. */
static int check_fixture(const char *src, const char *name, enum gen_mode mode,
                         struct backend *cpu, FILE *json)
{
    static const char *const suffix[] = {"", " img2img", " inpaint"};
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/sd/%s/diffusers", src, name);
    struct errbuf err;
    errbuf_clear(&err);
    struct sd_image ref[N_IMAGES];
    double t_cpu = 0;
    memset(ref, 0, sizeof ref);
    char label[64];
    snprintf(label, sizeof label, "%s%s", name, suffix[mode]);
    if (generate(dir, cpu, mode, ref, &t_cpu, &err) != STATUS_OK) {
        printf("FAIL %s: cpu: %s\n", label, err.msg);
        return 1;
    }
    static const struct variant {
        const char *label;
        bool tf32;
        enum dtype dt;
        bool required; /* f16/bf16 are reported, not yet held to the bound */
    } variants[] = {{"f32 tf32", true, DTYPE_F32, true},
                    {"f32", false, DTYPE_F32, true},
                    {"f16", true, DTYPE_F16, false},
                    {"bf16", true, DTYPE_BF16, false}};
    int failed = 0;
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        const struct variant *va = &variants[v];
        struct cuda_backend_options opt;
        cuda_backend_options_default(&opt);
        opt.allow_tf32 = va->tf32;
        opt.weight_dtype = va->dt;
        struct backend *gpu = NULL;
        struct sd_image got[N_IMAGES];
        memset(got, 0, sizeof got);
        double t_gpu = 0;
        enum status s = cuda_backend_create(&opt, &gpu, &err);
        if (s == STATUS_OK)
            s = generate(dir, gpu, mode, got, &t_gpu, &err);
        double worst = INFINITY;
        if (s == STATUS_OK)
            for (int i = 0; i < N_IMAGES; i++) {
                if (got[i].width != ref[i].width || got[i].height != ref[i].height) {
                    worst = 0;
                    continue;
                }
                double pv = psnr(&ref[i], &got[i]);
                worst = pv < worst ? pv : worst;
            }
        bool ok = s == STATUS_OK && worst >= MIN_PSNR;
        const char *verdict = ok ? "ok" : va->required ? "FAIL" : "info";
        printf("%-4s %s %dx%d, %d images, cuda %s: PSNR %.2f dB (min %.0f%s)  cpu %.2f s  cuda %.2f s%s%s\n",
               verdict, label, ref[0].width, ref[0].height, N_IMAGES, va->label, worst, MIN_PSNR,
               va->required ? "" : ", not required", t_cpu, t_gpu, s ? "  error: " : "",
               s ? err.msg : "");
        if (json)
            fprintf(json,
                    "{\"fixture\":\"%s\",\"variant\":\"%s\",\"required\":%s,\"ok\":%s,"
                    "\"psnr_db\":%.3f,\"cpu_s\":%.4f,\"cuda_s\":%.4f,\"status\":\"%s\"}\n",
                    label, va->label, va->required ? "true" : "false", ok ? "true" : "false",
                    isinf(worst) ? 999.0 : worst, t_cpu, t_gpu, status_name(s));
        failed += !ok && va->required;
        for (int i = 0; i < N_IMAGES; i++)
            sd_image_free(&got[i]);
        backend_destroy(gpu);
    }
    for (int i = 0; i < N_IMAGES; i++)
        sd_image_free(&ref[i]);
    return failed;
}

/* A CUDA backend of opt and fixture `name` (under src's tests/fixtures/sd) loaded onto
 * it. */
static enum status load_on_gpu(const char *src, const char *name,
                               const struct cuda_backend_options *opt, struct backend **gpu,
                               struct sd_model **m, struct errbuf *err)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/sd/%s/diffusers", src, name);
    enum status s = cuda_backend_create(opt, gpu, err);
    if (s == STATUS_OK) {
        struct sd_model_options mo;
        sd_model_options_default(&mo);
        mo.backend = *gpu;
        s = sd_model_load(dir, &mo, m, err);
    }
    return s;
}

/* Seconds in the steps, and in a backend_sync right after each (the work a step left
 * queued on the device: none, sd_unet_step returns once its work is done). */
struct step_times {
    double step_s, after_s;
};

/* Steps N_IMAGES requests of p (image 0 with 4 steps fewer) to the end through
 * sd_unet_step_graphs (graphs may be NULL: eager) and decodes them (through the graphs:
 * three times — eager, recorded, replayed — keeping the replay's images). */
static enum status step_all(struct sd_model *m, struct workspace *ws, struct sd_graphs *graphs,
                            const struct gen_params *p, struct sd_image *img,
                            struct step_times *times, struct errbuf *err)
{
    struct sd_request req[N_IMAGES];
    struct sd_request *all[N_IMAGES], *run[N_IMAGES];
    memset(req, 0, sizeof req);
    enum status s = STATUS_OK;
    for (int i = 0; i < N_IMAGES && s == STATUS_OK; i++) {
        /* image 0 leaves 4 steps early: the batch then drops to the others' rows, a
         * second U-Net graph key (eager, recorded, replayed) */
        struct gen_params pi = *p;
        if (i == 0 && N_IMAGES > 1 && p->steps > 4)
            pi.steps = p->steps - 4;
        s = sd_request_begin(m, ws, &pi, i, &req[i], err);
        all[i] = &req[i];
    }
    while (s == STATUS_OK) {
        int n = 0;
        for (int i = 0; i < N_IMAGES; i++)
            if (!sd_request_done(&req[i]))
                run[n++] = &req[i];
        if (n == 0)
            break;
        const double t0 = now_s();
        s = sd_unet_step_graphs(m, ws, graphs, run, n, err);
        const double t1 = now_s();
        if (s == STATUS_OK)
            s = backend_sync(m->backend, err);
        times->step_s += t1 - t0;
        times->after_s += now_s() - t1;
    }
    for (int pass = 0; pass < (graphs ? 3 : 1) && s == STATUS_OK; pass++) {
        for (int i = 0; i < N_IMAGES; i++)
            sd_image_free(&img[i]);
        s = sd_decode_graphs(m, ws, graphs, all, N_IMAGES, true, img, err);
    }
    for (int i = 0; i < N_IMAGES; i++)
        sd_request_free(&req[i]);
    return s;
}

/* U-Net graphs against eager steps on the same CUDA backend (f16); with `pdl`, on
 * programmatic dependent launch (options.pdl: not required — a failure is reported,
 * and keeps the next session from making it the default). */
static int check_graphs(const char *src, const char *name, bool pdl, FILE *json)
{
    struct errbuf err;
    errbuf_clear(&err);
    struct cuda_backend_options opt;
    cuda_backend_options_default(&opt);
    opt.weight_dtype = DTYPE_F16;
    opt.pdl = pdl;
    const char *variant = pdl ? "graphs f16 pdl" : "graphs f16";
    struct backend *gpu = NULL;
    struct sd_model *m = NULL;
    struct sd_graphs *graphs = NULL;
    struct workspace ws;
    memset(&ws, 0, sizeof ws);
    struct sd_image eager[N_IMAGES], replay[N_IMAGES];
    struct step_times times = {0, 0};
    memset(eager, 0, sizeof eager);
    memset(replay, 0, sizeof replay);
    enum status s = load_on_gpu(src, name, &opt, &gpu, &m, &err);
    if (s == STATUS_OK)
        s = workspace_init(&ws, gpu, backend_weight_dtype(gpu), 0, &err);
    if (s == STATUS_OK)
        s = sd_graphs_create(&graphs, &err);
    struct gen_params p;
    if (s == STATUS_OK) {
        gen_params_default(m, &p);
        p.prompt = "a red cube on a wooden table, studio light";
        p.steps = 12;
        p.guidance = 7.5;
        p.seed = 99;
        p.n = N_IMAGES;
        s = step_all(m, &ws, NULL, &p, eager, &times, &err);
    }
    if (s == STATUS_OK)
        s = step_all(m, &ws, graphs, &p, replay, &times, &err);
    struct sd_graphs_stats st;
    sd_graphs_stats(graphs, &st);
    double worst = INFINITY;
    bool identical = s == STATUS_OK;
    for (int i = 0; i < N_IMAGES && s == STATUS_OK; i++) {
        const double pv = psnr(&eager[i], &replay[i]);
        worst = pv < worst ? pv : worst;
        identical = identical && !memcmp(eager[i].rgb, replay[i].rgb,
                                         (size_t)eager[i].width * eager[i].height * 3);
    }
    /* a step left nothing queued: the syncs after them took < 10 % of the steps' time */
    const bool paced = times.after_s <= 0.1 * times.step_s;
    /* two U-Net keys recorded (4 rows, then 2 once image 0 has left) */
    const bool ok = s == STATUS_OK && worst >= 60.0 && st.replays > 0 && st.recorded >= 2 &&
                    st.vae_replays > 0 && !st.unsupported && !st.vae_failed && paced;
    printf("%-4s %s U-Net %s: %u recorded, %u replayed, %u eager (VAE %u, %u, %u); PSNR vs "
           "eager %.2f dB%s; steps %.1f ms, syncs after them %.2f ms%s%s%s\n",
           ok ? "ok" : "FAIL", name, variant, st.recorded, st.replays, st.eager, st.vae_recorded,
           st.vae_replays, st.vae_eager, worst,
           identical ? " (identical)" : "", times.step_s * 1e3, times.after_s * 1e3,
           paced ? "" : " (a step returned with work queued)", s ? "  error: " : "",
           s ? err.msg : "");
    if (json)
        fprintf(json,
                "{\"fixture\":\"%s\",\"variant\":\"%s\",\"required\":%s,"
                "\"ok\":%s,\"psnr_db\":%.3f,\"identical\":%s,\"recorded\":%u,"
                "\"replays\":%u,\"step_ms\":%.3f,\"sync_after_ms\":%.3f,\"status\":\"%s\"}\n",
                name, variant, pdl ? "false" : "true", ok ? "true" : "false", isinf(worst) ? 999.0 : worst,
                identical ? "true" : "false", st.recorded, st.replays, times.step_s * 1e3,
                times.after_s * 1e3, status_name(s));
    for (int i = 0; i < N_IMAGES; i++) {
        sd_image_free(&eager[i]);
        sd_image_free(&replay[i]);
    }
    sd_graphs_destroy(graphs);
    workspace_destroy(&ws);
    sd_model_free(m);
    backend_destroy(gpu);
    return ok || pdl ? 0 : 1;
}

/* Second halves of the open steps, each on its lane (as the scheduler's runner). */
static enum status lanes_complete(struct sd_model *m, struct sd_step *steps[2],
                                  struct errbuf *err)
{
    enum status s = STATUS_OK;
    for (int k = 0; k < 2 && s == STATUS_OK; k++)
        if (sd_step_open(steps[k])) {
            s = backend_lane_select(m->backend, k, err);
            s = s == STATUS_OK ? sd_unet_step_complete(steps[k], err) : s;
        }
    return s;
}

/* Two sizes' requests (N_IMAGES each) stepped to the end: with `steps` (lanes), each
 * iteration starts size k's running requests' step on lane k with workspace and
 * graphs k (sd_unet_step_start: both U-Net calls queued first), completes both, then
 * one backend_sync; without, both through sd_unet_step_graphs on lane 0, one after the
 * other.  Decoded on lane 0. */
static enum status lanes_run(struct sd_model *m, struct workspace ws[2],
                             struct sd_graphs *graphs[2], const struct gen_params p[2],
                             struct sd_step *steps[2], struct sd_image img[2][N_IMAGES],
                             struct errbuf *err)
{
    const bool lanes = steps != NULL;
    struct sd_request req[2][N_IMAGES];
    struct sd_request *all[N_IMAGES], *run[N_IMAGES];
    memset(req, 0, sizeof req);
    enum status s = backend_lane_select(m->backend, 0, err);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < N_IMAGES && s == STATUS_OK; i++)
            s = sd_request_begin(m, &ws[0], &p[k], i, &req[k][i], err);
    if (s == STATUS_OK) /* begun on lane 0, read on lane 1 */
        s = backend_sync(m->backend, err);
    for (bool more = true; more && s == STATUS_OK;) {
        more = false;
        for (int k = 0; k < 2 && s == STATUS_OK; k++) {
            int n = 0;
            for (int i = 0; i < N_IMAGES; i++)
                if (!sd_request_done(&req[k][i]))
                    run[n++] = &req[k][i];
            if (n == 0)
                continue;
            more = true;
            const int lane = lanes ? k : 0;
            s = backend_lane_select(m->backend, lane, err);
            if (s == STATUS_OK && lanes)
                s = sd_unet_step_start(m, &ws[lane], graphs[lane], run, n, steps[lane], err);
            else if (s == STATUS_OK)
                s = sd_unet_step_graphs(m, &ws[lane], graphs[lane], run, n, err);
        }
        if (s == STATUS_OK && lanes)
            s = lanes_complete(m, steps, err);
        if (s == STATUS_OK)
            s = backend_sync(m->backend, err);
    }
    if (s == STATUS_OK)
        s = backend_lane_select(m->backend, 0, err);
    for (int k = 0; k < 2 && s == STATUS_OK; k++) {
        for (int i = 0; i < N_IMAGES; i++)
            all[i] = &req[k][i];
        s = sd_decode_graphs(m, &ws[0], graphs[0], all, N_IMAGES, true, img[k], err);
    }
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < N_IMAGES; i++)
            sd_request_free(&req[k][i]);
    return s;
}

/* Lanes through the pipeline (f16, U-Net graphs): two sizes stepped side by side on
 * lanes 0 and 1, each lane with its own workspace and graphs, give the images of the
 * same requests stepped eagerly one size after the other on lane 0 (required: PSNR ≥
 * 60 dB, replays on both lanes — every one of them the side-by-side runs'). */
static int check_lanes(const char *src, const char *name, FILE *json)
{
    struct errbuf err;
    errbuf_clear(&err);
    struct cuda_backend_options opt;
    cuda_backend_options_default(&opt);
    opt.weight_dtype = DTYPE_F16;
    struct backend *gpu = NULL;
    struct sd_model *m = NULL;
    struct sd_graphs *graphs[2] = {NULL, NULL};
    struct sd_step *steps[2] = {NULL, NULL};
    struct workspace ws[2];
    memset(ws, 0, sizeof ws);
    static struct sd_image one[2][N_IMAGES], side[2][N_IMAGES];
    memset(one, 0, sizeof one);
    memset(side, 0, sizeof side);
    enum status s = load_on_gpu(src, name, &opt, &gpu, &m, &err);
    for (int k = 0; k < 2 && s == STATUS_OK; k++) {
        s = workspace_init(&ws[k], gpu, backend_weight_dtype(gpu), 0, &err);
        if (s == STATUS_OK)
            s = sd_graphs_create(&graphs[k], &err);
        if (s == STATUS_OK)
            s = sd_step_create(&steps[k], &err);
    }
    struct gen_params p[2];
    if (s == STATUS_OK) {
        for (int k = 0; k < 2; k++) {
            gen_params_default(m, &p[k]);
            p[k].prompt = k ? "a blue sphere in the snow" : "a red cube on a wooden table";
            p[k].steps = 10 + 2 * k;
            p[k].guidance = 7.5;
            p[k].seed = 7 + (uint64_t)k;
            p[k].n = N_IMAGES;
        }
        p[1].width = p[1].height = p[0].width * 3 / 2;
        struct sd_graphs *eager[2] = {NULL, NULL}; /* the reference: no graph at all */
        s = lanes_run(m, ws, eager, p, NULL, one, &err);
    }
    if (s == STATUS_OK) /* twice: the first records each lane's graphs */
        s = lanes_run(m, ws, graphs, p, steps, side, &err);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < N_IMAGES; i++)
            sd_image_free(&side[k][i]);
    if (s == STATUS_OK)
        s = lanes_run(m, ws, graphs, p, steps, side, &err);
    struct sd_graphs_stats st[2];
    sd_graphs_stats(graphs[0], &st[0]);
    sd_graphs_stats(graphs[1], &st[1]);
    double worst = INFINITY;
    for (int k = 0; k < 2 && s == STATUS_OK; k++)
        for (int i = 0; i < N_IMAGES; i++) {
            const double pv = psnr(&one[k][i], &side[k][i]);
            worst = pv < worst ? pv : worst;
        }
    const bool ok = s == STATUS_OK && worst >= 60.0 && st[0].replays > 0 && st[1].replays > 0;
    printf("%-4s %s lanes f16: two sizes side by side vs one after the other: PSNR %.2f dB; "
           "U-Net replays lane 0 %u, lane 1 %u%s%s\n",
           ok ? "ok" : "FAIL", name, worst, st[0].replays, st[1].replays, s ? "  error: " : "",
           s ? err.msg : "");
    if (json)
        fprintf(json,
                "{\"fixture\":\"%s\",\"variant\":\"lanes f16\",\"required\":true,\"ok\":%s,"
                "\"psnr_db\":%.3f,\"replays_lane0\":%u,\"replays_lane1\":%u,\"status\":\"%s\"}\n",
                name, ok ? "true" : "false", isinf(worst) ? 999.0 : worst, st[0].replays,
                st[1].replays, status_name(s));
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < N_IMAGES; i++) {
            sd_image_free(&one[k][i]);
            sd_image_free(&side[k][i]);
        }
    for (int k = 0; k < 2; k++) {
        sd_step_destroy(steps[k]);
        sd_graphs_destroy(graphs[k]);
        workspace_destroy(&ws[k]);
    }
    sd_model_free(m);
    backend_destroy(gpu);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_gpu_pipeline <source dir> [results.json]\n");
        return 2;
    }
    struct errbuf err;
    errbuf_clear(&err);
    struct cuda_backend_options opt;
    cuda_backend_options_default(&opt);
    struct backend *probe = NULL;
    enum status s = cuda_backend_create(&opt, &probe, &err);
    if (s == STATUS_NOT_FOUND) {
        printf("skip: %s\n", err.msg);
        return 77;
    }
    if (s != STATUS_OK) {
        fprintf(stderr, "cuda backend: %s\n", err.msg);
        return 1;
    }
    backend_destroy(probe);
    struct backend *cpu = NULL;
    if (cpu_backend_create(0, &cpu, &err) != STATUS_OK) {
        fprintf(stderr, "cpu backend: %s\n", err.msg);
        return 1;
    }
    FILE *json = argc > 2 ? fopen(argv[2], "w") : NULL;
    int failed = check_fixture(argv[1], "sd1-tiny", MODE_TXT2IMG, cpu, json) +
                 check_fixture(argv[1], "sd2-tiny", MODE_TXT2IMG, cpu, json) +
                 check_fixture(argv[1], "sd1-tiny", MODE_IMG2IMG, cpu, json) +
                 check_fixture(argv[1], "sd1-tiny", MODE_INPAINT, cpu, json) +
                 check_graphs(argv[1], "sd1-tiny", false, json) +
                 check_graphs(argv[1], "sd1-tiny", true, json) +
                 check_lanes(argv[1], "sd1-tiny", json);
    if (json)
        fclose(json);
    backend_destroy(cpu);
    printf("%s\n", failed ? "pipelines: FAIL" : "pipelines: ok");
    return failed ? 1 : 0;
}
