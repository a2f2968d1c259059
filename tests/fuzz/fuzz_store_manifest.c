/*
 * fuzz_store_manifest.c: libFuzzer target for the manifest parser (src/store/manifest.c),
 * which reads what registries send. An accepted manifest has only valid digests and
 * capped text layers, and serializes to JSON that parses back to the same layers.
 */
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nk_manifest m;
    nook_error err;
    if (nk_manifest_parse((const char *)data, size, &m, &err) != NOOK_OK) return 0;
    if (!nk_digest_valid(m.config.digest)) abort();
    for (int i = 0; i < m.n_layers; i++)
        if (!nk_digest_valid(m.layers[i].digest)) abort();
    char *j = nk_manifest_json(&m);
    if (j) {
        nk_manifest m2;
        if (nk_manifest_parse(j, strlen(j), &m2, &err) != NOOK_OK) abort();
        if (m2.n_layers != m.n_layers) abort();
        for (int i = 0; i < m.n_layers; i++)
            if (strcmp(m.layers[i].digest, m2.layers[i].digest) || m.layers[i].size != m2.layers[i].size) abort();
        nk_manifest_free(&m2);
        nk_free(j);
    }
    nk_manifest_free(&m);
    return 0;
}
