/*
 * redact.h: deterministic redaction of personal data and secrets before a request
 * leaves the machine, and exact restoration in the answer.
 *
 * Detectors (docs/privacy.md lists each pattern and its validator):
 *   EMAIL   addresses                        PHONE  numbers with 7-15 digits in phone shapes
 *   IBAN    country+check digits, mod-97 = 1 CARD   13-19 digits passing Luhn
 *   IP      IPv4 (octets <= 255), IPv6 (inet_pton)
 *   URL     URLs carrying credentials (scheme://user[:pass]@host...)
 *   PATH    absolute Unix paths (2+ segments), home paths (~/..., ~user/...), Windows drive paths
 *   KEY     common API-key shapes (sk-, ghp_, github_pat_, AKIA, AIza, xox?-, glpat-, hf_,
 *           JWTs, PEM private keys, "Bearer X", and the value of key=/token=/secret=/password=)
 *   PRIVATE a term of the user's deny-list (exact, case-sensitive)
 * Each hit is replaced by a typed placeholder, "[EMAIL_1]", "[CARD_2]"; one redactor maps
 * the same original to the same placeholder across all the messages of a request, and
 * never hands out a placeholder that already occurs in the text (those are reserved), so
 * nk_unredact restores the original bytes exactly.
 *
 * Overlaps: matches are taken left to right; at the same start the longer one wins (a
 * credentialed URL containing a key is one URL; a key inside a plain URL is a key).
 *
 * Threads: the compiled patterns are shared and immutable; a redactor is used by one
 * thread at a time.
 */
#ifndef NOOK_ROUTER_REDACT_H
#define NOOK_ROUTER_REDACT_H

#include "base/base.h"

typedef enum nk_redact_type {
    NK_RED_EMAIL, NK_RED_PHONE, NK_RED_IBAN, NK_RED_CARD, NK_RED_IP, NK_RED_URL,
    NK_RED_PATH, NK_RED_KEY, NK_RED_PRIVATE,
    NK_RED_NTYPES
} nk_redact_type;

/* "EMAIL", "PHONE", ... (the placeholder's prefix). */
const char *nk_redact_type_name(nk_redact_type t);

typedef struct nk_redactor nk_redactor;

/* deny: n_deny terms (copied; empty strings ignored). Errors: NOOK_ENOMEM, NOOK_EINTERNAL
 * (a pattern failed to compile: a bug). */
nook_status nk_redactor_new(const char *const *deny, size_t n_deny, nk_redactor **out,
                            nook_error *err);
void nk_redactor_free(nk_redactor *r);

/* Marks placeholder-shaped strings already present in text as taken, so no hit gets
 * them. nk_redact does this for its own input; call it first on every message of a
 * request when they are redacted one by one (an earlier message must not receive a
 * placeholder that a later message contains literally). */
nook_status nk_redact_reserve(nk_redactor *r, const char *text, size_t len, nook_error *err);

/* Redacts text[0..len) into a fresh nk_malloc'd, NUL-terminated *out (*out_len without
 * the NUL). *n_hits (optional) receives the number of spans replaced in this text.
 * Errors: NOOK_ENOMEM, NOOK_EINVAL (invalid UTF-8 is refused with its offset). */
nook_status nk_redact(nk_redactor *r, const char *text, size_t len, char **out,
                      size_t *out_len, size_t *n_hits, nook_error *err);

/* Replaces every placeholder this redactor handed out by its original (others, and
 * text that only resembles one, stay as they are). Fresh nk_malloc'd *out. */
nook_status nk_unredact(const nk_redactor *r, const char *text, size_t len, char **out,
                        size_t *out_len, nook_error *err);

/* Distinct originals replaced so far, per type and in all. */
size_t nk_redactor_count(const nk_redactor *r, nk_redact_type t);
size_t nk_redactor_total(const nk_redactor *r);

/* Validators, exposed for tests: digits only (separators skipped). */
bool nk_luhn_ok(const char *s, size_t len);
bool nk_iban_ok(const char *s, size_t len);

#endif /* NOOK_ROUTER_REDACT_H */
