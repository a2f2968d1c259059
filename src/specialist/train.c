/*
 * train.c: from labelled texts to a specialist: features and vocabulary, the
 * regularisation chosen by stratified k-fold cross-validation, calibration on the
 * out-of-fold predictions, the final fit on everything.
 *
 * Choices (docs/specialist.md says why): the vocabulary and IDF come from all
 * training texts (no labels are involved, as in scikit-learn's TfidfVectorizer fitted
 * on the corpus); C runs over half-decades 1..10^4 (rows have unit norm, so
 * smaller C only ever predicts the majority label), each fold walking the path from
 * small to large C with warm starts; the C with the best pooled out-of-fold macro-F1
 * wins (ties: the lower log-loss, then the smaller C); the temperature minimises the
 * out-of-fold negative log-likelihood at that C.
 */
#include "specialist/specialist.h"
#include "specialist/spec_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VOCAB (1u << 18)   /* columns kept: the most frequent (by document frequency) */
#define NK_KERNEL_MAX_N 4096u  /* the kernel solver's Gram matrix: at most 128 MiB        */

void nk_train_opts_default(nk_train_opts *o) {
    memset(o, 0, sizeof *o);
    nk_feat_cfg_default(&o->feat);
    o->seed = 1;
    o->folds = 5;
    o->threshold = 0.5;
    o->calibrate = true;
    o->min_df = 2;
    o->balance = true;
}

void nk_train_report_free(nk_train_report *r) {
    if (!r) return;
    nk_free(r->confusion);
    r->confusion = NULL;
}

void nk_spec_free(nk_spec *s) {
    if (!s) return;
    nk_free(s->name);
    if (s->labels)
        for (int i = 0; i < s->k; i++) nk_free(s->labels[i]);
    nk_free(s->labels);
    nk_free(s->ids);
    nk_free(s->idf);
    nk_free(s->W);
    nk_free(s->b);
    nk_free(s->base_model);
    nk_free(s);
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct idcount { uint32_t id, df; } idcount;
static int cmp_df_desc(const void *a, const void *b) {
    const idcount *x = a, *y = b;
    if (x->df != y->df) return x->df > y->df ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Everything the training run allocates, freed in one place. */
typedef struct work {
    nk_sparse (*cnt)[2];
    uint32_t *all;
    idcount *ic;
    uint32_t *ids;
    float *idf;
    nk_csr X;
    int *fold;
    double *oof;      /* [n_C][n][k] logits */
    double *W, *b, *p;
    size_t *rows;
    double *G, *Kr, *A;   /* kernel solver: Gram matrix, a fold's part of it, coefficients */
    int *yr;
} work;

static void work_free(work *w, size_t n) {
    if (w->cnt)
        for (size_t i = 0; i < n; i++) { nk_sparse_free(&w->cnt[i][0]); nk_sparse_free(&w->cnt[i][1]); }
    nk_free(w->cnt);
    nk_free(w->all);
    nk_free(w->ic);
    nk_free(w->ids);
    nk_free(w->idf);
    nk_free(w->X.row);
    nk_free(w->X.col);
    nk_free(w->X.val);
    nk_free(w->fold);
    nk_free(w->oof);
    nk_free(w->W);
    nk_free(w->b);
    nk_free(w->p);
    nk_free(w->rows);
    nk_free(w->G);
    nk_free(w->Kr);
    nk_free(w->A);
    nk_free(w->yr);
}

/* Stratified folds: each label's examples shuffled (seeded) and dealt round-robin,
 * continuing the deal across labels so the folds differ in size by at most one. */
static void make_folds(const nk_dataset *d, int F, uint64_t seed, int *fold, size_t *tmp) {
    uint64_t s = seed;
    size_t dealt = 0;
    for (int c = 0; c < d->n_labels; c++) {
        size_t m = 0;
        for (size_t i = 0; i < d->n; i++) if (d->labels[i] == c) tmp[m++] = i;
        for (size_t i = m; i > 1; i--) {
            size_t j = (size_t)(splitmix(&s) % i);
            size_t t = tmp[i - 1]; tmp[i - 1] = tmp[j]; tmp[j] = t;
        }
        for (size_t i = 0; i < m; i++) fold[tmp[i]] = (int)(dealt++ % (size_t)F);
    }
}

nook_status nk_spec_train(const nk_dataset *d, const char *name, const nk_train_opts *o,
                          nk_spec **out, nk_train_report *rep, nook_error *err) {
    *out = NULL;
    nook_status st = nk_dataset_check_trainable(d, name ? name : "training data", err);
    if (st) return st;
    const bool text = !o->no_text_features;
    if (text && (st = nk_feat_cfg_check(&o->feat, err))) return st;
    if (!text && !o->embed_dim) return nk_fail(err, NOOK_EINVAL, "no features: text features off and no embeddings");
    if (o->embed_dim && !o->emb) return nk_fail(err, NOOK_EINVAL, "embed_dim set but no embeddings given");
    if (!(o->threshold >= 0 && o->threshold <= 1)) return nk_fail(err, NOOK_EINVAL, "threshold outside [0, 1]");
    const size_t n = d->n;
    const int k = d->n_labels;
    work w = { 0 };
    nk_train_report R = { 0 };
    nk_spec *s = NULL;
    double t0 = nk_time_ms();

    /* ---- features and vocabulary ---- */
    size_t d_text = 0, total = 0;
    if (text) {
        w.cnt = nk_calloc(n, sizeof *w.cnt);
        if (!w.cnt) goto oom;
        for (size_t i = 0; i < n; i++) {
            if ((st = nk_feat_counts(&o->feat, d->texts[i], strlen(d->texts[i]), w.cnt[i], err))) {
                nk_prefix(err, "%s:%zu: ", name ? name : "training data", d->lines[i]);
                goto fail;
            }
            total += w.cnt[i][0].n + w.cnt[i][1].n;
        }
        w.all = nk_alloc_array(total ? total : 1, sizeof *w.all);
        if (!w.all) goto oom;
        size_t a = 0;
        for (size_t i = 0; i < n; i++)
            for (int bl = 0; bl < 2; bl++) {
                memcpy(w.all + a, w.cnt[i][bl].id, w.cnt[i][bl].n * sizeof *w.all);
                a += w.cnt[i][bl].n;
            }
        /* each id appears at most once per text, so a run of equal ids is its df */
        qsort(w.all, total, sizeof *w.all, cmp_u32);
        size_t nu = 0;
        for (size_t i = 0; i < total;) {
            size_t j = i;
            while (j < total && w.all[j] == w.all[i]) j++;
            nu++;
            i = j;
        }
        w.ic = nk_alloc_array(nu ? nu : 1, sizeof *w.ic);
        if (!w.ic) goto oom;
        nu = 0;
        for (size_t i = 0; i < total;) {
            size_t j = i;
            while (j < total && w.all[j] == w.all[i]) j++;
            w.ic[nu++] = (idcount){ w.all[i], (uint32_t)(j - i) };
            i = j;
        }
        /* columns seen in fewer than min_df texts are dropped (they fit single
         * examples, and cost memory and time in every iteration) */
        size_t keep = 0;
        for (size_t j = 0; j < nu; j++)
            if (w.ic[j].df >= (uint32_t)NK_MAX(o->min_df, 1)) w.ic[keep++] = w.ic[j];
        if (keep == 0) keep = nu;   /* nothing is shared: keep everything rather than nothing */
        nu = keep;
        if (nu > MAX_VOCAB) qsort(w.ic, nu, sizeof *w.ic, cmp_df_desc);
        d_text = NK_MIN(nu, (size_t)MAX_VOCAB);
        w.ids = nk_alloc_array(d_text ? d_text : 1, sizeof *w.ids);
        w.idf = nk_alloc_array(d_text ? d_text : 1, sizeof *w.idf);
        if (!w.ids || !w.idf) goto oom;
        for (size_t j = 0; j < d_text; j++) w.ids[j] = w.ic[j].id;
        qsort(w.ids, d_text, sizeof *w.ids, cmp_u32);
        for (size_t j = 0; j < nu; j++) {
            long c = d_text == nu ? (long)j : nk_feat_find_id(w.ids, d_text, w.ic[j].id);
            if (c >= 0)
                w.idf[c] = o->feat.idf ? (float)(log((1.0 + (double)n) / (1.0 + w.ic[j].df)) + 1.0) : 1.0f;
        }
    }
    const size_t D = d_text + o->embed_dim;
    if (D == 0) {
        st = nk_fail(err, NOOK_EINVAL, "%s: the texts have no features", name ? name : "training data");
        goto fail;
    }
    const double scale = 1.0 / sqrt((double)nk_feat_blocks(&o->feat, o->embed_dim, text));
    w.X.n = n;
    w.X.d = D;
    w.X.row = nk_alloc_array(n + 1, sizeof *w.X.row);
    size_t nnz_max = total + (size_t)o->embed_dim * n;
    w.X.col = nk_alloc_array(nnz_max ? nnz_max : 1, sizeof *w.X.col);
    w.X.val = nk_alloc_array(nnz_max ? nnz_max : 1, sizeof *w.X.val);
    if (!w.X.row || !w.X.col || !w.X.val) goto oom;
    size_t nnz = 0;
    for (size_t i = 0; i < n; i++) {
        w.X.row[i] = nnz;
        if (text) nnz += nk_feat_row(w.ids, w.idf, d_text, w.cnt[i], scale, w.X.col + nnz, w.X.val + nnz);
        if (o->embed_dim)
            nnz += nk_feat_embed_row(o->emb + i * o->embed_dim, o->embed_dim, d_text, scale, w.X.col + nnz,
                                     w.X.val + nnz);
    }
    w.X.row[n] = nnz;
    R.d = D;
    double t1 = nk_time_ms();
    R.ms_features = t1 - t0;

    /* ---- cross-validation over C ---- */
    int F = o->folds > 0 ? o->folds : 5;
    if ((size_t)F > n) F = (int)n;
    if (F < 2) F = 2;
    R.folds = F;
    if (o->C > 0) {
        R.n_C = 1;
        R.C_grid[0] = o->C;
    } else {
        R.n_C = 9;
        for (int c = 0; c < R.n_C; c++) R.C_grid[c] = pow(10.0, 0.5 * c);   /* 1 .. 10^4 */
    }
    w.fold = nk_alloc_array(n, sizeof *w.fold);
    w.rows = nk_alloc_array(n, sizeof *w.rows);
    w.oof = nk_alloc_array((size_t)R.n_C * n * (size_t)k, sizeof *w.oof);
    w.W = nk_alloc_array(D * (size_t)k, sizeof *w.W);
    w.b = nk_alloc_array((size_t)k, sizeof *w.b);
    w.p = nk_alloc_array(n * (size_t)k, sizeof *w.p);
    R.confusion = nk_calloc((size_t)k * k, sizeof *R.confusion);
    if (!w.fold || !w.rows || !w.oof || !w.W || !w.b || !w.p || !R.confusion) goto oom;
    make_folds(d, F, o->seed, w.fold, w.rows);
    nk_lr_opts lo = { .tol = 1e-4, .max_iter = 300 };
    double cw[NK_SPEC_MAX_LABELS];
    if (o->balance) {   /* n / (k * n_c): every label weighs the same in the loss */
        for (int c = 0; c < k; c++) cw[c] = 0;
        for (size_t i = 0; i < n; i++) cw[d->labels[i]] += 1;
        for (int c = 0; c < k; c++) cw[c] = (double)n / ((double)k * cw[c]);
        lo.class_w = cw;
    }
    /* Fewer examples than columns: solve in the span of the rows (logreg_kernel.c), the
     * same iterates at a cost that grows with the examples, not the columns. */
    const bool kernel = o->solver == NK_SOLVER_KERNEL ||
                        (o->solver == NK_SOLVER_AUTO && n < D && n <= NK_KERNEL_MAX_N);
    R.kernel = kernel;
    if (kernel) {
        if ((st = nk_csr_gram(&w.X, &w.G, err))) goto fail;
        w.Kr = nk_alloc_array(n * n + 1, sizeof *w.Kr);
        w.yr = nk_alloc_array(n + 1, sizeof *w.yr);
        w.A = nk_alloc_array(n * (size_t)k + 1, sizeof *w.A);
        if (!w.Kr || !w.yr || !w.A) goto oom;
    }
    for (int f = 0; f < F; f++) {
        size_t nr = 0;
        for (size_t i = 0; i < n; i++) if (w.fold[i] != f) w.rows[nr++] = i;
        memset(w.W, 0, D * (size_t)k * sizeof *w.W);
        memset(w.b, 0, (size_t)k * sizeof *w.b);
        if (kernel) {
            for (size_t r = 0; r < nr; r++) {
                w.yr[r] = d->labels[w.rows[r]];
                for (size_t q = 0; q < nr; q++) w.Kr[r * nr + q] = w.G[w.rows[r] * n + w.rows[q]];
            }
            memset(w.A, 0, nr * (size_t)k * sizeof *w.A);
        }
        for (int c = 0; c < R.n_C; c++) {
            lo.C = R.C_grid[c];
            if (kernel) {
                if ((st = nk_lr_fit_kernel(w.Kr, w.yr, nr, k, &lo, w.A, w.b, NULL, err))) goto fail;
                for (size_t i = 0; i < n; i++) {
                    if (w.fold[i] != f) continue;
                    double *z = w.oof + ((size_t)c * n + i) * (size_t)k;
                    for (int q = 0; q < k; q++) z[q] = w.b[q];
                    for (size_t r = 0; r < nr; r++) {
                        const double g = w.G[i * n + w.rows[r]];
                        for (int q = 0; q < k; q++) z[q] += g * w.A[r * (size_t)k + (size_t)q];
                    }
                }
                continue;
            }
            if ((st = nk_lr_fit(&w.X, d->labels, k, w.rows, nr, &lo, w.W, w.b, NULL, err))) goto fail;
            for (size_t i = 0; i < n; i++)
                if (w.fold[i] == f)
                    nk_lr_logits(&w.X, i, k, w.W, w.b, w.oof + ((size_t)c * n + i) * (size_t)k);
        }
    }
    int best = 0;
    for (int c = 0; c < R.n_C; c++) {
        memset(R.confusion, 0, (size_t)k * k * sizeof *R.confusion);
        double ll = 0;
        for (size_t i = 0; i < n; i++) {
            double *z = w.p + i * (size_t)k;
            memcpy(z, w.oof + ((size_t)c * n + i) * (size_t)k, (size_t)k * sizeof *z);
            nk_lr_softmax(z, k, 1.0);
            int am = 0;
            for (int q = 1; q < k; q++) if (z[q] > z[am]) am = q;
            R.confusion[(size_t)d->labels[i] * k + am]++;
            ll -= log(NK_MAX(z[d->labels[i]], 1e-300));
        }
        R.cv_f1[c] = nk_macro_f1(R.confusion, k);
        R.cv_logloss[c] = ll / (double)n;
        if (R.cv_f1[c] > R.cv_f1[best] + 1e-12 ||
            (fabs(R.cv_f1[c] - R.cv_f1[best]) <= 1e-12 && R.cv_logloss[c] < R.cv_logloss[best]))
            best = c;
    }
    R.C = R.C_grid[best];
    R.cv_macro_f1 = R.cv_f1[best];
    const double *zb = w.oof + (size_t)best * n * (size_t)k;
    R.temperature = o->calibrate ? nk_fit_temperature(zb, d->labels, n, k) : 1.0;
    memset(R.confusion, 0, (size_t)k * k * sizeof *R.confusion);
    for (int pass = 0; pass < 2; pass++) {   /* raw, then calibrated */
        for (size_t i = 0; i < n; i++) {
            double *z = w.p + i * (size_t)k;
            memcpy(z, zb + i * (size_t)k, (size_t)k * sizeof *z);
            nk_lr_softmax(z, k, pass ? R.temperature : 1.0);
        }
        double e = nk_ece(w.p, d->labels, n, k, 10);
        if (pass) R.ece_cal = e; else R.ece_raw = e;
    }
    size_t correct = 0, kept = 0, kept_ok = 0;
    for (size_t i = 0; i < n; i++) {
        const double *z = w.p + i * (size_t)k;
        int am = 0;
        for (int q = 1; q < k; q++) if (z[q] > z[am]) am = q;
        R.confusion[(size_t)d->labels[i] * k + am]++;
        correct += am == d->labels[i];
        if (z[am] >= o->threshold) { kept++; kept_ok += am == d->labels[i]; }
    }
    R.cv_accuracy = (double)correct / (double)n;
    R.coverage = (double)kept / (double)n;
    R.accuracy_kept = kept ? (double)kept_ok / (double)kept : 0;
    double t2 = nk_time_ms();
    R.ms_cv = t2 - t1;

    /* ---- the final fit on every example ---- */
    memset(w.W, 0, D * (size_t)k * sizeof *w.W);
    memset(w.b, 0, (size_t)k * sizeof *w.b);
    lo.C = R.C;
    lo.tol = 1e-6;
    lo.max_iter = 1000;
    if (kernel) {   /* W = X^T A */
        memset(w.A, 0, n * (size_t)k * sizeof *w.A);
        if ((st = nk_lr_fit_kernel(w.G, d->labels, n, k, &lo, w.A, w.b, NULL, err))) goto fail;
        for (size_t i = 0; i < n; i++)
            for (size_t p = w.X.row[i]; p < w.X.row[i + 1]; p++) {
                double *wj = w.W + (size_t)w.X.col[p] * (size_t)k;
                for (int q = 0; q < k; q++) wj[q] += w.X.val[p] * w.A[i * (size_t)k + (size_t)q];
            }
    } else if ((st = nk_lr_fit(&w.X, d->labels, k, NULL, 0, &lo, w.W, w.b, NULL, err))) {
        goto fail;
    }
    R.ms_final = nk_time_ms() - t2;

    s = nk_calloc(1, sizeof *s);
    if (!s) goto oom;
    s->k = k;
    s->name = nk_strdup(name ? name : "specialist");
    s->labels = nk_calloc((size_t)k, sizeof *s->labels);
    s->base_model = nk_strdup(o->base_model ? o->base_model : "");
    s->W = nk_alloc_array(D * (size_t)k, sizeof *s->W);
    s->b = nk_alloc_array((size_t)k, sizeof *s->b);
    if (!s->name || !s->labels || !s->base_model || !s->W || !s->b) goto oom;
    for (int c = 0; c < k; c++)
        if (!(s->labels[c] = nk_strdup(d->label_names[c]))) goto oom;
    s->feat = o->feat;
    if (!text) s->feat.word_max = s->feat.char_max = 0;
    s->d = D;
    s->d_text = d_text;
    s->ids = w.ids; w.ids = NULL;
    s->idf = w.idf; w.idf = NULL;
    /* bias shifted to sum zero (probabilities do not change; the file is canonical) */
    double mb = 0;
    for (int c = 0; c < k; c++) mb += w.b[c] / k;
    for (size_t j = 0; j < D * (size_t)k; j++) s->W[j] = (float)w.W[j];
    for (int c = 0; c < k; c++) s->b[c] = (float)(w.b[c] - mb);
    /* rounded to float as the file stores them, so a specialist in memory and its file agree */
    volatile float tf = (float)R.temperature, hf = (float)o->threshold;
    s->temperature = tf;
    s->threshold = hf;
    s->embed_dim = o->embed_dim;
    s->cv_macro_f1 = R.cv_macro_f1;
    s->cv_C = R.C;
    s->cv_ece_raw = R.ece_raw;
    s->cv_ece_cal = R.ece_cal;
    s->n_train = (uint32_t)n;
    work_free(&w, n);
    *out = s;
    if (rep) *rep = R;
    else nk_train_report_free(&R);
    return NOOK_OK;
oom:
    st = nk_fail(err, NOOK_ENOMEM, "training: out of memory");
fail:
    work_free(&w, n);
    nk_train_report_free(&R);
    nk_spec_free(s);
    return st;
}
