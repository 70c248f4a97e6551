/* models/pipeline_inpaint.c — inpainting on top of img2img: the latent mask, the
 * kept pixels' reset after every step, the final overlay.  See "Inpainting" in
 * models/pipeline.h; diffusers' StableDiffusionInpaintPipeline with a 4-channel U-Net
 * is the reference (tests/unit/test_img2img.c, its inpainting cases). */
#include <stdlib.h>
#include <string.h>

#include "engine/philox.h"
#include "models/pipeline_internal.h"

static const float ONE = 1.0f;

bool inpaint_wanted(const struct gen_params *p)
{
    return p->init_image && p->init_mask;
}

/* keep[y·lw + x] = 1 where the latent pixel is kept: the mask's value at the latent
 * pixel's top-left image pixel (torch's nearest interpolate by an integer factor)
 * below 128 (diffusers' binarize: value/255 < 0.5). */
static void latent_keep(const struct gen_params *p, const struct sd_request *req, int factor,
                        uint8_t *keep)
{
    for (int y = 0; y < req->lh; y++)
        for (int x = 0; x < req->lw; x++) {
            const size_t src = (size_t)y * (size_t)factor * (size_t)p->width +
                               (size_t)x * (size_t)factor;
            keep[(size_t)y * (size_t)req->lw + (size_t)x] = p->init_mask[src] < 128;
        }
}

static enum status upload_new(const struct sd_model *m, const struct sd_request *req,
                              const float *host, struct tensor *t, struct errbuf *err)
{
    const int64_t shape[4] = {1, req->lh, req->lw, req->lc};
    *t = tensor_desc(req->latent.dtype, 4, shape);
    enum status s = backend_alloc(m->backend, t, err);
    return s == STATUS_OK ? backend_upload(t, host, DTYPE_F32, err) : s;
}

/* The repainted area's start in z (inpaint_fill); scratch: n floats. */
static void apply_fill(const struct gen_params *p, const struct sd_request *req,
                       const uint8_t *keep, float *scratch, float *z)
{
    const size_t n = req->n_elems, lc = (size_t)req->lc;
    if (p->inpaint_fill == SD_FILL_ORIGINAL)
        return;
    if (p->inpaint_fill == SD_FILL_LATENT_NOISE)
        philox_normal_fill(req->seed, 2, 0, scratch, n);
    for (size_t i = 0; i < n; i++)
        if (!keep[i / lc])
            z[i] = p->inpaint_fill == SD_FILL_LATENT_NOISE ? scratch[i] : 0.0f;
}

enum status inpaint_begin(const struct sd_model *m, const struct gen_params *p,
                          struct sd_request *req, float *z, const float *noise, float *latent,
                          struct errbuf *err)
{
    const size_t n = req->n_elems, lc = (size_t)req->lc;
    const size_t lpx = (size_t)req->lh * (size_t)req->lw;
    uint8_t *keep = malloc(lpx);
    float *scratch = malloc(sizeof(float) * n);
    enum status s = keep && scratch ? STATUS_OK
                                    : status_fail(err, STATUS_OUT_OF_MEMORY,
                                                  "init_mask: latent mask of %zu floats", n);
    if (s == STATUS_OK) {
        if (!p->inpaint_no_overlay) {
            req->overlay_rgb = p->init_image; /* borrowed until sd_decode (pipeline.h) */
            req->overlay_mask = p->init_mask;
        }
        latent_keep(p, req, m->downscale, keep);
        for (size_t i = 0; i < n; i++) /* keep·z */
            scratch[i] = keep[i / lc] ? z[i] : 0.0f;
        s = upload_new(m, req, scratch, &req->inpaint_z, err);
    }
    if (s == STATUS_OK) {
        for (size_t i = 0; i < n; i++) /* keep·noise */
            scratch[i] = keep[i / lc] ? noise[i] : 0.0f;
        s = upload_new(m, req, scratch, &req->inpaint_noise, err);
    }
    if (s == STATUS_OK) {
        for (size_t i = 0; i < n; i++)
            scratch[i] = keep[i / lc] ? 0.0f : 1.0f;
        s = upload_new(m, req, scratch, &req->inpaint_paint, err);
    }
    if (s == STATUS_OK) {
        if (p->strength >= 1.0) { /* diffusers' is_strength_max: pure noise */
            const float sigma = sampler_init_noise_sigma(&req->sampler);
            for (size_t i = 0; i < n; i++)
                latent[i] = noise[i] * sigma;
        } else {
            apply_fill(p, req, keep, scratch, z);
            sampler_add_noise(&req->sampler, z, noise, latent, n);
        }
    }
    free(keep);
    free(scratch);
    return s;
}

enum status inpaint_after_step(struct sd_request *req, struct errbuf *err)
{
    if (!req->inpaint_paint.data)
        return STATUS_OK;
    /* latent = paint·latent + a·(keep·z) + b·(keep·noise): on a kept pixel 0 + a·z + b·n
     * (diffusers' add_noise), on a repainted one latent + 0 + 0 — an exact select */
    float a = 1.0f, b = 0.0f;
    if (!sampler_done(&req->sampler))
        sampler_add_noise_coeffs(&req->sampler, sampler_step_index(&req->sampler), &a, &b);
    enum status s = backend_mul(&req->latent, &req->inpaint_paint, &req->latent, err);
    if (s == STATUS_OK)
        s = backend_axpby(&req->latent, &req->inpaint_z, &ONE, &a, &req->latent, err);
    if (s == STATUS_OK && b != 0.0f)
        s = backend_axpby(&req->latent, &req->inpaint_noise, &ONE, &b, &req->latent, err);
    return s;
}

void inpaint_overlay(const struct sd_request *req, uint8_t *rgb)
{
    if (!req->overlay_rgb)
        return;
    const size_t px = (size_t)req->width * (size_t)req->height;
    const uint8_t *start = req->overlay_rgb, *mask = req->overlay_mask;
    for (size_t i = 0; i < px; i++) {
        const unsigned a = mask[i] < 128 ? 2u * mask[i] : 255u; /* A1111: min(255, 2·mask) */
        for (int c = 0; c < 3; c++) {
            const size_t k = i * 3 + (size_t)c;
            rgb[k] = (uint8_t)((rgb[k] * a + start[k] * (255u - a) + 127u) / 255u);
        }
    }
}

void inpaint_free(struct sd_request *req)
{
    backend_free(&req->inpaint_z);
    backend_free(&req->inpaint_noise);
    backend_free(&req->inpaint_paint);
    req->overlay_rgb = req->overlay_mask = NULL;
}
