/* api/openai_edits.c — POST /v1/images/edits' multipart body (api/openai_edits.h). */
#include "api/openai_edits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/json_fields.h"
#include "api/multipart.h"

#define FIELD_NAME_MAX 64

/* With a mask the strength's default is 1 (diffusers' inpainting: the masked area
 * repainted from noise); an image with transparent pixels and no mask carries its own. */
static const struct api_img2img_fields FIELDS_I2I = {"image", "strength", "mask", 1.0, true};

/* The text fields whose JSON type is not a string (read as JSON scalars). */
static bool scalar_field(const char *name)
{
    static const char *const names[] = {"n",           "steps",    "guidance_scale",
                                        "seed",        "clip_skip", "deadline_ms",
                                        "priority",    "output_compression", "strength",
                                        "stream"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}

static bool is_image_part(const char *name)
{
    return strcmp(name, "image") == 0 || strcmp(name, "image[]") == 0;
}

/* A text part's value: a JSON scalar for the numeric and boolean fields (a string when
 * it does not read as one, so that the field's reader names the wrong type), else a
 * string; NULL for bytes that are not UTF-8. */
static json_t *text_value(const char *name, const struct multipart_part *p)
{
    if (scalar_field(name)) {
        json_t *v = json_loadb((const char *)p->data, p->len, JSON_DECODE_ANY, NULL);
        if (v && !json_is_object(v) && !json_is_array(v))
            return v;
        json_decref(v);
    }
    return json_stringn((const char *)p->data, p->len);
}

/* The file parts read apart from the text fields. */
struct file_parts {
    const struct multipart_part *image; /* the first image part */
    int n_images;
    const struct multipart_part *mask;
};

/* The text parts into root; the image parts counted, the mask kept. */
static enum status read_parts(const struct multipart_form *form, json_t *root,
                              struct file_parts *files, struct api_error *e)
{
    for (int i = 0; i < form->n; i++) {
        const struct multipart_part *p = &form->parts[i];
        char name[FIELD_NAME_MAX];
        if (p->name_len == 0 || p->name_len >= sizeof name || memchr(p->name, '\0', p->name_len))
            continue; /* no field of ours: ignored, as unknown fields */
        memcpy(name, p->name, p->name_len);
        name[p->name_len] = '\0';
        if (is_image_part(name)) {
            if (!files->image)
                files->image = p;
            files->n_images++;
            continue;
        }
        if (strcmp(name, "mask") == 0) {
            if (files->mask)
                return json_field_bad(e, "mask", "sent twice%s%s", NULL, NULL);
            files->mask = p;
            continue;
        }
        if (json_object_get(root, name))
            return json_field_bad(e, name, "sent twice%s%s", NULL, NULL);
        if (p->filename)
            return json_field_bad(e, name, "must be a text field, not a file%s%s", NULL, NULL);
        json_t *v = text_value(name, p);
        if (!v)
            return json_field_bad(e, name, "is not valid UTF-8 text%s%s", NULL, NULL);
        if (json_object_set_new(root, name, v) != 0)
            return json_field_oom(e, name);
    }
    return STATUS_OK;
}

/* A copy of a file part (the body is the caller's); NULL when out of memory. */
static uint8_t *part_copy(const struct multipart_part *p)
{
    uint8_t *copy = malloc(p->len ? p->len : 1);
    if (copy)
        memcpy(copy, p->data, p->len);
    return copy;
}

/* The image part and the mask part (if any), kept for api_img2img_finish. */
static enum status take_files(const struct file_parts *files, struct api_img2img *i2i,
                              struct api_error *e)
{
    uint8_t *copy = part_copy(files->image);
    if (!copy)
        return json_field_oom(e, "image");
    TRY(api_img2img_take(copy, files->image->len, &FIELDS_I2I, i2i, e));
    if (!files->mask)
        return STATUS_OK;
    if (!(copy = part_copy(files->mask)))
        return json_field_oom(e, "mask");
    TRY(api_inpaint_take(copy, files->mask->len, API_MASK_ALPHA, "mask", &i2i->inpaint, e));
    if (i2i->inpaint.width == i2i->width && i2i->inpaint.height == i2i->height)
        return STATUS_OK;
    char msg[160];
    snprintf(msg, sizeof msg, "a %dx%d mask for a %dx%d image: it must have the image's size",
             i2i->inpaint.width, i2i->inpaint.height, i2i->width, i2i->height);
    return json_field_bad(e, "mask", "%s%s", msg, NULL);
}

/* The parts, read into r. */
static enum status read_form(const struct multipart_form *form, const struct api_limits *limits,
                             struct openai_edit_request *r, struct api_error *e)
{
    json_t *root = json_object();
    if (!root)
        return json_field_oom(e, "the form");
    struct file_parts files = {NULL, 0, NULL};
    enum status s = read_parts(form, root, &files, e);
    if (s == STATUS_OK)
        s = openai_images_parse_object(root, limits, &r->req, e);
    if (s == STATUS_OK)
        s = api_img2img_read_strength(root, &FIELDS_I2I, &r->i2i, e);
    json_decref(root);
    if (s == STATUS_OK && !files.image)
        s = json_field_bad(e, "image", "is required: a PNG, JPEG or WebP file part%s%s", NULL,
                           NULL);
    if (s == STATUS_OK)
        s = take_files(&files, &r->i2i, e);
    if (s == STATUS_OK && files.n_images > 1)
        s = openai_image_request_warn(&r->req, "image: only the first image is used", e);
    if (s == STATUS_OK)
        s = api_img2img_default_size(limits, &FIELDS_I2I, &r->i2i, &r->req, e);
    return s;
}

enum status openai_edits_parse(const char *content_type, const uint8_t *body, size_t len,
                               const struct api_limits *limits, struct openai_edit_request *r,
                               struct api_error *e)
{
    memset(r, 0, sizeof *r);
    struct multipart_form *form = malloc(sizeof *form);
    if (!form)
        return json_field_oom(e, "the form");
    struct errbuf err;
    enum status s = multipart_parse(content_type, body, len, form, &err);
    if (s == STATUS_OUT_OF_MEMORY)
        s = json_field_oom(e, "the form");
    else if (s != STATUS_OK)
        s = json_field_bad(e, NULL, "the multipart/form-data body: %s%s", err.msg, NULL);
    else
        s = read_form(form, limits, r, e);
    free(form);
    if (s != STATUS_OK)
        openai_edit_request_free(r);
    return s;
}

enum status openai_edits_finish(struct openai_edit_request *r, struct api_error *e)
{
    return api_img2img_finish(&FIELDS_I2I, &r->i2i, &r->req, e);
}

void openai_edit_request_free(struct openai_edit_request *r)
{
    if (!r)
        return;
    openai_image_request_free(&r->req);
    api_img2img_free(&r->i2i);
    memset(r, 0, sizeof *r);
}
