/* models/pipeline_internal.h — shared between the pipeline's source files
 * (pipeline.c, pipeline_params.c, pipeline_run.c); nothing else includes it.
 * Ownership and thread-safety as models/pipeline.h. */
#ifndef DIFFUSIOND_MODELS_PIPELINE_INTERNAL_H
#define DIFFUSIOND_MODELS_PIPELINE_INTERNAL_H

#include "models/pipeline.h"

/* A copy of `base` that shares its tables with the config changed for scheduler `s`
 * (never schedule_free it). */
struct schedule sd_schedule_variant(const struct schedule *base, enum sd_scheduler s);

/* --- inpainting (pipeline_inpaint.c) ---------------------------------------------- */

/* Whether p asks for inpainting (an init_mask with its init_image). */
bool inpaint_wanted(const struct gen_params *p);

/* The start of an inpainting request (sd_request_begin, after the image's latent z
 * and the start's noise, both host {lh,lw,lc}): borrows the overlay's image and mask, uploads
 * keep·z, keep·noise and the paint mask into req's inpaint_* tensors, and writes the
 * start latent into latent (host): noise·init_noise_sigma at strength ≥ 1, else
 * add_noise(z with inpaint_fill under the mask, noise) at the first step.  z is
 * overwritten. */
enum status inpaint_begin(const struct sd_model *m, const struct gen_params *p,
                          struct sd_request *req, float *z, const float *noise, float *latent,
                          struct errbuf *err);

/* After a step of an inpainting request (no-op otherwise): the kept pixels reset to
 * z noised to the next step (z itself once done), on the backend. */
enum status inpaint_after_step(struct sd_request *req, struct errbuf *err);

/* The decoded rgb (req's width·height·3) composited over the start image with the
 * mask as alpha; no-op without an overlay. */
void inpaint_overlay(const struct sd_request *req, uint8_t *rgb);

/* Frees the inpaint_* tensors; forgets the overlay. */
void inpaint_free(struct sd_request *req);

#endif
