/*
 * router.h: local by default, escalate on doubt (docs/privacy.md).
 *
 * Configuration ($NOOK_HOME/config.json, the "route" object; every key optional):
 *   {"route": {
 *      "policy": "local",              global default: local | auto | remote | ask
 *      "local_only": false,            global pin: nothing leaves, whatever asks
 *      "strict": false,                a request in which any redaction detector fires stays local
 *      "deny": ["Project Falcon"],     the user's deny-list (redacted as [PRIVATE_n])
 *      "log_body": false,              also store request bodies in the egress ledger
 *      "default_min_mean_logprob": -1.5,   the uncalibrated auto rule
 *      "remote": {"url": "https://api.example.com/v1", "model": "big", "key_env": "MY_KEY",
 *                 "timeout_s": 120, "allow_http": false,
 *                 "price_in": 0.0, "price_out": 0.0,        per token, for the ledger's cost
 *                 "max_tokens": 0},                         sent as the body's max_tokens (0: not sent)
 *      "tasks": {"NAME": {"policy": "auto", "local_only": true}}
 *   }}
 * Environment (wins over the file): NOOK_ESCALATE_URL (OpenAI base URL incl. /v1),
 * NOOK_ESCALATE_MODEL, NOOK_ESCALATE_KEY_ENV (the NAME of the variable holding the key;
 * unset: no Authorization header), NOOK_ROUTE (global policy).
 * Calibration: $NOOK_HOME/router.json, {"tasks": {"NAME": combiner, ...}} written by
 * `nook route calibrate` (the task "" is the default for requests without a task).
 *
 * Which policy a request gets (first set wins): the request's, the model's (Modelfile
 * PARAMETER route), the task's, the global one, else local. Pins win over all of them:
 * global local_only, the task's local_only, the request's local_only, and content: a
 * message with "local_only": true or containing the marker "#nook:local" (it stays in
 * the history a client resends, so the conversation stays local).
 * Nothing configured means nothing can leave: without a remote, auto and ask answer
 * locally (reason "no remote configured") and remote is refused.
 */
#ifndef NOOK_ROUTER_ROUTER_H
#define NOOK_ROUTER_ROUTER_H

#include "router/redact.h"
#include "router/signals.h"

#include <jansson.h>

typedef enum nk_route_policy {
    NK_ROUTE_UNSET = -1, NK_ROUTE_LOCAL = 0, NK_ROUTE_AUTO, NK_ROUTE_REMOTE, NK_ROUTE_ASK
} nk_route_policy;

const char *nk_route_policy_name(nk_route_policy p);
/* "local"/"auto"/"remote"/"ask" -> policy; NK_ROUTE_UNSET for anything else. */
nk_route_policy nk_route_policy_parse(const char *s);

#define NK_LOCAL_MARKER "#nook:local"

typedef struct nk_router nk_router;

/* Loads the configuration from home (NULL: $NOOK_HOME, or ~/.nook) and the environment.
 * A missing file is an empty configuration. Errors: NOOK_EFORMAT (malformed file, named
 * key), NOOK_ENOMEM. */
nook_status nk_router_open(const char *home, nk_router **out, nook_error *err);
/* The same from the two files' bytes (config.json, router.json; NULL: absent), without
 * the environment or a home: what the fuzz target (tests/fuzz/fuzz_config.c) drives. */
nook_status nk_router_open_buf(const char *config, size_t config_len, const char *calib, size_t calib_len,
                               nk_router **out, nook_error *err);
void nk_router_free(nk_router *r);
/* Whether a remote is configured (URL and model). */
bool nk_router_has_remote(const nk_router *r);
const char *nk_router_home(const nk_router *r);

/* A request's routing fields ("route": {"policy", "task", "local_only"}). */
typedef struct nk_route_req {
    nk_route_policy policy;       /* the request's, or UNSET                      */
    const char *task;             /* or NULL                                       */
    bool local_only;
    nk_route_policy model_policy; /* the model's (Modelfile), or UNSET             */
    const char *request_id;       /* for the ledger; NULL: one is made up          */
    json_t *labels;               /* closed-label task: the answer's labels, an array of
                                     2..NK_MAX_LABELS strings (borrowed), or NULL    */
} nk_route_req;

#define NK_MAX_LABELS 64

/* Parses a request's "route" object (NULL or absent is fine). Borrowed strings point
 * into route. Errors: NOOK_EINVAL naming the bad member. */
nook_status nk_route_req_from_json(json_t *route, nk_route_req *out, nook_error *err);

typedef enum nk_route_target { NK_TARGET_LOCAL, NK_TARGET_REMOTE, NK_TARGET_SUGGEST } nk_route_target;

/* The decision, as every response reports it (the "route" object). */
typedef struct nk_route {
    nk_route_policy policy;       /* effective policy after pins                   */
    nk_route_target target;
    char reason[200];
    bool pinned;                  /* a local-only pin decided                      */
    bool calibrated;              /* a trained combiner (else the default rule)    */
    nk_combiner comb;
    double threshold;             /* the combiner's, or the default mean logprob   */
    double p_ok;                  /* calibrated P(acceptable), NAN otherwise       */
    bool have_signals;
    nk_signals signals;
    char audit_id[40];
    size_t redactions[NK_RED_NTYPES];
    char *suggestion;             /* ask: the redacted request body (nk_malloc'd)  */
    char request_id[48];
    double cost;                  /* the remote's, from its usage and the prices; NAN unknown */
} nk_route;

/* Before generating: resolves the policy and the pins for messages (an OpenAI-shaped
 * array of {"role","content",...}; may be NULL). Afterwards r->policy says what to do:
 * LOCAL: answer locally and report r; REMOTE: escalate without a local answer; AUTO /
 * ASK: generate locally (collecting signals), then nk_route_decide.
 * Errors: NOOK_EINVAL (policy remote with no remote configured, or refused by offline
 * mode: the message says how to configure one). */
nook_status nk_route_plan(const nk_router *rt, const nk_route_req *req, json_t *messages,
                          nk_route *r, nook_error *err);

/* After a local answer under AUTO or ASK: records the signals and decides. Returns
 * true when the answer should escalate (the reason says why either way). */
bool nk_route_decide(const nk_router *rt, nk_route *r, const nk_signals *s);

/* Escalates messages: redacts them (strict mode and a detector fired: nothing is sent,
 * *answer = NULL, r->target = LOCAL with the reason), builds the chat body, and for ASK
 * stores it in r->suggestion without sending; otherwise posts it (ledger first) and
 * returns the remote's answer with the placeholders restored in *answer (nk_malloc'd).
 * Errors: NOOK_EIO (the remote failed; the message says whether it is pending in the
 * ledger), NOOK_EFORMAT (the remote's answer is not a chat completion), as
 * nk_escalate_post. */
nook_status nk_route_escalate(const nk_router *rt, nk_route *r, json_t *messages, char **answer,
                              nook_error *err);

/* The "route" object for a response: target, policy, reason, signals, threshold, p_ok,
 * audit_id, redactions, suggestion. New reference. */
json_t *nk_route_json(const nk_route *r);
void nk_route_clear(nk_route *r);   /* frees r->suggestion */

/* The calibration file's combiner for task (or the default task ""), if any. */
const nk_combiner *nk_router_combiner(const nk_router *rt, const char *task);

/* For the server's request table (src/server/request.c, k_exts): reads body's "route"
 * object into *slot (an nk_route_req, nk_malloc'd; its task string is borrowed from
 * body). Returns 0, or 400 with msg. nk_route_field_free releases the slot. */
int nk_route_field_parse(const json_t *body, int kind, void **slot, char *msg, size_t cap);
void nk_route_field_free(void *slot);

/* ---- one request, start to finish (route_gen.c) -------------------------------------- */

/* Early stop for auto: after NK_EARLY_WINDOW tokens, a local answer whose entropy over
 * the last NK_EARLY_WINDOW tokens averages above NK_EARLY_MAX_ENTROPY nats is abandoned
 * and escalated without waiting for its end. */
#define NK_EARLY_WINDOW 16
#define NK_EARLY_MAX_ENTROPY 4.0

/* The request's messages as an OpenAI-shaped array (new reference) from a nook_prompt:
 * messages, messages_json, or text (with system) as one user message. NULL on error. */
json_t *nk_route_messages(const nook_prompt *pr, nook_error *err);

/* Holding a local answer back (auto / ask), for callers that run the generation
 * themselves (the server's scheduler-driven requests; nk_route_generate below uses it
 * too): after nk_route_plan says AUTO or ASK,
 *     nk_route_hold_init(&h); nk_route_hold_params(&gp);
 *     generate, passing every event to nk_route_hold_event (stop when it returns false);
 *     nk_route_hold_finish(rt, &route, &h, status, messages, &answer, &err);
 *     nk_route_hold_free(&h);
 * The caller keeps (and does not show) the local answer's events until the decision.
 * The struct is not shared between threads; events may come on any one thread. */
typedef struct nk_route_hold {
    nk_sig_acc acc;               /* the answer's per-token signals                */
    char *text;                   /* the answer's content (not thinking)           */
    size_t len, cap;
    bool oom;
    bool early;                   /* stopped early: the entropy window crossed      */
    double win_sum;
    nook_done_reason reason;      /* from the DONE event                           */
    nook_status status;
    char error[256];
    nook_token label_tok[NK_MAX_LABELS];   /* nk_route_hold_labels               */
    int n_labels;
    bool label_done;
} nk_route_hold;

void nk_route_hold_init(nk_route_hold *h);
void nk_route_hold_free(nk_route_hold *h);
/* What the held generation needs: logprobs (and so entropy) on, at least 2 alternatives
 * (the top-1/top-2 margin). Callers that show logprobs trim them to what was asked. */
void nk_route_hold_params(nook_gen_params *p);
/* A closed-label task (req->labels): the label mass signal (signals.h, nk_label_mass) on
 * the first answer token, read from its untempered logits through gp->constraint (a
 * mask that changes nothing). Each label counts by the first token of its
 * tokenization, past a lone space token the tokenizer puts in front (SentencePiece's
 * space prefix); write " yes" where the model would put a space before it. Nothing
 * happens when labels is NULL, or when gp already has a grammar, a format or a
 * constraint (then the signal is absent). Errors: NOOK_EINVAL (labels that tokenize to
 * nothing, or whose first tokens are not all different). */
nook_status nk_route_hold_labels(nk_route_hold *h, const nook_model *m, json_t *labels, nook_gen_params *gp,
                                 nook_error *err);
/* One event of the held answer. Returns false when generation should stop: out of
 * memory, or the early-stop window (NK_EARLY_*) tripped (then h->early). */
bool nk_route_hold_event(nk_route_hold *h, const nook_event *ev);
/* After the generation returned gen_status: summarises the signals, decides
 * (nk_route_decide; an early stop always escalates) and escalates when it says so.
 * On NOOK_OK: *answer is the remote's text (placeholders restored; nk_malloc'd), or
 * NULL when the local answer stands (kept, ask: the suggestion is in r, or strict mode
 * pinned it local). A failed local generation (other than the early stop) is returned
 * as its error, and nothing is decided. Errors: as nk_route_escalate. */
nook_status nk_route_hold_finish(const nk_router *rt, nk_route *r, nk_route_hold *h, nook_status gen_status,
                                 json_t *messages, char **answer, nook_error *err);

/* Generates the answer to pr on session s under the routing of req:
 *  - local (by policy, pin, or nothing configured): exactly nook_generate, events go to
 *    on_event as they come (*answer = NULL);
 *  - remote: nothing runs locally; *answer is the remote's text;
 *  - auto / ask: the local answer is generated with its signals and held back (no events
 *    reach on_event); then *answer is the local text, the remote's text (escalated), or
 *    for ask the local text with the escalation suggestion in route.
 * route receives the decision either way (nk_route_clear it after use). Errors: as
 * nook_generate, nk_route_plan and nk_route_escalate. */
nook_status nk_route_generate(const nk_router *rt, nook_session *s, const nook_prompt *pr,
                              const nook_gen_params *gp, const nk_route_req *req,
                              nook_event_fn on_event, void *ud, nk_route *route, char **answer,
                              nook_error *err);

#endif /* NOOK_ROUTER_ROUTER_H */
