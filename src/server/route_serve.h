/*
 * route_serve.h: the router (src/router, docs/privacy.md) in `nook serve`, for the four
 * generation endpoints. The routing logic is the router library's (nk_route_plan,
 * nk_route_hold_*, nk_route_escalate); this module only gathers what it needs from a
 * request: the request's "route" field (ext[SRV_EXT_ROUTE]), the model's Modelfile
 * `PARAMETER route`, the configuration ($NOOK_HOME/config.json and the environment,
 * read per request), and the request's messages.
 *
 * How routes_gen.c uses it:
 *   srv_route_begin -> by srv_route_mode:
 *     LOCAL:  generate as always (events streamed as they come);
 *     REMOTE: srv_route_finish at once (no local generation); an answer of NULL means
 *             strict mode pinned the request local: generate as LOCAL;
 *     HOLD:   (auto, ask) generate with srv_route_params, feed every event to
 *             srv_route_event and show none of them, then srv_route_finish decides:
 *             an answer replaces the local one, NULL keeps it.
 *   Every reply carries srv_route_json (the final object, or the final chunk).
 * One srv_routing belongs to one request; events may come on another thread than the
 * calls before and after generation, but never at the same time as them.
 */
#ifndef NOOK_SERVER_ROUTE_SERVE_H
#define NOOK_SERVER_ROUTE_SERVE_H

#include "server/request.h"

typedef enum srv_route_mode { SRV_ROUTE_LOCAL, SRV_ROUTE_REMOTE, SRV_ROUTE_HOLD } srv_route_mode;

typedef struct srv_routing srv_routing;

/* Plans the routing of q. Returns 0 with *out, or an HTTP status with msg: 400 (policy
 * remote with no usable remote: nothing is sent), 404 (policy remote for a model that
 * does not exist), 500 (a malformed configuration file, named). */
int srv_route_begin(const srv_gen_request *q, srv_routing **out, char *msg, size_t cap);
srv_route_mode srv_route_get_mode(const srv_routing *r);
/* HOLD: what the local generation needs (logprobs on, two alternatives per token; for
 * route.labels the label-mass hook, unless gp has a grammar or format). Returns 0, or
 * 400 with msg (labels the model's tokenizer cannot tell apart). */
int srv_route_params(srv_routing *r, const nook_model *m, nook_gen_params *gp, char *msg, size_t cap);
/* HOLD: one event of the local answer; false: stop generating (the early-stop window). */
bool srv_route_event(srv_routing *r, const nook_event *ev);
/* REMOTE: escalates. HOLD: decides after the local answer ended with done_reason, and
 * escalates when the decision says so. Returns 0 with *answer (the remote's text,
 * nk_malloc'd; NULL: the local answer stands), or an HTTP status with msg: 502 (the
 * remote failed or answered badly; the message names the audit id and whether the
 * ledger line stays pending), 499 (the local answer was cancelled: the client left),
 * 500. */
int srv_route_finish(srv_routing *r, nook_done_reason done_reason, char **answer, char *msg, size_t cap);
/* The "route" object for the reply (new reference). */
json_t *srv_route_json(const srv_routing *r);
void srv_route_free(srv_routing *r);

#endif /* NOOK_SERVER_ROUTE_SERVE_H */
