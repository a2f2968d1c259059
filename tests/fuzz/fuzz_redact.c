/*
 * fuzz_redact.c: the redaction detectors and restoration on any bytes (request text is
 * untrusted): valid UTF-8 must come back exactly from nk_unredact(nk_redact(x)), and
 * nk_unredact must take any bytes (a remote's answer) without failing.
 */
#include "router/redact.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const deny[] = { "Falcon", "x y" };
    nk_redactor *r = NULL;
    nook_error err;
    if (nk_redactor_new(deny, 2, &r, &err) != NOOK_OK) return 0;
    char *red = NULL, *back = NULL;
    size_t rl = 0, bl = 0;
    nook_status st = nk_redact(r, (const char *)data, size, &red, &rl, NULL, &err);
    if (st == NOOK_OK) {
        if (nk_unredact(r, red, rl, &back, &bl, &err) != NOOK_OK) __builtin_trap();
        if (bl != size || memcmp(back, data, size) != 0) __builtin_trap();
    } else if (st != NOOK_EINVAL && st != NOOK_ERANGE) {
        __builtin_trap();
    }
    nk_free(red);
    nk_free(back);
    back = NULL;
    if (nk_unredact(r, (const char *)data, size, &back, &bl, &err) != NOOK_OK) __builtin_trap();
    nk_free(back);
    nk_redactor_free(r);
    return 0;
}
