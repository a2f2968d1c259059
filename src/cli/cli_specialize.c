/*
 * cli_specialize.c: `nook specialize NAME --data labelled.jsonl [--output FILE]
 * [--eval test.jsonl]`: train a specialist (src/specialist) and print what
 * cross-validation measured; `nook specialize NAME|FILE --eval test.jsonl` evaluates
 * an existing one. --json prints the report as one JSON object instead.
 */
#include "cli/cli.h"
#include "specialist/specialist.h"
#include "store/store.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char *o_data, *o_output, *o_eval, *o_from, *o_solver, *o_zero;
static int64_t o_seed;
static int o_min_df, o_folds, o_hash_bits, o_word_max, o_char_min, o_char_max;
static float o_c, o_threshold;
static bool o_no_cal, o_no_idf, o_json, o_no_text, o_no_balance;

static const cli_opt k_spec_opts[] = {
    { "data",        0, OPT_STR,   &o_data,      0, 0, "FILE", "labelled JSON lines {\"text\", \"label\"} to train on" },
    { "output",      'o', OPT_STR, &o_output,    0, 0, "FILE", "write the specialist to FILE instead of storing it as NAME" },
    { "eval",        0, OPT_STR,   &o_eval,      0, 0, "FILE", "labelled JSON lines to evaluate on (after training, or an existing specialist)" },
    { "seed",        0, OPT_I64,   &o_seed,      0, 9.0e18, "N", "seed of the cross-validation folds (default 1)" },
    { "folds",       0, OPT_INT,   &o_folds,     2, 20, "N", "cross-validation folds (default 5)" },
    { "c",           0, OPT_FLOAT, &o_c,         1e-6, 1e6, "X", "use this inverse regularisation C instead of choosing it by cross-validation" },
    { "threshold",   0, OPT_FLOAT, &o_threshold, 0, 1, "P", "abstain below this confidence (default 0.5)" },
    { "no-calibrate", 0, OPT_FLAG, &o_no_cal, 0, 0, NULL, "keep temperature 1 (no calibration)" },
    { "hash-bits",   0, OPT_INT,   &o_hash_bits, 8, 24, "N", "hashed feature space 2^N (default 20)" },
    { "word-ngrams", 0, OPT_INT,   &o_word_max,  0, 4, "N", "word n-grams 1..N (default 2; 0 = none)" },
    { "char-min",    0, OPT_INT,   &o_char_min,  1, 8, "N", "shortest character n-gram (default 2)" },
    { "char-max",    0, OPT_INT,   &o_char_max,  0, 8, "N", "longest character n-gram (default 5; 0 = none)" },
    { "min-df",      0, OPT_INT,   &o_min_df,    1, 1000000, "N", "keep features seen in at least N training texts (default 2)" },
    { "no-idf",      0, OPT_FLAG,  &o_no_idf,    0, 0, NULL, "log-counts without IDF weighting" },
    { "no-balance",  0, OPT_FLAG,  &o_no_balance, 0, 0, NULL, "every example counts once in the loss (default: each label's examples weighted n / (labels x its count))" },
    { "from",        0, OPT_STR,   &o_from,      0, 0, "MODEL", "also use MODEL's pooled embedding of each text as features (a GGUF path)" },
    { "no-text",     0, OPT_FLAG,  &o_no_text,   0, 0, NULL, "with --from: the embedding alone, no word/character features" },
    { "json",        0, OPT_FLAG,  &o_json,      0, 0, NULL, "print the report as one JSON object" },
    { "zero-shot",   0, OPT_STR,   &o_zero,      0, 0, "MODEL", "with --eval and no --data: evaluate MODEL prompted zero-shot with the labels (label-token log-probabilities) instead of a specialist" },
    { "solver",      0, OPT_STR,   &o_solver,    0, 0, "S", "auto (default: kernel when examples < columns), primal or kernel" },
};
static const cli_verb_info k_spec_info = {
    "specialize", "NAME --data labelled.jsonl [--output FILE] | NAME|FILE --eval test.jsonl",
    "Train a classifier (a specialist) from labelled examples, or evaluate one.",
    k_spec_opts, (int)NK_ARRAY_LEN(k_spec_opts),
};

static json_t *confusion_json(char **labels, int k, const size_t *conf) {
    json_t *o = json_object();
    for (int t = 0; t < k; t++) {
        json_t *row = json_object();
        for (int p = 0; p < k; p++) json_object_set_new(row, labels[p], json_integer((json_int_t)conf[(size_t)t * k + p]));
        json_object_set_new(o, labels[t], row);
    }
    return o;
}

static void print_confusion(char **labels, int k, const size_t *conf) {
    int w = 6;
    for (int c = 0; c < k; c++) w = NK_MAX(w, (int)NK_MIN(strlen(labels[c]), 24u) + 1);
    printf("  confusion (rows: true label, columns: predicted), macro-F1 per label:\n  %-*s", w, "");
    for (int c = 0; c < k; c++) printf(" %*.*s", w, w, labels[c]);
    printf(" %8s\n", "F1");
    for (int t = 0; t < k; t++) {
        printf("  %-*.*s", w, w, labels[t]);
        size_t tp = conf[(size_t)t * k + t], fp = 0, fn = 0;
        for (int p = 0; p < k; p++) {
            printf(" %*zu", w, conf[(size_t)t * k + p]);
            if (p != t) { fn += conf[(size_t)t * k + p]; fp += conf[(size_t)p * k + t]; }
        }
        double f1 = 2 * tp + fp + fn ? 2.0 * (double)tp / (double)(2 * tp + fp + fn) : 0;
        printf(" %8.3f\n", f1);
    }
}

static int evaluate(const nk_spec *s, nk_embedder *emb, json_t *rep) {
    nook_error err = { 0 };
    nk_dataset d;
    if (nk_dataset_read(o_eval, true, &d, &err)) return cli_fail(CLI_EFAIL, "%s", err.msg);
    size_t *conf = nk_calloc((size_t)s->k * s->k, sizeof *conf);
    nk_eval_report er;
    if (!conf) { nk_dataset_free(&d); return cli_fail(CLI_EFAIL, "out of memory"); }
    float *ev = NULL;
    double te = nk_time_ms();
    if (s->embed_dim && !emb) {
        nk_free(conf);
        nk_dataset_free(&d);
        return cli_fail(CLI_EFAIL, "%s needs the embeddings of %s", s->name, s->base_model);
    }
    if (s->embed_dim && nk_embed_dataset(emb, &d, &ev, &err)) {
        nk_free(conf);
        nk_dataset_free(&d);
        return cli_fail(CLI_EFAIL, "%s: %s", o_eval, err.msg);
    }
    te = nk_time_ms() - te;
    if (nk_spec_evaluate(s, &d, ev, conf, &er, &err)) {
        nk_free(ev);
        nk_free(conf);
        nk_dataset_free(&d);
        return cli_fail(CLI_EFAIL, "%s: %s", o_eval, err.msg);
    }
    if (rep) {
        json_t *e = json_object();
        json_object_set_new(e, "file", json_string(o_eval));
        json_object_set_new(e, "n", json_integer((json_int_t)d.n));
        json_object_set_new(e, "macro_f1", json_real(er.macro_f1));
        json_object_set_new(e, "accuracy", json_real(er.accuracy));
        json_object_set_new(e, "ece", json_real(er.ece));
        json_object_set_new(e, "coverage", json_real(er.coverage));
        json_object_set_new(e, "accuracy_kept", json_real(er.accuracy_kept));
        json_object_set_new(e, "texts_per_s", json_real(er.texts_per_s));
        json_object_set_new(e, "confusion", confusion_json(s->labels, s->k, conf));
        json_object_set_new(rep, "eval", e);
    } else {
        printf("evaluation on %s (%zu examples): macro-F1 %.4f, accuracy %.4f, ECE %.4f\n", o_eval, d.n,
               er.macro_f1, er.accuracy, er.ece);
        printf("  threshold %.2f: coverage %.3f, accuracy on the kept %.4f\n", s->threshold, er.coverage,
               er.accuracy_kept);
        print_confusion(s->labels, s->k, conf);
        printf("  classified %zu texts in %.3f s (%.0f texts/s, one thread)\n", d.n, er.ms / 1000, er.texts_per_s);
    }
    if (s->embed_dim) {   /* speed including the embeddings */
        double tps = (double)d.n / ((te + er.ms) / 1000.0);
        if (rep) json_object_set_new(json_object_get(rep, "eval"), "texts_per_s_with_embeddings", json_real(tps));
        else printf("  with the embeddings of %s: %.1f texts/s\n", s->base_model, tps);
    }
    nk_free(ev);
    nk_free(conf);
    nk_dataset_free(&d);
    return CLI_OK;
}

/* --zero-shot MODEL --eval FILE: the general model prompted with the eval file's labels. */
static int zero_shot(json_t *rep) {
    nook_error err = { 0 };
    nk_dataset d;
    if (nk_dataset_read(o_eval, true, &d, &err)) return cli_fail(CLI_EFAIL, "%s", err.msg);
    nk_zeroshot *z = NULL;
    const int k = d.n_labels;
    size_t *conf = nk_calloc((size_t)k * k, sizeof *conf);
    double *lp = nk_alloc_array((size_t)k, sizeof *lp);
    int rc = CLI_OK;
    if (!conf || !lp) { rc = cli_fail(CLI_EFAIL, "out of memory"); goto out; }
    if (nk_zeroshot_open(o_zero, d.label_names, k, &z, &err)) { rc = cli_fail(CLI_EFAIL, "%s", err.msg); goto out; }
    double t0 = nk_time_ms();
    size_t correct = 0;
    for (size_t i = 0; i < d.n; i++) {
        int best = 0;
        if (nk_zeroshot_classify(z, d.texts[i], strlen(d.texts[i]), lp, &best, &err)) {
            rc = cli_fail(CLI_EFAIL, "%s:%zu: %s", o_eval, d.lines[i], err.msg);
            goto out;
        }
        conf[(size_t)d.labels[i] * k + best]++;
        correct += best == d.labels[i];
    }
    double ms = nk_time_ms() - t0, f1 = nk_macro_f1(conf, k), acc = (double)correct / (double)d.n;
    double tps = ms > 0 ? (double)d.n / (ms / 1000) : 0;
    if (rep) {
        json_t *e = json_object();
        json_object_set_new(e, "model", json_string(o_zero));
        json_object_set_new(e, "file", json_string(o_eval));
        json_object_set_new(e, "n", json_integer((json_int_t)d.n));
        json_object_set_new(e, "macro_f1", json_real(f1));
        json_object_set_new(e, "accuracy", json_real(acc));
        json_object_set_new(e, "texts_per_s", json_real(tps));
        json_object_set_new(e, "confusion", confusion_json(d.label_names, k, conf));
        json_object_set_new(rep, "zero_shot", e);
    } else {
        printf("zero-shot %s on %s (%zu examples, %d labels): macro-F1 %.4f, accuracy %.4f\n", o_zero, o_eval, d.n, k,
               f1, acc);
        print_confusion(d.label_names, k, conf);
        printf("  %.1f texts/s\n", tps);
    }
out:
    nk_zeroshot_free(z);
    nk_free(conf);
    nk_free(lp);
    nk_dataset_free(&d);
    return rc;
}

int cli_specialize(int argc, char **argv) {
    int npos;
    o_data = o_output = o_eval = NULL;
    o_seed = 1;
    o_folds = 5;
    o_min_df = 2;
    o_c = 0;
    o_threshold = 0.5f;
    o_no_cal = o_no_idf = o_json = o_no_text = o_no_balance = false;
    o_from = o_solver = o_zero = NULL;
    nk_feat_cfg fd;
    nk_feat_cfg_default(&fd);
    o_hash_bits = (int)fd.hash_bits;
    o_word_max = (int)fd.word_max;
    o_char_min = (int)fd.char_min;
    o_char_max = (int)fd.char_max;
    int rc = cli_parse(&k_spec_info, argc, argv, &npos);
    if (rc) return rc;
    if (npos != 1)
        return cli_fail(CLI_EUSAGE, "specialize: expected one NAME (usage: nook specialize NAME --data labelled.jsonl)");
    const char *name = argv[0];
    if (!o_data && !o_eval)
        return cli_fail(CLI_EUSAGE, "specialize: give --data FILE to train, or --eval FILE to evaluate");
    nook_error err = { 0 };
    nk_spec *s = NULL;
    nk_embedder *emb = NULL;
    float *tv = NULL;
    if (o_no_text && !o_from) return cli_fail(CLI_EUSAGE, "specialize: --no-text needs --from MODEL");
    json_t *rep = o_json ? json_object() : NULL;
    if (o_zero) {
        if (o_data || !o_eval) { json_decref(rep); return cli_fail(CLI_EUSAGE, "specialize: --zero-shot MODEL needs --eval FILE and no --data"); }
        rc = zero_shot(rep);
        goto done;
    }
    if (!o_data) {   /* evaluate an existing specialist */
        if (nk_spec_open(name, &s, &err)) { json_decref(rep); return cli_fail(CLI_EFAIL, "%s", err.msg); }
        json_object_set_new(rep, "name", json_string(s->name));
        if (s->embed_dim && nk_embedder_open(s->base_model, 0, &emb, &err)) {
            rc = cli_fail(CLI_EFAIL, "%s", err.msg);
            goto done;
        }
        rc = evaluate(s, emb, rep);
        goto done;
    }
    if (!o_output) {   /* stored under NAME: check the name before spending time on training */
        nk_name nn;
        if (nk_name_parse(name, &nn, &err)) {
            json_decref(rep);
            return cli_fail(CLI_EUSAGE, "specialize: '%s' is not a valid model name (%s); give --output FILE to write a file", name, err.msg);
        }
    }
    nk_dataset d;
    if (nk_dataset_read(o_data, true, &d, &err)) { json_decref(rep); return cli_fail(CLI_EFAIL, "%s", err.msg); }
    nk_train_opts to;
    nk_train_opts_default(&to);
    to.seed = (uint64_t)o_seed;
    to.folds = o_folds;
    to.min_df = o_min_df;
    to.C = o_c;
    to.threshold = o_threshold;
    to.calibrate = !o_no_cal;
    to.feat.hash_bits = (uint32_t)o_hash_bits;
    to.feat.word_max = (uint32_t)o_word_max;
    to.feat.char_min = (uint32_t)o_char_min;
    to.feat.char_max = (uint32_t)o_char_max;
    to.feat.idf = !o_no_idf;
    if (o_no_balance) to.balance = false;
    if (o_solver) {
        if (strcmp(o_solver, "auto") == 0) to.solver = NK_SOLVER_AUTO;
        else if (strcmp(o_solver, "primal") == 0) to.solver = NK_SOLVER_PRIMAL;
        else if (strcmp(o_solver, "kernel") == 0) to.solver = NK_SOLVER_KERNEL;
        else { nk_dataset_free(&d); json_decref(rep); return cli_fail(CLI_EUSAGE, "specialize: --solver must be auto, primal or kernel"); }
    }
    if (nk_dataset_check_trainable(&d, o_data, &err)) {
        nk_dataset_free(&d);
        json_decref(rep);
        return cli_fail(CLI_EFAIL, "%s", err.msg);
    }
    nk_train_report R;
    double t0 = nk_time_ms();
    if (o_from) {
        if (nk_embedder_open(o_from, 0, &emb, &err) || nk_embed_dataset(emb, &d, &tv, &err)) {
            nk_dataset_free(&d);
            json_decref(rep);
            nk_embedder_free(emb);
            return cli_fail(CLI_EFAIL, "%s", err.msg);
        }
        to.base_model = o_from;
        to.emb = tv;
        to.embed_dim = nk_embedder_dim(emb);
        to.no_text_features = o_no_text;
    }
    if (nk_spec_train(&d, name, &to, &s, &R, &err)) {
        nk_free(tv);
        nk_embedder_free(emb);
        nk_dataset_free(&d);
        json_decref(rep);
        return cli_fail(CLI_EFAIL, "%s", err.msg);
    }
    double ms = nk_time_ms() - t0;
    if (rep) {
        json_object_set_new(rep, "name", json_string(name));
        json_object_set_new(rep, "examples", json_integer((json_int_t)d.n));
        json_t *labels = json_array();
        for (int c = 0; c < s->k; c++) json_array_append_new(labels, json_string(s->labels[c]));
        json_object_set_new(rep, "labels", labels);
        json_object_set_new(rep, "columns", json_integer((json_int_t)R.d));
        json_object_set_new(rep, "embed_dim", json_integer((json_int_t)s->embed_dim));
        json_object_set_new(rep, "folds", json_integer(R.folds));
        json_object_set_new(rep, "solver", json_string(R.kernel ? "kernel" : "primal"));
        json_object_set_new(rep, "balanced", json_boolean(to.balance));
        json_object_set_new(rep, "C", json_real(R.C));
        json_t *grid = json_array();
        for (int c = 0; c < R.n_C; c++) {
            json_t *g = json_object();
            json_object_set_new(g, "C", json_real(R.C_grid[c]));
            json_object_set_new(g, "macro_f1", json_real(R.cv_f1[c]));
            json_object_set_new(g, "log_loss", json_real(R.cv_logloss[c]));
            json_array_append_new(grid, g);
        }
        json_object_set_new(rep, "cv_grid", grid);
        json_object_set_new(rep, "cv_macro_f1", json_real(R.cv_macro_f1));
        json_object_set_new(rep, "cv_accuracy", json_real(R.cv_accuracy));
        json_object_set_new(rep, "cv_confusion", confusion_json(s->labels, s->k, R.confusion));
        json_object_set_new(rep, "temperature", json_real(R.temperature));
        json_object_set_new(rep, "ece_raw", json_real(R.ece_raw));
        json_object_set_new(rep, "ece_calibrated", json_real(R.ece_cal));
        json_object_set_new(rep, "threshold", json_real(s->threshold));
        json_object_set_new(rep, "coverage", json_real(R.coverage));
        json_object_set_new(rep, "accuracy_kept", json_real(R.accuracy_kept));
        json_object_set_new(rep, "train_ms", json_real(ms));
        json_object_set_new(rep, "texts_per_s", json_real((double)d.n / (ms / 1000.0)));
    } else {
        printf("specialist %s: %zu examples, %d labels, %zu feature columns", name, d.n, s->k, R.d);
        if (s->embed_dim) printf(" (%u of them the embedding of %s)", s->embed_dim, s->base_model);
        putchar('\n');
        printf("cross-validation (%d folds, stratified, seed %lld, %s solver, %s):\n  %10s %9s %9s\n", R.folds,
               (long long)o_seed, R.kernel ? "kernel" : "primal", to.balance ? "labels balanced" : "unweighted",
               "C", "macro-F1", "log-loss");
        for (int c = 0; c < R.n_C; c++)
            printf("  %10.4g %9.4f %9.4f%s\n", R.C_grid[c], R.cv_f1[c], R.cv_logloss[c],
                   R.C_grid[c] == R.C ? "  <- chosen" : "");
        printf("  out-of-fold macro-F1 %.4f, accuracy %.4f at C=%g\n", R.cv_macro_f1, R.cv_accuracy, R.C);
        print_confusion(s->labels, s->k, R.confusion);
        printf("calibration: temperature %.4f; expected calibration error (10 bins, out-of-fold) %.4f -> %.4f\n",
               R.temperature, R.ece_raw, R.ece_cal);
        printf("threshold %.2f: out-of-fold coverage %.3f, accuracy on the kept %.4f\n", s->threshold, R.coverage,
               R.accuracy_kept);
        printf("trained in %.2f s (features %.2f s, cross-validation %.2f s, final fit %.2f s): %.0f texts/s\n",
               ms / 1000, R.ms_features / 1000, R.ms_cv / 1000, R.ms_final / 1000, (double)d.n / (ms / 1000.0));
    }
    nk_train_report_free(&R);
    nk_dataset_free(&d);
    if (o_output) {
        if (nk_spec_save(s, o_output, &err)) {
            rc = cli_fail(CLI_EFAIL, "%s", err.msg);
            goto done;
        }
        if (rep) json_object_set_new(rep, "output", json_string(o_output));
        else printf("wrote %s\n", o_output);
    } else {
        nk_store *st = NULL;
        if (nk_store_open(NULL, &st, &err) || nk_spec_store_put(st, name, s, &err)) {
            nk_store_free(st);
            rc = cli_fail(CLI_EFAIL, "specialize: storing '%s': %s", name, err.msg);
            goto done;
        }
        if (rep) json_object_set_new(rep, "stored", json_string(name));
        else printf("stored as '%s' in %s (nook classify %s TEXT)\n", name, nk_store_root(st), name);
        nk_store_free(st);
    }
    rc = o_eval ? evaluate(s, emb, rep) : CLI_OK;
done:
    if (rep && rc == CLI_OK) {
        char *js = json_dumps(rep, JSON_COMPACT);
        if (js) { puts(js); free(js); }
    }
    json_decref(rep);
    nk_free(tv);
    nk_embedder_free(emb);
    nk_spec_free(s);
    return rc;
}
