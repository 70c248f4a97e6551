/* tests/e2e/test_default_model.c — end-to-end quality of the bundled model: a handful
 * of prompts through the real C pipeline (sd_model_load → sd_txt2img on the CPU
 * backend), each picture read back with the pixel statistics of tools/eval/evaluate.py
 * (background = median of the border, shape = largest component far from it, its
 * colour → nearest named colour, its kind from the bounding-box fill ratio and the
 * share of its area in the box's top half).  It checks meaning, not numbers.
 *
 * The model: $DIFFUSIOND_DEFAULT_MODEL, else <source>/models/default.  Without one
 * the test is skipped (exit 77).  Usage: test_default_model [MODEL_DIR]. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/cpu/cpu_backend.h"
#include "engine/workspace.h"
#include "models/pipeline.h"
#include "models/sd_model.h"

#define SKIP 77

struct named {
    const char *name;
    double rgb[3];
};
/* The evaluator's canonical colours (not the training palette). */
static const struct named NAMED[] = {
    {"red", {255, 0, 0}},       {"green", {0, 160, 0}},     {"blue", {0, 0, 255}},
    {"yellow", {255, 255, 0}},  {"white", {255, 255, 255}}, {"black", {0, 0, 0}},
    {"orange", {255, 140, 0}},  {"purple", {128, 0, 128}},
};
#define N_NAMED (sizeof NAMED / sizeof NAMED[0])

struct want {
    const char *prompt;
    const char *colour, *background, *kind;
    uint64_t seed;
};
static const struct want CASES[] = {
    {"a red circle on a blue background", "red", "blue", "circle", 1},
    {"a large yellow square on a black background", "yellow", "black", "square", 2},
    {"a green triangle on a white background", "green", "white", "triangle", 3},
    {"a large white circle at the top left on a purple background", "white", "purple", "circle", 4},
    {"a blue square in the center on an orange background", "blue", "orange", "square", 5},
    {"a large orange triangle on a green background", "orange", "green", "triangle", 6},
    {"a black circle on a yellow background", "black", "yellow", "circle", 7},
    {"a large purple square at the bottom right on a white background", "purple", "white", "square", 8},
};
#define N_CASES (int)(sizeof CASES / sizeof CASES[0])
/* Every colour and background right, kind 7 of 8 (on 480 held-out prompts the model
 * gets colour 100 %, background 99.8 %, kind 95.8 %: docs/models.md), and the issue's
 * first-user prompt (CASES[0]) right in all three. */
#define MIN_COLOUR N_CASES
#define MIN_BACKGROUND N_CASES
#define MIN_KIND (N_CASES - 1)

static const char *nearest(const double rgb[3])
{
    int best = 0;
    double bd = INFINITY;
    for (size_t i = 0; i < N_NAMED; i++) {
        double d = 0;
        for (int c = 0; c < 3; c++)
            d += (rgb[c] - NAMED[i].rgb[c]) * (rgb[c] - NAMED[i].rgb[c]);
        if (d < bd) {
            bd = d;
            best = (int)i;
        }
    }
    return NAMED[best].name;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct seen {
    const char *colour, *background, *kind;
    double fill, top;
    int area;
};

/* Largest 4-connected component of mask (w·h), in place; returns its size. */
static int keep_largest(unsigned char *mask, int w, int h)
{
    int *label = calloc((size_t)w * h, sizeof *label), *stack = malloc((size_t)w * h * sizeof *stack);
    int best = 0, best_label = 0, next = 0;
    for (int i = 0; i < w * h; i++) {
        if (!mask[i] || label[i])
            continue;
        int sp = 0, size = 0;
        label[i] = ++next;
        stack[sp++] = i;
        while (sp) {
            int p = stack[--sp], x = p % w, y = p / w;
            size++;
            const int nb[4] = {x > 0 ? p - 1 : -1, x < w - 1 ? p + 1 : -1, y > 0 ? p - w : -1,
                               y < h - 1 ? p + w : -1};
            for (int k = 0; k < 4; k++)
                if (nb[k] >= 0 && mask[nb[k]] && !label[nb[k]]) {
                    label[nb[k]] = next;
                    stack[sp++] = nb[k];
                }
        }
        if (size > best) {
            best = size;
            best_label = next;
        }
    }
    for (int i = 0; i < w * h; i++)
        mask[i] = best_label && label[i] == best_label;
    free(label);
    free(stack);
    return best;
}

static struct seen analyse(const uint8_t *rgb, int w, int h)
{
    struct seen s = {0};
    int nb = 0;
    double *b[3];
    for (int c = 0; c < 3; c++)
        b[c] = malloc((size_t)(w + h) * 4 * sizeof(double));
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (x < 2 || y < 2 || x >= w - 2 || y >= h - 2) {
                for (int c = 0; c < 3; c++)
                    b[c][nb] = rgb[(y * w + x) * 3 + c];
                nb++;
            }
    double bg[3];
    for (int c = 0; c < 3; c++) {
        bg[c] = median(b[c], nb);
        free(b[c]);
    }
    s.background = nearest(bg);
    unsigned char *mask = malloc((size_t)w * h);
    for (int i = 0; i < w * h; i++) {
        double d = 0;
        for (int c = 0; c < 3; c++)
            d += (rgb[i * 3 + c] - bg[c]) * (rgb[i * 3 + c] - bg[c]);
        mask[i] = d > 60.0 * 60.0;
    }
    s.area = keep_largest(mask, w, h);
    if (s.area < 12) {
        free(mask);
        return s;
    }
    /* interior colour (pixels whose 4 neighbours are in the shape), as a median */
    double *v[3];
    int nv = 0, x0 = w, x1 = -1, y0 = h, y1 = -1;
    for (int c = 0; c < 3; c++)
        v[c] = malloc((size_t)w * h * sizeof(double));
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int i = y * w + x;
            if (!mask[i])
                continue;
            x0 = x < x0 ? x : x0, x1 = x > x1 ? x : x1, y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1;
            bool inner = x > 0 && x < w - 1 && y > 0 && y < h - 1 && mask[i - 1] && mask[i + 1] &&
                         mask[i - w] && mask[i + w];
            if (inner) {
                for (int c = 0; c < 3; c++)
                    v[c][nv] = rgb[i * 3 + c];
                nv++;
            }
        }
    if (nv < 4) { /* too thin for an interior: every pixel of the shape */
        nv = 0;
        for (int i = 0; i < w * h; i++)
            if (mask[i]) {
                for (int c = 0; c < 3; c++)
                    v[c][nv] = rgb[i * 3 + c];
                nv++;
            }
    }
    double fg[3];
    for (int c = 0; c < 3; c++) {
        fg[c] = median(v[c], nv);
        free(v[c]);
    }
    s.colour = nearest(fg);
    int bw = x1 - x0 + 1, bh = y1 - y0 + 1, top = 0;
    for (int y = y0; y < y0 + bh / 2; y++)
        for (int x = x0; x <= x1; x++)
            top += mask[y * w + x];
    s.fill = (double)s.area / (bw * bh);
    s.top = bh >= 2 ? (double)top / s.area : 0.5;
    static const struct {
        const char *name;
        double fill, top;
    } kinds[] = {{"circle", 0.785398163, 0.5}, {"square", 1.0, 0.5}, {"triangle", 0.5, 0.25}};
    double bd = INFINITY;
    for (int k = 0; k < 3; k++) {
        double d = (s.fill - kinds[k].fill) * (s.fill - kinds[k].fill) +
                   (s.top - kinds[k].top) * (s.top - kinds[k].top);
        if (d < bd) {
            bd = d;
            s.kind = kinds[k].name;
        }
    }
    free(mask);
    return s;
}

static bool same(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

int main(int argc, char **argv)
{
    char dir[1024];
    const char *env = getenv("DIFFUSIOND_DEFAULT_MODEL");
    if (argc > 1)
        snprintf(dir, sizeof dir, "%s", argv[1]);
    else if (env && *env)
        snprintf(dir, sizeof dir, "%s", env);
    else
        snprintf(dir, sizeof dir, "%s/models/default", DIFFUSIOND_SOURCE_DIR);
    char idx[1100];
    struct stat st;
    snprintf(idx, sizeof idx, "%s/model_index.json", dir);
    if (stat(idx, &st) != 0) {
        printf("SKIP: no bundled model at %s\n", dir);
        return SKIP;
    }
    struct sd_model_options opt;
    sd_model_options_default(&opt);
    struct errbuf err;
    if (cpu_backend_create(0, &opt.backend, &err) != STATUS_OK) {
        fprintf(stderr, "FAIL: cpu backend: %s\n", err.msg);
        return 1;
    }
    struct sd_model *m;
    if (sd_model_load(dir, &opt, &m, &err) != STATUS_OK) {
        fprintf(stderr, "FAIL: %s: %s\n", dir, err.msg);
        return 1;
    }
    struct workspace ws;
    if (workspace_init(&ws, opt.backend, DTYPE_F32, 0, &err) != STATUS_OK) {
        fprintf(stderr, "FAIL: workspace: %s\n", err.msg);
        return 1;
    }
    int ok_colour = 0, ok_bg = 0, ok_kind = 0;
    bool first_ok = false;
    for (int i = 0; i < N_CASES; i++) {
        struct gen_params p;
        gen_params_default(m, &p);
        p.prompt = CASES[i].prompt;
        p.seed = CASES[i].seed;
        p.steps = 20;
        p.guidance = 5.0;
        struct sd_image img;
        if (gen_params_validate(m, &p, &err) != STATUS_OK ||
            sd_txt2img(m, &ws, &p, 1, false, NULL, NULL, &img, NULL, &err) != STATUS_OK) {
            fprintf(stderr, "FAIL: %s: %s\n", CASES[i].prompt, err.msg);
            return 1;
        }
        struct seen s = analyse(img.rgb, img.width, img.height);
        sd_image_free(&img);
        bool c = same(s.colour, CASES[i].colour), b = same(s.background, CASES[i].background),
             k = same(s.kind, CASES[i].kind);
        ok_colour += c, ok_bg += b, ok_kind += k;
        if (i == 0)
            first_ok = c && b && k;
        printf("%-66s seed %llu: %s %s on %s (fill %.2f, top %.2f, %d px)%s\n", CASES[i].prompt,
               (unsigned long long)CASES[i].seed, s.colour ? s.colour : "-", s.kind ? s.kind : "-",
               s.background, s.fill, s.top, s.area, c && b && k ? "" : "   <-- miss");
    }
    workspace_destroy(&ws);
    sd_model_free(m);
    backend_destroy(opt.backend);
    printf("colour %d/%d (need %d), background %d/%d (need %d), kind %d/%d (need %d); "
           "\"%s\" %s\n",
           ok_colour, N_CASES, MIN_COLOUR, ok_bg, N_CASES, MIN_BACKGROUND, ok_kind, N_CASES,
           MIN_KIND, CASES[0].prompt, first_ok ? "right" : "WRONG");
    bool pass = ok_colour >= MIN_COLOUR && ok_bg >= MIN_BACKGROUND && ok_kind >= MIN_KIND &&
                first_ok;
    printf("%s\n", pass ? "PASS" : "FAIL");
    return pass ? 0 : 1;
}
