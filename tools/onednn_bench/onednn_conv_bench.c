/* tools/onednn_bench/onednn_conv_bench.c — the reference for `diffusiond bench ops`:
 * oneDNN (what PyTorch uses on CPUs) timing the same NHWC f32 convolutions and an
 * SGEMM, so that our figures can be quoted as ratios measured in one run.
 *
 * usage: onednn_conv_bench [--repeat N]
 * Prints one line per shape: name, median ms, GFLOP/s.  Threads: OMP_NUM_THREADS.
 */
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(call)                                                                      \
    do {                                                                                 \
        dnnl_status_t s_ = (call);                                                       \
        if (s_ != dnnl_success) {                                                        \
            fprintf(stderr, "%s failed: %d\n", #call, (int)s_);                          \
            return -1;                                                                   \
        }                                                                                \
    } while (0)

struct conv_shape {
    const char *name;
    int n, h, w, cin, cout, k, stride;
};

/* The SD1.5 U-Net's heaviest convolutions at 512×512 (latent 64×64), N = 1: the same
 * shapes and names as `diffusiond bench ops`. */
static const struct conv_shape shapes[] = {
    {"conv3x3 64x64x320->320", 1, 64, 64, 320, 320, 3, 1},
    {"conv3x3 32x32x640->640", 1, 32, 32, 640, 640, 3, 1},
    {"conv3x3 16x16x1280->1280", 1, 16, 16, 1280, 1280, 3, 1},
    {"conv3x3 8x8x1280->1280", 1, 8, 8, 1280, 1280, 3, 1},
    {"conv1x1 64x64x640->320", 1, 64, 64, 640, 320, 1, 1},
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
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

static float *filled(size_t n)
{
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; p && i < n; i++)
        p[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    return p;
}

static int bench_conv(dnnl_engine_t eng, dnnl_stream_t strm, const struct conv_shape *c,
                      int repeat, double *ms_out)
{
    int pad = c->k / 2;
    int ho = (c->h + 2 * pad - c->k) / c->stride + 1, wo = (c->w + 2 * pad - c->k) / c->stride + 1;
    dnnl_dims_t src_dims = {c->n, c->cin, c->h, c->w};
    dnnl_dims_t wei_dims = {c->cout, c->cin, c->k, c->k};
    dnnl_dims_t bia_dims = {c->cout};
    dnnl_dims_t dst_dims = {c->n, c->cout, ho, wo};
    dnnl_dims_t strides = {c->stride, c->stride}, padding = {pad, pad};
    dnnl_memory_desc_t src_md, wei_any, wei_user, bia_md, dst_md;
    CHECK(dnnl_memory_desc_init_by_tag(&src_md, 4, src_dims, dnnl_f32, dnnl_nhwc));
    CHECK(dnnl_memory_desc_init_by_tag(&wei_any, 4, wei_dims, dnnl_f32, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&wei_user, 4, wei_dims, dnnl_f32, dnnl_ohwi));
    CHECK(dnnl_memory_desc_init_by_tag(&bia_md, 1, bia_dims, dnnl_f32, dnnl_x));
    CHECK(dnnl_memory_desc_init_by_tag(&dst_md, 4, dst_dims, dnnl_f32, dnnl_nhwc));
    dnnl_convolution_desc_t cd;
    CHECK(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct,
                                             &src_md, &wei_any, &bia_md, &dst_md, strides,
                                             padding, padding));
    dnnl_primitive_desc_t pd;
    CHECK(dnnl_primitive_desc_create(&pd, &cd, NULL, eng, NULL));
    const dnnl_memory_desc_t *wei_md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);

    size_t n_src = (size_t)c->n * c->h * c->w * c->cin, n_wei = (size_t)c->cout * c->cin * c->k * c->k;
    size_t n_dst = (size_t)c->n * ho * wo * c->cout;
    float *src = filled(n_src), *wei = filled(n_wei), *bia = filled((size_t)c->cout), *dst = filled(n_dst);
    dnnl_memory_t m_src, m_wei_user, m_wei, m_bia, m_dst;
    CHECK(dnnl_memory_create(&m_src, &src_md, eng, src));
    CHECK(dnnl_memory_create(&m_wei_user, &wei_user, eng, wei));
    CHECK(dnnl_memory_create(&m_wei, wei_md, eng, DNNL_MEMORY_ALLOCATE));
    CHECK(dnnl_memory_create(&m_bia, &bia_md, eng, bia));
    CHECK(dnnl_memory_create(&m_dst, &dst_md, eng, dst));

    /* weights reordered once, as a framework does at load time (not timed) */
    dnnl_primitive_desc_t rpd;
    CHECK(dnnl_reorder_primitive_desc_create(&rpd, &wei_user, eng, wei_md, eng, NULL));
    dnnl_primitive_t reorder;
    CHECK(dnnl_primitive_create(&reorder, rpd));
    dnnl_exec_arg_t rargs[] = {{DNNL_ARG_FROM, m_wei_user}, {DNNL_ARG_TO, m_wei}};
    CHECK(dnnl_primitive_execute(reorder, strm, 2, rargs));
    CHECK(dnnl_stream_wait(strm));

    dnnl_primitive_t conv;
    CHECK(dnnl_primitive_create(&conv, pd));
    dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, m_src}, {DNNL_ARG_WEIGHTS, m_wei},
                              {DNNL_ARG_BIAS, m_bia}, {DNNL_ARG_DST, m_dst}};
    double *t = malloc((size_t)repeat * sizeof *t);
    for (int r = -1; r < repeat; r++) { /* r = -1: warm-up */
        double t0 = now_s();
        CHECK(dnnl_primitive_execute(conv, strm, 4, args));
        CHECK(dnnl_stream_wait(strm));
        if (r >= 0)
            t[r] = now_s() - t0;
    }
    *ms_out = median(t, repeat) * 1e3;
    free(t);
    dnnl_primitive_destroy(conv);
    dnnl_primitive_destroy(reorder);
    dnnl_primitive_desc_destroy(rpd);
    dnnl_primitive_desc_destroy(pd);
    dnnl_memory_destroy(m_src);
    dnnl_memory_destroy(m_wei_user);
    dnnl_memory_destroy(m_wei);
    dnnl_memory_destroy(m_bia);
    dnnl_memory_destroy(m_dst);
    free(src);
    free(wei);
    free(bia);
    free(dst);
    return 0;
}

static int bench_sgemm(int dim, int repeat, double *ms_out)
{
    size_t n = (size_t)dim * dim;
    float *a = filled(n), *b = filled(n), *c = filled(n);
    double *t = malloc((size_t)repeat * sizeof *t);
    for (int r = -1; r < repeat; r++) {
        double t0 = now_s();
        CHECK(dnnl_sgemm('N', 'T', dim, dim, dim, 1.0f, a, dim, b, dim, 0.0f, c, dim));
        if (r >= 0)
            t[r] = now_s() - t0;
    }
    *ms_out = median(t, repeat) * 1e3;
    free(t);
    free(a);
    free(b);
    free(c);
    return 0;
}

int main(int argc, char **argv)
{
    int repeat = 5;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) {
            repeat = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: %s [--repeat N]\n", argv[0]);
            return 2;
        }
    }
    if (repeat < 1)
        repeat = 1;
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    CHECK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&strm, eng, dnnl_stream_default_flags));
    const dnnl_version_t *v = dnnl_version();
    printf("# oneDNN %d.%d.%d (%s), f32, NHWC activations, median of %d\n", v->major, v->minor,
           v->patch, v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "other", repeat);
    printf("%-32s %10s %10s\n", "shape", "ms", "GFLOP/s");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const struct conv_shape *c = &shapes[i];
        double ms;
        if (bench_conv(eng, strm, c, repeat, &ms) != 0)
            return 1;
        int ho = c->h / c->stride, wo = c->w / c->stride;
        double flop = 2.0 * c->n * ho * wo * c->cout * c->cin * c->k * c->k;
        printf("%-32s %10.2f %10.1f\n", c->name, ms, flop / (ms * 1e-3) / 1e9);
    }
    double ms;
    if (bench_sgemm(2048, repeat, &ms) != 0)
        return 1;
    printf("%-32s %10.2f %10.1f\n", "sgemm 2048^3 (linear)", ms, 2.0 * 2048.0 * 2048 * 2048 / (ms * 1e-3) / 1e9);
    dnnl_stream_destroy(strm);
    dnnl_engine_destroy(eng);
    return 0;
}
