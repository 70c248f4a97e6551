/* tests/unit/test_model_config.c — models/model_config: getters with defaults, null as
 * absent, scalar-for-list, errors naming the source and the key, a real config.json. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/model_config.h"
#include "models/schedule.h"
#include "tests/testutil.h"

#define UNET_CONFIG DIFFUSIOND_SOURCE_DIR "/tests/fixtures/sd/sd2-tiny/diffusers/unet/config.json"

static json_t *parse(const char *text)
{
    json_t *obj;
    struct errbuf err;
    ck_assert_msg(model_config_parse(text, "test.json", &obj, &err) == STATUS_OK, "%s", err.msg);
    return obj;
}

START_TEST(test_scalars_and_defaults)
{
    json_t *c = parse("{\"a\": 3, \"r\": 4.0, \"f\": 0.5, \"b\": true, \"s\": \"x\", \"n\": null}");
    struct errbuf err;
    int i;
    double d;
    bool b;
    const char *s;
    ck_assert_int_eq(model_config_int(c, "a", 0, &i, &err), STATUS_OK);
    ck_assert_int_eq(i, 3);
    ck_assert_int_eq(model_config_int(c, "r", 0, &i, &err), STATUS_OK);
    ck_assert_int_eq(i, 4);
    ck_assert_int_eq(model_config_int(c, "missing", 7, &i, &err), STATUS_OK);
    ck_assert_int_eq(i, 7);
    ck_assert_int_eq(model_config_int(c, "n", 9, &i, &err), STATUS_OK);
    ck_assert_int_eq(i, 9);
    ck_assert_int_eq(model_config_float(c, "f", 0, &d, &err), STATUS_OK);
    ck_assert_double_eq(d, 0.5);
    ck_assert_int_eq(model_config_float(c, "a", 0, &d, &err), STATUS_OK);
    ck_assert_double_eq(d, 3.0);
    ck_assert_int_eq(model_config_bool(c, "b", false, &b, &err), STATUS_OK);
    ck_assert(b);
    ck_assert_int_eq(model_config_string(c, "s", NULL, &s, &err), STATUS_OK);
    ck_assert_str_eq(s, "x");
    ck_assert_int_eq(model_config_string(c, "n", "dflt", &s, &err), STATUS_OK);
    ck_assert_str_eq(s, "dflt");
    ck_assert(model_config_has(c, "a"));
    ck_assert(!model_config_has(c, "n"));
    ck_assert(!model_config_has(c, "missing"));
    json_decref(c);
}
END_TEST

START_TEST(test_wrong_types_name_source_and_key)
{
    json_t *c = parse("{\"a\": \"3\", \"f\": 2.5, \"b\": 1, \"big\": 9999999999, \"l\": [1, \"x\"]}");
    struct errbuf err;
    int i, arr[4], n;
    bool b;
    const char *s;
    ck_assert_int_eq(model_config_int(c, "a", 0, &i, &err), STATUS_FORMAT);
    ck_assert_msg(strstr(err.msg, "test.json") && strstr(err.msg, "'a'"), "%s", err.msg);
    ck_assert_int_eq(model_config_int(c, "f", 0, &i, &err), STATUS_FORMAT);
    ck_assert_int_eq(model_config_int(c, "big", 0, &i, &err), STATUS_FORMAT);
    ck_assert_int_eq(model_config_bool(c, "b", false, &b, &err), STATUS_FORMAT);
    ck_assert_msg(strstr(err.msg, "'b'"), "%s", err.msg);
    ck_assert_int_eq(model_config_string(c, "f", NULL, &s, &err), STATUS_FORMAT);
    ck_assert_int_eq(model_config_int_array(c, "l", arr, 4, &n, &err), STATUS_FORMAT);
    ck_assert_msg(strstr(err.msg, "'l'"), "%s", err.msg);
    json_decref(c);
}
END_TEST

START_TEST(test_arrays)
{
    json_t *c = parse("{\"l\": [1, 2, 3], \"one\": 8, \"t\": [\"A\", \"B\"]}");
    struct errbuf err;
    int arr[4], n;
    ck_assert_int_eq(model_config_int_array(c, "l", arr, 4, &n, &err), STATUS_OK);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(arr[2], 3);
    ck_assert_int_eq(model_config_int_array(c, "l", arr, 2, &n, &err), STATUS_FORMAT);
    ck_assert_msg(strstr(err.msg, "at most 2"), "%s", err.msg);
    ck_assert_int_eq(model_config_int_array(c, "one", arr, 4, &n, &err), STATUS_OK);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(arr[0], 8);
    ck_assert_int_eq(model_config_int_array(c, "none", arr, 4, &n, &err), STATUS_OK);
    ck_assert_int_eq(n, 0);

    ck_assert_int_eq(model_config_int_per_block(c, "one", 4, 0, arr, &err), STATUS_OK);
    ck_assert_int_eq(arr[0], 8);
    ck_assert_int_eq(arr[3], 8);
    ck_assert_int_eq(model_config_int_per_block(c, "l", 3, 0, arr, &err), STATUS_OK);
    ck_assert_int_eq(arr[1], 2);
    ck_assert_int_eq(model_config_int_per_block(c, "l", 4, 0, arr, &err), STATUS_FORMAT);
    ck_assert_msg(strstr(err.msg, "expected 4"), "%s", err.msg);
    ck_assert_int_eq(model_config_int_per_block(c, "none", 2, 5, arr, &err), STATUS_OK);
    ck_assert_int_eq(arr[1], 5);

    const char *strs[4];
    ck_assert_int_eq(model_config_string_array(c, "t", strs, 4, &n, &err), STATUS_OK);
    ck_assert_int_eq(n, 2);
    ck_assert_str_eq(strs[1], "B");
    ck_assert_int_eq(model_config_string_array(c, "l", strs, 4, &n, &err), STATUS_FORMAT);
    json_decref(c);
}
END_TEST

START_TEST(test_load_real_config)
{
    json_t *c;
    struct errbuf err;
    ck_assert_msg(model_config_load(UNET_CONFIG, &c, &err) == STATUS_OK, "%s", err.msg);
    ck_assert_str_eq(model_config_source(c), UNET_CONFIG);
    int blocks[8], n, heads[8];
    ck_assert_int_eq(model_config_int_array(c, "block_out_channels", blocks, 8, &n, &err), STATUS_OK);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(blocks[2], 32);
    ck_assert_int_eq(model_config_int_per_block(c, "attention_head_dim", n, 8, heads, &err), STATUS_OK);
    ck_assert_int_eq(heads[0], 1);
    ck_assert_int_eq(heads[2], 4);
    bool lin;
    ck_assert_int_eq(model_config_bool(c, "use_linear_projection", false, &lin, &err), STATUS_OK);
    ck_assert(lin);
    json_decref(c);
}
END_TEST

START_TEST(test_load_errors)
{
    json_t *c;
    struct errbuf err;
    ck_assert_int_eq(model_config_load("/nonexistent/config.json", &c, &err), STATUS_IO);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err.msg, "/nonexistent/config.json"), "%s", err.msg);

    char path[] = "/tmp/test_model_config_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    fputs("{\"a\": 1, \"a\": 2}", f);
    fclose(f);
    ck_assert_int_eq(model_config_load(path, &c, &err), STATUS_FORMAT);
    ck_assert_msg(strstr(err.msg, path) && strstr(err.msg, "not JSON"), "%s", err.msg);
    f = fopen(path, "w");
    fputs("[1, 2]", f);
    fclose(f);
    ck_assert_int_eq(model_config_load(path, &c, &err), STATUS_FORMAT);
    ck_assert_msg(strstr(err.msg, "not a JSON object"), "%s", err.msg);
    remove(path);
    ck_assert_int_eq(model_config_parse("{", "inline", &c, &err), STATUS_FORMAT);
    ck_assert_msg(strstr(err.msg, "inline"), "%s", err.msg);
}
END_TEST

/* Python's json.dumps writes NaN/Infinity/-Infinity (diffusers saves
 * "lambda_min_clipped": -Infinity): read as absent keys, strings left alone. */
START_TEST(test_python_nonfinite_tokens)
{
    json_t *c = parse("{\"a\": -Infinity, \"b\": \"NaN and -Infinity \\\" NaN\", "
                      "\"c\": NaN, \"d\": [Infinity, 1]}");
    ck_assert(json_is_null(json_object_get(c, "a")));
    ck_assert(json_is_null(json_object_get(c, "c")));
    ck_assert(json_is_null(json_array_get(json_object_get(c, "d"), 0)));
    ck_assert_str_eq(json_string_value(json_object_get(c, "b")), "NaN and -Infinity \" NaN");
    json_decref(c);
    /* the scheduler config diffusers writes for DPM++ loads, -inf kept as the default */
    struct schedule_config cfg;
    struct errbuf err;
    ck_assert_msg(schedule_config_from_string(&cfg,
                                              "{\"_class_name\": \"DPMSolverMultistepScheduler\", "
                                              "\"lambda_min_clipped\": -Infinity}",
                                              &err) == STATUS_OK,
                  "%s", err.msg);
    ck_assert(isinf(cfg.lambda_min_clipped) && cfg.lambda_min_clipped < 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("model_config");
    TCase *tc = tcase_create("model_config");
    tcase_add_test(tc, test_scalars_and_defaults);
    tcase_add_test(tc, test_wrong_types_name_source_and_key);
    tcase_add_test(tc, test_arrays);
    tcase_add_test(tc, test_load_real_config);
    tcase_add_test(tc, test_load_errors);
    tcase_add_test(tc, test_python_nonfinite_tokens);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
