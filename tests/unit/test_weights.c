/* tests/unit/test_weights.c — models/weights: diffusers component folders, shape
 * checks naming the tensor, conv layout change OIHW → OHWI, fp16 variant, mapped row
 * slices, non-float dtypes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "models/safetensors.h"
#include "models/weights.h"
#include "tests/testutil.h"

#define UNET_DIR DIFFUSIOND_SOURCE_DIR "/tests/fixtures/sd/sd1-tiny/diffusers/unet"

static struct weights *open_unet(bool fp16)
{
    struct weights *w;
    struct errbuf err;
    enum status s = weights_open_dir(UNET_DIR, fp16, &w, &err);
    ck_assert_msg(s == STATUS_OK, "%s", err.msg);
    return w;
}

START_TEST(test_conv_permuted_to_ohwi)
{
    struct weights *w = open_unet(false);
    struct errbuf err;
    /* conv_in: {8,4,3,3} in the file */
    float raw[8 * 4 * 3 * 3];
    ck_assert_int_eq(weights_read_f32(w, "conv_in.weight", raw, 8 * 4 * 9, &err), STATUS_OK);
    struct tensor t;
    ck_assert_int_eq(weights_load_conv(w, "conv_in.weight", 8, 4, 3, 3, test_cpu_backend(), &t,
                                       &err),
                     STATUS_OK);
    ck_assert_int_eq(t.ndim, 4);
    ck_assert_int_eq(t.shape[1], 3);
    ck_assert_int_eq(t.shape[3], 4);
    float *got = test_download(&t);
    for (int o = 0; o < 8; o++)
        for (int i = 0; i < 4; i++)
            for (int y = 0; y < 3; y++)
                for (int x = 0; x < 3; x++)
                    ck_assert_float_eq(got[((o * 3 + y) * 3 + x) * 4 + i],
                                       raw[((o * 4 + i) * 3 + y) * 3 + x]);
    free(got);
    backend_free(&t);
    weights_close(w);
}
END_TEST

START_TEST(test_shape_mismatch_names_tensor)
{
    struct weights *w = open_unet(false);
    struct errbuf err;
    struct tensor t;
    enum status s = weights_load(w, "conv_in.bias", 1, (int64_t[]){9}, test_cpu_backend(), &t, &err);
    ck_assert_int_eq(s, STATUS_FORMAT);
    ck_assert_msg(strstr(err.msg, "'conv_in.bias'") && strstr(err.msg, "[8]") &&
                      strstr(err.msg, "[9]"),
                  "%s", err.msg);
    s = weights_load(w, "no.such.tensor", 1, (int64_t[]){1}, test_cpu_backend(), &t, &err);
    ck_assert_int_eq(s, STATUS_FORMAT);
    ck_assert_msg(strstr(err.msg, "missing tensor 'no.such.tensor'"), "%s", err.msg);
    weights_close(w);
}
END_TEST

START_TEST(test_fp16_variant_close_to_f32)
{
    struct weights *w32 = open_unet(false), *w16 = open_unet(true);
    ck_assert_ptr_nonnull(strstr(weights_label(w16), ".fp16.safetensors"));
    struct errbuf err;
    float a[32 * 8], b[32 * 8];
    ck_assert_int_eq(weights_read_f32(w32, "time_embedding.linear_1.weight", a, 256, &err), STATUS_OK);
    ck_assert_int_eq(weights_read_f32(w16, "time_embedding.linear_1.weight", b, 256, &err), STATUS_OK);
    for (int i = 0; i < 256; i++) /* fp16 keeps 11 significant bits */
        ck_assert_float_eq_tol(a[i], b[i], 1e-3f * (a[i] < 0 ? -a[i] : a[i]) + 1e-7f);
    weights_close(w32);
    weights_close(w16);
}
END_TEST

START_TEST(test_linear_accepts_1x1_conv)
{
    struct weights *w = open_unet(false);
    struct errbuf err;
    struct tensor t;
    ck_assert_int_eq(weights_load_linear(w, "time_embedding.linear_1.weight", 32, 8,
                                         test_cpu_backend(), &t, &err),
                     STATUS_OK);
    ck_assert_int_eq(t.ndim, 2);
    backend_free(&t);
    weights_close(w);
}
END_TEST

START_TEST(test_missing_dir)
{
    struct weights *w;
    struct errbuf err;
    ck_assert_int_eq(weights_open_dir("/nonexistent/unet", false, &w, &err), STATUS_NOT_FOUND);
    ck_assert_ptr_null(w);
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/unet"));
}
END_TEST

/* q/k/v as row slices of one fused {3,2} tensor; "bad" asks for rows past its end. */
static bool fused_map(const void *ctx, const char *name, struct weights_ref *ref)
{
    (void)ctx;
    memset(ref, 0, sizeof *ref);
    strcpy(ref->name, "in_proj_weight");
    ref->row_count = 1;
    if (!strcmp(name, "q.weight") || !strcmp(name, "k.weight") || !strcmp(name, "v.weight")) {
        ref->row_begin = name[0] == 'q' ? 0 : name[0] == 'k' ? 1 : 2;
        return true;
    }
    if (!strcmp(name, "bad.weight")) {
        ref->row_begin = 2;
        ref->row_count = 2;
        return true;
    }
    if (!strcmp(name, "ints")) {
        strcpy(ref->name, "ids");
        ref->row_count = 0;
        return true;
    }
    return false;
}

START_TEST(test_row_slices_and_dtype)
{
    char path[] = "/tmp/test_weights_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    float fused[6] = {1, 2, 3, 4, 5, 6};
    int32_t ids[2] = {7, 8};
    struct safetensors_write_tensor t[2] = {
        {"in_proj_weight", SAFETENSORS_F32, 2, (int64_t[]){3, 2}, fused},
        {"ids", SAFETENSORS_I32, 1, (int64_t[]){2}, ids}};
    struct errbuf err;
    ck_assert_int_eq(safetensors_write(path, t, 2, NULL, 0, &err), STATUS_OK);
    struct safetensors *st;
    ck_assert_int_eq(safetensors_open(path, &st, &err), STATUS_OK);
    struct weights *w;
    ck_assert_int_eq(weights_open_mapped_ref(st, "fused", fused_map, NULL, &w, &err), STATUS_OK);
    float got[2];
    ck_assert_int_eq(weights_read_f32(w, "k.weight", got, 2, &err), STATUS_OK);
    ck_assert_float_eq(got[0], 3);
    ck_assert_float_eq(got[1], 4);
    struct tensor v;
    ck_assert_int_eq(weights_load_linear(w, "v.weight", 1, 2, test_cpu_backend(), &v, &err), STATUS_OK);
    float *vh = test_download(&v);
    ck_assert_float_eq(vh[1], 6);
    free(vh);
    backend_free(&v);
    ck_assert_ptr_eq(weights_find(w, "q.weight"), safetensors_find(st, "in_proj_weight"));
    struct safetensors_tensor view;
    ck_assert_int_eq(weights_view(w, "bad.weight", &view, &err), STATUS_FORMAT);
    ck_assert_msg(strstr(err.msg, "'bad.weight'") && strstr(err.msg, "rows [2,4)") &&
                      strstr(err.msg, "3 rows"), "%s", err.msg);
    ck_assert_int_eq(weights_load(w, "q.weight", 1, (int64_t[]){2}, test_cpu_backend(), &v, &err),
                     STATUS_FORMAT);
    ck_assert_msg(strstr(err.msg, "shape [1,2], expected [2]") && strstr(err.msg, "in_proj_weight"),
                  "%s", err.msg);
    ck_assert_int_eq(weights_load(w, "ints", 1, (int64_t[]){2}, test_cpu_backend(), &v, &err),
                     STATUS_FORMAT);
    ck_assert_msg(strstr(err.msg, "'ints' (file tensor 'ids') has dtype I32"), "%s", err.msg);
    ck_assert_int_eq(weights_read_f32(w, "nothing", got, 2, &err), STATUS_FORMAT);
    ck_assert_msg(strstr(err.msg, "missing tensor 'nothing' (not in this layout)"), "%s", err.msg);
    weights_close(w);
    safetensors_close(st);
    remove(path);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("weights");
    TCase *tc = tcase_create("weights");
    tcase_add_test(tc, test_conv_permuted_to_ohwi);
    tcase_add_test(tc, test_shape_mismatch_names_tensor);
    tcase_add_test(tc, test_fp16_variant_close_to_f32);
    tcase_add_test(tc, test_linear_accepts_1x1_conv);
    tcase_add_test(tc, test_missing_dir);
    tcase_add_test(tc, test_row_slices_and_dtype);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
