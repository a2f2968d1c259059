/*
 * test_store.c: the store's parsers and rules without a network: names (Ollama's forms,
 * defaults, strict parts, nothing that could leave the store), digests, manifests
 * (valid, malformed, hostile), Modelfiles, Go-template translation, and a store built
 * on disk by hand (Ollama's layout: list, resolve with settings, copy, remove + GC).
 */
#include "store/store_internal.h"
#include "net/net.h"
#include "nk_test.h"

#include <sys/stat.h>

static const char *HEX = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static void names(void) {
    nk_name n;
    CHECK(nk_name_parse("qwen3", &n, NULL) == NOOK_OK);
    CHECK_STR(n.host, "registry.ollama.ai");
    CHECK_STR(n.ns, "library");
    CHECK_STR(n.model, "qwen3");
    CHECK_STR(n.tag, "latest");
    char d[512];
    nk_name_display(&n, d, sizeof d);
    CHECK_STR(d, "qwen3:latest");
    CHECK(nk_name_parse("qwen3:8b", &n, NULL) == NOOK_OK);
    CHECK_STR(n.tag, "8b");
    CHECK(nk_name_parse("user/model:tag", &n, NULL) == NOOK_OK);
    CHECK_STR(n.ns, "user");
    nk_name_display(&n, d, sizeof d);
    CHECK_STR(d, "user/model:tag");
    CHECK(nk_name_parse("example.com:5000/ns/m:t", &n, NULL) == NOOK_OK);
    CHECK_STR(n.host, "example.com:5000");
    CHECK_STR(n.tag, "t");
    CHECK(nk_name_parse("localhost:5000/ns/m", &n, NULL) == NOOK_OK);
    CHECK_STR(n.host, "localhost:5000");
    CHECK_STR(n.tag, "latest");
    CHECK(nk_name_parse("hf.co/bartowski/Qwen3-8B-GGUF:Q4_K_M", &n, NULL) == NOOK_OK);
    CHECK(nk_name_is_hf(&n));
    CHECK_STR(n.model, "Qwen3-8B-GGUF");
    CHECK_STR(n.tag, "Q4_K_M");
    CHECK(nk_name_parse("Qwen3:8B", &n, NULL) == NOOK_OK);   /* case kept, matched case-insensitively */
    CHECK_STR(n.model, "Qwen3");
    char at[128];
    snprintf(at, sizeof at, "m@sha256:%s", HEX);
    CHECK(nk_name_parse(at, &n, NULL) == NOOK_OK);
    CHECK(strcmp(n.digest + 7, HEX) == 0);
    CHECK(nk_name_parse("http://127.0.0.1:1/a/b:c", &n, NULL) == NOOK_OK);
    CHECK_STR(n.scheme, "http");
    /* refused: anything that could become a path outside the store */
    const char *bad[] = { "", "..", "../x", "a/../b", "./x", "/abs", "x/", "a//b", "a:b:c", "ns/.hidden",
                          "a/b/c/d", ".x", "x:..", "x:.t", "m:-t", "h/n/m:t/x", "bad space", "ünïcode",
                          "ftp://h/n/m", "m@sha256:xyz", "x\\y", "x%2f", NULL };
    for (int i = 0; bad[i]; i++) {
        nook_error err = { 0 };
        CHECK_MSG(nk_name_parse(bad[i], &n, &err) == NOOK_EINVAL, "'%s' accepted", bad[i]);
    }
    char longname[200];
    memset(longname, 'a', 81);
    longname[81] = 0;
    CHECK(nk_name_parse(longname, &n, NULL) == NOOK_EINVAL);

    char dg[80];
    snprintf(dg, sizeof dg, "sha256:%s", HEX);
    CHECK(nk_digest_valid(dg));
    dg[10] = 'A';
    CHECK(!nk_digest_valid(dg));
    CHECK(!nk_digest_valid("sha256:../../etc/passwd"));
    CHECK(!nk_digest_valid("sha512:00"));
}

static void manifests(void) {
    char good[1024];
    snprintf(good, sizeof good,
             "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\",\"digest\":\"sha256:%s\",\"size\":10},"
             "\"layers\":[{\"mediaType\":\"%s\",\"digest\":\"sha256:%s\",\"size\":123456789012}]}",
             NK_MT_MANIFEST, NK_MT_CONFIG, HEX, NK_MT_MODEL, HEX);
    nk_manifest m;
    CHECK(nk_manifest_parse(good, strlen(good), &m, NULL) == NOOK_OK);
    CHECK_EQ_INT(m.n_layers, 1);
    CHECK(m.layers[0].size == 123456789012ull);
    CHECK(nk_manifest_find(&m, NK_MT_MODEL) != NULL);
    char *j = nk_manifest_json(&m);
    nk_manifest m2;
    CHECK(j && nk_manifest_parse(j, strlen(j), &m2, NULL) == NOOK_OK);
    if (j) nk_manifest_free(&m2);
    nk_free(j);
    nk_manifest_free(&m);
    const char *bad[] = {
        "", "[]", "{}", "{\"schemaVersion\":1}", "not json",
        "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:../../x\",\"size\":1},\"layers\":[]}",
        "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:0\",\"size\":-1},\"layers\":[]}",
        "{\"schemaVersion\":2,\"schemaVersion\":2}",
        NULL };
    for (int i = 0; bad[i]; i++) {
        nook_error err = { 0 };
        CHECK_MSG(nk_manifest_parse(bad[i], strlen(bad[i]), &m, &err) != NOOK_OK, "manifest %d accepted", i);
    }
    /* a text layer over the cap */
    char big[1024];
    snprintf(big, sizeof big,
             "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"%s\",\"digest\":\"sha256:%s\",\"size\":99999999},\"layers\":[]}",
             NK_MT_CONFIG, HEX);
    nook_error err = { 0 };
    CHECK(nk_manifest_parse(big, strlen(big), &m, &err) == NOOK_ERANGE);
}

static void modelfiles(void) {
    const char *txt =
        "# comment\n"
        "from ./model.gguf\n"
        "PARAMETER temperature 0.2\n"
        "PARAMETER stop \"<|im_end|>\"\n"
        "PARAMETER stop <eos>\n"
        "PARAMETER num_ctx 4096\n"
        "SYSTEM \"\"\"line one\nline two\"\"\"\n"
        "TEMPLATE \"{{ .Prompt }}\"\n"
        "MESSAGE user Hello\n"
        "MESSAGE Assistant \"Hi \\\"there\\\"\"\n"
        "LICENSE MIT\n"
        "LICENSE \"\"\"Apache\"\"\"\n"
        "REQUIRES 0.5.0\n";
    nk_modelfile mf;
    nook_error err = { 0 };
    CHECK(nk_modelfile_parse(txt, strlen(txt), &mf, &err) == NOOK_OK);
    CHECK_STR(mf.from, "./model.gguf");
    CHECK_STR(mf.system, "line one\nline two");
    CHECK_STR(mf.tmpl, "{{ .Prompt }}");
    CHECK_STR(mf.license, "MIT\n\nApache");
    CHECK_STR(mf.requires, "0.5.0");
    CHECK(json_is_real(json_object_get(mf.params, "temperature")));
    CHECK_EQ_INT(json_integer_value(json_object_get(mf.params, "num_ctx")), 4096);
    CHECK_EQ_INT(json_array_size(json_object_get(mf.params, "stop")), 2);
    CHECK_EQ_INT(json_array_size(mf.messages), 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(mf.messages, 1), "role")), "assistant");
    CHECK_STR(json_string_value(json_object_get(json_array_get(mf.messages, 1), "content")), "Hi \"there\"");
    nk_modelfile_free(&mf);
    const char *bad[] = { "PARAMETER temperature 0.2\n", "FROM x\nPARAMETER temperature hot\n", "FROM x\nPARAMETER nosuch 1\n",
                          "FROM x\nFOO bar\n", "FROM x\nSYSTEM \"\"\"never closed\n", "FROM x\nMESSAGE robot hi\n",
                          "FROM x\nSYSTEM \"open\n", NULL };
    for (int i = 0; bad[i]; i++) {
        err = (nook_error){ 0 };
        CHECK_MSG(nk_modelfile_parse(bad[i], strlen(bad[i]), &mf, &err) == NOOK_EFORMAT, "modelfile %d accepted", i);
        CHECK(strstr(err.msg, "Modelfile") != NULL);
    }
    const char *ad = "FROM x\nADAPTER ./lora.gguf\n";
    CHECK(nk_modelfile_parse(ad, strlen(ad), &mf, &err) == NOOK_OK);
    CHECK_STR(mf.adapter, "./lora.gguf");
    nk_modelfile_free(&mf);
}

static void gotemplates(void) {
    char *j = NULL;
    nook_error err = { 0 };
    CHECK(nk_gotmpl_to_jinja("{{ if .System }}<|system|>{{ .System }}{{ end }}<|user|>{{ .Prompt }}<|assistant|>", &j, &err) == NOOK_OK);
    CHECK(j && strstr(j, "{% if ns.system %}") && strstr(j, "{{ ns.prompt }}"));
    nk_free(j);
    CHECK(nk_gotmpl_to_jinja("{{- range .Messages }}<|{{ .Role }}|>\n{{ .Content }}\n{{- if eq .Role \"user\" }}!{{ else }}?{{ end }}{{ end }}", &j, &err) == NOOK_OK);
    CHECK(j && strstr(j, "{% for m in messages %}") && strstr(j, "m.role == 'user'"));
    nk_free(j);
    j = NULL;
    CHECK(nk_gotmpl_to_jinja("{{ if .Tools }}x{{ end }}", &j, &err) == NOOK_EUNSUPPORTED);
    CHECK(strstr(err.msg, ".Tools") != NULL);
    CHECK(nk_gotmpl_to_jinja("{{ range .Messages }}", &j, &err) == NOOK_EFORMAT);
    CHECK(nk_gotmpl_to_jinja("{{ .Prompt ", &j, &err) == NOOK_EFORMAT);
    CHECK(nk_gotmpl_to_jinja("{{ json .Tools }}", &j, &err) == NOOK_EUNSUPPORTED);
}

/* A store built by hand in Ollama's layout: list, resolve, copy, remove + GC. */
static void on_disk(void) {
    char root[] = "/tmp/nook-store-test-XXXXXX";
    if (!mkdtemp(root)) { CHECK(0); return; }
    nk_store *s = NULL;
    CHECK(nk_store_open(root, &s, NULL) == NOOK_OK);
    if (!s) return;
    const char *models = getenv("NOOK_TEST_MODELS");
    char gguf[4096];
    snprintf(gguf, sizeof gguf, "%s/stories260K.gguf", models ? models : "../shared/models");
    struct stat st;
    if (stat(gguf, &st) != 0) { printf("note: %s absent, on-disk part skipped\n", gguf); nk_store_free(s); return; }
    nk_manifest m = { 0 };
    nk_layer ls[3];
    memset(ls, 0, sizeof ls);
    m.layers = ls;
    m.n_layers = 3;
    snprintf(ls[0].media_type, sizeof ls[0].media_type, "%s", NK_MT_MODEL);
    CHECK(nk_store_add_blob_file(s, gguf, NULL, ls[0].digest, &ls[0].size, NULL) == NOOK_OK);
    snprintf(ls[1].media_type, sizeof ls[1].media_type, "%s", NK_MT_SYSTEM);
    CHECK(nk_store_add_blob_buf(s, "Be brief.", 9, ls[1].digest, NULL) == NOOK_OK);
    ls[1].size = 9;
    snprintf(ls[2].media_type, sizeof ls[2].media_type, "%s", NK_MT_PARAMS);
    const char *pj = "{\"temperature\":0.5,\"stop\":[\"x\"]}";
    CHECK(nk_store_add_blob_buf(s, pj, strlen(pj), ls[2].digest, NULL) == NOOK_OK);
    ls[2].size = strlen(pj);
    CHECK(nk_store_add_config(s, gguf, NULL, &m.config, NULL) == NOOK_OK);
    nk_name n;
    nk_name_parse("Tiny:Latest", &n, NULL);
    CHECK(nk_store_write_manifest(s, &n, &m, NULL) == NOOK_OK);
    /* wrong declared size: refused */
    ls[1].size = 10;
    nk_name n2;
    nk_name_parse("bad", &n2, NULL);
    nook_error err = { 0 };
    CHECK(nk_store_write_manifest(s, &n2, &m, &err) == NOOK_EFORMAT);
    ls[1].size = 9;

    nk_model_ref r;
    CHECK(nk_model_resolve(s, "tiny", &r, &err) == NOOK_OK);   /* case-insensitive */
    CHECK(r.from_store);
    CHECK_STR(r.system, "Be brief.");
    CHECK(json_real_value(json_object_get(r.params, "temperature")) == 0.5);
    char hex[65];
    nk_sha256_file(r.path, hex, NULL);
    CHECK(strcmp(hex, ls[0].digest + 7) == 0);
    char *mfile = nk_modelfile_render(&r);
    CHECK(mfile && strstr(mfile, "PARAMETER temperature 0.5") && strstr(mfile, "SYSTEM \"\"\"Be brief.\"\"\""));
    nk_free(mfile);
    nk_model_ref_free(&r);
    CHECK(nk_model_resolve(s, gguf, &r, NULL) == NOOK_OK);   /* a path stays a path */
    CHECK(!r.from_store && strcmp(r.path, gguf) == 0);
    nk_model_ref_free(&r);
    CHECK(nk_model_resolve(s, "nosuch", &r, &err) == NOOK_ENOTFOUND);

    nk_name c;
    nk_name_parse("me/copy:v1", &c, NULL);
    CHECK(nk_store_copy(s, &n, &c, NULL) == NOOK_OK);
    nk_store_entry *v = NULL;
    int cnt = 0;
    nk_store_list(s, &v, &cnt, NULL);
    CHECK_EQ_INT(cnt, 2);
    bool saw = false;
    for (int i = 0; i < cnt; i++) saw |= strcmp(v[i].name, "me/copy:v1") == 0;
    CHECK(saw);
    nk_free(v);
    CHECK(nk_store_remove(s, &n, NULL) == NOOK_OK);
    CHECK(nk_store_has_blob(s, ls[0].digest, NULL));      /* the copy still uses it */
    CHECK(nk_store_remove(s, &c, NULL) == NOOK_OK);
    CHECK(!nk_store_has_blob(s, ls[0].digest, NULL));
    CHECK(!nk_store_has_blob(s, m.config.digest, NULL));
    CHECK(nk_store_remove(s, &c, &err) == NOOK_ENOTFOUND);
    /* a blob whose bytes do not match the digest asked for is not kept */
    char want[80];
    snprintf(want, sizeof want, "sha256:%s", HEX);
    CHECK(nk_store_add_blob_file(s, gguf, want, ls[0].digest, NULL, &err) == NOOK_EFORMAT);
    CHECK(!nk_store_has_blob(s, want, NULL));
    nk_store_free(s);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0);
}

int main(void) {
    names();
    manifests();
    modelfiles();
    gotemplates();
    on_disk();
    NK_TEST_DONE();
}
