/*
 * escalate.h: the escalation client: one POST of a chat request to an OpenAI-compatible
 * endpoint, recorded in the egress ledger before it is sent (ledger.h) and after it
 * answers. The router (src/router) builds the body (already redacted); this module owns
 * the policy that nothing leaves without its ledger line.
 *
 * Order: check the URL (scheme, host; offline mode refuses non-loopback hosts before
 * any name is resolved) -> append and fsync the "egress" line -> POST through nk_http_do
 * -> append the "complete" line. A transport failure after the egress line (connection
 * refused, reset mid-request, timeout) writes no completion: the line stays "pending"
 * (the body may have reached the remote) and the error names its audit id.
 */
#ifndef NOOK_NET_ESCALATE_H
#define NOOK_NET_ESCALATE_H

#include "net/ledger.h"

typedef struct nk_escalate_req {
    const char *base_url;     /* OpenAI base URL including /v1; "/chat/completions" is added */
    const char *key_env;      /* name of the environment variable holding the API key, or
                                 NULL: no Authorization header                             */
    long timeout_ms;          /* whole request; 0: 120 s                                    */
    bool allow_http;          /* plain http to a non-loopback host                          */
    double price_in, price_out; /* per token, for the cost on the completion line (0: none) */
    const char *ledger_dir;   /* NULL: $NOOK_HOME                                           */
    nk_egress info;           /* request id, model, policy, reason, signals, ... and the body;
                                 info.url is filled in here                                */
} nk_escalate_req;

typedef struct nk_escalate_resp {
    long status;              /* HTTP status                                                */
    char *body;               /* response body (nk_malloc'd)                                */
    size_t body_len;
    char audit_id[40];        /* the egress line's id                                       */
    int64_t tokens_in, tokens_out;   /* from the response's usage, -1 unknown               */
    double cost;              /* NAN unknown                                                */
} nk_escalate_resp;

/* Sends and records. NOOK_OK when a response arrived (any status: the caller checks).
 * Errors: NOOK_EUNSUPPORTED / NOOK_EINVAL (URL refused: offline, scheme, plain http;
 * nothing written, nothing sent), NOOK_EIO (ledger write failed: nothing sent; or the
 * transfer failed: pending line, audit id in the message), NOOK_ENOMEM. */
nook_status nk_escalate_post(nk_escalate_req *req, nk_escalate_resp *resp, nook_error *err);
void nk_escalate_resp_free(nk_escalate_resp *resp);

#endif /* NOOK_NET_ESCALATE_H */
