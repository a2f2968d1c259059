/*
 * escalate.c: the escalation POST with its ledger lines (contract in escalate.h).
 */
#include "net/escalate.h"
#include "net/net.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void nk_escalate_resp_free(nk_escalate_resp *r) {
    if (!r) return;
    nk_free(r->body);
    r->body = NULL;
}

nook_status nk_escalate_post(nk_escalate_req *req, nk_escalate_resp *resp, nook_error *err) {
    memset(resp, 0, sizeof *resp);
    resp->tokens_in = resp->tokens_out = -1;
    resp->cost = NAN;
    if (!req->base_url || !*req->base_url)
        return nk_fail(err, NOOK_EINVAL, "escalation: no remote URL configured");
    size_t bl = strlen(req->base_url);
    while (bl > 0 && req->base_url[bl - 1] == '/') bl--;
    char url[2048];
    if (snprintf(url, sizeof url, "%.*s/chat/completions", (int)bl, req->base_url) >= (int)sizeof url)
        return nk_fail(err, NOOK_EINVAL, "escalation: the remote URL is too long");
    /* refused here (offline, scheme, plain http) means nothing is written or sent */
    nook_status st = nk_net_check_url(url, req->allow_http, NULL, err);
    if (st) return st;

    char auth[1200] = "";
    if (req->key_env && *req->key_env) {
        const char *key = getenv(req->key_env);
        if (!key || !*key)
            return nk_fail(err, NOOK_EINVAL, "escalation: the API key variable %s is not set", req->key_env);
        if (strpbrk(key, "\r\n") || snprintf(auth, sizeof auth, "Authorization: Bearer %s", key) >= (int)sizeof auth)
            return nk_fail(err, NOOK_EINVAL, "escalation: the API key in %s is not a valid header value", req->key_env);
    }
    nk_ledger *l = NULL;
    if ((st = nk_ledger_open(req->ledger_dir, &l, err))) return st;
    req->info.url = url;
    nk_ledger_ref ref;
    st = nk_ledger_egress(l, &req->info, &ref, err);
    if (st) { nk_ledger_close(l); return st; }   /* no line, no send */
    snprintf(resp->audit_id, sizeof resp->audit_id, "%s", ref.audit_id);

    const char *headers[4] = { "Content-Type: application/json", "Accept: application/json", NULL, NULL };
    if (auth[0]) headers[2] = auth;
    nk_http_req hr = {
        .method = "POST", .url = url, .headers = headers, .body = req->info.body,
        .body_len = req->info.body_len, .timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : 120000,
        .max_redirects = -1,   /* a redirect would re-send the body elsewhere: refuse */
        /* a completion that is not streamed sends nothing until it is done: no stall
         * shorter than the whole timeout */
        .stall_ms = req->timeout_ms > 0 ? req->timeout_ms : 120000,
        .allow_http = req->allow_http, .purpose = "escalate", .max_body = 16u << 20,
    };
    nk_http_resp hresp = { 0 };
    nook_error herr = { 0 };
    st = nk_http_do(&hr, &hresp, &herr);
    if (st) {
        nk_http_resp_free(&hresp);
        nk_ledger_close(l);
        return nk_fail(err, NOOK_EIO, "escalation to %s failed: %s; the request was recorded as sent "
                       "and stays pending in the egress ledger (audit id %s)", url, herr.msg, ref.audit_id);
    }
    resp->status = hresp.status;
    resp->body = hresp.body;
    resp->body_len = hresp.body_len;
    hresp.body = NULL;
    nk_http_resp_free(&hresp);
    /* usage, for the cost (OpenAI's shape); a body that is not JSON has none */
    json_t *o = json_loadb(resp->body ? resp->body : "", resp->body_len, 0, NULL);
    json_t *u = json_object_get(o, "usage");
    if (json_is_integer(json_object_get(u, "prompt_tokens"))) resp->tokens_in = json_integer_value(json_object_get(u, "prompt_tokens"));
    if (json_is_integer(json_object_get(u, "completion_tokens"))) resp->tokens_out = json_integer_value(json_object_get(u, "completion_tokens"));
    json_decref(o);
    if (resp->tokens_in >= 0 && resp->tokens_out >= 0 && (req->price_in > 0 || req->price_out > 0))
        resp->cost = req->price_in * (double)resp->tokens_in + req->price_out * (double)resp->tokens_out;
    char emsg[160] = "";
    if (resp->status < 200 || resp->status >= 300) snprintf(emsg, sizeof emsg, "HTTP status %ld", resp->status);
    st = nk_ledger_complete(l, &ref, req->info.request_id, resp->status, resp->body ? resp->body : "",
                            resp->body_len, resp->tokens_out, resp->cost, emsg[0] ? emsg : NULL, err);
    nk_ledger_close(l);
    if (st) nk_escalate_resp_free(resp);
    return st;
}
