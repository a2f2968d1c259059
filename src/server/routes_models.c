/*
 * routes_models.c: what the server says about models: Ollama's /api/show, /api/ps and
 * /api/tags (the loaded models, until the store's own /api/tags replaces it), and
 * OpenAI's /v1/models and /v1/models/{id}.
 */
#include "server/models.h"
#include "convert/convert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void fmt_params(char *buf, size_t cap, uint64_t n) {
    /* Ollama's parameter_size: "8.0B", "596.05M", "260.00K" */
    if (n >= 1000000000ull) snprintf(buf, cap, "%.1fB", (double)n / 1e9);
    else if (n >= 1000000ull) snprintf(buf, cap, "%.2fM", (double)n / 1e6);
    else snprintf(buf, cap, "%.2fK", (double)n / 1e3);
}

json_t *srv_model_show(const char *path, const char *template_override, char *msg, size_t cap) {
    /* Maps the file (cheap: nothing is decoded) to read its metadata. */
    nook_model_params mp = nook_model_default_params();
    nook_model *m = NULL;
    nook_error err = { 0 };
    if (nook_model_load(path, &mp, &m, &err) != NOOK_OK) {
        snprintf(msg, cap, "%s", err.msg);
        return NULL;
    }
    const char *arch = nook_model_arch(m);
    char psize[32], ft[32] = "";
    fmt_params(psize, sizeof psize, nook_model_n_params(m));
    /* quantization_level: general.file_type by llama.cpp's name ("Q4_K_M") */
    if (nook_model_meta_val_str(m, "general.file_type", ft, sizeof ft) > 0) {
        const char *fn = nk_ftype_name(atoi(ft));
        if (fn) snprintf(ft, sizeof ft, "%s", fn);
    }
    json_t *info = json_object();
    json_object_set_new(info, "general.architecture", json_string(arch));
    json_object_set_new(info, "general.name", json_string(nook_model_name(m)));
    json_object_set_new(info, "general.parameter_count", json_integer((json_int_t)nook_model_n_params(m)));
    char key[128];
    snprintf(key, sizeof key, "%s.context_length", arch);
    json_object_set_new(info, key, json_integer(nook_model_n_ctx_train(m)));
    snprintf(key, sizeof key, "%s.embedding_length", arch);
    json_object_set_new(info, key, json_integer(nook_model_n_embd(m)));
    snprintf(key, sizeof key, "%s.block_count", arch);
    json_object_set_new(info, key, json_integer(nook_model_n_layer(m)));
    json_object_set_new(info, "tokenizer.ggml.vocab_size", json_integer(nook_model_n_vocab(m)));
    const char *tmpl = template_override ? template_override : nook_model_chat_template(m);
    json_t *caps = json_pack("[s]", "completion");
    if (tmpl && strstr(tmpl, "<think>")) json_array_append_new(caps, json_string("thinking"));
    if (tmpl && strstr(tmpl, "tools")) json_array_append_new(caps, json_string("tools"));
    json_t *out = json_pack("{s:{s:s,s:s,s:s,s:[s],s:s,s:s},s:o,s:o}", "details", "parent_model", "", "format", "gguf",
                            "family", arch, "families", arch, "parameter_size", psize, "quantization_level", ft,
                            "model_info", info, "capabilities", caps);
    if (out) json_object_set_new(out, "template", json_string(nook_model_chat_template(m) ? nook_model_chat_template(m) : ""));
    nook_model_free(m);
    if (!out) snprintf(msg, cap, "out of memory");
    return out;
}

static void h_show(srv_req *r) {
    json_t *body = srv_req_json(r);
    if (!body) return;
    const json_t *mv = json_object_get(body, "model");
    if (!mv || json_is_null(mv)) mv = json_object_get(body, "name");
    if (!json_is_string(mv) || !json_string_length(mv)) {
        srv_reply_error(r, 400, "model is required");
        return;
    }
    const char *name = json_string_value(mv);
    FILE *f = fopen(name, "rb");
    if (!f) {
        srv_reply_error(r, 404, "model '%s' not found", name);
        return;
    }
    fclose(f);
    char msg[600];
    json_t *out = srv_model_show(name, NULL, msg, sizeof msg);
    if (!out) {
        srv_reply_error(r, 400, "model '%s': %s", name, msg);
        return;
    }
    json_object_set_new(out, "license", json_string(""));
    json_object_set_new(out, "modelfile", json_string(""));
    json_object_set_new(out, "parameters", json_string(""));
    srv_reply_json(r, 200, out);
}

static void h_ps(srv_req *r) {
    srv_reply_json(r, 200, json_pack("{s:o}", "models", srv_models_list(srv_req_server(r), true)));
}

static void h_tags(srv_req *r) {
    srv_reply_json(r, 200, json_pack("{s:o}", "models", srv_models_list(srv_req_server(r), false)));
}

static json_t *oai_model(const char *id) {
    return json_pack("{s:s,s:s,s:I,s:s}", "id", id, "object", "model", "created", (json_int_t)time(NULL), "owned_by",
                     "library");
}

static void h_v1_models(srv_req *r) {
    json_t *list = srv_models_list(srv_req_server(r), false);
    json_t *data = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(list, i, m) json_array_append_new(data, oai_model(json_string_value(json_object_get(m, "name"))));
    json_decref(list);
    srv_reply_json(r, 200, json_pack("{s:s,s:o}", "object", "list", "data", data));
}

static void h_v1_model(srv_req *r) {
    const char *id = srv_req_param(r, 0);
    json_t *list = srv_models_list(srv_req_server(r), false);
    size_t i;
    json_t *m;
    bool found = false;
    json_array_foreach(list, i, m) if (!strcmp(json_string_value(json_object_get(m, "name")), id)) found = true;
    json_decref(list);
    if (found) srv_reply_json(r, 200, oai_model(id));
    else srv_reply_error(r, 404, "model '%s' not found", id);
}

static const srv_route k_routes[] = {
    { "POST", "/api/show",        SRV_API_OLLAMA, 0, h_show },
    { "GET",  "/api/ps",          SRV_API_OLLAMA, 0, h_ps },
    { "GET",  "/api/tags",        SRV_API_OLLAMA, 0, h_tags },
    { "GET",  "/v1/models",       SRV_API_OPENAI, 0, h_v1_models },
    { "GET",  "/v1/models/{id*}", SRV_API_OPENAI, 0, h_v1_model },
};
const srv_route_table srv_routes_models = { k_routes, NK_ARRAY_LEN(k_routes) };
