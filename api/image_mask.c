/* api/image_mask.c — inpainting masks from decoded images; Pillow's GaussianBlur
 * (api/image_mask.h). */
#include "api/image_mask.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* An empty plane of in's size into *out. */
static enum status mask_alloc(const struct image_rgba8 *in, struct image_gray8 *out,
                              struct errbuf *err)
{
    *out = (struct image_gray8){0, 0, NULL};
    if (!in || !in->rgba || in->width < 1 || in->height < 1)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "mask: an empty image");
    const size_t n = (size_t)in->width * (size_t)in->height;
    uint8_t *v = malloc(n);
    if (!v)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "mask: %zu bytes", n);
    *out = (struct image_gray8){in->width, in->height, v};
    return STATUS_OK;
}

static size_t npix(const struct image_rgba8 *in)
{
    return (size_t)in->width * (size_t)in->height;
}

enum status image_mask_luma(const struct image_rgba8 *in, struct image_gray8 *out,
                            struct errbuf *err)
{
    TRY(mask_alloc(in, out, err));
    for (size_t i = 0, n = npix(in); i < n; i++) {
        const uint8_t *p = in->rgba + 4 * i;
        out->v[i] = image_mask_luma_of(p[0], p[1], p[2]);
    }
    return STATUS_OK;
}

enum status image_mask_alpha(const struct image_rgba8 *in, struct image_gray8 *out,
                             struct errbuf *err)
{
    TRY(mask_alloc(in, out, err));
    for (size_t i = 0, n = npix(in); i < n; i++)
        out->v[i] = (uint8_t)(255 - in->rgba[4 * i + 3]);
    return STATUS_OK;
}

/* Some alpha below 255 (Pillow's getextrema()[-1] != (255, 255)). */
static bool any_translucent(const struct image_rgba8 *in)
{
    for (size_t i = 0, n = npix(in); i < n; i++)
        if (in->rgba[4 * i + 3] != 255)
            return true;
    return false;
}

enum status image_mask_a1111(const struct image_rgba8 *in, struct image_gray8 *out,
                             struct errbuf *err)
{
    if (!in || !in->rgba || !in->pillow_rgba || !any_translucent(in))
        return image_mask_luma(in, out, err);
    TRY(mask_alloc(in, out, err));
    for (size_t i = 0, n = npix(in); i < n; i++)
        out->v[i] = in->rgba[4 * i + 3] > 128 ? 255 : 0;
    return STATUS_OK;
}

bool image_mask_any_transparent(const struct image_rgba8 *in)
{
    if (!in || !in->rgba || !in->has_alpha)
        return false;
    for (size_t i = 0, n = npix(in); i < n; i++)
        if (in->rgba[4 * i + 3] == 0)
            return true;
    return false;
}

void image_mask_invert(struct image_gray8 *m)
{
    for (size_t i = 0, n = (size_t)m->width * (size_t)m->height; m->v && i < n; i++)
        m->v[i] = (uint8_t)(255 - m->v[i]);
}

/* --- Pillow's GaussianBlur (libImaging/BoxBlur.c) ------------------------------------- */

#define BLUR_PASSES 3

/* Pillow's _gaussian_blur_radius: the extended box's radius for a Gaussian of this
 * radius (sigma) over `passes` passes; float and double exactly where Pillow has them. */
static float box_radius(float radius, int passes)
{
    const float sigma2 = radius * radius / (float)passes;
    const float L = (float)sqrt(12.0 * sigma2 + 1.0);
    const float l = (float)floor((L - 1.0) / 2.0);
    float a = (2 * l + 1) * (l * (l + 1) - 3 * sigma2);
    a /= 6 * (sigma2 - (l + 1) * (l + 1));
    return l + a;
}

/* One box pass's constants (ImagingHorizontalBoxBlur). */
struct box {
    int radius, edge_a, edge_b;
    uint32_t ww, fw;
};

static struct box box_make(float r, int len)
{
    struct box b;
    b.radius = (int)r;
    b.ww = (uint32_t)((float)(1u << 24) / (r * 2 + 1));
    b.fw = ((1u << 24) - (uint32_t)(b.radius * 2 + 1) * b.ww) / 2;
    b.edge_a = b.radius + 1 < len ? b.radius + 1 : len;
    b.edge_b = len - b.radius - 1 > 0 ? len - b.radius - 1 : 0;
    return b;
}

/* in[0 … last] box-blurred into out (ImagingLineBoxBlur8; uint32 arithmetic as
 * Pillow's, whose differences wrap around to the right sums). */
static void box_line(const uint8_t *in, uint8_t *out, int last, const struct box *b)
{
    const int r = b->radius;
    uint32_t acc = (uint32_t)in[0] * (uint32_t)(r + 1);
    for (int x = 0; x < b->edge_a - 1; x++)
        acc += in[x];
    acc += (uint32_t)in[last] * (uint32_t)(r - b->edge_a + 1);
#define STEP(x, sub, add, far_l, far_r)                                                   \
    do {                                                                                  \
        acc += (uint32_t)in[add] - (uint32_t)in[sub];                                     \
        const uint32_t bulk = acc * b->ww + ((uint32_t)in[far_l] + in[far_r]) * b->fw;   \
        out[x] = (uint8_t)((bulk + (1u << 23)) >> 24);                                    \
    } while (0)
    if (b->edge_a <= b->edge_b) {
        for (int x = 0; x < b->edge_a; x++)
            STEP(x, 0, x + r, 0, x + r + 1);
        for (int x = b->edge_a; x < b->edge_b; x++)
            STEP(x, x - r - 1, x + r, x - r - 1, x + r + 1);
        for (int x = b->edge_b; x <= last; x++)
            STEP(x, x - r - 1, last, x - r - 1, last);
    } else {
        for (int x = 0; x < b->edge_b; x++)
            STEP(x, 0, x + r, 0, x + r + 1);
        for (int x = b->edge_b; x < b->edge_a; x++)
            STEP(x, 0, last, 0, last);
        for (int x = b->edge_a; x <= last; x++)
            STEP(x, x - r - 1, last, x - r - 1, last);
    }
#undef STEP
}

/* BLUR_PASSES box passes over each of `lines` lines of `len` samples, sample i of line
 * j at v[j·line_step + i·step]; line and tmp hold len samples each. */
static void blur_axis(uint8_t *v, int lines, int len, size_t line_step, size_t step, float r,
                      uint8_t *line, uint8_t *tmp)
{
    const struct box b = box_make(r, len);
    for (int j = 0; j < lines; j++) {
        uint8_t *p = v + (size_t)j * line_step;
        for (int i = 0; i < len; i++)
            line[i] = p[(size_t)i * step];
        for (int pass = 0; pass < BLUR_PASSES; pass++) {
            box_line(line, tmp, len - 1, &b);
            memcpy(line, tmp, (size_t)len);
        }
        for (int i = 0; i < len; i++)
            p[(size_t)i * step] = line[i];
    }
}

enum status image_mask_blur(struct image_gray8 *m, double rx, double ry, struct errbuf *err)
{
    if (!m || !m->v || m->width < 1 || m->height < 1)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "mask blur: an empty mask");
    if (!(rx >= 0 && rx <= IMAGE_MASK_BLUR_MAX && ry >= 0 && ry <= IMAGE_MASK_BLUR_MAX))
        return status_fail(err, STATUS_INVALID_ARGUMENT, "mask blur: radius %g, %g outside [0, %g]",
                           rx, ry, IMAGE_MASK_BLUR_MAX);
    const float bx = box_radius((float)rx, BLUR_PASSES), by = box_radius((float)ry, BLUR_PASSES);
    const int longest = m->width > m->height ? m->width : m->height;
    uint8_t *line = malloc(2 * (size_t)longest);
    if (!line)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "mask blur: %d bytes", 2 * longest);
    if (bx != 0) /* Pillow skips an axis whose box radius is 0 */
        blur_axis(m->v, m->height, m->width, (size_t)m->width, 1, bx, line, line + longest);
    if (by != 0)
        blur_axis(m->v, m->width, m->height, 1, (size_t)m->width, by, line, line + longest);
    free(line);
    return STATUS_OK;
}
