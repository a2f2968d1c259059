/*
 * fuzz_request.c: libFuzzer target for the server's request mapping: HTTP body bytes
 * -> JSON depth scan -> jansson -> srv_gen_request (generation and embedding
 * parameters), plus the header-level parsers (Host, Origin, keep_alive durations,
 * Authorization) on the same bytes.
 *
 * The first input byte picks the endpoint kind (generate, chat, OpenAI chat and
 * completions, embed, legacy embeddings, OpenAI embeddings); the rest is the body.
 * Any outcome is fine except a crash, a sanitizer report, a hang, or a broken
 * contract: a refusal must carry a status of 400 (500 only for out-of-memory) and a
 * message; an accepted request has a model and the options within their ranges.
 * The same body is also read as a /v1/responses and a /v1/messages request
 * (compat.c: translated into a chat request, then parsed as one): a refusal must carry a
 * message, a translation must be an object with a messages list.
 * Seed corpus: tests/fuzz/corpus/request/.
 */
#include "server/compat.h"
#include "server/request.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    srv_kind kind = (srv_kind)(data[0] % SRV_KIND_COUNT);
    const char *body = (const char *)data + 1;
    size_t len = size - 1;

    /* header-level parsers on a NUL-terminated copy */
    char hdr[512];
    size_t hl = len < sizeof hdr - 1 ? len : sizeof hdr - 1;
    memcpy(hdr, body, hl);
    hdr[hl] = 0;
    srv_config c;
    memset(&c, 0, sizeof c);
    strcpy(c.host, "127.0.0.1");
    c.host_is_loopback = true;
    c.origins = (char *)"https://*.example.org,*://x*y*";
    (void)srv_host_allowed(&c, hdr);
    (void)srv_origin_allowed(&c, hdr);
    (void)srv_auth_ok("key", hdr);
    int64_t ns;
    (void)srv_parse_duration(hdr, &ns, NULL);
    char host[256];
    int port;
    (void)srv_parse_host(hdr, host, sizeof host, &port, NULL);

    /* the body, as http.c and the routes read it */
    if (srv_json_depth(body, len, 128) > 128) return 0;
    json_t *j = json_loadb(body, len, 0, NULL);
    if (!j) return 0;
    srv_gen_request r;
    char msg[256];
    int st = srv_gen_request_parse(j, kind, 64, &r, msg, sizeof msg);
    if (st) {
        if ((st != 400 && st != 500) || !msg[0]) abort();
    } else {
        if (!r.model || !r.model[0]) abort();
        if ((r.opt.set & SRV_OPT_NUM_CTX) && (r.opt.num_ctx < 1 || r.opt.num_ctx > (1 << 24))) abort();
        if ((r.opt.set & SRV_OPT_NUM_PREDICT) && r.opt.num_predict < -2) abort();
        if (r.top_logprobs < 0 || r.top_logprobs > 20) abort();
        if (r.n_messages > 64) abort();
        for (int i = 0; i < r.n_messages; i++)
            if (!r.messages[i].role || !r.messages[i].content) abort();
        for (int i = 0; i < r.opt.n_stop; i++)
            if (!r.opt.stop[i]) abort();
    }
    srv_gen_request_free(&r);
    for (int shape = SRV_SHAPE_RESPONSES; shape <= SRV_SHAPE_MESSAGES; shape++) {
        msg[0] = 0;
        json_t *chat = srv_compat_to_chat((srv_shape)shape, j, msg, sizeof msg);
        if (!chat) {
            if (!msg[0]) abort();
            continue;
        }
        if (!json_is_array(json_object_get(chat, "messages"))) abort();
        if (srv_gen_request_parse(chat, SRV_OAI_CHAT, 64, &r, msg, sizeof msg) && !msg[0]) abort();
        srv_gen_request_free(&r);
        json_decref(chat);
    }
    json_decref(j);
    return 0;
}
