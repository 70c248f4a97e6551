/* models/clip.c — see clip.h. */
#include "models/clip.h"

#include "models/model_config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 128
#define CLIP_DIM_MAX (1 << 20) /* sanity bound on config sizes (no int64 overflow) */

struct clip_linear {
    struct tensor w; /* {out,in} */
    struct tensor b; /* {out} */
};

struct clip_norm {
    struct tensor g; /* {C} */
    struct tensor b; /* {C} */
};

struct clip_layer {
    struct clip_norm ln1, ln2;
    struct clip_linear q, k, v, o; /* {C,C} */
    struct clip_linear fc1;        /* {I,C} */
    struct clip_linear fc2;        /* {C,I} */
};

struct clip_model {
    struct clip_config cfg;
    struct backend *backend;
    float *token_table;        /* host {vocab,C} */
    struct tensor pos;         /* {1,P,C} */
    struct clip_layer *layers; /* [N] */
    struct clip_norm final_ln;
};

/* --- config ------------------------------------------------------------------- */

/* A size key in [1, CLIP_DIM_MAX] (absent: def). */
static enum status cfg_size(const json_t *obj, const char *key, int def, int *out,
                            struct errbuf *err)
{
    TRY(model_config_int(obj, key, def, out, err));
    if (*out < 1 || *out > CLIP_DIM_MAX)
        return status_fail(err, STATUS_FORMAT, "%s: key '%s': %d is outside [1, %d]",
                           model_config_source(obj), key, *out, CLIP_DIM_MAX);
    return STATUS_OK;
}

static enum status cfg_eps(const json_t *obj, float *out, struct errbuf *err)
{
    double eps;
    TRY(model_config_float(obj, "layer_norm_eps", 1e-5, &eps, err));
    if (!(eps > 0 && eps < 1))
        return status_fail(err, STATUS_FORMAT, "%s: key 'layer_norm_eps': %g is outside (0, 1)",
                           model_config_source(obj), eps);
    *out = (float)eps;
    return STATUS_OK;
}

/* transformers' ACT2FN names the engine has. */
static enum status cfg_act(const json_t *obj, enum gelu_kind *out, struct errbuf *err)
{
    const char *s;
    TRY(model_config_string(obj, "hidden_act", "quick_gelu", &s, err));
    if (strcmp(s, "quick_gelu") == 0)
        *out = GELU_QUICK;
    else if (strcmp(s, "gelu") == 0)
        *out = GELU_ERF;
    else if (strcmp(s, "gelu_new") == 0 || strcmp(s, "gelu_pytorch_tanh") == 0 ||
             strcmp(s, "gelu_fast") == 0)
        *out = GELU_TANH;
    else
        return status_fail(err, STATUS_UNSUPPORTED,
                           "%s: key 'hidden_act': '%s' is not supported "
                           "(quick_gelu, gelu, gelu_new, gelu_pytorch_tanh, gelu_fast)",
                           model_config_source(obj), s);
    return STATUS_OK;
}

enum status clip_config_from_json(const json_t *config, struct clip_config *cfg,
                                  struct errbuf *err)
{
    if (!config || !json_is_object(config))
        return status_fail(err, STATUS_FORMAT, "%s: not a JSON object",
                           config ? model_config_source(config) : "text encoder config");
    /* defaults: transformers' CLIPTextConfig */
    TRY(cfg_size(config, "vocab_size", 49408, &cfg->vocab_size, err));
    TRY(cfg_size(config, "hidden_size", 512, &cfg->hidden_size, err));
    TRY(cfg_size(config, "intermediate_size", 2048, &cfg->intermediate_size, err));
    TRY(cfg_size(config, "num_hidden_layers", 12, &cfg->num_hidden_layers, err));
    TRY(cfg_size(config, "num_attention_heads", 8, &cfg->num_attention_heads, err));
    TRY(cfg_size(config, "max_position_embeddings", 77, &cfg->max_position_embeddings, err));
    TRY(cfg_act(config, &cfg->act, err));
    TRY(cfg_eps(config, &cfg->layer_norm_eps, err));
    if (cfg->hidden_size % cfg->num_attention_heads != 0)
        return status_fail(err, STATUS_FORMAT,
                           "%s: key 'num_attention_heads': %d does not divide hidden_size %d",
                           model_config_source(config), cfg->num_attention_heads,
                           cfg->hidden_size);
    return STATUS_OK;
}

/* --- loading ------------------------------------------------------------------ */

static enum status load_linear(const struct weights *w, const char *prefix, int64_t n_out,
                               int64_t n_in, struct backend *b, struct clip_linear *lin,
                               struct errbuf *err)
{
    char name[NAME_MAX_LEN + 8];
    snprintf(name, sizeof name, "%s.weight", prefix);
    TRY(weights_load_linear(w, name, n_out, n_in, b, &lin->w, err));
    snprintf(name, sizeof name, "%s.bias", prefix);
    return weights_load(w, name, 1, (int64_t[]){n_out}, b, &lin->b, err);
}

static enum status load_norm(const struct weights *w, const char *prefix, int64_t c,
                             struct backend *b, struct clip_norm *n, struct errbuf *err)
{
    char name[NAME_MAX_LEN + 8];
    snprintf(name, sizeof name, "%s.weight", prefix);
    TRY(weights_load(w, name, 1, (int64_t[]){c}, b, &n->g, err));
    snprintf(name, sizeof name, "%s.bias", prefix);
    return weights_load(w, name, 1, (int64_t[]){c}, b, &n->b, err);
}

static enum status load_layer(const struct weights *w, const struct clip_config *cfg, int i,
                              struct backend *b, struct clip_layer *l, struct errbuf *err)
{
    const int64_t c = cfg->hidden_size, inter = cfg->intermediate_size;
    char p[NAME_MAX_LEN];
    const char *base = "text_model.encoder.layers";
#define SUB(fmt) (snprintf(p, sizeof p, "%s.%d." fmt, base, i), p)
    TRY(load_norm(w, SUB("layer_norm1"), c, b, &l->ln1, err));
    TRY(load_linear(w, SUB("self_attn.q_proj"), c, c, b, &l->q, err));
    TRY(load_linear(w, SUB("self_attn.k_proj"), c, c, b, &l->k, err));
    TRY(load_linear(w, SUB("self_attn.v_proj"), c, c, b, &l->v, err));
    TRY(load_linear(w, SUB("self_attn.out_proj"), c, c, b, &l->o, err));
    TRY(load_norm(w, SUB("layer_norm2"), c, b, &l->ln2, err));
    TRY(load_linear(w, SUB("mlp.fc1"), inter, c, b, &l->fc1, err));
    TRY(load_linear(w, SUB("mlp.fc2"), c, inter, b, &l->fc2, err));
#undef SUB
    return STATUS_OK;
}

/* The token table {vocab,C} into host memory, with the same shape check (and message)
 * as weights_load. */
static enum status load_token_table(const struct weights *w, const struct clip_config *cfg,
                                    float **out, struct errbuf *err)
{
    const char *name = "text_model.embeddings.token_embedding.weight";
    const struct safetensors_tensor *t = weights_find(w, name);
    if (!t)
        return status_fail(err, STATUS_FORMAT, "%s: missing tensor '%s'", weights_label(w), name);
    if (t->ndim != 2 || t->shape[0] != cfg->vocab_size || t->shape[1] != cfg->hidden_size) {
        char got[96] = "[";
        for (int i = 0; i < t->ndim; i++) {
            size_t len = strlen(got);
            snprintf(got + len, sizeof got - len, i ? ",%lld" : "%lld", (long long)t->shape[i]);
        }
        strncat(got, "]", sizeof got - strlen(got) - 1);
        return status_fail(err, STATUS_FORMAT, "%s: tensor '%s' has shape %s, expected [%d,%d]",
                           weights_label(w), name, got, cfg->vocab_size, cfg->hidden_size);
    }
    size_t n = (size_t)cfg->vocab_size * (size_t)cfg->hidden_size;
    float *table = malloc(n * sizeof *table);
    if (!table)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "%s: tensor '%s': out of memory",
                           weights_label(w), name);
    enum status s = weights_read_f32(w, name, table, n, err);
    if (s != STATUS_OK) {
        free(table);
        return s;
    }
    *out = table;
    return STATUS_OK;
}

static enum status load_all(const struct weights *w, struct clip_model *m, struct errbuf *err)
{
    const struct clip_config *cfg = &m->cfg;
    const int64_t c = cfg->hidden_size;
    TRY(load_token_table(w, cfg, &m->token_table, err));
    TRY(weights_load(w, "text_model.embeddings.position_embedding.weight", 2,
                     (int64_t[]){cfg->max_position_embeddings, c}, m->backend, &m->pos, err));
    /* {P,C} → {1,P,C}: broadcast over the batch */
    bool reshaped = tensor_reshape(&m->pos, 3, (int64_t[]){1, cfg->max_position_embeddings, c});
    ASSERT(reshaped);
    for (int i = 0; i < cfg->num_hidden_layers; i++)
        TRY(load_layer(w, cfg, i, m->backend, &m->layers[i], err));
    return load_norm(w, "text_model.final_layer_norm", c, m->backend, &m->final_ln, err);
}

enum status clip_load(const struct weights *w, const struct clip_config *cfg,
                      struct backend *b, struct clip_model **out, struct errbuf *err)
{
    *out = NULL;
    if (!w || !cfg || !b || cfg->num_hidden_layers < 1 || cfg->hidden_size < 1 ||
        cfg->num_attention_heads < 1 || cfg->hidden_size % cfg->num_attention_heads != 0)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "clip_load: invalid arguments");
    struct clip_model *m = calloc(1, sizeof *m);
    if (m)
        m->layers = calloc((size_t)cfg->num_hidden_layers, sizeof *m->layers);
    if (!m || !m->layers) {
        free(m);
        return status_fail(err, STATUS_OUT_OF_MEMORY, "clip_load: out of memory");
    }
    m->cfg = *cfg;
    m->backend = b;
    enum status s = load_all(w, m, err);
    if (s != STATUS_OK) {
        clip_free(m);
        return s;
    }
    *out = m;
    return STATUS_OK;
}

static enum status read_config(const char *path, struct clip_config *cfg, struct errbuf *err)
{
    json_t *root;
    TRY(model_config_load(path, &root, err));
    enum status s = clip_config_from_json(root, cfg, err);
    json_decref(root);
    return s;
}

enum status clip_load_dir(const char *dir, bool prefer_fp16, struct backend *b,
                          struct clip_model **out, struct errbuf *err)
{
    *out = NULL;
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/config.json", dir) >= sizeof path)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "%s: path too long", dir);
    struct clip_config cfg;
    TRY(read_config(path, &cfg, err));
    struct weights *w;
    TRY(weights_open_dir(dir, prefer_fp16, &w, err));
    enum status s = clip_load(w, &cfg, b, out, err);
    weights_close(w);
    return s;
}

static void free_linear(struct clip_linear *l)
{
    backend_free(&l->w);
    backend_free(&l->b);
}

static void free_norm(struct clip_norm *n)
{
    backend_free(&n->g);
    backend_free(&n->b);
}

void clip_free(struct clip_model *m)
{
    if (!m)
        return;
    for (int i = 0; m->layers && i < m->cfg.num_hidden_layers; i++) {
        struct clip_layer *l = &m->layers[i];
        free_norm(&l->ln1);
        free_norm(&l->ln2);
        free_linear(&l->q);
        free_linear(&l->k);
        free_linear(&l->v);
        free_linear(&l->o);
        free_linear(&l->fc1);
        free_linear(&l->fc2);
    }
    free_norm(&m->final_ln);
    backend_free(&m->pos);
    free(m->layers);
    free(m->token_table);
    free(m);
}

/* --- accessors ---------------------------------------------------------------- */

const struct clip_config *clip_get_config(const struct clip_model *m)
{
    return &m->cfg;
}

int clip_hidden_size(const struct clip_model *m)
{
    return m->cfg.hidden_size;
}

int clip_num_layers(const struct clip_model *m)
{
    return m->cfg.num_hidden_layers;
}

int clip_max_length(const struct clip_model *m)
{
    return m->cfg.max_position_embeddings;
}

int clip_skip_from_a1111(int stop_at_last_layers)
{
    return stop_at_last_layers > 1 ? stop_at_last_layers - 1 : 0;
}

/* --- forward ------------------------------------------------------------------ */

#define WS_ALIGN 256 /* workspace views are 256-byte aligned */

static size_t view_bytes(int64_t numel, enum dtype dt)
{
    size_t n = (size_t)numel * dtype_size(dt);
    return (n + WS_ALIGN - 1) / WS_ALIGN * WS_ALIGN;
}

/* Per-call views: h0/h1 (the residual stream, ping-pong), t (normed / attention out),
 * q, k, v {B,L,C} and mlp {B,L,I}. */
size_t clip_workspace_bytes(const struct clip_model *m, int batch, int seq_len, enum dtype dt)
{
    int64_t rows = (int64_t)batch * seq_len;
    return 6 * view_bytes(rows * m->cfg.hidden_size, dt) +
           view_bytes(rows * m->cfg.intermediate_size, dt) + WS_ALIGN;
}

struct clip_bufs {
    struct tensor h0, h1; /* {B,L,C} residual stream */
    struct tensor t;      /* {B,L,C} layer-norm output, then attention output */
    struct tensor q, k, v; /* {B,L,C} */
    struct tensor mlp;    /* {B,L,I} */
};

static enum status take_bufs(struct workspace *ws, int64_t batch, int64_t len, int64_t c,
                             int64_t inter, struct clip_bufs *bf, struct errbuf *err)
{
    const int64_t bc[3] = {batch, len, c}, bi[3] = {batch, len, inter};
    TRY(workspace_tensor(ws, 3, bc, &bf->h0, err));
    TRY(workspace_tensor(ws, 3, bc, &bf->h1, err));
    TRY(workspace_tensor(ws, 3, bc, &bf->t, err));
    TRY(workspace_tensor(ws, 3, bc, &bf->q, err));
    TRY(workspace_tensor(ws, 3, bc, &bf->k, err));
    TRY(workspace_tensor(ws, 3, bc, &bf->v, err));
    return workspace_tensor(ws, 3, bi, &bf->mlp, err);
}

/* h{B,L,C} = token_table[ids] (row uploads from the host table) + pos[0..L). */
static enum status embed(const struct clip_model *m, const int32_t *ids, struct tensor *h,
                         struct errbuf *err)
{
    const int64_t c = m->cfg.hidden_size, rows = h->shape[0] * h->shape[1];
    const size_t row_bytes = (size_t)c * dtype_size(h->dtype);
    for (int64_t r = 0; r < rows; r++) {
        struct tensor row = *h; /* {1,1,C} view of row r */
        row.shape[0] = row.shape[1] = 1;
        row.data = (unsigned char *)h->data + (size_t)r * row_bytes;
        TRY(backend_upload(&row, m->token_table + (size_t)ids[r] * (size_t)c, DTYPE_F32, err));
    }
    struct tensor pos = m->pos; /* {1,L,C}: the first L positions */
    pos.shape[1] = h->shape[1];
    return backend_add(h, &pos, h, err);
}

/* h = h + out_proj(attention(q,k,v)) with q/k/v from layer_norm1(h); result in h_out. */
static enum status attention_block(const struct clip_model *m, const struct clip_layer *l,
                                   const struct tensor *h, struct clip_bufs *bf,
                                   struct tensor *h_out, struct errbuf *err)
{
    const struct clip_config *cfg = &m->cfg;
    TRY(backend_layer_norm(h, &l->ln1.g, &l->ln1.b, cfg->layer_norm_eps, &bf->t, err));
    TRY(backend_linear(&bf->t, &l->q.w, &l->q.b, NULL, &bf->q, err));
    TRY(backend_linear(&bf->t, &l->k.w, &l->k.b, NULL, &bf->k, err));
    TRY(backend_linear(&bf->t, &l->v.w, &l->v.b, NULL, &bf->v, err));
    const int head_dim = cfg->hidden_size / cfg->num_attention_heads;
    const struct attention_params ap = {
        .heads = cfg->num_attention_heads,
        .scale = (float)(1.0 / sqrt((double)head_dim)),
        .causal = true,
    };
    TRY(backend_attention(&bf->q, &bf->k, &bf->v, &ap, &bf->t, err));
    return backend_linear(&bf->t, &l->o.w, &l->o.b, h, h_out, err);
}

/* h_out = h + fc2(act(fc1(layer_norm2(h)))). */
static enum status mlp_block(const struct clip_model *m, const struct clip_layer *l,
                             const struct tensor *h, struct clip_bufs *bf, struct tensor *h_out,
                             struct errbuf *err)
{
    TRY(backend_layer_norm(h, &l->ln2.g, &l->ln2.b, m->cfg.layer_norm_eps, &bf->t, err));
    TRY(backend_linear(&bf->t, &l->fc1.w, &l->fc1.b, NULL, &bf->mlp, err));
    TRY(backend_gelu(&bf->mlp, m->cfg.act, &bf->mlp, err));
    return backend_linear(&bf->mlp, &l->fc2.w, &l->fc2.b, h, h_out, err);
}

/* Every argument checked before any op runs. */
static enum status check_encode_args(const struct clip_model *m, const int32_t *ids, int batch,
                                     int clip_skip, const struct tensor *out, struct errbuf *err)
{
    const struct clip_config *cfg = &m->cfg;
    if (!ids || !out || batch < 1)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "clip_encode: no ids/output or batch < 1");
    if (out->ndim != 3 || out->shape[0] != batch || out->shape[1] < 1 ||
        out->shape[1] > cfg->max_position_embeddings || out->shape[2] != cfg->hidden_size) {
        char d[64];
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "clip_encode: output %s, expected {%d, 1..%d, %d}",
                           tensor_describe(out, d, sizeof d), batch,
                           cfg->max_position_embeddings, cfg->hidden_size);
    }
    if (!out->data || out->backend != m->backend)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "clip_encode: output not allocated on the model's backend (%s)",
                           backend_name(m->backend));
    if (clip_skip < 0 || clip_skip > cfg->num_hidden_layers)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "clip_encode: clip_skip %d outside [0, %d] (the layer count)",
                           clip_skip, cfg->num_hidden_layers);
    const int64_t len = out->shape[1];
    for (int64_t i = 0; i < (int64_t)batch * len; i++)
        if (ids[i] < 0 || ids[i] >= cfg->vocab_size)
            return status_fail(err, STATUS_INVALID_ARGUMENT,
                               "clip_encode: token id %d at sequence %lld, position %lld "
                               "(ids[%lld]) is outside the vocabulary [0, %d)",
                               (int)ids[i], (long long)(i / len), (long long)(i % len),
                               (long long)i, cfg->vocab_size);
    return STATUS_OK;
}

static enum status run(const struct clip_model *m, const int32_t *ids, int clip_skip,
                       struct clip_bufs *bf, struct tensor *out, struct errbuf *err)
{
    TRY(embed(m, ids, &bf->h0, err));
    const int n_run = m->cfg.num_hidden_layers - clip_skip;
    for (int i = 0; i < n_run; i++) {
        const struct clip_layer *l = &m->layers[i];
        TRY(attention_block(m, l, &bf->h0, bf, &bf->h1, err));
        TRY(mlp_block(m, l, &bf->h1, bf, &bf->h0, err));
    }
    return backend_layer_norm(&bf->h0, &m->final_ln.g, &m->final_ln.b, m->cfg.layer_norm_eps,
                              out, err);
}

enum status clip_encode(const struct clip_model *m, struct workspace *ws, const int32_t *ids,
                        int batch, int clip_skip, struct tensor *out, struct errbuf *err)
{
    if (!m || !ws || ws->backend != m->backend)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "clip_encode: no model, or workspace not on the model's backend");
    TRY(check_encode_args(m, ids, batch, clip_skip, out, err));
    struct workspace_mark mark = workspace_mark(ws);
    struct clip_bufs bf;
    enum status s = take_bufs(ws, batch, out->shape[1], m->cfg.hidden_size,
                              m->cfg.intermediate_size, &bf, err);
    if (s == STATUS_OK)
        s = run(m, ids, clip_skip, &bf, out, err);
    workspace_rewind(ws, mark);
    if (s != STATUS_OK)
        return status_wrap(err, "clip_encode");
    return STATUS_OK;
}
