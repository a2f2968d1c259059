/*
 * fuzz_store_modelfile.c: libFuzzer target for the Modelfile parser and the Go-template
 * translation of its TEMPLATE (src/store/modelfile.c, gotmpl.c): no crash, no leak, and
 * whatever is accepted is well-formed (FROM present, params an object, messages an array).
 */
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nk_modelfile mf;
    nook_error err;
    if (nk_modelfile_parse((const char *)data, size, &mf, &err) == NOOK_OK) {
        if (!mf.from || !json_is_object(mf.params) || !json_is_array(mf.messages)) abort();
        char *j = NULL;
        if (mf.tmpl && nk_gotmpl_to_jinja(mf.tmpl, &j, &err) == NOOK_OK) nk_free(j);
        nk_modelfile_free(&mf);
    }
    /* the whole input as a template too */
    char *t = nk_strndup((const char *)data, size);
    if (t) {
        char *j = NULL;
        if (nk_gotmpl_to_jinja(t, &j, &err) == NOOK_OK) nk_free(j);
        nk_free(t);
    }
    return 0;
}
