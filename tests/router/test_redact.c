/*
 * test_redact.c: each detector on what it must catch and what it must leave alone
 * (numbers failing Luhn or mod-97, dates, versions, C++ scopes), the exact redacted text
 * for a corpus of tricky strings (paths with spaces, keys inside URLs, credentialed URLs,
 * literal placeholders in the input), and exact restoration of every case.
 */
#include "nk_test.h"
#include "router/redact.h"

typedef struct tcase { const char *in, *want; } tcase;

static const tcase k_cases[] = {
    /* emails */
    { "mail alice.smith+tag@example.co.uk now", "mail [EMAIL_1] now" },
    { "not an email: a@b, @home, x@y.z1", "not an email: a@b, @home, x@y.z1" },
    /* cards: Luhn-valid in three spellings; the same digits with the last one changed stay */
    { "card 4111 1111 1111 1111 exp", "card [CARD_1] exp" },
    { "card 4111-1111-1111-1111.", "card [CARD_1]." },
    { "4111111111111111", "[CARD_1]" },
    { "order 4111 1111 1111 1112 failed", "order 4111 1111 1111 1112 failed" },
    { "id 1234567890123456", "id 1234567890123456" },
    { "card 5500 0000 0000 0004 2025", "card [CARD_1] 2025" },
    /* IBANs: valid (DE, GB, with and without spaces); a wrong check digit stays */
    { "IBAN DE89 3704 0044 0532 0130 00 please", "IBAN [IBAN_1] please" },
    { "GB82WEST12345698765432", "[IBAN_1]" },
    { "DE88 3704 0044 0532 0130 00", "DE88 3704 0044 0532 0130 00" },
    /* phones */
    { "call +1 (415) 555-2671 or +49 30 1234567", "call [PHONE_1] or [PHONE_2]" },
    { "office (030) 1234-5678, mobile 0171 2345678", "office [PHONE_1], mobile [PHONE_2]" },
    { "us 415-555-2671 ok", "us [PHONE_1] ok" },
    { "date 2024-12-31, amount 1 000 000, v1.2.3", "date 2024-12-31, amount 1 000 000, v1.2.3" },
    /* IP addresses */
    { "host 192.168.1.20:8080 and 10.0.0.1.", "host [IP_1]:8080 and [IP_2]." },
    { "not ip 999.1.1.1 or 1.2.3.4.5", "not ip 999.1.1.1 or 1.2.3.4.5" },
    { "v6 2001:db8::8a2e:370:7334 and fe80::1, std::vector, 12:30:45",
      "v6 [IP_1] and [IP_2], std::vector, 12:30:45" },
    { "http://[::1]:11434/api", "http://[[IP_1]]:11434/api" },
    /* credentialed URLs, keys inside URLs */
    { "clone https://bob:s3cret@git.example.com/repo.git.",
      "clone [URL_1]." },
    { "GET https://api.example.com/v1/data?api_key=ABCD1234EFGH5678&x=1",
      "GET https://api.example.com/v1/data?api_key=[KEY_1]&x=1" },
    { "see https://example.com/docs/page and https://x.io/?t=sk-abcdefghijklmnopqrstuvwx",
      "see https://example.com/docs/page and https://x.io/?t=[KEY_1]" },
    /* paths: with spaces, quoted, home, Windows; not fractions or and/or */
    { "open /home/alice/My Documents/report.pdf now", "open [PATH_1] now" },
    { "edit \"/Users/bob/Library/Application Support/app/c d.json\" please",
      "edit \"[PATH_1]\" please" },
    { "see ~/notes.txt and ~carol/x/y, then C:\\Users\\Dave Smith\\file.txt.",
      "see [PATH_1] and [PATH_2], then [PATH_3]." },
    { "1/2 and and/or, /etc alone", "1/2 and and/or, /etc alone" },
    /* API keys */
    { "export OPENAI_API_KEY=sk-proj-AbCdEf0123456789AbCdEf0123", "export OPENAI_API_KEY=[KEY_1]" },
    { "token ghp_0123456789abcdefghijABCDEFGHIJ012345 and AKIAIOSFODNN7EXAMPLE",
      "token [KEY_1] and [KEY_2]" },
    { "Authorization: Bearer abcdefghijklmnop0123", "Authorization: Bearer [KEY_1]" },
    { "password: hunter2!! and secret=\"xyz123456\"", "password: [KEY_1] and secret=\"[KEY_2]\"" },
    { "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\nbye",
      "[KEY_1]\nbye" },
    /* the same value twice gets the same placeholder; a literal placeholder is kept */
    { "a@x.org b@x.org a@x.org", "[EMAIL_1] [EMAIL_2] [EMAIL_1]" },
    { "literal [EMAIL_1] then c@x.org", "literal [EMAIL_1] then [EMAIL_2]" },
    /* deny-list (terms "Project Falcon" and "Zorg") */
    { "Project Falcon ships; Zorg says hi to zorg", "[PRIVATE_1] ships; [PRIVATE_2] says hi to zorg" },
    /* non-ASCII around hits */
    { "Grüße an jürgen@example.de — Tel. +41 44 668 18 00 ✓", "Grüße an [EMAIL_1] — Tel. [PHONE_1] ✓" },
    { "", "" },
};

static void test_validators(void) {
    CHECK(nk_luhn_ok("4111111111111111", 16));
    CHECK(!nk_luhn_ok("4111111111111112", 16));
    CHECK(nk_luhn_ok("79927398713", 11));
    CHECK(nk_iban_ok("DE89370400440532013000", 22));
    CHECK(nk_iban_ok("FR14 2004 1010 0505 0001 3M02 606", 33));
    CHECK(!nk_iban_ok("DE89370400440532013001", 22));
    CHECK(!nk_iban_ok("DE89", 4));
}

static void test_corpus(void) {
    static const char *deny[] = { "Project Falcon", "Zorg", "" };
    for (size_t i = 0; i < NK_ARRAY_LEN(k_cases); i++) {
        nk_redactor *r = NULL;
        nook_error err;
        CHECK(nk_redactor_new(deny, 3, &r, &err) == NOOK_OK);
        if (!r) return;
        const char *in = k_cases[i].in;
        char *red = NULL, *back = NULL;
        size_t rl = 0, bl = 0, nh = 0;
        CHECK(nk_redact(r, in, strlen(in), &red, &rl, &nh, &err) == NOOK_OK);
        CHECK_STR(red, k_cases[i].want);
        CHECK((nh > 0) == (strcmp(in, k_cases[i].want) != 0));
        CHECK(nk_unredact(r, red, rl, &back, &bl, &err) == NOOK_OK);
        CHECK_STR(back, in);
        CHECK_EQ_INT(bl, strlen(in));
        nk_free(red);
        nk_free(back);
        nk_redactor_free(r);
    }
}

/* Several messages through one redactor: shared numbering, reservations from a later
 * message respected, counts per type, and an answer that reorders and repeats
 * placeholders (and contains unknown ones) restored exactly. */
static void test_request(void) {
    nk_redactor *r = NULL;
    nook_error err;
    CHECK(nk_redactor_new(NULL, 0, &r, &err) == NOOK_OK);
    const char *m1 = "I am dan@corp.com, card 4111111111111111";
    const char *m2 = "Echo [EMAIL_1] literally; my mail is dan@corp.com";
    CHECK(nk_redact_reserve(r, m1, strlen(m1), &err) == NOOK_OK);
    CHECK(nk_redact_reserve(r, m2, strlen(m2), &err) == NOOK_OK);
    char *a = NULL, *b = NULL, *back = NULL;
    CHECK(nk_redact(r, m1, strlen(m1), &a, NULL, NULL, &err) == NOOK_OK);
    CHECK(nk_redact(r, m2, strlen(m2), &b, NULL, NULL, &err) == NOOK_OK);
    CHECK_STR(a, "I am [EMAIL_2], card [CARD_1]");
    CHECK_STR(b, "Echo [EMAIL_1] literally; my mail is [EMAIL_2]");
    CHECK_EQ_INT(nk_redactor_count(r, NK_RED_EMAIL), 1);
    CHECK_EQ_INT(nk_redactor_count(r, NK_RED_CARD), 1);
    CHECK_EQ_INT(nk_redactor_total(r), 2);
    const char *ans = "[CARD_1] belongs to [EMAIL_2] ([EMAIL_2]); [EMAIL_1] [IP_7] [CARD_1";
    CHECK(nk_unredact(r, ans, strlen(ans), &back, NULL, &err) == NOOK_OK);
    CHECK_STR(back, "4111111111111111 belongs to dan@corp.com (dan@corp.com); [EMAIL_1] [IP_7] [CARD_1");
    nk_free(a); nk_free(b); nk_free(back);
    /* invalid UTF-8 is refused */
    char *x = NULL;
    CHECK(nk_redact(r, "a\xff", 2, &x, NULL, NULL, &err) == NOOK_EINVAL);
    CHECK(x == NULL);
    nk_redactor_free(r);
}

/* Long hostile inputs finish (no catastrophic backtracking) and round-trip. */
static void test_long(void) {
    size_t n = 200000;
    char *s = malloc(n + 1);
    for (size_t i = 0; i < n; i++) s[i] = "1 -./:a@"[i % 8];
    s[n] = 0;
    nk_redactor *r = NULL;
    nook_error err;
    CHECK(nk_redactor_new(NULL, 0, &r, &err) == NOOK_OK);
    char *red = NULL, *back = NULL;
    size_t rl = 0, bl = 0;
    double t0 = nk_time_ms();
    nook_status st = nk_redact(r, s, n, &red, &rl, NULL, &err);
    CHECK(st == NOOK_OK || st == NOOK_ERANGE);
    if (st == NOOK_OK) {
        CHECK(nk_unredact(r, red, rl, &back, &bl, &err) == NOOK_OK);
        CHECK(bl == n && memcmp(back, s, n) == 0);
    }
    CHECK_MSG(nk_time_ms() - t0 < 5000, "took %.0f ms", nk_time_ms() - t0);
    nk_free(red); nk_free(back);
    nk_redactor_free(r);
    free(s);
}

int main(void) {
    test_validators();
    test_corpus();
    test_request();
    test_long();
    NK_TEST_DONE();
}
