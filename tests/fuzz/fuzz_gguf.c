/*
 * fuzz_gguf.c: libFuzzer target for the GGUF reader (and, on what it accepts, the writer).
 *
 * For every input: parse it; if accepted, walk everything the index hands out the way
 * a loader would (every kv through the typed getters, every array element, every
 * string, every tensor's first and last byte) so ASan catches any pointer the reader
 * let escape the input. Then copy the file through the writer and require that the
 * result parses back to the same shape: the writer must never produce a file the
 * reader refuses.
 */
#include "gguf/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile uint64_t g_sink;   /* keeps the touched bytes from being optimized out */

static void walk_kv(const gguf_file *f, const gguf_kv *kv) {
    char key[256];
    nook_error err;
    if (kv->key.len >= sizeof key || memchr(kv->key.ptr, 0, kv->key.len)) return;
    memcpy(key, kv->key.ptr, kv->key.len);
    key[kv->key.len] = 0;
    if (gguf_find(f, key) != kv) abort();   /* keys are unique: lookup finds this very kv */
    uint32_t u;
    int64_t i;
    float x;
    bool b;
    gguf_str s;
    gguf_type t;
    uint64_t n;
    const uint8_t *d;
    g_sink += gguf_get_u32(f, key, &u, &err) == NOOK_OK ? u : 0;
    g_sink += gguf_get_i64(f, key, &i, &err) == NOOK_OK ? (uint64_t)i : 0;
    g_sink += gguf_get_f32(f, key, &x, &err) == NOOK_OK ? (uint64_t)(x == x) : 0;
    g_sink += gguf_get_bool(f, key, &b, &err) == NOOK_OK ? b : 0;
    if (gguf_get_str(f, key, &s, &err) == NOOK_OK && s.len) g_sink += (uint8_t)s.ptr[0] + (uint8_t)s.ptr[s.len - 1];
    if (gguf_get_arr(f, key, &t, &n, &d, &err) != NOOK_OK) return;
    if (t == GGUF_TYPE_STRING) {
        gguf_str *ss = NULL;
        if (gguf_arr_strings(&kv->val, &ss, &err) != NOOK_OK) return;   /* only ENOMEM can fail */
        for (uint64_t k = 0; k < n; k++)
            if (ss[k].len) g_sink += (uint8_t)ss[k].ptr[0] + (uint8_t)ss[k].ptr[ss[k].len - 1];
        nk_free(ss);
    } else {
        for (uint64_t k = 0; k < n; k++) {
            double v = gguf_arr_f64(&kv->val, k);
            g_sink += (uint64_t)gguf_arr_i64(&kv->val, k) + (v == v);
        }
    }
}

/* Copy f through the writer and re-parse: same counts, same tensor bytes. */
static void rewrite(const gguf_file *f) {
    gguf_writer *w = gguf_writer_new();
    if (!w) return;
    bool ok = true;
    for (uint64_t i = 0; i < f->n_kv && ok; i++) ok = gguf_set_kv_from(w, &f->kv[i]) == NOOK_OK;
    for (uint64_t i = 0; i < f->n_tensors && ok; i++) {
        const gguf_tensor *t = &f->tensors[i];
        char name[GGUF_MAX_NAME];
        if (memchr(t->name.ptr, 0, t->name.len)) { ok = false; break; }   /* not expressible as a C name */
        memcpy(name, t->name.ptr, t->name.len);
        name[t->name.len] = 0;
        ok = gguf_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data, t->nbytes) == NOOK_OK;
    }
    uint8_t *out = NULL;
    uint64_t len = 0;
    nook_error err;
    if (ok && gguf_write_mem(w, &out, &len, &err) == NOOK_OK) {
        gguf_file *g = NULL;
        if (gguf_parse(out, len, &g, &err) != NOOK_OK) {
            fprintf(stderr, "writer output refused by the reader: %s\n", err.msg);
            abort();
        }
        if (g->n_kv != f->n_kv || g->n_tensors != f->n_tensors || g->alignment != f->alignment) abort();
        for (uint64_t i = 0; i < g->n_tensors; i++)
            if (g->tensors[i].nbytes != f->tensors[i].nbytes ||
                memcmp(g->tensors[i].data, f->tensors[i].data, f->tensors[i].nbytes) != 0)
                abort();
        gguf_free(g);
    }
    nk_free(out);
    gguf_writer_free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_file *f = NULL;
    nook_error err;
    if (gguf_parse(data, size, &f, &err) != NOOK_OK) {
        if (f != NULL || err.msg[0] == 0) abort();   /* failures must say why and hand out nothing */
        return 0;
    }
    for (uint64_t i = 0; i < f->n_kv; i++) walk_kv(f, &f->kv[i]);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        const uint8_t *p = t->data;
        g_sink += p[0] + p[t->nbytes - 1];
        if (((uintptr_t)(p - f->base) - f->data_offset) % f->alignment) abort();
        char name[GGUF_MAX_NAME];
        if (!memchr(t->name.ptr, 0, t->name.len)) {
            memcpy(name, t->name.ptr, t->name.len);
            name[t->name.len] = 0;
            if (gguf_find_tensor(f, name) != t) abort();
        }
    }
    rewrite(f);
    gguf_free(f);
    return 0;
}
