/*
 * fuzz_ledger.c: the egress ledger's reader and verifier (nk_ledger_verify_buf) on any
 * bytes: the input up to its first NUL byte is the ledger file, the rest the head file
 * (no NUL: no head). Every line must parse or be reported, never crash or leak.
 */
#include "net/ledger.h"

#include <string.h>

static bool count_line(json_t *obj, const char *line, size_t len, void *ud) {
    (void)obj; (void)line;
    *(size_t *)ud += len;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *d = (const char *)data;
    const char *nul = memchr(d, 0, size);
    size_t len = nul ? (size_t)(nul - d) : size;
    const char *head = nul ? nul + 1 : NULL;
    size_t head_len = nul ? size - len - 1 : 0;
    nk_ledger_report rep;
    nook_error err;
    size_t total = 0;
    if (nk_ledger_verify_buf(d, len, head, head_len, count_line, &total, &rep, &err) == NOOK_OK) {
        if (rep.ok && rep.lines > 0 && rep.last_hash[0] == 0) __builtin_trap();
        if (total > len) __builtin_trap();
    }
    return 0;
}
