/* models/tokenizer.c — see tokenizer.h.
 *
 * Layout: a symbol table interns every string of vocab.json and merges.txt (each
 * symbol knows its vocabulary id, or −1); a pair table maps (left, right) symbol
 * pairs to (rank, merged symbol); BPE then works on symbol indices, never on
 * strings.  The text stage (clean-up, NFC, lower-casing, pre-tokenization) is in
 * tokenizer_text.c. */
#include "models/tokenizer.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utf8proc.h>

#include "models/tokenizer_text.h"

#define TOKENIZER_MAX_MERGES (49152 - 256 - 2) /* what OpenAI and transformers keep */
#define TOKENIZER_MAX_LENGTH_LIMIT (1 << 20)
#define TOKENIZER_MAX_FILE (256u << 20)
#define TOKENIZER_MAX_TEXT (INT_MAX / 8)
#define SYM_NONE (-1)
#define CACHE_BUCKETS 4096u
#define CACHE_MAX_ENTRIES 16384u
#define CACHE_MAX_WORD 64u /* longer words are not cached */
#define LIT_START "<|startoftext|>"
#define LIT_END "<|endoftext|>"
#define MAX_SPECIALS 4

/* ---------------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------------- */

static uint64_t hash_bytes(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static uint64_t hash_pair(int32_t a, int32_t b)
{
    uint64_t z = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static enum status read_file(const char *path, char **out, size_t *out_len, struct errbuf *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return status_fail(err, STATUS_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size > TOKENIZER_MAX_FILE) {
        fclose(f);
        return status_fail(err, STATUS_IO, "%s: not a regular file of at most %u MB", path,
                           TOKENIZER_MAX_FILE >> 20);
    }
    size_t len = (size_t)st.st_size;
    char *buf = malloc(len + 1);
    if (!buf) {
        fclose(f);
        return status_fail(err, STATUS_OUT_OF_MEMORY, "%s: %zu bytes", path, len);
    }
    size_t got = fread(buf, 1, len, f);
    int failed = ferror(f);
    fclose(f);
    if (got != len || failed) {
        free(buf);
        return status_fail(err, STATUS_IO, "%s: short read", path);
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return STATUS_OK;
}

static bool is_ascii_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static void copy_token(char dst[TOKENIZER_TOKEN_MAX], const char *src)
{
    snprintf(dst, TOKENIZER_TOKEN_MAX, "%s", src);
}

/* ---------------------------------------------------------------------------------
 * Symbol table: byte string → symbol index (open addressing over a string pool)
 * ------------------------------------------------------------------------------- */

struct symtab {
    char *pool;
    size_t pool_len, pool_cap;
    size_t *off;       /* per symbol: offset of its bytes in pool */
    uint32_t *len;     /* per symbol: byte length */
    int32_t *vocab_id; /* per symbol: id in vocab.json, or −1 */
    int32_t n, cap;
    int32_t *slots; /* symbol index or −1 */
    size_t n_slots; /* power of two */
};

static void symtab_free(struct symtab *t)
{
    free(t->pool);
    free(t->off);
    free(t->len);
    free(t->vocab_id);
    free(t->slots);
    memset(t, 0, sizeof *t);
}

static int32_t symtab_find(const struct symtab *t, const char *s, size_t n)
{
    if (!t->n_slots)
        return SYM_NONE;
    size_t mask = t->n_slots - 1;
    for (size_t i = hash_bytes(s, n) & mask;; i = (i + 1) & mask) {
        int32_t k = t->slots[i];
        if (k < 0)
            return SYM_NONE;
        if (t->len[k] == n && memcmp(t->pool + t->off[k], s, n) == 0)
            return k;
    }
}

static void symtab_place(struct symtab *t, int32_t k)
{
    size_t mask = t->n_slots - 1;
    size_t i = hash_bytes(t->pool + t->off[k], t->len[k]) & mask;
    while (t->slots[i] >= 0)
        i = (i + 1) & mask;
    t->slots[i] = k;
}

static enum status symtab_grow(struct symtab *t, size_t extra_bytes, struct errbuf *err)
{
    if (t->pool_len + extra_bytes > t->pool_cap) {
        size_t cap = t->pool_cap ? t->pool_cap : 1u << 16;
        while (cap < t->pool_len + extra_bytes)
            cap *= 2;
        char *p = realloc(t->pool, cap);
        if (!p)
            return status_fail(err, STATUS_OUT_OF_MEMORY, "tokenizer symbol pool");
        t->pool = p;
        t->pool_cap = cap;
    }
    if (t->n == t->cap) {
        if (t->cap > INT32_MAX / 2)
            return status_fail(err, STATUS_FORMAT, "tokenizer: too many symbols");
        int32_t cap = t->cap ? t->cap * 2 : 1024;
        size_t *off = realloc(t->off, (size_t)cap * sizeof *off);
        if (off)
            t->off = off;
        uint32_t *len = realloc(t->len, (size_t)cap * sizeof *len);
        if (len)
            t->len = len;
        int32_t *vid = realloc(t->vocab_id, (size_t)cap * sizeof *vid);
        if (vid)
            t->vocab_id = vid;
        if (!off || !len || !vid)
            return status_fail(err, STATUS_OUT_OF_MEMORY, "tokenizer symbol table");
        t->cap = cap;
    }
    if ((size_t)(t->n + 1) * 2 > t->n_slots) {
        size_t n_slots = t->n_slots ? t->n_slots * 2 : 4096;
        int32_t *slots = malloc(n_slots * sizeof *slots);
        if (!slots)
            return status_fail(err, STATUS_OUT_OF_MEMORY, "tokenizer symbol index");
        memset(slots, 0xff, n_slots * sizeof *slots);
        free(t->slots);
        t->slots = slots;
        t->n_slots = n_slots;
        for (int32_t k = 0; k < t->n; k++)
            symtab_place(t, k);
    }
    return STATUS_OK;
}

/* Index of s[0..n), added (vocab id −1) when new. */
static enum status symtab_intern(struct symtab *t, const char *s, size_t n, int32_t *out,
                                 struct errbuf *err)
{
    int32_t k = symtab_find(t, s, n);
    if (k != SYM_NONE) {
        *out = k;
        return STATUS_OK;
    }
    if (n > UINT32_MAX)
        return status_fail(err, STATUS_FORMAT, "tokenizer: symbol of %zu bytes", n);
    enum status st = symtab_grow(t, n, err);
    if (st != STATUS_OK)
        return st;
    k = t->n++;
    memcpy(t->pool + t->pool_len, s, n);
    t->off[k] = t->pool_len;
    t->len[k] = (uint32_t)n;
    t->vocab_id[k] = -1;
    t->pool_len += n;
    symtab_place(t, k);
    *out = k;
    return STATUS_OK;
}

/* ---------------------------------------------------------------------------------
 * Pair table: (left, right) symbols → merge rank and merged symbol
 * ------------------------------------------------------------------------------- */

struct pair_entry {
    int32_t left, right; /* left −1: empty slot */
    int32_t rank, merged;
};

struct pairtab {
    struct pair_entry *slots;
    size_t n_slots; /* power of two, ≥ 2 × entries */
};

static enum status pairtab_init(struct pairtab *p, size_t max_entries, struct errbuf *err)
{
    size_t n = 1024;
    while (n < 2 * max_entries)
        n *= 2;
    p->slots = malloc(n * sizeof *p->slots);
    if (!p->slots)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "tokenizer merge table");
    for (size_t i = 0; i < n; i++)
        p->slots[i].left = -1;
    p->n_slots = n;
    return STATUS_OK;
}

static struct pair_entry *pairtab_slot(const struct pairtab *p, int32_t a, int32_t b)
{
    size_t mask = p->n_slots - 1;
    for (size_t i = hash_pair(a, b) & mask;; i = (i + 1) & mask) {
        struct pair_entry *e = &p->slots[i];
        if (e->left < 0 || (e->left == a && e->right == b))
            return e;
    }
}

/* ---------------------------------------------------------------------------------
 * BPE word cache (shared, mutex-guarded, cleared when full)
 * ------------------------------------------------------------------------------- */

struct cache_entry {
    struct cache_entry *next;
    uint64_t hash;
    uint32_t key_len, n_ids;
    int32_t ids[]; /* n_ids ids, then key_len key bytes */
};

struct bpe_cache {
    pthread_mutex_t lock;
    size_t n_entries;
    struct cache_entry *buckets[CACHE_BUCKETS];
};

static const char *cache_key(const struct cache_entry *e)
{
    return (const char *)(e->ids + e->n_ids);
}

static void cache_clear_locked(struct bpe_cache *c)
{
    for (size_t b = 0; b < CACHE_BUCKETS; b++) {
        struct cache_entry *e = c->buckets[b];
        while (e) {
            struct cache_entry *next = e->next;
            free(e);
            e = next;
        }
        c->buckets[b] = NULL;
    }
    c->n_entries = 0;
}

static struct cache_entry *cache_find_locked(struct bpe_cache *c, uint64_t h, const char *key,
                                             size_t n)
{
    for (struct cache_entry *e = c->buckets[h % CACHE_BUCKETS]; e; e = e->next)
        if (e->hash == h && e->key_len == n && memcmp(cache_key(e), key, n) == 0)
            return e;
    return NULL;
}

/* Copies the cached ids of key into ids (room for n ids: a word of n bytes never has
 * more); returns their count, or −1 when key is not cached. */
static int cache_get(struct bpe_cache *c, const char *key, size_t n, int32_t *ids)
{
    if (n > CACHE_MAX_WORD)
        return -1;
    uint64_t h = hash_bytes(key, n);
    int count = -1;
    pthread_mutex_lock(&c->lock);
    struct cache_entry *e = cache_find_locked(c, h, key, n);
    if (e) {
        memcpy(ids, e->ids, e->n_ids * sizeof *ids);
        count = (int)e->n_ids;
    }
    pthread_mutex_unlock(&c->lock);
    return count;
}

/* Best effort: a word that cannot be cached (too long, no memory) is just not cached. */
static void cache_put(struct bpe_cache *c, const char *key, size_t n, const int32_t *ids,
                      size_t n_ids)
{
    if (n > CACHE_MAX_WORD)
        return;
    uint64_t h = hash_bytes(key, n);
    struct cache_entry *e = malloc(sizeof *e + n_ids * sizeof *ids + n);
    if (!e)
        return;
    e->hash = h;
    e->key_len = (uint32_t)n;
    e->n_ids = (uint32_t)n_ids;
    memcpy(e->ids, ids, n_ids * sizeof *ids);
    memcpy((char *)(e->ids + n_ids), key, n);
    pthread_mutex_lock(&c->lock);
    if (cache_find_locked(c, h, key, n)) {
        pthread_mutex_unlock(&c->lock);
        free(e);
        return;
    }
    if (c->n_entries >= CACHE_MAX_ENTRIES)
        cache_clear_locked(c);
    e->next = c->buckets[h % CACHE_BUCKETS];
    c->buckets[h % CACHE_BUCKETS] = e;
    c->n_entries++;
    pthread_mutex_unlock(&c->lock);
}

/* ---------------------------------------------------------------------------------
 * The tokenizer
 * ------------------------------------------------------------------------------- */

struct special_token {
    char text[TOKENIZER_TOKEN_MAX];
    size_t len;
    int32_t id;
};

struct tokenizer {
    struct tokenizer_options opt;
    struct symtab syms;
    struct pairtab pairs;
    int32_t n_vocab;
    int32_t byte_sym[256];     /* symbol of bytes_to_unicode(b), or SYM_NONE */
    int32_t byte_sym_end[256]; /* symbol of bytes_to_unicode(b) + "</w>" */
    int32_t bos_id, eos_id, unk_id, pad_id;
    int32_t lit_start_id, lit_end_id; /* words "<|startoftext|>" / "<|endoftext|>" */
    struct special_token specials[MAX_SPECIALS];
    int n_specials;
    struct bpe_cache *cache;
};

void tokenizer_options_default(struct tokenizer_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->max_length = 77;
    opt->do_lower_case = true;
    copy_token(opt->bos_token, LIT_START);
    copy_token(opt->eos_token, LIT_END);
    copy_token(opt->unk_token, LIT_END);
    copy_token(opt->pad_token, LIT_END);
    opt->pad_token_id = -1;
}

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68
 * bytes to U+0100.. in byte order.  utf8[b] gets the UTF-8 of b's character. */
static void bytes_to_unicode(char utf8[256][4])
{
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        int32_t cp = printable ? b : 256 + extra++;
        utf8proc_ssize_t n = utf8proc_encode_char(cp, (utf8proc_uint8_t *)utf8[b]);
        utf8[b][n] = '\0';
    }
}

static enum status vocab_add(struct tokenizer *tok, const char *key, json_t *value,
                             const char *path, struct errbuf *err)
{
    if (!json_is_integer(value) || json_integer_value(value) < 0 ||
        json_integer_value(value) > INT32_MAX)
        return status_fail(err, STATUS_FORMAT, "%s: entry \"%.64s\" is not an id in [0, 2^31)",
                           path, key);
    int32_t k;
    enum status st = symtab_intern(&tok->syms, key, strlen(key), &k, err);
    if (st != STATUS_OK)
        return st;
    if (tok->syms.vocab_id[k] >= 0)
        return status_fail(err, STATUS_FORMAT, "%s: duplicate entry \"%.64s\"", path, key);
    tok->syms.vocab_id[k] = (int32_t)json_integer_value(value);
    return STATUS_OK;
}

static enum status vocab_load(struct tokenizer *tok, const char *path, struct errbuf *err)
{
    char *text;
    size_t len;
    enum status st = read_file(path, &text, &len, err);
    if (st != STATUS_OK)
        return st;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!root)
        return status_fail(err, STATUS_FORMAT, "%s: line %d: %s", path, jerr.line, jerr.text);
    if (!json_is_object(root) || json_object_size(root) == 0 ||
        json_object_size(root) > INT32_MAX / 4) {
        json_decref(root);
        return status_fail(err, STATUS_FORMAT, "%s: not a non-empty object token → id", path);
    }
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value)
    {
        st = vocab_add(tok, key, value, path, err);
        if (st != STATUS_OK)
            break;
    }
    tok->n_vocab = (int32_t)json_object_size(root);
    json_decref(root);
    return st;
}

/* Splits line[0..n) into exactly two whitespace-separated fields. */
static bool merge_fields(const char *line, size_t n, size_t f[4])
{
    int count = 0;
    size_t i = 0;
    while (i < n) {
        while (i < n && is_ascii_space(line[i]))
            i++;
        if (i == n)
            break;
        size_t start = i;
        while (i < n && !is_ascii_space(line[i]))
            i++;
        if (count == 2)
            return false;
        f[2 * count] = start;
        f[2 * count + 1] = i;
        count++;
    }
    return count == 2;
}

static enum status merge_add(struct tokenizer *tok, const char *line, size_t n, int32_t rank,
                             char *joined, struct errbuf *err)
{
    size_t f[4];
    if (!merge_fields(line, n, f))
        return STATUS_FORMAT;
    size_t la = f[1] - f[0], lb = f[3] - f[2];
    int32_t a, b, ab;
    enum status st = symtab_intern(&tok->syms, line + f[0], la, &a, err);
    if (st == STATUS_OK)
        st = symtab_intern(&tok->syms, line + f[2], lb, &b, err);
    if (st != STATUS_OK)
        return st;
    memcpy(joined, line + f[0], la);
    memcpy(joined + la, line + f[2], lb);
    st = symtab_intern(&tok->syms, joined, la + lb, &ab, err);
    if (st != STATUS_OK)
        return st;
    struct pair_entry *e = pairtab_slot(&tok->pairs, a, b);
    e->left = a; /* a repeated pair takes its later rank, as a Python dict does */
    e->right = b;
    e->rank = rank;
    e->merged = ab;
    return STATUS_OK;
}

/* Like transformers: strip the file, drop its first line (the "#version" header), use
 * at most the next TOKENIZER_MAX_MERGES lines. */
static enum status merges_parse(struct tokenizer *tok, const char *text, size_t len,
                                const char *path, char *joined, struct errbuf *err)
{
    int line_no = 1;
    size_t pos = 0;
    while (len && is_ascii_space(text[len - 1]))
        len--;
    for (; pos < len && is_ascii_space(text[pos]); pos++)
        line_no += text[pos] == '\n';
    const char *p = memchr(text + pos, '\n', len - pos);
    pos = p ? (size_t)(p - text) + 1 : len;
    int32_t rank = 0;
    for (line_no++; pos < len && rank < TOKENIZER_MAX_MERGES; line_no++, rank++) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        enum status st = merge_add(tok, text + pos, end - pos, rank, joined, err);
        if (st == STATUS_FORMAT)
            return status_fail(err, STATUS_FORMAT, "%s: line %d: expected two symbols", path,
                               line_no);
        if (st != STATUS_OK)
            return st;
        pos = end + 1;
    }
    return STATUS_OK;
}

static enum status merges_load(struct tokenizer *tok, const char *path, struct errbuf *err)
{
    char *text;
    size_t len;
    enum status st = read_file(path, &text, &len, err);
    if (st != STATUS_OK)
        return st;
    char *joined = malloc(len + 1);
    st = joined ? pairtab_init(&tok->pairs, TOKENIZER_MAX_MERGES, err)
                : status_fail(err, STATUS_OUT_OF_MEMORY, "%s", path);
    if (st == STATUS_OK)
        st = merges_parse(tok, text, len, path, joined, err);
    free(joined);
    free(text);
    return st;
}

static void byte_symbols_init(struct tokenizer *tok)
{
    char utf8[256][4];
    bytes_to_unicode(utf8);
    for (int b = 0; b < 256; b++) {
        char with_end[16];
        int n = snprintf(with_end, sizeof with_end, "%s</w>", utf8[b]);
        tok->byte_sym[b] = symtab_find(&tok->syms, utf8[b], strlen(utf8[b]));
        tok->byte_sym_end[b] = symtab_find(&tok->syms, with_end, (size_t)n);
    }
}

static int32_t vocab_lookup(const struct tokenizer *tok, const char *s)
{
    int32_t k = symtab_find(&tok->syms, s, strlen(s));
    return k == SYM_NONE ? -1 : tok->syms.vocab_id[k];
}

static enum status special_id(const struct tokenizer *tok, const char *what, const char *s,
                              const char *path, int32_t *out, struct errbuf *err)
{
    if (!s[0])
        return status_fail(err, STATUS_INVALID_ARGUMENT, "tokenizer: empty %s", what);
    *out = vocab_lookup(tok, s);
    if (*out < 0)
        return status_fail(err, STATUS_FORMAT, "%s: no entry for %s \"%s\"", path, what, s);
    return STATUS_OK;
}

/* The strings split out of the text before anything else, as transformers' added
 * tokens: bos, eos, unk and pad, each once. */
static void specials_init(struct tokenizer *tok)
{
    const char *texts[MAX_SPECIALS] = {tok->opt.bos_token, tok->opt.eos_token,
                                       tok->opt.unk_token, tok->opt.pad_token};
    for (int i = 0; i < MAX_SPECIALS; i++) {
        bool seen = false;
        for (int j = 0; j < tok->n_specials; j++)
            seen |= strcmp(tok->specials[j].text, texts[i]) == 0;
        int32_t id = vocab_lookup(tok, texts[i]);
        if (seen || id < 0)
            continue;
        struct special_token *s = &tok->specials[tok->n_specials++];
        copy_token(s->text, texts[i]);
        s->len = strlen(texts[i]);
        s->id = id;
    }
}

static enum status specials_resolve(struct tokenizer *tok, const char *path, struct errbuf *err)
{
    const struct tokenizer_options *o = &tok->opt;
    enum status st = special_id(tok, "bos_token", o->bos_token, path, &tok->bos_id, err);
    if (st == STATUS_OK)
        st = special_id(tok, "eos_token", o->eos_token, path, &tok->eos_id, err);
    if (st == STATUS_OK)
        st = special_id(tok, "unk_token", o->unk_token, path, &tok->unk_id, err);
    if (st == STATUS_OK && o->pad_token_id < 0)
        st = special_id(tok, "pad_token", o->pad_token, path, &tok->pad_id, err);
    if (st != STATUS_OK)
        return st;
    if (o->pad_token_id >= 0)
        tok->pad_id = o->pad_token_id;
    tok->lit_start_id = vocab_lookup(tok, LIT_START);
    tok->lit_end_id = vocab_lookup(tok, LIT_END);
    if (tok->lit_start_id < 0)
        tok->lit_start_id = tok->unk_id;
    if (tok->lit_end_id < 0)
        tok->lit_end_id = tok->unk_id;
    specials_init(tok);
    return STATUS_OK;
}

static enum status options_check(const struct tokenizer_options *o, struct errbuf *err)
{
    if (o->max_length < 2 || o->max_length > TOKENIZER_MAX_LENGTH_LIMIT)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "tokenizer: max_length %d not in [2, %d]",
                           o->max_length, TOKENIZER_MAX_LENGTH_LIMIT);
    const char *const tokens[] = {o->bos_token, o->eos_token, o->unk_token, o->pad_token};
    for (size_t i = 0; i < sizeof tokens / sizeof *tokens; i++)
        if (!memchr(tokens[i], '\0', TOKENIZER_TOKEN_MAX))
            return status_fail(err, STATUS_INVALID_ARGUMENT, "tokenizer: unterminated token");
    return STATUS_OK;
}

static enum status cache_create(struct bpe_cache **out, struct errbuf *err)
{
    struct bpe_cache *c = calloc(1, sizeof *c);
    if (!c)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "tokenizer cache");
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        return status_fail(err, STATUS_INTERNAL, "tokenizer cache: pthread_mutex_init failed");
    }
    *out = c;
    return STATUS_OK;
}

enum status tokenizer_load(const char *vocab_json, const char *merges_txt,
                           const struct tokenizer_options *opt, struct tokenizer **out,
                           struct errbuf *err)
{
    if (!vocab_json || !merges_txt || !out)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "tokenizer_load: NULL argument");
    *out = NULL;
    struct tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok)
        return status_fail(err, STATUS_OUT_OF_MEMORY, "tokenizer");
    if (opt)
        tok->opt = *opt;
    else
        tokenizer_options_default(&tok->opt);
    enum status st = options_check(&tok->opt, err);
    if (st == STATUS_OK)
        st = vocab_load(tok, vocab_json, err);
    if (st == STATUS_OK)
        st = merges_load(tok, merges_txt, err);
    if (st == STATUS_OK)
        st = specials_resolve(tok, vocab_json, err);
    if (st == STATUS_OK)
        st = cache_create(&tok->cache, err);
    if (st != STATUS_OK) {
        tokenizer_free(tok);
        return st;
    }
    byte_symbols_init(tok);
    *out = tok;
    return STATUS_OK;
}

void tokenizer_free(struct tokenizer *tok)
{
    if (!tok)
        return;
    if (tok->cache) {
        cache_clear_locked(tok->cache);
        pthread_mutex_destroy(&tok->cache->lock);
        free(tok->cache);
    }
    symtab_free(&tok->syms);
    free(tok->pairs.slots);
    free(tok);
}

int tokenizer_max_length(const struct tokenizer *tok)
{
    return tok->opt.max_length;
}

int32_t tokenizer_vocab_size(const struct tokenizer *tok)
{
    return tok->n_vocab;
}

int32_t tokenizer_bos_id(const struct tokenizer *tok)
{
    return tok->bos_id;
}

int32_t tokenizer_eos_id(const struct tokenizer *tok)
{
    return tok->eos_id;
}

int32_t tokenizer_pad_id(const struct tokenizer *tok)
{
    return tok->pad_id;
}

int32_t tokenizer_token_id(const struct tokenizer *tok, const char *token)
{
    return token ? vocab_lookup(tok, token) : -1;
}

/* ---------------------------------------------------------------------------------
 * Configuration folder (tokenizer_config.json, special_tokens_map.json)
 * ------------------------------------------------------------------------------- */

static enum status path_join(char *dst, size_t cap, const char *dir, const char *name,
                             struct errbuf *err)
{
    int n = snprintf(dst, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "%s/%s: path too long", dir, name);
    return STATUS_OK;
}

/* A special token given as "text" or {"content": "text", ...}; null leaves dst as is. */
static enum status config_token(json_t *root, const char *field, char dst[TOKENIZER_TOKEN_MAX],
                                const char *path, struct errbuf *err)
{
    json_t *v = json_object_get(root, field);
    if (!v || json_is_null(v))
        return STATUS_OK;
    if (json_is_object(v)) {
        json_t *single = json_object_get(v, "single_word");
        if (single && json_is_true(single))
            return status_fail(err, STATUS_UNSUPPORTED, "%s: %s: single_word tokens", path, field);
        v = json_object_get(v, "content");
    }
    size_t len = json_string_length(v);
    if (!json_is_string(v) || len == 0 || len >= TOKENIZER_TOKEN_MAX ||
        strlen(json_string_value(v)) != len)
        return status_fail(err, STATUS_FORMAT, "%s: %s: not a token string of 1..%d bytes", path,
                           field, TOKENIZER_TOKEN_MAX - 1);
    copy_token(dst, json_string_value(v));
    return STATUS_OK;
}

static enum status config_tokens(json_t *root, struct tokenizer_options *opt, const char *path,
                                 struct errbuf *err)
{
    enum status st = config_token(root, "bos_token", opt->bos_token, path, err);
    if (st == STATUS_OK)
        st = config_token(root, "eos_token", opt->eos_token, path, err);
    if (st == STATUS_OK)
        st = config_token(root, "unk_token", opt->unk_token, path, err);
    if (st == STATUS_OK)
        st = config_token(root, "pad_token", opt->pad_token, path, err);
    return st;
}

static enum status config_scalars(json_t *root, struct tokenizer_options *opt, const char *path,
                                  struct errbuf *err)
{
    json_t *cls = json_object_get(root, "tokenizer_class");
    if (cls && !json_is_null(cls)) {
        const char *name = json_string_value(cls);
        if (!name)
            return status_fail(err, STATUS_FORMAT, "%s: tokenizer_class is not a string", path);
        if (strcmp(name, "CLIPTokenizer") != 0 && strcmp(name, "CLIPTokenizerFast") != 0)
            return status_fail(err, STATUS_UNSUPPORTED,
                               "%s: tokenizer_class \"%.64s\" (only CLIPTokenizer)", path, name);
    }
    json_t *max_len = json_object_get(root, "model_max_length");
    if (max_len && !json_is_null(max_len)) {
        if (!json_is_integer(max_len) || json_integer_value(max_len) < 2 ||
            json_integer_value(max_len) > TOKENIZER_MAX_LENGTH_LIMIT)
            return status_fail(err, STATUS_FORMAT,
                               "%s: model_max_length is not an integer in [2, %d]", path,
                               TOKENIZER_MAX_LENGTH_LIMIT);
        opt->max_length = (int)json_integer_value(max_len);
    }
    json_t *lower = json_object_get(root, "do_lower_case");
    if (lower && !json_is_null(lower)) {
        if (!json_is_boolean(lower))
            return status_fail(err, STATUS_FORMAT, "%s: do_lower_case is not a boolean", path);
        opt->do_lower_case = json_is_true(lower);
    }
    return STATUS_OK;
}

/* Applies one JSON file of the folder; absent is fine. */
static enum status config_apply(const char *dir, const char *name, bool scalars,
                                struct tokenizer_options *opt, struct errbuf *err)
{
    char path[4096];
    enum status st = path_join(path, sizeof path, dir, name, err);
    if (st != STATUS_OK)
        return st;
    struct stat sb;
    if (stat(path, &sb) != 0 && errno == ENOENT)
        return STATUS_OK;
    char *text;
    size_t len;
    st = read_file(path, &text, &len, err);
    if (st != STATUS_OK)
        return st;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!root)
        return status_fail(err, STATUS_FORMAT, "%s: line %d: %s", path, jerr.line, jerr.text);
    if (!json_is_object(root))
        st = status_fail(err, STATUS_FORMAT, "%s: not a JSON object", path);
    if (st == STATUS_OK && scalars)
        st = config_scalars(root, opt, path, err);
    if (st == STATUS_OK)
        st = config_tokens(root, opt, path, err);
    json_decref(root);
    return st;
}

enum status tokenizer_options_from_dir(const char *dir, struct tokenizer_options *opt,
                                       struct errbuf *err)
{
    if (!dir || !opt)
        return status_fail(err, STATUS_INVALID_ARGUMENT,
                           "tokenizer_options_from_dir: NULL argument");
    tokenizer_options_default(opt);
    enum status st = config_apply(dir, "tokenizer_config.json", true, opt, err);
    if (st == STATUS_OK)
        st = config_apply(dir, "special_tokens_map.json", false, opt, err);
    return st;
}

enum status tokenizer_load_dir(const char *dir, struct tokenizer **out, struct errbuf *err)
{
    struct tokenizer_options opt;
    enum status st = tokenizer_options_from_dir(dir, &opt, err);
    if (st != STATUS_OK)
        return st;
    char vocab[4096], merges[4096];
    st = path_join(vocab, sizeof vocab, dir, "vocab.json", err);
    if (st == STATUS_OK)
        st = path_join(merges, sizeof merges, dir, "merges.txt", err);
    if (st == STATUS_OK)
        st = tokenizer_load(vocab, merges, &opt, out, err);
    return st;
}


/* ---------------------------------------------------------------------------------
 * BPE of one word: transformers' loop (take the lowest-ranked adjacent pair, merge
 * all its occurrences left to right, repeat) in O(n log n): a doubly linked list of
 * symbols and a heap of candidate pairs ordered by (rank, position); all candidates
 * of the lowest rank are merged as one batch before the pairs they create count.
 * ------------------------------------------------------------------------------- */

#define SYM_REMOVED (-2)

struct bpe_cand {
    int32_t rank, pos;    /* pos: list node of the left symbol */
    int32_t left, right;  /* the pair as it was when queued */
    int32_t merged;
};

struct bpe_work {
    size_t cap;                /* symbols the arrays hold */
    int32_t *sym, *next, *prev; /* the word as a list over nodes 0..n−1 */
    struct bpe_cand *heap, *batch;
    size_t heap_n;
};

static void bpe_work_free(struct bpe_work *w)
{
    free(w->sym);
    free(w->next);
    free(w->prev);
    free(w->heap);
    free(w->batch);
    memset(w, 0, sizeof *w);
}

/* Room for a word of n symbols (n − 1 first pairs + 2 per merge ≤ 3n candidates). */
static enum status bpe_work_reserve(struct bpe_work *w, size_t n, struct errbuf *err)
{
    if (n <= w->cap)
        return STATUS_OK;
    size_t cap = w->cap ? w->cap : 64;
    while (cap < n)
        cap *= 2;
    bpe_work_free(w);
    w->sym = malloc(cap * sizeof *w->sym);
    w->next = malloc(cap * sizeof *w->next);
    w->prev = malloc(cap * sizeof *w->prev);
    w->heap = malloc(3 * cap * sizeof *w->heap);
    w->batch = malloc(3 * cap * sizeof *w->batch);
    if (!w->sym || !w->next || !w->prev || !w->heap || !w->batch) {
        bpe_work_free(w);
        return status_fail(err, STATUS_OUT_OF_MEMORY, "tokenizer: BPE of %zu bytes", n);
    }
    w->cap = cap;
    return STATUS_OK;
}

static bool cand_before(const struct bpe_cand *a, const struct bpe_cand *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(struct bpe_work *w, struct bpe_cand c)
{
    size_t i = w->heap_n++;
    while (i > 0 && cand_before(&c, &w->heap[(i - 1) / 2])) {
        w->heap[i] = w->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->heap[i] = c;
}

static struct bpe_cand heap_pop(struct bpe_work *w)
{
    struct bpe_cand top = w->heap[0], last = w->heap[--w->heap_n];
    size_t i = 0, n = w->heap_n;
    for (;;) {
        size_t k = 2 * i + 1;
        if (k >= n)
            break;
        if (k + 1 < n && cand_before(&w->heap[k + 1], &w->heap[k]))
            k++;
        if (!cand_before(&w->heap[k], &last))
            break;
        w->heap[i] = w->heap[k];
        i = k;
    }
    if (n)
        w->heap[i] = last;
    return top;
}

/* Queues the pair starting at node pos when the merges rank it. */
static void cand_queue(const struct pairtab *pairs, struct bpe_work *w, int32_t pos)
{
    if (pos < 0 || w->next[pos] < 0)
        return;
    int32_t a = w->sym[pos], b = w->sym[w->next[pos]];
    if (a < 0 || b < 0)
        return;
    const struct pair_entry *e = pairtab_slot(pairs, a, b);
    if (e->left >= 0)
        heap_push(w, (struct bpe_cand){e->rank, pos, a, b, e->merged});
}

static bool cand_current(const struct bpe_work *w, const struct bpe_cand *c)
{
    int32_t nx = w->next[c->pos];
    return w->sym[c->pos] == c->left && nx >= 0 && w->sym[nx] == c->right;
}

static void bpe_join(struct bpe_work *w, const struct bpe_cand *c)
{
    int32_t gone = w->next[c->pos];
    w->sym[c->pos] = c->merged;
    w->next[c->pos] = w->next[gone];
    if (w->next[gone] >= 0)
        w->prev[w->next[gone]] = c->pos;
    w->sym[gone] = SYM_REMOVED;
}

/* Merges all current candidates of the lowest rank left to right (a pair that an
 * earlier merge of the batch consumed is skipped, as transformers' scan does), then
 * queues the pairs around the merged symbols. */
static void bpe_merge_batch(const struct pairtab *pairs, struct bpe_work *w, struct bpe_cand first)
{
    size_t nb = 0;
    w->batch[nb++] = first;
    while (w->heap_n && w->heap[0].rank == first.rank)
        w->batch[nb++] = heap_pop(w);
    size_t done = 0;
    for (size_t k = 0; k < nb; k++)
        if (cand_current(w, &w->batch[k])) {
            bpe_join(w, &w->batch[k]);
            w->batch[done++] = w->batch[k];
        }
    for (size_t k = 0; k < done; k++) {
        cand_queue(pairs, w, w->prev[w->batch[k].pos]);
        cand_queue(pairs, w, w->batch[k].pos);
    }
}

/* BPE of the symbols sym[0..n) (n ≤ cap; SYM_NONE never merges); the result replaces
 * sym[0..return value). */
static size_t bpe_merge(const struct pairtab *pairs, struct bpe_work *w, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        w->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
        w->prev[i] = (int32_t)i - 1;
    }
    w->heap_n = 0;
    for (size_t i = 0; i + 1 < n; i++)
        cand_queue(pairs, w, (int32_t)i);
    while (w->heap_n) {
        struct bpe_cand c = heap_pop(w);
        if (cand_current(w, &c))
            bpe_merge_batch(pairs, w, c);
    }
    size_t m = 0;
    for (int32_t i = 0; i >= 0; i = w->next[i]) /* node 0 is never removed */
        w->sym[m++] = w->sym[i];
    return m;
}

/* ---------------------------------------------------------------------------------
 * Encoding
 * ------------------------------------------------------------------------------- */

struct encode_ctx {
    const struct tokenizer *tok;
    int32_t *ids; /* content ids go to ids[1 ..] */
    int cap;      /* room for content ids: max_length − 2 */
    int n;        /* content ids produced so far (may exceed cap) */
    struct bpe_work work;
    char *piece; /* UTF-8 of the current pre-token */
    size_t piece_cap;
    struct errbuf *err;
};

static void emit(struct encode_ctx *c, int32_t id)
{
    if (c->n < c->cap)
        c->ids[1 + c->n] = id;
    c->n++;
}

/* Symbol ids → vocabulary ids (unk for strings the vocabulary lacks). */
static void symbols_to_ids(const struct tokenizer *tok, int32_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int32_t id = s[i] >= 0 ? tok->syms.vocab_id[s[i]] : -1;
        s[i] = id >= 0 ? id : tok->unk_id;
    }
}

/* BPE of one pre-token's UTF-8 bytes b[0..n); emits its ids. */
static enum status bpe_word(struct encode_ctx *c, const unsigned char *b, size_t n)
{
    const struct tokenizer *tok = c->tok;
    if (n == strlen(LIT_START) && memcmp(b, LIT_START, n) == 0) {
        emit(c, tok->lit_start_id);
        return STATUS_OK;
    }
    if (n == strlen(LIT_END) && memcmp(b, LIT_END, n) == 0) {
        emit(c, tok->lit_end_id);
        return STATUS_OK;
    }
    enum status st = bpe_work_reserve(&c->work, n, c->err);
    if (st != STATUS_OK)
        return st;
    int32_t *s = c->work.sym;
    int cached = cache_get(tok->cache, (const char *)b, n, s);
    size_t m = cached >= 0 ? (size_t)cached : n;
    if (cached < 0) {
        for (size_t i = 0; i < n; i++)
            s[i] = i + 1 < n ? tok->byte_sym[b[i]] : tok->byte_sym_end[b[i]];
        m = bpe_merge(&tok->pairs, &c->work, n);
        symbols_to_ids(tok, s, m);
        cache_put(tok->cache, (const char *)b, n, s, m);
    }
    for (size_t i = 0; i < m; i++)
        emit(c, s[i]);
    return STATUS_OK;
}

/* UTF-8 of w[0..n) into c->piece; returns its length in *len. */
static enum status piece_utf8(struct encode_ctx *c, const int32_t *w, size_t n, size_t *len)
{
    if (4 * n > c->piece_cap) {
        size_t cap = 4 * n > 256 ? 4 * n : 256;
        char *p = realloc(c->piece, cap);
        if (!p)
            return status_fail(c->err, STATUS_OUT_OF_MEMORY, "tokenizer: %zu bytes", cap);
        c->piece = p;
        c->piece_cap = cap;
    }
    size_t bytes = 0;
    for (size_t k = 0; k < n; k++)
        bytes += (size_t)utf8proc_encode_char(w[k], (utf8proc_uint8_t *)c->piece + bytes);
    *len = bytes;
    return STATUS_OK;
}

/* Pre-tokenizes and encodes one (lower-cased) word. */
static enum status encode_word(struct encode_ctx *c, const int32_t *w, size_t n)
{
    for (size_t i = 0; i < n;) {
        if (tokenizer_text_is_skipped(w[i])) {
            i++;
            continue;
        }
        size_t len = tokenizer_text_pretoken_len(w, n, i), bytes = 0;
        enum status st = piece_utf8(c, w + i, len, &bytes);
        if (st == STATUS_OK)
            st = bpe_word(c, (const unsigned char *)c->piece, bytes);
        if (st != STATUS_OK)
            return st;
        i += len;
    }
    return STATUS_OK;
}

/* Splits text[0..n) on whitespace, lower-cases and encodes each word; lower has room
 * for 2n code points. */
static enum status encode_words(struct encode_ctx *c, const int32_t *text, size_t n, int32_t *lower)
{
    enum status st = STATUS_OK;
    for (size_t i = 0; i < n && st == STATUS_OK;) {
        while (i < n && tokenizer_text_is_space(text[i]))
            i++;
        size_t start = i;
        while (i < n && !tokenizer_text_is_space(text[i]))
            i++;
        if (i == start)
            continue;
        if (c->tok->opt.do_lower_case)
            st = encode_word(c, lower, tokenizer_text_lower(text + start, i - start, lower));
        else
            st = encode_word(c, text + start, i - start);
    }
    return st;
}

/* Everything between two special tokens: clean, NFC, words, pre-tokens, BPE; scratch
 * has room for 3·len bytes. */
static enum status encode_segment(struct encode_ctx *c, const char *s, size_t len, char *scratch)
{
    if (len == 0)
        return STATUS_OK;
    size_t clean_len = tokenizer_text_clean(s, len, scratch);
    int32_t *text = NULL;
    size_t n = 0;
    enum status st = tokenizer_text_nfc(scratch, clean_len, &text, &n, c->err);
    if (st != STATUS_OK)
        return st;
    int32_t *lower = malloc((2 * n + 1) * sizeof *lower);
    st = lower ? encode_words(c, text, n, lower)
               : status_fail(c->err, STATUS_OUT_OF_MEMORY, "tokenizer: %zu code points", n);
    free(lower);
    free(text);
    return st;
}

/* The longest special token starting at s[0..len), or NULL. */
static const struct special_token *special_at(const struct tokenizer *tok, const char *s,
                                              size_t len)
{
    const struct special_token *best = NULL;
    for (int k = 0; k < tok->n_specials; k++) {
        const struct special_token *sp = &tok->specials[k];
        if (sp->len <= len && memcmp(s, sp->text, sp->len) == 0 && (!best || sp->len > best->len))
            best = sp;
    }
    return best;
}

/* Splits on the special tokens and encodes every piece between them. */
static enum status encode_text(struct encode_ctx *c, const char *s, size_t len)
{
    char *scratch = malloc(3 * len + 1);
    if (!scratch)
        return status_fail(c->err, STATUS_OUT_OF_MEMORY, "tokenizer: text of %zu bytes", len);
    enum status st = STATUS_OK;
    size_t seg = 0;
    for (size_t i = 0; i < len && st == STATUS_OK;) {
        const struct special_token *sp = special_at(c->tok, s + i, len - i);
        if (!sp) {
            i++;
            continue;
        }
        st = encode_segment(c, s + seg, i - seg, scratch);
        emit(c, sp->id);
        i += sp->len;
        seg = i;
    }
    if (st == STATUS_OK)
        st = encode_segment(c, s + seg, len - seg, scratch);
    free(scratch);
    return st;
}

enum status tokenizer_encode(const struct tokenizer *tok, const char *utf8, int32_t *ids,
                             struct tokenizer_result *info, struct errbuf *err)
{
    if (!tok || !utf8 || !ids)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "tokenizer_encode: NULL argument");
    size_t len = strlen(utf8);
    if (len > TOKENIZER_MAX_TEXT)
        return status_fail(err, STATUS_INVALID_ARGUMENT, "text of %zu bytes is too long", len);
    enum status st = tokenizer_text_check_utf8(utf8, len, err);
    if (st != STATUS_OK)
        return st;
    struct encode_ctx c = {.tok = tok, .ids = ids, .cap = tok->opt.max_length - 2, .err = err};
    st = encode_text(&c, utf8, len);
    bpe_work_free(&c.work);
    free(c.piece);
    if (st != STATUS_OK)
        return st;
    int kept = c.n < c.cap ? c.n : c.cap;
    ids[0] = tok->bos_id;
    ids[1 + kept] = tok->eos_id;
    for (int i = 2 + kept; i < tok->opt.max_length; i++)
        ids[i] = tok->pad_id;
    if (info) {
        info->n_tokens = c.n + 2;
        info->n_ids = kept + 2;
        info->truncated = c.n > c.cap;
    }
    return STATUS_OK;
}
