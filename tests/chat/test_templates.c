/*
 * test_templates.c: the chat-template interpreter against Python jinja2 (HF settings).
 *
 * 1. Every template in tests/data/chat/templates x every conversation in
 *    tests/data/chat/conversations must render byte-identically to the golden jinja2 wrote
 *    (goldens/<template>__<conversation>.txt), or fail where jinja2 raised (.err).
 * 2. goldens/snippets.json: small templates exercising one construct each (operators,
 *    filters, tests, methods, whitespace control, scoping), with jinja2's output or error.
 * Goldens come from tools/chat_goldens/make_goldens.py. Runs from the source root.
 */
#include "nk_test.h"
#include "chat/chat.h"

#include <dirent.h>
#include <jansson.h>

static char *slurp(const char *path, size_t *len) {
    char *s = NULL;
    size_t n = 0;
    nook_error err;
    if (nk_read_file(path, &s, &n, &err) != NOOK_OK) return NULL;
    if (len) *len = n;
    return s;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted basenames (without ext) of the files in dir ending in ext. */
static int list_dir(const char *dir, const char *ext, char ***out) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    char **v = NULL;
    int n = 0;
    struct dirent *e;
    size_t el = strlen(ext);
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l <= el || strcmp(e->d_name + l - el, ext)) continue;
        v = realloc(v, (size_t)(n + 1) * sizeof *v);
        v[n++] = strndup(e->d_name, l - el);
    }
    closedir(d);
    qsort(v, (size_t)n, sizeof *v, cmp_str);
    *out = v;
    return n;
}

static void first_diff(const char *a, size_t na, const char *b, size_t nb) {
    size_t i = 0;
    while (i < na && i < nb && a[i] == b[i]) i++;
    size_t from = i > 40 ? i - 40 : 0;
    fprintf(stderr, "  first difference at byte %zu (got %zu bytes, want %zu)\n  got : ", i, na, nb);
    for (size_t k = from; k < na && k < i + 40; k++) fputc(a[k] == '\n' ? '|' : a[k], stderr);
    fprintf(stderr, "\n  want: ");
    for (size_t k = from; k < nb && k < i + 40; k++) fputc(b[k] == '\n' ? '|' : b[k], stderr);
    fputc('\n', stderr);
}

static void set_now(nk_chat_options *o, json_t *now) {
    if (!json_is_array(now) || json_array_size(now) != 6) return;
    o->now.set = true;
    o->now.year = (int)json_integer_value(json_array_get(now, 0));
    o->now.month = (int)json_integer_value(json_array_get(now, 1));
    o->now.day = (int)json_integer_value(json_array_get(now, 2));
    o->now.hour = (int)json_integer_value(json_array_get(now, 3));
    o->now.minute = (int)json_integer_value(json_array_get(now, 4));
    o->now.second = (int)json_integer_value(json_array_get(now, 5));
}

static void test_model_templates(void) {
    const char *base = "tests/data/chat";
    char **tmpl, **conv, path[512];
    int nt = list_dir("tests/data/chat/templates", ".jinja", &tmpl);
    int nc = list_dir("tests/data/chat/conversations", ".json", &conv);
    CHECK(nt >= 6);
    CHECK(nc >= 10);
    int pairs = 0;
    for (int i = 0; i < nt; i++) {
        snprintf(path, sizeof path, "%s/templates/%s.jinja", base, tmpl[i]);
        size_t slen;
        char *src = slurp(path, &slen);
        CHECK_MSG(src != NULL, "%s", path);
        if (!src) continue;
        nk_chat_template *t = NULL;
        nook_error err;
        nook_status rc = nk_chat_compile(src, slen, NULL, &t, &err);
        CHECK_MSG(rc == NOOK_OK, "%s: %s", tmpl[i], err.msg);
        snprintf(path, sizeof path, "%s/templates/%s.json", base, tmpl[i]);
        json_t *meta = json_load_file(path, 0, NULL);
        for (int j = 0; t && j < nc; j++) {
            snprintf(path, sizeof path, "%s/conversations/%s.json", base, conv[j]);
            json_t *c = json_load_file(path, 0, NULL);
            CHECK_MSG(c != NULL, "%s", path);
            if (!c) continue;
            json_t *kw = meta ? json_deep_copy(meta) : json_object();
            json_t *ck = json_object_get(c, "kwargs");
            if (ck) json_object_update(kw, ck);
            json_object_set(kw, "add_generation_prompt", json_object_get(c, "add_generation_prompt") ?
                            json_object_get(c, "add_generation_prompt") : json_false());
            nk_chat_options o = {0};
            set_now(&o, json_object_get(c, "now"));
            char *out = NULL;
            size_t olen = 0;
            rc = nk_chat_render_compiled(t, json_object_get(c, "messages"), json_object_get(c, "tools"), kw,
                                         &o, &out, &olen, &err);
            snprintf(path, sizeof path, "%s/goldens/%s__%s.txt", base, tmpl[i], conv[j]);
            size_t glen;
            char *golden = slurp(path, &glen);
            if (golden) {
                bool same = rc == NOOK_OK && olen == glen && memcmp(out, golden, glen) == 0;
                CHECK_MSG(same, "%s__%s: %s", tmpl[i], conv[j], rc ? err.msg : "output differs");
                if (!same && rc == NOOK_OK) first_diff(out, olen, golden, glen);
                free(golden);
            } else {
                snprintf(path, sizeof path, "%s/goldens/%s__%s.err", base, tmpl[i], conv[j]);
                char *e = slurp(path, NULL);
                CHECK_MSG(e != NULL, "no golden for %s__%s", tmpl[i], conv[j]);
                CHECK_MSG(rc != NOOK_OK, "%s__%s: jinja2 raised (%s) but we rendered", tmpl[i], conv[j], e ? e : "");
                /* a raise_exception message must come through */
                if (e && rc && strncmp(e, "TemplateError: ", 15) == 0) {
                    char want[256];
                    snprintf(want, sizeof want, "%.*s", (int)strcspn(e + 15, "\n"), e + 15);
                    CHECK_MSG(strstr(err.msg, want) != NULL, "%s__%s: message '%s' lacks '%s'", tmpl[i], conv[j], err.msg, want);
                }
                free(e);
            }
            pairs++;
            nk_free(out);
            json_decref(kw);
            json_decref(c);
        }
        json_decref(meta);
        nk_chat_template_free(t);
        nk_free(src);
    }
    printf("template x conversation pairs checked: %d\n", pairs);
    for (int i = 0; i < nt; i++) free(tmpl[i]);
    for (int i = 0; i < nc; i++) free(conv[i]);
    free(tmpl);
    free(conv);
}

static void test_snippets(void) {
    json_t *all = json_load_file("tests/data/chat/goldens/snippets.json", 0, NULL);
    CHECK(json_is_array(all));
    if (!all) return;
    size_t i;
    json_t *sn;
    int n = 0;
    json_array_foreach(all, i, sn) {
        const char *t = json_string_value(json_object_get(sn, "t"));
        json_t *ctx = json_object_get(sn, "ctx");
        json_t *msgs = json_object_get(ctx, "messages");
        json_t *empty = json_array();
        char *out = NULL;
        nook_error err;
        nook_status rc = nk_chat_render(t, msgs ? msgs : empty, json_object_get(ctx, "tools"), ctx, &out, &err);
        json_t *want = json_object_get(sn, "out");
        if (json_object_get(sn, "divergence")) {
            /* documented difference from jinja2: must be a clean "unsupported"/"limit" error */
            CHECK_MSG(rc == NOOK_EUNSUPPORTED || rc == NOOK_ERANGE, "snippet %zu %s: want a clean error (%s)", i, t,
                      json_string_value(json_object_get(sn, "divergence")));
        } else if (want) {
            bool same = rc == NOOK_OK && strcmp(out, json_string_value(want)) == 0;
            CHECK_MSG(same, "snippet %zu %s: got [%s]%s want [%s]", i, t, rc ? err.msg : out, rc ? " (error)" : "",
                      json_string_value(want));
        } else {
            CHECK_MSG(rc != NOOK_OK, "snippet %zu %s: jinja2 raised (%s) but we rendered [%s]", i, t,
                      json_string_value(json_object_get(sn, "err")), out);
        }
        n++;
        nk_free(out);
        json_decref(empty);
    }
    printf("snippets checked: %d\n", n);
    json_decref(all);
}

int main(void) {
    test_model_templates();
    test_snippets();
    NK_TEST_DONE();
}
