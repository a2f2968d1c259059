/*
 * fuzz_store_name.c: libFuzzer target for model-name parsing (src/store/name.c). Every
 * accepted name must consist of parts that are single safe path components (never
 * "." or "..", no '/', no NUL), and its display form must parse back to the same name.
 * Names compare case-insensitively, as Ollama's do (the store finds manifests that way),
 * and the display drops a default host or namespace in any case ("liBrary/sh" shows as
 * "sh:latest"), so the parts are compared with strcasecmp.
 */
#include "store/store.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void safe_part(const char *p) {
    if (!p[0] || strcmp(p, ".") == 0 || strcmp(p, "..") == 0 || strchr(p, '/') || p[0] == '.') abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char buf[2048];
    if (size >= sizeof buf) return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    nk_name n;
    nook_error err;
    if (nk_name_parse(buf, &n, &err) != NOOK_OK) return 0;
    safe_part(n.host);
    safe_part(n.ns);
    safe_part(n.model);
    safe_part(n.tag);
    if (n.digest[0] && !nk_digest_valid(n.digest)) abort();
    char d[1024];
    nk_name_display(&n, d, sizeof d);
    nk_name m;
    if (nk_name_parse(d, &m, &err) != NOOK_OK) abort();
    if (strcasecmp(m.host, n.host) || strcasecmp(m.ns, n.ns) || strcmp(m.model, n.model) || strcmp(m.tag, n.tag)) abort();
    return 0;
}
