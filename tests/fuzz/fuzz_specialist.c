/*
 * fuzz_specialist.c: libFuzzer target for the specialist's readers of untrusted bytes:
 * training files (JSON lines) and specialist files (GGUF).
 *
 * The first byte picks the reader: even, the bytes after it are a training file, parsed
 * (labels required when the byte's bit 1 is clear) and each text featurized; odd, they
 * are a specialist file, loaded and, when it loads, used to classify a fixed text and
 * printed as the JSON result. Any outcome is fine except a crash, a sanitizer report, a
 * hang, or an error without a message. A first byte with bit 7 set and bit 0 clear
 * instead treats the rest as a remote model's answer to an escalation, mapped to a
 * label (nk_spec_match_label: the answer comes from off the machine).
 * Seeds: tests/fuzz/corpus/specialist/.
 */
#include "specialist/specialist.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const uint8_t mode = data[0];
    data++;
    size--;
    nook_error err = { 0 };
    if ((mode & 0x81) == 0x80) {
        char *answer = malloc(size + 1);
        if (!answer) return 0;
        memcpy(answer, data, size);
        answer[size] = 0;
        char *labels[] = { (char *)"one", (char *)"two", (char *)"Two things", (char *)"\xc3\xa9t\xc3\xa9" };
        nk_spec sp = { .k = 4, .labels = labels };
        int l = nk_spec_match_label(&sp, answer);
        if (l < -1 || l >= sp.k) abort();
        free(answer);
        return 0;
    }
    if (!(mode & 1)) {
        nk_dataset d;
        nook_status st = nk_dataset_parse((const char *)data, size, "fuzz.jsonl", !(mode & 2), &d, &err);
        if (st) {
            if (!err.msg[0]) abort();
            return 0;
        }
        nk_feat_cfg c;
        nk_feat_cfg_default(&c);
        nk_sparse cnt[2] = { { 0 }, { 0 } };
        for (size_t i = 0; i < d.n; i++)
            if (nk_feat_counts(&c, d.texts[i], strlen(d.texts[i]), cnt, &err) != NOOK_OK && !err.msg[0]) abort();
        nk_sparse_free(&cnt[0]);
        nk_sparse_free(&cnt[1]);
        (void)nk_dataset_check_trainable(&d, "fuzz.jsonl", &err);
        nk_dataset_free(&d);
        return 0;
    }
    nk_spec *s = NULL;
    if (nk_spec_load_mem(data, size, &s, &err) != NOOK_OK) {
        if (!err.msg[0]) abort();
        return 0;
    }
    double *p = malloc((size_t)s->k * sizeof *p);
    nk_class_result r;
    if (p && !s->embed_dim && nk_spec_classify(s, "Is this sentence doing two things at once?", 42, NULL, p, &r, &err) == NOOK_OK) {
        json_t *o = nk_spec_result_json(s, p, &r);
        char *js = o ? json_dumps(o, JSON_COMPACT) : NULL;
        free(js);
        json_decref(o);
    }
    free(p);
    nk_spec_free(s);
    return 0;
}
