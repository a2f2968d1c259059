/*
 * test_route_field.c: the router's "route" request field in the server's request parser
 * (all generation endpoints): read into ext[SRV_EXT_ROUTE] as an nk_route_req, absent
 * means no slot, a bad policy or type is a 400 naming the field.
 */
#include "nk_test.h"
#include "router/router.h"
#include "server/request.h"

static int parse(const char *body, srv_kind kind, srv_gen_request *r, char *msg) {
    json_t *j = json_loads(body, 0, NULL);
    int st = srv_gen_request_parse(j, kind, 8, r, msg, 512);
    json_decref(j);   /* the request keeps its own reference to the body */
    return st;
}

int main(void) {
    char msg[512];
    srv_gen_request r;
    const srv_kind kinds[] = { SRV_GENERATE, SRV_CHAT, SRV_OAI_CHAT };
    const char *bodies[] = {
        "{\"model\":\"m\",\"prompt\":\"hi\",\"route\":{\"policy\":\"auto\",\"task\":\"qa\",\"local_only\":true}}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"route\":{\"policy\":\"auto\",\"task\":\"qa\",\"local_only\":true}}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"route\":{\"policy\":\"auto\",\"task\":\"qa\",\"local_only\":true}}",
    };
    for (int k = 0; k < 3; k++) {
        CHECK_EQ_INT(parse(bodies[k], kinds[k], &r, msg), 0);
        const nk_route_req *q = r.ext[SRV_EXT_ROUTE];
        CHECK(q && q->policy == NK_ROUTE_AUTO && q->local_only);
        CHECK_STR(q ? q->task : NULL, "qa");
        srv_gen_request_free(&r);
    }
    CHECK_EQ_INT(parse("{\"model\":\"m\",\"prompt\":\"hi\"}", SRV_GENERATE, &r, msg), 0);
    CHECK(r.ext[SRV_EXT_ROUTE] == NULL);
    srv_gen_request_free(&r);
    CHECK_EQ_INT(parse("{\"model\":\"m\",\"prompt\":\"hi\",\"route\":{\"policy\":\"cloud\"}}", SRV_GENERATE, &r, msg), 400);
    CHECK(strstr(msg, "route.policy") != NULL);
    srv_gen_request_free(&r);
    CHECK_EQ_INT(parse("{\"model\":\"m\",\"prompt\":\"hi\",\"route\":\"auto\"}", SRV_GENERATE, &r, msg), 400);
    srv_gen_request_free(&r);
    NK_TEST_DONE();
}
