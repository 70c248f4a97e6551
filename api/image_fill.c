/* api/image_fill.c — the push-pull hole fill (api/image_fill.h). */
#include "api/image_fill.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LEVELS 32 /* sides ≤ 65535 halve to 1 in 17 */

/* One pyramid level: w·h pixels, RGB, and which of them are known. */
struct level {
    int w, h;
    uint8_t *rgb;
    uint8_t *known;
};

struct pyramid {
    int n;
    struct level lv[MAX_LEVELS];
};

static void pyramid_free(struct pyramid *p)
{
    for (int i = 1; i < p->n; i++) { /* level 0 is the caller's image */
        free(p->lv[i].rgb);
        free(p->lv[i].known);
    }
    free(p->lv[0].known);
    p->n = 0;
}

/* Level 0 over img (its pixels, known where the mask is below the threshold), then the
 * empty coarser levels down to 1×1. */
static enum status pyramid_make(struct image_rgb8 *img, const struct image_gray8 *mask,
                                struct pyramid *p, struct errbuf *err)
{
    const size_t n0 = (size_t)img->width * (size_t)img->height;
    p->n = 1;
    p->lv[0] = (struct level){img->width, img->height, img->rgb, malloc(n0)};
    bool ok = p->lv[0].known != NULL;
    for (size_t i = 0; ok && i < n0; i++)
        p->lv[0].known[i] = mask->v[i] < IMAGE_FILL_THRESHOLD;
    while (ok && (p->lv[p->n - 1].w > 1 || p->lv[p->n - 1].h > 1) && p->n < MAX_LEVELS) {
        const struct level *f = &p->lv[p->n - 1];
        const int w = (f->w + 1) / 2, h = (f->h + 1) / 2;
        const size_t n = (size_t)w * (size_t)h;
        p->lv[p->n] = (struct level){w, h, malloc(n * 3), malloc(n)};
        ok = p->lv[p->n].rgb && p->lv[p->n].known;
        p->n++;
    }
    if (ok)
        return STATUS_OK;
    pyramid_free(p);
    return status_fail(err, STATUS_OUT_OF_MEMORY, "fill: a pyramid over %dx%d pixels",
                       img->width, img->height);
}

/* Pull: pixel (x, y) of c from its known children in f. */
static void pull_pixel(const struct level *f, struct level *c, int x, int y)
{
    unsigned sum[3] = {0, 0, 0}, count = 0;
    for (int dy = 0; dy < 2; dy++)
        for (int dx = 0; dx < 2; dx++) {
            const int fx = 2 * x + dx, fy = 2 * y + dy;
            if (fx >= f->w || fy >= f->h)
                continue;
            const size_t i = (size_t)fy * (size_t)f->w + (size_t)fx;
            if (!f->known[i])
                continue;
            for (int k = 0; k < 3; k++)
                sum[k] += f->rgb[3 * i + (size_t)k];
            count++;
        }
    const size_t o = (size_t)y * (size_t)c->w + (size_t)x;
    c->known[o] = count > 0;
    for (int k = 0; k < 3; k++)
        c->rgb[3 * o + (size_t)k] = count ? (uint8_t)((sum[k] + count / 2) / count) : 0;
}

static void pull(struct pyramid *p)
{
    for (int l = 1; l < p->n; l++)
        for (int y = 0; y < p->lv[l].h; y++)
            for (int x = 0; x < p->lv[l].w; x++)
                pull_pixel(&p->lv[l - 1], &p->lv[l], x, y);
}

/* Along one axis: the coarser pixel nearest to fine pixel x (weight 3/4) and the next
 * one on x's side (1/4), clamped to [0, n). */
static void near_far(int x, int n, int *near, int *far)
{
    *near = x / 2;
    *far = x % 2 ? *near + 1 : *near - 1;
    if (*far < 0)
        *far = 0;
    if (*far >= n)
        *far = n - 1;
}

/* Push: the unknown pixel (x, y) of f from c (all known). */
static void push_pixel(const struct level *c, struct level *f, int x, int y)
{
    int xn, xf, yn, yf;
    near_far(x, c->w, &xn, &xf);
    near_far(y, c->h, &yn, &yf);
    const uint8_t *nn = c->rgb + 3 * ((size_t)yn * (size_t)c->w + (size_t)xn);
    const uint8_t *nf = c->rgb + 3 * ((size_t)yn * (size_t)c->w + (size_t)xf);
    const uint8_t *fn = c->rgb + 3 * ((size_t)yf * (size_t)c->w + (size_t)xn);
    const uint8_t *ff = c->rgb + 3 * ((size_t)yf * (size_t)c->w + (size_t)xf);
    uint8_t *o = f->rgb + 3 * ((size_t)y * (size_t)f->w + (size_t)x);
    for (int k = 0; k < 3; k++)
        o[k] = (uint8_t)((9u * nn[k] + 3u * nf[k] + 3u * fn[k] + ff[k] + 8u) >> 4);
}

static void push(struct pyramid *p)
{
    struct level *top = &p->lv[p->n - 1];
    for (size_t i = 0; i < (size_t)top->w * (size_t)top->h; i++)
        if (!top->known[i])
            memset(top->rgb + 3 * i, IMAGE_FILL_GRAY, 3);
    for (int l = p->n - 2; l >= 0; l--) {
        struct level *f = &p->lv[l];
        for (int y = 0; y < f->h; y++)
            for (int x = 0; x < f->w; x++)
                if (!f->known[(size_t)y * (size_t)f->w + (size_t)x])
                    push_pixel(&p->lv[l + 1], f, x, y);
    }
}

enum status image_fill_holes(struct image_rgb8 *img, const struct image_gray8 *mask,
                             struct errbuf *err)
{
    if (!img || !img->rgb || img->width < 1 || img->height < 1)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "fill: an empty image");
    if (!mask || !mask->v || mask->width != img->width || mask->height != img->height)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "fill: the mask is not %dx%d",
                           img->width, img->height);
    struct pyramid p;
    TRY(pyramid_make(img, mask, &p, err));
    pull(&p);
    push(&p);
    pyramid_free(&p);
    return STATUS_OK;
}
