/*
 * test_spec.c: features (case folding, NFKC, order, invalid UTF-8), training a
 * specialist end to end on generated texts, determinism for a seed, the GGUF file
 * round trip (same probabilities), the abstain path, evaluation, and hostile files.
 */
#include "nk_test.h"
#include "specialist/specialist.h"

static const char *k_weather[] = { "rain", "cloudy", "sunny", "storm", "wind", "forecast", "snow", "humid", "thunder", "fog" };
static const char *k_cooking[] = { "simmer", "garlic", "oven", "recipe", "butter", "whisk", "onion", "bake", "salt", "pasta" };
static const char *k_filler[] = { "the", "today", "really", "we", "is", "quite", "again", "and", "a", "very" };

static uint64_t st_rng = 3;
static unsigned rnd(unsigned n) {
    uint64_t z = (st_rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (unsigned)((z ^ (z >> 31)) % n);
}

/* n texts, alternating labels: three topic words and four fillers, shuffled in */
static char *make_jsonl(int n) {
    size_t cap = (size_t)n * 256, len = 0;
    char *s = malloc(cap);
    for (int i = 0; i < n; i++) {
        const char **topic = i % 2 ? k_cooking : k_weather;
        char text[200] = "";
        for (int w = 0; w < 7; w++) {
            const char *word = (w % 2 == 0 && w < 6) ? topic[rnd(10)] : k_filler[rnd(10)];
            strcat(text, w ? " " : "");
            strcat(text, word);
        }
        len += (size_t)snprintf(s + len, cap - len, "{\"text\": \"%s\", \"label\": \"%s\"}\n", text,
                                i % 2 ? "cooking" : "weather");
    }
    return s;
}

static void test_features(void) {
    nk_feat_cfg c;
    nk_feat_cfg_default(&c);
    CHECK(nk_feat_cfg_check(&c, NULL) == NOOK_OK);
    nk_sparse a[2] = { { 0 } }, b[2] = { { 0 } };
    nook_error err = { 0 };
    CHECK(nk_feat_counts(&c, "Hello WORLD, ﬁne!", strlen("Hello WORLD, ﬁne!"), a, &err) == NOOK_OK);
    CHECK(nk_feat_counts(&c, "hello world , fine !", strlen("hello world , fine !"), b, &err) == NOOK_OK);
    /* case folding and NFKC (the ligature) give the same features; punctuation is a token either way */
    for (int bl = 0; bl < 2; bl++) {
        CHECK_EQ_INT(a[bl].n, b[bl].n);
        CHECK(a[bl].n && memcmp(a[bl].id, b[bl].id, a[bl].n * sizeof *a[bl].id) == 0);
        for (size_t i = 1; i < a[bl].n; i++) CHECK(a[bl].id[i - 1] < a[bl].id[i]);
        for (size_t i = 0; i < a[bl].n; i++) CHECK(((a[bl].id[i] >> 31) & 1u) == (unsigned)bl);
    }
    /* 5 tokens: 5 unigrams + 4 bigrams */
    CHECK_EQ_INT(a[0].n, 9);
    /* repeated words: log-counts */
    CHECK(nk_feat_counts(&c, "go go go", 8, a, &err) == NOOK_OK);
    CHECK_EQ_INT(a[0].n, 2);
    double v0 = a[0].val[0], v1 = a[0].val[1];
    CHECK((fabs(v0 - (1 + log(3))) < 1e-12 && fabs(v1 - (1 + log(2))) < 1e-12) ||
          (fabs(v1 - (1 + log(3))) < 1e-12 && fabs(v0 - (1 + log(2))) < 1e-12));
    CHECK(nk_feat_counts(&c, "bad \xc3\x28 byte", 10, a, &err) == NOOK_EFORMAT);
    CHECK(strstr(err.msg, "UTF-8") != NULL);
    nk_feat_cfg bad = c;
    bad.hash_bits = 30;
    CHECK(nk_feat_cfg_check(&bad, &err) == NOOK_EINVAL);
    for (int bl = 0; bl < 2; bl++) { nk_sparse_free(&a[bl]); nk_sparse_free(&b[bl]); }
}

int main(void) {
    test_features();
    nook_error err = { 0 };
    char *src = make_jsonl(60);
    nk_dataset d;
    CHECK(nk_dataset_parse(src, strlen(src), "gen.jsonl", true, &d, &err) == NOOK_OK);
    nk_train_opts o;
    nk_train_opts_default(&o);
    nk_spec *s = NULL, *s2 = NULL;
    nk_train_report R;
    CHECK(nk_spec_train(&d, "topics", &o, &s, &R, &err) == NOOK_OK);
    if (!s) { fprintf(stderr, "%s\n", err.msg); NK_TEST_DONE(); }
    CHECK_EQ_INT(s->k, 2);
    CHECK_MSG(R.cv_macro_f1 > 0.9, "cv macro-F1 %g", R.cv_macro_f1);
    CHECK(R.temperature > 0 && R.ece_cal <= 1);
    size_t tot = 0;
    for (int i = 0; i < 4; i++) tot += R.confusion[i];
    CHECK_EQ_INT(tot, 60);
    nk_train_report_free(&R);

    /* deterministic: the same seed gives the same bytes */
    uint8_t *f1 = NULL, *f2 = NULL;
    uint64_t l1 = 0, l2 = 0;
    CHECK(nk_spec_train(&d, "topics", &o, &s2, NULL, &err) == NOOK_OK);
    CHECK(nk_spec_save_mem(s, &f1, &l1, &err) == NOOK_OK);
    CHECK(nk_spec_save_mem(s2, &f2, &l2, &err) == NOOK_OK);
    CHECK(l1 == l2 && memcmp(f1, f2, (size_t)l1) == 0);
    nk_spec_free(s2);
    nk_free(f2);
    CHECK(nk_spec_is_specialist_mem(f1, (size_t)l1));

    /* round trip: the loaded specialist gives the same probabilities */
    nk_spec *ld = NULL;
    CHECK(nk_spec_load_mem(f1, (size_t)l1, &ld, &err) == NOOK_OK);
    const char *probe[] = { "heavy rain and thunder tonight", "whisk the butter with garlic", "nothing at all" };
    for (int i = 0; i < 3; i++) {
        double p1[2], p2[2];
        nk_class_result r1, r2;
        CHECK(nk_spec_classify(s, probe[i], strlen(probe[i]), NULL, p1, &r1, &err) == NOOK_OK);
        CHECK(nk_spec_classify(ld, probe[i], strlen(probe[i]), NULL, p2, &r2, &err) == NOOK_OK);
        CHECK_NEAR(p1[0], p2[0], 1e-12);
        CHECK_EQ_INT(r1.label, r2.label);
        CHECK_NEAR(p1[0] + p1[1], 1.0, 1e-12);
        if (i == 0) CHECK_STR(ld->labels[r2.label], "weather");
        if (i == 1) CHECK_STR(ld->labels[r2.label], "cooking");
        /* abstain: a threshold above the confidence abstains and keeps the label */
        ld->threshold = r2.confidence + 1e-9;
        nk_class_result r3;
        CHECK(nk_spec_classify(ld, probe[i], strlen(probe[i]), NULL, p2, &r3, &err) == NOOK_OK);
        CHECK(r3.abstain && r3.label == r2.label);
        ld->threshold = r2.confidence;
        CHECK(nk_spec_classify(ld, probe[i], strlen(probe[i]), NULL, p2, &r3, &err) == NOOK_OK);
        CHECK(!r3.abstain);
    }
    /* evaluation on fresh generated data */
    char *src2 = make_jsonl(40);
    nk_dataset d2;
    CHECK(nk_dataset_parse(src2, strlen(src2), "test.jsonl", true, &d2, &err) == NOOK_OK);
    size_t conf[4];
    nk_eval_report er;
    ld->threshold = 0.5;
    CHECK(nk_spec_evaluate(ld, &d2, NULL, conf, &er, &err) == NOOK_OK);
    CHECK_MSG(er.macro_f1 > 0.9, "eval macro-F1 %g", er.macro_f1);
    CHECK_EQ_INT(conf[0] + conf[1] + conf[2] + conf[3], 40);
    nk_dataset_free(&d2);
    const char *unk = "{\"text\":\"a\",\"label\":\"sports\"}\n";
    CHECK(nk_dataset_parse(unk, strlen(unk), "u.jsonl", true, &d2, &err) == NOOK_OK);
    CHECK(nk_spec_evaluate(ld, &d2, NULL, conf, &er, &err) == NOOK_EINVAL);
    CHECK(strstr(err.msg, "line 1") && strstr(err.msg, "sports"));
    nk_dataset_free(&d2);
    free(src2);

    /* hostile files: truncations and flipped bytes are errors, never crashes */
    int rejected = 0;
    for (uint64_t cut = 0; cut < l1; cut += l1 / 97 + 1) {
        nk_spec *h = NULL;
        if (nk_spec_load_mem(f1, (size_t)cut, &h, &err) != NOOK_OK) rejected++;
        nk_spec_free(h);
    }
    CHECK(rejected > 90);
    uint8_t *cp = malloc((size_t)l1);
    for (int t = 0; t < 300; t++) {
        memcpy(cp, f1, (size_t)l1);
        size_t at = (size_t)rnd((unsigned)NK_MIN(l1, 4096u));
        cp[at] ^= (uint8_t)(1u << rnd(8));
        nk_spec *h = NULL;
        if (nk_spec_load_mem(cp, (size_t)l1, &h, &err) == NOOK_OK) {
            double p[NK_SPEC_MAX_LABELS];
            nk_class_result r;
            (void)nk_spec_classify(h, "rain", 4, NULL, p, &r, &err);
        }
        nk_spec_free(h);
    }
    /* a GGUF that is not a specialist */
    CHECK(nk_spec_load_mem("GGUF", 4, &s2, &err) != NOOK_OK);
    free(cp);
    nk_free(f1);
    nk_spec_free(ld);
    nk_spec_free(s);
    nk_dataset_free(&d);
    free(src);
    NK_TEST_DONE();
}
