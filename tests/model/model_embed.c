/*
 * model_embed.c: embeddings equal llama.cpp's on the same files.
 *
 * Files (written here, byte-reproducible): stories260K as shipped (no pooling_type:
 * llama.cpp then pools none and node-llama-cpp reads the last token, so nook runs it
 * with pooling LAST), stories260K with llama.pooling_type = mean added, and
 * model_arch.h's tiny random-weight qwen3 and llama3 files (F32) with pooling_type
 * mean or last; the qwen3 "last" file also sets add_eos_token, the Qwen3-Embedding
 * layout (last-token pooling over a trailing end-of-text token). For each, the five
 * texts of tests/data/model/embed/texts.txt: the same token ids as llama.cpp and a
 * cosine similarity >= 0.9999 with its (raw) embedding, in one nook_session_embed
 * call (several texts per pass). Also: the normalised vectors have norm 1, and the
 * raw ones point the same way.
 *
 * Goldens (needs the llama.cpp reference): tests/data/model/embed/make_goldens.sh
 * BUILD_DIR runs this test with NOOK_EMBED_WRITE=DIR and bench/llamacpp_ext.mjs embed
 * --plain on every file.
 */
#include "model_arch.h"

#include <sys/stat.h>

static const arch_cfg CFG_QWEN3 = {
    .name = "qwen3", .arch = "qwen3", .n_embd = 256, .n_layer = 4, .n_head = 4, .n_head_kv = 2, .head_dim = 128,
    .n_ff = 768, .n_ctx = 40960, .tied = true, .key_length = true, .qk_norm = true, .rope_base = 1e6f, .eps = 1e-6f,
};
static const arch_cfg CFG_LLAMA3 = {
    .name = "llama3", .arch = "llama", .n_embd = 256, .n_layer = 4, .n_head = 8, .n_head_kv = 2, .head_dim = 32,
    .n_ff = 768, .n_ctx = 131072, .tied = true, .rope_dim = true, .rope_base = 500000.0f, .eps = 1e-5f,
    .llama3_rope = 32.0f,
};

enum { MAX_TEXTS = 8, MAX_TOK = 128, MAX_EMBD = 256 };

/* Copy a GGUF adding <arch>.pooling_type (if pooling >= 0) and add_eos_token. */
static int copy_with_keys(const char *src, const char *dst, const char *arch, int pooling, bool add_eos) {
    FILE *f = fopen(src, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    const long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)len);
    const bool ok = buf && fread(buf, 1, (size_t)len, f) == (size_t)len;
    fclose(f);
    gguf_file *g = NULL;
    if (!ok || gguf_parse(buf, (uint64_t)len, &g, NULL) != NOOK_OK) {
        free(buf);
        return -1;
    }
    gguf_writer *w = gguf_writer_new();
    int rc = 0;
    for (uint64_t i = 0; i < g->n_kv; i++) rc |= gguf_set_kv_from(w, &g->kv[i]);
    char key[128];
    snprintf(key, sizeof key, "%s.pooling_type", arch);
    if (pooling >= 0) rc |= gguf_set_u32(w, key, (uint32_t)pooling);
    if (add_eos) rc |= gguf_set_bool(w, "tokenizer.ggml.add_eos_token", true);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        rc |= gguf_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data, t->nbytes);
    }
    rc |= gguf_write_file(w, dst, NULL);
    gguf_writer_free(w);
    gguf_free(g);
    free(buf);
    return rc ? -1 : 0;
}

static int g_n_texts;
static char g_texts[MAX_TEXTS][256];

static void read_texts(void) {
    FILE *f = fopen("tests/data/model/embed/texts.txt", "r");
    if (!f) {
        CHECK_MSG(0, "tests/data/model/embed/texts.txt missing");
        return;
    }
    while (g_n_texts < MAX_TEXTS && fgets(g_texts[g_n_texts], sizeof g_texts[0], f)) {
        g_texts[g_n_texts][strcspn(g_texts[g_n_texts], "\n")] = 0;
        if (g_texts[g_n_texts][0]) g_n_texts++;
    }
    fclose(f);
}

typedef struct golden {
    int n;
    int n_tok[MAX_TEXTS], tok[MAX_TEXTS][MAX_TOK];
    int n_embd[MAX_TEXTS];
    float emb[MAX_TEXTS][MAX_EMBD];
} golden;

static golden g_gold;

static bool read_golden(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "tests/data/model/embed/%s.txt", name);
    FILE *f = fopen(path, "r");
    if (!f) {
        CHECK_MSG(0, "golden %s missing", path);
        return false;
    }
    static char line[1 << 16];
    memset(&g_gold, 0, sizeof g_gold);
    while (fgets(line, sizeof line, f)) {
        const int i = line[0] == 'T' ? g_gold.n : g_gold.n - 1;
        if (i < 0 || i >= MAX_TEXTS) break;
        if (line[0] == 'T') {
            g_gold.n++;
            for (char *t = strtok(line + 2, ",\n"); t && g_gold.n_tok[i] < MAX_TOK; t = strtok(NULL, ",\n"))
                g_gold.tok[i][g_gold.n_tok[i]++] = atoi(t);
        } else if (line[0] == 'E') {
            for (char *t = strtok(line + 2, ",\n"); t && g_gold.n_embd[i] < MAX_EMBD; t = strtok(NULL, ",\n"))
                g_gold.emb[i][g_gold.n_embd[i]++] = strtof(t, NULL);
        }
    }
    fclose(f);
    return g_gold.n == g_n_texts;
}

static void check_file(const char *name, const char *path, nook_pooling pooling) {
    if (!read_golden(name)) return;
    nook_model *m = NULL;
    nook_error err;
    if (nook_model_load(path, NULL, &m, &err) != NOOK_OK) {
        CHECK_MSG(0, "load %s: %s", path, err.msg);
        return;
    }
    const int n_embd = nook_model_n_embd(m);
    /* tokens */
    for (int i = 0; i < g_n_texts; i++) {
        nook_token toks[MAX_TOK];
        size_t n = 0;
        CHECK_EQ_INT(nook_tokenize(m, g_texts[i], strlen(g_texts[i]), true, false, toks, MAX_TOK, &n, &err), NOOK_OK);
        CHECK_MSG((int)n == g_gold.n_tok[i] && !memcmp(toks, g_gold.tok[i], n * sizeof *toks), "%s: text %d tokens differ",
                  name, i);
    }
    /* raw embeddings, several texts per pass */
    nook_session_params sp = nook_session_default_params();
    sp.embeddings = true;
    sp.pooling = pooling;
    sp.n_seq_max = 3;
    sp.n_ctx = MAX_TOK;
    sp.n_threads = 2;
    nook_session *s = NULL;
    CHECK_EQ_INT(nook_session_new(m, &sp, &s, &err), NOOK_OK);
    static float raw[MAX_TEXTS * MAX_EMBD], unit[MAX_TEXTS * MAX_EMBD];
    const char *texts[MAX_TEXTS];
    for (int i = 0; i < g_n_texts; i++) texts[i] = g_texts[i];
    int n_tok = 0;
    CHECK_EQ_INT(nook_session_embed(s, texts, g_n_texts, true, false, raw, &n_tok, &err), NOOK_OK);
    CHECK_EQ_INT(nook_session_embed(s, texts, g_n_texts, false, false, unit, NULL, &err), NOOK_OK);
    int want_tok = 0;
    double worst = 1;
    for (int i = 0; i < g_n_texts; i++) {
        want_tok += g_gold.n_tok[i];
        CHECK_EQ_INT(g_gold.n_embd[i], n_embd);
        const float *a = raw + (size_t)i * n_embd, *b = g_gold.emb[i], *u = unit + (size_t)i * n_embd;
        double ab = 0, aa = 0, bb = 0, uu = 0, ua = 0;
        for (int d = 0; d < n_embd; d++) {
            ab += (double)a[d] * b[d], aa += (double)a[d] * a[d], bb += (double)b[d] * b[d];
            uu += (double)u[d] * u[d], ua += (double)u[d] * a[d];
        }
        const double cos = ab / sqrt(aa * bb);
        worst = fmin(worst, cos);
        CHECK_MSG(cos >= 0.9999, "%s: text %d cosine %.7f", name, i, cos);
        CHECK_NEAR(uu, 1.0, 1e-5);
        CHECK_NEAR(ua / sqrt(aa), 1.0, 1e-5);
    }
    CHECK_EQ_INT(n_tok, want_tok);
    printf("%-14s pooling %d: worst cosine vs llama.cpp %.8f\n", name, (int)nook_session_pooling(s), worst);
    nook_session_free(s);
    nook_model_free(m);
}

int main(void) {
    char stories[1024];
    nk_test_fixture(stories, sizeof stories, "stories260K.gguf");
    read_texts();
    const char *wdir = getenv("NOOK_EMBED_WRITE");
    char dir[512], tmp[640];
    if (wdir) snprintf(dir, sizeof dir, "%s", wdir);
    else snprintf(dir, sizeof dir, "/tmp/nook-embed-%d", (int)getpid());
    mkdir(dir, 0755);
    struct { const char *name; const arch_cfg *cfg; int pooling; bool add_eos; nook_pooling run; } files[] = {
        { "stories-last", NULL, -1, false, NOOK_POOLING_LAST },
        { "stories-mean", NULL, 1, false, NOOK_POOLING_UNSPECIFIED },
        { "qwen3-last", &CFG_QWEN3, 3, true, NOOK_POOLING_UNSPECIFIED },
        { "qwen3-mean", &CFG_QWEN3, 1, false, NOOK_POOLING_UNSPECIFIED },
        { "llama3-last", &CFG_LLAMA3, 3, false, NOOK_POOLING_UNSPECIFIED },
        { "llama3-mean", &CFG_LLAMA3, 1, false, NOOK_POOLING_UNSPECIFIED },
    };
    for (size_t i = 0; i < NK_ARRAY_LEN(files); i++) {
        char path[700];
        snprintf(path, sizeof path, "%s/%s.gguf", dir, files[i].name);
        const char *src = stories;
        if (files[i].cfg) {
            snprintf(tmp, sizeof tmp, "%s/base-%s.gguf", dir, files[i].cfg->name);
            CHECK_EQ_INT(arch_write(files[i].cfg, FT_F32, tmp), 0);
            src = tmp;
        }
        const char *arch = files[i].cfg ? files[i].cfg->arch : "llama";
        CHECK_EQ_INT(copy_with_keys(src, path, arch, files[i].pooling, files[i].add_eos), 0);
        if (files[i].cfg) remove(tmp);
        if (wdir) {
            printf("%s %s\n", files[i].name, path);
            continue;
        }
        check_file(files[i].name, path, files[i].run);
        remove(path);
    }
    if (!wdir) rmdir(dir);
    NK_TEST_DONE();
}
