/*
 * model_defaults.c: a store model's Modelfile settings as the defaults of a generation
 * request (server environment < model < request, as Ollama layers them). The store's
 * nk_model_resolve reads the manifest's params / system / template / messages layers;
 * this file only decides where each goes in the request (request.h).
 */
#include "server/request.h"
#include "store/store.h"

#include <string.h>
#include <sys/stat.h>

/* Whether the conversation already has a system message. */
static bool has_system(const srv_gen_request *q) {
    for (int i = 0; i < q->n_messages; i++)
        if (!strcmp(q->messages[i].role, "system")) return true;
    return false;
}

/* Puts the model's SYSTEM (when the conversation has none) and its MESSAGE turns before
 * the request's messages (none for an empty conversation: Ollama's preload). */
static int prepend_messages(srv_gen_request *q, const char *system, const json_t *turns, char *msg, size_t cap) {
    if (q->n_messages == 0) return 0;   /* a preload stays one */
    bool sys = system && system[0] && !has_system(q);
    size_t n_turns = json_is_array(turns) ? json_array_size(turns) : 0;
    size_t add = (sys ? 1 : 0) + n_turns;
    if (!add) return 0;
    srv_message *m = nk_calloc((size_t)q->n_messages + add, sizeof *m);
    if (!m) { snprintf(msg, cap, "out of memory"); return 500; }
    size_t k = 0;
    bool oom = false;
    if (sys) {
        m[k].role = nk_strdup("system");
        m[k].content = nk_strdup(system);
        oom |= !m[k].role || !m[k].content;
        k++;
    }
    for (size_t i = 0; i < n_turns; i++) {
        const json_t *t = json_array_get(turns, i);
        const char *role = json_string_value(json_object_get(t, "role"));
        const char *content = json_string_value(json_object_get(t, "content"));
        if (!role || !content) continue;   /* the store wrote them; skip what is not a turn */
        m[k].role = nk_strdup(role);
        m[k].content = nk_strdup(content);
        oom |= !m[k].role || !m[k].content;
        k++;
    }
    if (q->n_messages) memcpy(m + k, q->messages, (size_t)q->n_messages * sizeof *m);
    if (oom) {
        for (size_t i = 0; i < k; i++) { nk_free(m[i].role); nk_free(m[i].content); }
        nk_free(m);
        snprintf(msg, cap, "out of memory");
        return 500;
    }
    nk_free(q->messages);   /* the strings moved to m */
    q->messages = m;
    q->n_messages += (int)k;
    return 0;
}

int srv_model_defaults(srv_gen_request *q, char *msg, size_t cap) {
    if (!q->model) return 0;
    struct stat st;
    if (stat(q->model, &st) == 0 && S_ISREG(st.st_mode)) return 0;   /* a GGUF path: no settings */
    nk_store *store = NULL;
    nook_error err = { 0 };
    if (nk_store_open(NULL, &store, &err) != NOOK_OK) return 0;     /* no store: the lookup says 404 */
    nk_model_ref ref;
    memset(&ref, 0, sizeof ref);
    nook_status rs = nk_model_resolve(store, q->model, &ref, &err);
    nk_store_free(store);
    int rc = 0;
    if (rs == NOOK_OK && ref.from_store) {
        char m2[400];
        if ((rc = srv_options_layer(&q->opt, ref.params, m2, sizeof m2)))
            snprintf(msg, cap, "model '%s': its Modelfile's PARAMETER: %s", q->model, m2);
        if (!rc && ref.template_jinja && !q->template_text && !q->raw) {
            q->template_text = nk_strdup(ref.template_jinja);
            if (!q->template_text) { snprintf(msg, cap, "out of memory"); rc = 500; }
        }
        bool chat = q->kind == SRV_CHAT || q->kind == SRV_OAI_CHAT;
        if (!rc && chat) rc = prepend_messages(q, ref.system, ref.messages, msg, cap);
        if (!rc && !chat && ref.system && !q->system && !q->raw && q->kind == SRV_GENERATE) {
            q->system = nk_strdup(ref.system);
            if (!q->system) { snprintf(msg, cap, "out of memory"); rc = 500; }
        }
    }
    nk_model_ref_free(&ref);
    return rc;
}
