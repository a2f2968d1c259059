/*
 * specialist.h: classifiers trained from about a hundred labelled examples and served
 * like a model (docs/specialist.md).
 *
 * A specialist is: a feature extractor (hashed word and character n-grams, log-count
 * times IDF, L2-normalised; optionally a model's pooled embedding), a multinomial
 * L2-regularised logistic regression fitted in double precision with L-BFGS, the
 * regularisation chosen by stratified k-fold cross-validation, a temperature fitted on
 * the out-of-fold predictions (calibration), and a confidence threshold below which
 * it abstains. It is saved as a small GGUF file (general.architecture
 * "nook-specialist"), so the model store can keep it like any other blob.
 *
 * Layers: this module uses base and gguf (and, for --from, the engine); the CLI and the
 * server are thin users of it. Nothing here prints or exits; errors are values.
 * Threads: every object is used by one thread at a time, except a loaded nk_spec,
 * which is immutable and may be used to classify from any number of threads at once.
 */
#ifndef NOOK_SPECIALIST_H
#define NOOK_SPECIALIST_H

#include "base/base.h"
#include "router/router.h"

/* ---- limits on untrusted input (training files, specialist files) ---------------- */
#define NK_SPEC_MAX_LINE     (1u << 20)   /* bytes in one JSON line of a training file */
#define NK_SPEC_MAX_EXAMPLES 1000000u     /* examples in one training file            */
#define NK_SPEC_MAX_LABELS   1000u        /* distinct labels                           */
#define NK_SPEC_MAX_LABEL    256u         /* bytes in one label                        */
#define NK_SPEC_MAX_FEATURES (1u << 24)   /* columns of a specialist's weight matrix    */

/* ---- labelled data ------------------------------------------------------------------
 * JSON lines {"text": STRING, "label": STRING or INTEGER}; other keys are ignored,
 * blank lines are skipped. Labels are numbered in order of first appearance. */
typedef struct nk_dataset {
    size_t n;               /* examples                                              */
    char **texts;           /* [n] NUL-terminated UTF-8, owned                         */
    int *labels;            /* [n] index into label_names                              */
    size_t *lines;          /* [n] 1-based line number in the source                   */
    int n_labels;
    char **label_names;     /* [n_labels], owned                                       */
} nk_dataset;

/* Parses JSON lines from buf[0..len). name prefixes every message ("train.jsonl:7:
 * ..."). require_label: every line needs a "label" (training, evaluation); otherwise
 * only "text" is read. Errors (NOOK_EFORMAT, naming the line): invalid JSON or UTF-8,
 * a line that is not an object, a missing or non-string "text", an empty (all
 * whitespace) text, a missing or non-string/integer "label", a label longer than
 * NK_SPEC_MAX_LABEL, a line longer than NK_SPEC_MAX_LINE, more than the limits above;
 * NOOK_ENOMEM. On failure *out is left empty. */
nook_status nk_dataset_parse(const char *buf, size_t len, const char *name, bool require_label,
                             nk_dataset *out, nook_error *err);
/* The same from a file, read line by line: a 1 GB line is refused after reading
 * NK_SPEC_MAX_LINE bytes of it, never loaded whole. */
nook_status nk_dataset_read(const char *path, bool require_label, nk_dataset *out, nook_error *err);
/* Training needs at least two labels and two examples: NOOK_EINVAL naming the label
 * otherwise. */
nook_status nk_dataset_check_trainable(const nk_dataset *d, const char *name, nook_error *err);
void nk_dataset_free(nk_dataset *d);

/* ---- features ----------------------------------------------------------------------- */
typedef struct nk_feat_cfg {
    uint32_t hash_bits;     /* hashed space is 2^hash_bits (default 20)                 */
    uint32_t word_max;      /* word n-grams 1..word_max (default 2; 0 = none)            */
    uint32_t char_min;      /* character n-grams char_min..char_max inside each word     */
    uint32_t char_max;      /* padded with spaces (default 2..5; char_max 0 = none)      */
    bool     idf;           /* weight log-counts by smoothed IDF (default true)          */
} nk_feat_cfg;

void nk_feat_cfg_default(nk_feat_cfg *c);
/* NOOK_EINVAL naming the field when a setting is out of range. */
nook_status nk_feat_cfg_check(const nk_feat_cfg *c, nook_error *err);

/* A sparse vector: hashed ids (sorted, unique) with values. */
typedef struct nk_sparse {
    size_t n, cap;
    uint32_t *id;
    double *val;
} nk_sparse;
void nk_sparse_free(nk_sparse *s);

/* Raw hashed counts of text's features (log-count 1+ln(tf), not yet IDF-weighted or
 * normalised), in two blocks: words in out[0], characters in out[1] (either may be
 * empty). Text is case-folded and NFKC-normalised first (utf8proc); invalid UTF-8 is
 * NOOK_EFORMAT. Reuses out's buffers. */
nook_status nk_feat_counts(const nk_feat_cfg *c, const char *text, size_t len, nk_sparse out[2],
                           nook_error *err);

/* ---- logistic regression -------------------------------------------------------------
 * Data for the solver: n rows in compressed sparse row form over d columns, labels
 * y[i] in [0, k). The model: p(c|x) = softmax(W^T x + b)_c, W is d x k (row-major,
 * W[j*k + c]), b has k entries. Objective (scikit-learn's convention):
 *     C * sum_i -log p(y_i | x_i)  +  1/2 ||W||^2        (the bias is not penalised)
 * minimised with L-BFGS (double precision) until the gradient's max norm is below tol
 * relative to the starting one, or max_iter iterations. */
typedef struct nk_csr {
    size_t n, d;
    size_t *row;            /* [n+1] */
    uint32_t *col;          /* [nnz] */
    double *val;            /* [nnz] */
} nk_csr;

typedef struct nk_lr_opts {
    double C;               /* inverse regularisation strength (> 0)                  */
    double tol;             /* default 1e-6                                            */
    int max_iter;           /* default 500                                             */
    const double *class_w;  /* NULL, or [k] weights: example i's loss counts class_w[y_i]
                               times (class balancing: n / (k * n_c))                    */
} nk_lr_opts;

/* Fits W (d*k) and b (k) in place, starting from their values (warm start: pass the
 * previous solution, or zeros). rows: which rows of X to use (NULL: all n). Returns
 * NOOK_ENOMEM, NOOK_EINVAL for bad arguments; *iters (optional) gets the iterations. */
nook_status nk_lr_fit(const nk_csr *X, const int *y, int k, const size_t *rows, size_t n_rows,
                      const nk_lr_opts *o, double *W, double *b, int *iters, nook_error *err);
/* The same problem solved in the span of the rows (logreg_kernel.c), for n rows far
 * fewer than the columns: K is the rows' n x n Gram matrix X X^T (row-major), A the
 * n x k coefficients (W = X^T A; warm start: the previous A, or zeros), b the biases.
 * Stops when the gradient's Euclidean norm falls below tol of its starting value. */
nook_status nk_lr_fit_kernel(const double *K, const int *y, size_t n, int k, const nk_lr_opts *o, double *A,
                             double *b, int *iters, nook_error *err);
/* *out = X X^T (n x n, row-major, nk_malloc'd). NOOK_EINVAL beyond 2^28 entries. */
nook_status nk_csr_gram(const nk_csr *X, double **out, nook_error *err);
/* Logits z[c] = W^T x + b for row i of X. */
void nk_lr_logits(const nk_csr *X, size_t i, int k, const double *W, const double *b, double *z);
/* In place: z -> softmax(z / T). */
void nk_lr_softmax(double *z, int k, double T);

/* ---- calibration and metrics ---------------------------------------------------------- */
/* The temperature T > 0 minimising the mean negative log-likelihood of softmax(z/T)
 * over n rows of logits z[n*k] with labels y (golden-section search on log T). */
double nk_fit_temperature(const double *z, const int *y, size_t n, int k);
/* Expected calibration error of probabilities p[n*k] (top-label confidence, n_bins
 * equal-width bins). */
double nk_ece(const double *p, const int *y, size_t n, int k, int n_bins);
/* Macro-F1 over k labels from a k x k confusion table conf[true*k + pred]; labels that
 * never occur, neither true nor predicted, are left out of the mean. */
double nk_macro_f1(const size_t *conf, int k);

/* ---- embeddings (--from MODEL) ------------------------------------------------------
 * A model's pooled embedding of a text (the engine's embeddings; mean pooling unless
 * the model says otherwise). Texts longer than the embedder's context (at most 512
 * tokens) are cut to their first tokens. One thread at a time per embedder. */
typedef struct nk_embedder nk_embedder;
nook_status nk_embedder_open(const char *model_path, int n_threads, nk_embedder **out, nook_error *err);
uint32_t nk_embedder_dim(const nk_embedder *e);
/* out receives nk_embedder_dim floats (raw, not normalised). */
nook_status nk_embedder_embed(nk_embedder *e, const char *text, size_t len, float *out, nook_error *err);
void nk_embedder_free(nk_embedder *e);
/* The embeddings of every text of d, in order: *out is n x dim floats (nk_free). */
nook_status nk_embed_dataset(nk_embedder *e, const nk_dataset *d, float **out, nook_error *err);

/* ---- the zero-shot comparison (zeroshot.c) -----------------------------------------
 * A general model prompted with the label set; the label whose tokens are most probable
 * after the prompt wins (docs/specialist.md). One thread at a time per object. */
typedef struct nk_zeroshot nk_zeroshot;
nook_status nk_zeroshot_open(const char *model_path, char *const *labels, int k, nk_zeroshot **out, nook_error *err);
/* The same over a model the caller keeps loaded (the server's resident models): m is
 * borrowed, only read (nook_model is immutable, so other threads may use it meanwhile),
 * and must outlive the scorer; nk_zeroshot_free leaves it loaded. */
nook_status nk_zeroshot_open_model(const nook_model *m, char *const *labels, int k, nk_zeroshot **out,
                                   nook_error *err);
/* logp[k] receives each label's log-probability; *best the winner. */
nook_status nk_zeroshot_classify(nk_zeroshot *z, const char *text, size_t len, double *logp, int *best, nook_error *err);
void nk_zeroshot_free(nk_zeroshot *z);

/* ---- specialists ----------------------------------------------------------------------- */
typedef struct nk_spec {
    char *name;
    int k;
    char **labels;          /* [k] */
    nk_feat_cfg feat;
    size_t d;               /* columns: text features, then embedding dimensions          */
    size_t d_text;          /* text feature columns                                       */
    uint32_t *ids;          /* [d_text] hashed ids (sorted, unique); block in the top bit  */
    float *idf;             /* [d_text]                                                   */
    float *W;               /* [d*k] */
    float *b;               /* [k]   */
    double temperature;
    double threshold;       /* abstain when the top probability is below this             */
    char *base_model;       /* model whose embeddings are features ("" when none)         */
    uint32_t embed_dim;     /* 0 when none                                                 */
    /* training report, kept in the file for `nook show`-like listings */
    double cv_macro_f1, cv_C, cv_ece_raw, cv_ece_cal;
    uint32_t n_train;
} nk_spec;

typedef struct nk_train_opts {
    nk_feat_cfg feat;
    uint64_t seed;          /* fold assignment (default 1)                                */
    int folds;              /* k-fold cross-validation (default 5; fewer when a label has fewer examples) */
    double C;               /* > 0: use this C, skip the search                           */
    double threshold;       /* default 0.5                                                */
    bool calibrate;         /* default true                                               */
    int min_df;             /* keep text features seen in at least this many texts (default 2) */
    const char *base_model; /* NULL or "": no embedding features                          */
    /* Optional embedding features: emb[i*embed_dim ..] for example i (caller-computed,
     * e.g. pooled hidden states of base_model). Concatenated with the text features
     * unless text_features is false. */
    const float *emb;
    uint32_t embed_dim;
    bool no_text_features;
    bool balance;           /* weight each label's examples by n / (k * n_label) in the loss
                               (default true; false: every example counts once)           */
    int solver;             /* NK_SOLVER_AUTO (default): the kernel solver when there are
                               fewer examples than columns (and at most 4,096), else primal */
} nk_train_opts;
enum { NK_SOLVER_AUTO = 0, NK_SOLVER_PRIMAL, NK_SOLVER_KERNEL };

void nk_train_opts_default(nk_train_opts *o);

/* What training measured, for the report. */
typedef struct nk_train_report {
    int n_C;
    double C_grid[16], cv_f1[16], cv_logloss[16];
    double C;               /* chosen                                                     */
    double cv_macro_f1;     /* out-of-fold macro-F1 at the chosen C                        */
    double cv_accuracy;
    size_t *confusion;      /* [k*k] out-of-fold, conf[true*k + pred] (owned)              */
    double temperature, ece_raw, ece_cal;
    double coverage, accuracy_kept;   /* out-of-fold, at the threshold                   */
    int folds;
    size_t d;               /* feature columns                                            */
    bool kernel;            /* solved in the span of the rows (logreg_kernel.c)            */
    double ms_features, ms_cv, ms_final;
} nk_train_report;
void nk_train_report_free(nk_train_report *r);

/* Trains a specialist on d. *out is owned by the caller (nk_spec_free). rep (optional)
 * receives the report. Deterministic for a given seed. Errors: as
 * nk_dataset_check_trainable, NOOK_EINVAL for bad options, NOOK_ENOMEM. */
nook_status nk_spec_train(const nk_dataset *d, const char *name, const nk_train_opts *o,
                          nk_spec **out, nk_train_report *rep, nook_error *err);
void nk_spec_free(nk_spec *s);

/* Save as GGUF (to memory: *buf nk_malloc'd). */
nook_status nk_spec_save(const nk_spec *s, const char *path, nook_error *err);
nook_status nk_spec_save_mem(const nk_spec *s, uint8_t **buf, uint64_t *len, nook_error *err);
/* Load and validate (every count, id order, finite weights, label names): a hostile
 * file is NOOK_EFORMAT naming the key, never a crash. */
nook_status nk_spec_load(const char *path, nk_spec **out, nook_error *err);
nook_status nk_spec_load_mem(const void *buf, size_t len, nk_spec **out, nook_error *err);
/* Opens a specialist by reference (the CLI's): the path of a specialist file, else a
 * name in the default model store. NOOK_ENOTFOUND naming ref when it is neither; a
 * file that is not a specialist is NOOK_EFORMAT; a stored model that is not a
 * specialist is NOOK_EINVAL. */
nook_status nk_spec_open(const char *ref, nk_spec **out, nook_error *err);

/* ---- specialists in the model store (spec_store.c) ------------------------------------
 * A manifest whose one layer has media type NK_MT_SPECIALIST holding the specialist's
 * GGUF as a blob, and a config blob (model_family "nook-specialist", the labels, the
 * base model). Listed, copied and removed like any model. */
struct nk_store;
/* Stores s under name (replacing a model of that name). Errors: NOOK_EINVAL for a bad
 * name, the store's (NOOK_EIO, a full disk: nothing half-written is visible). */
nook_status nk_spec_store_put(struct nk_store *st, const char *name, const nk_spec *s, nook_error *err);
/* The blob path of the stored specialist name. NOOK_ENOTFOUND (no such model),
 * NOOK_EINVAL (a bad name, or a model that is not a specialist). Only names, never
 * paths: what the server calls with a request's "model". */
nook_status nk_spec_store_find(const struct nk_store *st, const char *name, char *path, size_t cap, nook_error *err);
/* Loads the stored specialist name (its name field set to name). Errors as above and
 * nk_spec_load's. */
nook_status nk_spec_store_open(const struct nk_store *st, const char *name, nk_spec **out, nook_error *err);
/* Whether the file at path (or the buffer) is a specialist (a GGUF whose
 * general.architecture is "nook-specialist"). */
bool nk_spec_is_specialist_mem(const void *buf, size_t len);

/* One classification. probs has k entries (owned by the caller, see nk_spec_classify). */
typedef struct nk_class_result {
    int label;              /* most likely label, also when abstaining                    */
    double confidence;      /* its probability                                           */
    bool abstain;           /* confidence < threshold                                    */
} nk_class_result;

/* Classifies text: probs[k] receives the calibrated probabilities. emb: the text's
 * embedding (embed_dim floats) when the specialist needs one, else NULL (NOOK_EINVAL
 * when it is needed and missing). Thread-safe on a shared spec. */
nook_status nk_spec_classify(const nk_spec *s, const char *text, size_t len, const float *emb,
                             double *probs, nk_class_result *res, nook_error *err);

/* The result as the JSON object of `nook classify --jsonl` and /api/classify:
 * {"label","confidence","probabilities":{LABEL:p,...},"abstain"}; a jansson json_t*
 * returned as void* so this header does not pull in jansson. NULL on out-of-memory. */
void *nk_spec_result_json(const nk_spec *s, const double *probs, const nk_class_result *res);

/* What the specialist is, in the shape of Ollama's /api/show answer (spec_show.c):
 * {"modelfile" (a comment saying how to use it), "parameters", "template", "system",
 * "license" (empty), "details": {"parent_model": base model, "format": "gguf",
 * "family": "specialist", "families", "parameter_size", "quantization_level": "F32"},
 * "model_info": {"general.architecture": "nook-specialist", "specialist.labels",
 * "specialist.threshold", "specialist.temperature", "specialist.features.*",
 * "specialist.base_model", "specialist.embed_dim", "specialist.n_train",
 * "specialist.cv.c", "specialist.cv.macro_f1", "specialist.cv.ece_raw"/"ece_cal", ...},
 * "capabilities": ["classify"]}. ref: the name it was asked by (NULL: s->name). The one
 * description `nook show` prints and the server's /api/show answers. A json_t* (NULL on
 * out-of-memory). */
void *nk_spec_show_json(const nk_spec *s, const char *ref);

/* ---- abstaining -> the router (escalate.c) ---------------------------------------------
 * When a specialist abstains and the routing policy (the request's, the model's, the
 * task's or the global one, as the router resolves it) is not local, the text goes to
 * the router's general model prompted with the label set (nk_route_escalate: redaction,
 * strict mode, ask and the egress ledger apply). */
struct nk_router;
struct nk_route_req;
typedef struct nk_spec_escalation {
    bool asked;             /* the policy was not local (so results report the escalation) */
    bool escalated;         /* sent, and the remote answered (or the local model did)     */
    bool local;             /* the local general model answered (nk_spec_escalate_local)   */
    int label;              /* the label its answer names (nk_spec_match_label), or -1    */
    char *answer;           /* its answer (nk_malloc'd), NULL when not escalated          */
    struct nk_route route;  /* the decision: target, policy, reason, audit id             */
} nk_spec_escalation;
/* Escalates text (which s classified as res, abstaining). req: the request's routing
 * fields (NULL: none); its labels default to the specialist's. Returns NOOK_OK with
 * out->escalated false when the policy keeps it local (out->route.reason says why).
 * Errors: as nk_route_plan and nk_route_escalate (policy remote with no remote, the
 * remote failed). Clear out with nk_spec_escalation_clear either way. */
nook_status nk_spec_escalate(const nk_spec *s, const struct nk_router *rt, const struct nk_route_req *req,
                             const char *text, const nk_class_result *res, nk_spec_escalation *out, nook_error *err);
void nk_spec_escalation_clear(nk_spec_escalation *e);
/* The same case given to a local general model instead (z: nk_zeroshot_open over the
 * specialist's labels; general names it for the reason): out->escalated and ->local,
 * ->label the zero-shot winner; nothing leaves the machine. Call after nk_spec_escalate
 * left out->escalated false. */
struct nk_zeroshot;
nook_status nk_spec_escalate_local(const nk_spec *s, struct nk_zeroshot *z, const char *general, const char *text,
                                   nk_spec_escalation *out, nook_error *err);
/* The whole escalation of an abstaining case, as the CLI and the server do it:
 * nk_spec_escalate, then, when that sent nothing out (the policy is local, a pin or a
 * missing remote kept the case here; not for ask, whose suggestion stands) and a local
 * general model is given (general: a GGUF path, see nk_spec_general_path), that model
 * answers (nk_spec_escalate_local): nothing leaves the machine, the egress ledger is not
 * written. *zs: the general model's scorer over s's labels, opened on first use and kept
 * for the caller (who frees it with nk_zeroshot_free; NULL to start). Errors: as
 * nk_spec_escalate, nk_zeroshot_open (naming the model), nk_zeroshot_classify. */
nook_status nk_spec_escalate_with(const nk_spec *s, const struct nk_router *rt, const struct nk_route_req *req,
                                  const char *text, const nk_class_result *res, const char *general,
                                  struct nk_zeroshot **zs, nk_spec_escalation *out, nook_error *err);
/* Whether nk_spec_escalate left the case to a local general model (named by general):
 * nothing was sent out and the decision is not ask's suggestion. nk_spec_escalate_with
 * asks this; a caller that keeps the general model loaded itself (the server) asks it
 * before nk_spec_escalate_local. */
bool nk_spec_wants_local(const nk_spec_escalation *e, const char *general);
/* The GGUF path of a local general model given by reference: the path of a file, else a
 * name in the default model store (nk_model_resolve). Only for references an operator
 * gives (the command line, the environment), never a request's. */
nook_status nk_spec_general_path(const char *ref, char *path, size_t cap, nook_error *err);
/* The label an answer names: an exact match (case-insensitive, trimmed, a final '.'
 * dropped), else the only label occurring in it as a whole word; -1 otherwise. */
int nk_spec_match_label(const nk_spec *s, const char *answer);
/* {"escalated", "general": "remote"|"local", "label" (when escalated; null if the answer is not a label), "answer",
 * "route": the router's route object} (a json_t*, NULL on out-of-memory). */
void *nk_spec_escalation_json(const nk_spec *s, const nk_spec_escalation *e);

/* Evaluation on labelled data: the confusion table over the specialist's labels
 * (conf[k*k], caller-allocated), macro-F1, accuracy, ECE, coverage at the threshold.
 * A label in d that the specialist does not know is NOOK_EINVAL naming its line. */
typedef struct nk_eval_report {
    double macro_f1, accuracy, ece, coverage, accuracy_kept, ms, texts_per_s;
} nk_eval_report;
nook_status nk_spec_evaluate(const nk_spec *s, const nk_dataset *d, const float *emb,
                             size_t *conf, nk_eval_report *rep, nook_error *err);

#endif /* NOOK_SPECIALIST_H */
