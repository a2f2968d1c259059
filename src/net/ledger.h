/*
 * ledger.h: the egress ledger, an append-only, hash-chained record of everything nook
 * sends beyond this machine (docs/privacy.md).
 *
 * The file is $NOOK_HOME/egress.jsonl ($NOOK_HOME defaults to ~/.nook): one compact
 * JSON object per line, each beginning
 *     {"seq":N,"prev":"<sha256 of line N-1>","time":"2026-12-04T16:30:00.123Z","kind":...
 * where "prev" is the lowercase-hex SHA-256 of the exact bytes of the previous line
 * (without its newline; 64 zeros for line 1) and seq counts lines from 1. Changing,
 * deleting, inserting or reordering any line breaks the chain at the next line. The
 * file $NOOK_HOME/egress.head holds the seq and hash of the last line, so deleting
 * lines at the end is caught as well (a crash between the two writes leaves the head
 * one line behind, which verify accepts and reports).
 *
 * Kinds:
 *   "egress"    written and fsynced BEFORE a request body is sent: request id, url, host,
 *               model, policy, reason, signals, threshold, redaction counts, bytes, tokens,
 *               body_sha256 (of the exact bytes sent), and the body itself when asked.
 *   "complete"  after the answer (or the failure): ref (the egress seq), status,
 *               response_sha256, bytes, tokens, cost, error. An egress line without one
 *               is "pending": the send started and its outcome is unknown.
 *   "pull"      a model download; user_content is false (only the model name is sent).
 *
 * Appends take an exclusive flock on the file, so several processes (a server and a
 * CLI) share one ledger. A write that fails (full disk) is cut back off the file and
 * reported: nothing is sent without its line.
 */
#ifndef NOOK_NET_LEDGER_H
#define NOOK_NET_LEDGER_H

#include "base/base.h"

#include <jansson.h>

typedef struct nk_ledger nk_ledger;

/* The directory of nook's state: $NOOK_HOME, else $HOME/.nook. Writes into buf (cap
 * bytes); false if neither variable gives one or it does not fit. */
bool nk_nook_home(char *buf, size_t cap);

/* Opens (creating dir with mode 0700 and the file with 0600 if needed) the ledger in
 * dir (NULL: nk_nook_home()). Errors: NOOK_EIO, NOOK_ENOMEM, NOOK_EINVAL (no home). */
nook_status nk_ledger_open(const char *dir, nk_ledger **out, nook_error *err);
void nk_ledger_close(nk_ledger *l);
const char *nk_ledger_path(const nk_ledger *l);   /* ".../egress.jsonl" */

/* What identifies a written line: its seq and "seq-<first 12 hex of its hash>". */
typedef struct nk_ledger_ref {
    uint64_t seq;
    char audit_id[40];
} nk_ledger_ref;

/* Appends one line: {"seq","prev","time","kind"} followed by the members of fields
 * (borrowed; may be NULL) in their order, then fsyncs the file and updates the head.
 * Errors: NOOK_EIO (write, fsync; the partial line is removed), NOOK_ENOMEM. */
nook_status nk_ledger_append(nk_ledger *l, const char *kind, json_t *fields,
                             nk_ledger_ref *ref, nook_error *err);

typedef struct nk_egress {
    const char *request_id;
    const char *url;          /* where the body is posted                               */
    const char *model;        /* the remote model asked for                             */
    const char *policy;       /* "auto", "remote", ...                                  */
    const char *reason;       /* why it escalates ("low confidence", "policy remote")   */
    json_t *signals;          /* borrowed object of signal values, or NULL              */
    double threshold;         /* NAN: none                                              */
    json_t *redactions;       /* borrowed {"EMAIL":1,...} or NULL                        */
    int64_t tokens;           /* prompt tokens (local count), -1 unknown                */
    const void *body;         /* the exact bytes to be sent                             */
    size_t body_len;
    bool log_body;            /* also store the body itself in the line                 */
} nk_egress;

/* Appends the "egress" line for e (body_sha256 computed here). */
nook_status nk_ledger_egress(nk_ledger *l, const nk_egress *e, nk_ledger_ref *ref,
                             nook_error *err);

/* Appends the "complete" line for an egress line: status (HTTP status, 0 if none
 * arrived), the response bytes (hashed; may be NULL), tokens (-1 unknown), cost
 * (NAN unknown) and error (NULL on success). */
nook_status nk_ledger_complete(nk_ledger *l, const nk_ledger_ref *egress, const char *request_id,
                               long status, const void *resp, size_t resp_len, int64_t tokens,
                               double cost, const char *error, nook_error *err);

/* For the model store: records one download from url (what: the model or blob name),
 * in the default ledger, marked as carrying no user content. */
nook_status nk_ledger_log_pull(const char *url, const char *what, nook_error *err);

/* ---- reading and verifying (the input is untrusted: any bytes) ------------------------ */

typedef struct nk_ledger_report {
    uint64_t lines;           /* complete, well-formed lines read before any failure    */
    uint64_t egress, complete, pull, pending;   /* pending: egress without completion  */
    bool ok;
    uint64_t bad_line;        /* 1-based line of the first failure (0: none / the head) */
    char problem[256];        /* what failed, when !ok                                   */
    char last_hash[65];       /* hash of the last line ("" if empty)                     */
    bool head_behind;         /* the head names the line before the last (a crash)       */
} nk_ledger_report;

/* Called for each line in order with the parsed object (borrowed) and its bytes;
 * return false to stop. */
typedef bool (*nk_ledger_line_fn)(json_t *obj, const char *line, size_t len, void *ud);

/* Checks the chain over data[0..len) (the file's bytes); head (may be NULL: not
 * checked) is the head file's bytes. Fills *rep; NOOK_OK means the check ran (see
 * rep->ok for its verdict). fn (may be NULL) sees every good line. Errors: NOOK_ENOMEM. */
nook_status nk_ledger_verify_buf(const char *data, size_t len, const char *head, size_t head_len,
                                 nk_ledger_line_fn fn, void *ud, nk_ledger_report *rep,
                                 nook_error *err);

/* The same on the ledger in dir (NULL: default). A ledger that does not exist yet is
 * empty and fine. Errors: NOOK_EIO, NOOK_ENOMEM. */
nook_status nk_ledger_verify(const char *dir, nk_ledger_line_fn fn, void *ud,
                             nk_ledger_report *rep, nook_error *err);

#endif /* NOOK_NET_LEDGER_H */
