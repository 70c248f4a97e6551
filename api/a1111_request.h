/* api/a1111_request.h — the AUTOMATIC1111 web UI's API (/sdapi/v1), the request side:
 * POST /sdapi/v1/txt2img's and img2img's bodies mapped onto the OpenAI route's request
 * (api/openai_images.h), so that both routes resolve, validate, run and seed images
 * the same way; and POST /sdapi/v1/options' body.
 *
 * txt2img fields (A1111's names; null = absent; unknown fields ignored):
 *   prompt             string, may be empty (default "")
 *   negative_prompt    string
 *   seed               integer: -1 (default) = random, else [0, 2^63 − 1]; image i of the
 *                      request uses seed + i, as A1111's all_seeds
 *   sampler_name       a sampler name, A1111's or ours ("Euler a", "DPM++ 2M", the legacy
 *                      "DPM++ 2M Karras", "euler_a", …); absent: sampler_index (A1111's
 *                      deprecated field), then the model's default
 *   scheduler          "automatic" (default), "karras", "uniform", "sgm_uniform", or ours
 *   batch_size, n_iter integers ≥ 1 whose product (the images) is ≤ the server's max n
 *   steps              integer in [1, max_steps]; default the model's
 *   cfg_scale          number in [0, 100]; default the model's
 *   width, height      integers, multiples of 8 within the server's limits; each
 *                      default the model's native side
 *   eta                number in [0, 1]: DDIM's eta (other samplers ignore it)
 *   override_settings  object: sd_model_checkpoint (a model name; default the route's
 *                      current model), CLIP_stop_at_last_layers (integer ≥ 1: A1111's
 *                      clip skip, 1 = the last layer); other keys ignored with a warning
 *   send_images        boolean, default true (false: "images" is empty)
 * Accepted at their "off" value only (anything else is an error naming the field, as
 * this server cannot do it): enable_hr false, restore_faces false, tiling false,
 * styles [], alwayson_scripts {}, script_name null or "", subseed_strength 0,
 * s_churn 0, seed_resize_from_w/h ≤ 0.  Accepted and ignored: subseed,
 * denoising_strength and the hr_* / firstphase_* fields (they act only with enable_hr),
 * s_tmin, s_tmax, s_noise, save_images, do_not_save_samples, do_not_save_grid,
 * override_settings_restore_afterwards, script_args.  sampler_index must be a sampler
 * name even when sampler_name wins.
 *
 * Errors are api_error 400s naming A1111's field (the route answers them as 422, the
 * status A1111's FastAPI gives a body it cannot validate): "batch_size: …",
 * "cfg_scale: …", "width: …".
 *
 * Ownership: as openai_image_request (a1111_request_free; safe on a zeroed or failed
 * request).  Thread-safety: reentrant.
 */
#ifndef DIFFUSIOND_API_A1111_REQUEST_H
#define DIFFUSIOND_API_A1111_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include "api/api_error.h"
#include "api/img2img.h"
#include "api/openai_images.h"

/* A txt2img or img2img request. */
struct a1111_request {
    struct openai_image_request req; /* what both map onto: req.n = batch_size × n_iter,
                                        req.model = override_settings.sd_model_checkpoint,
                                        req.a1111_fields set; resolve with
                                        openai_images_resolve */
    int batch_size, n_iter;
    bool send_images;
    struct api_img2img i2i;          /* img2img: init_images[0] and denoising_strength
                                        (i2i.init.rgb NULL for txt2img); the mask and its
                                        options in i2i.inpaint */
    bool inpaint_full_res;           /* img2img: as sent (echoed; i2i.inpaint acts on it) */
    int inpaint_full_res_padding;
};

/* Stage 1: body[0 … len) → t (zeroed first).  On failure e is filled and t holds
 * nothing to free. */
enum status a1111_txt2img_parse(const char *body, size_t len, const struct api_limits *limits,
                                struct a1111_request *t, struct api_error *e);

/* POST /sdapi/v1/img2img: the txt2img fields and
 *   init_images        required: a non-empty array of base64 strings (a data: URL's
 *                      "data:image/png;base64," prefix allowed) of PNG, JPEG or WebP
 *                      images, each side ≤ API_IMG2IMG_MAX_SIDE and at most
 *                      API_IMG2IMG_MAX_PIXELS pixels (api/img2img.h); alpha flattened
 *                      onto white.  The
 *                      first is used (more: a warning — A1111 cycles them over the batch)
 *   denoising_strength number in (0, 1], default 0.75; int(steps × strength) steps run
 *                      (diffusers' img2img), so it must give at least one
 *   width, height      default: the image's side rounded down to a multiple of 8 (scaled
 *                      down, aspect kept, to fit the server's limits, with a warning);
 *                      the image is resized to width × height (Pillow's Lanczos, A1111's
 *                      "Just resize")
 *   resize_mode        0 ("Just resize") only
 *   mask               inpainting (api/inpaint.h): a base64 PNG, JPEG or WebP (data: prefix
 *                      allowed, the start image's limits; null or "": none, as A1111
 *                      reads ""), any size (resized with the
 *                      image); its luma is the mask, white repaints (an RGBA image with
 *                      some transparency: its alpha > 128 — A1111's create_binary_mask)
 *   inpainting_mask_invert  0 (default) or 1 (false/true too): 1 repaints the black area
 *   mask_blur          integer in [0, 1000], default 4: Pillow's GaussianBlur radius,
 *                      applied at the mask's own size after the inversion, before the
 *                      resize; mask_blur_x / mask_blur_y set one axis each when mask_blur
 *                      is absent, and beside it must equal it (else a 400 naming them)
 *   inpainting_fill    0 (default) fill: the repainted area of the resized start image
 *                      first replaced by a push-pull fill of its surroundings
 *                      (api/image_fill.h; not A1111's blur layers), 1 original, 2 latent
 *                      noise, 3 latent nothing (models/pipeline.h's SD_FILL_*)
 *   inpaint_full_res   boolean (0/1 too), default true: A1111's "only masked" — the
 *                      region around the mask (grown by inpaint_full_res_padding, an
 *                      integer ≥ 0, and to the request's aspect ratio) is generated at
 *                      the request's size and pasted back into the whole start image,
 *                      which is the answer's size then (api/inpaint.h); false: the whole
 *                      picture at the request's size
 * Without a mask the inpainting fields are checked and have no effect.
 * Accepted at their off value only: include_init_images false, initial_noise_multiplier
 * 1, latent_mask null.  Ignored (it acts only with an instruct-pix2pix model):
 * image_cfg_scale. */
enum status a1111_img2img_parse(const char *body, size_t len, const struct api_limits *limits,
                                struct a1111_request *t, struct api_error *e);

/* Stage 3 of img2img, after openai_images_resolve: resizes the init image (and the
 * mask) to the resolved params' size and points params.init_image, params.strength (and
 * init_mask, inpaint_fill) at them; a strength that runs no step at the resolved steps
 * is a 400 naming denoising_strength, a mask corrupt past its header one naming mask.
 * A txt2img request: nothing to do. */
enum status a1111_img2img_finish(struct a1111_request *t, struct api_error *e);

/* Frees what t owns and zeroes it; t may be NULL. */
void a1111_request_free(struct a1111_request *t);

/* POST /sdapi/v1/options: the body's sd_model_checkpoint (a malloc'ed copy into *model,
 * NULL when absent or null); other keys are A1111 UI settings this server has not and
 * are ignored.  400 naming the field for a wrong type; a body that is not an object. */
enum status a1111_options_parse(const char *body, size_t len, char **model,
                                struct api_error *e);

#endif
