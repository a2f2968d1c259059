/*
 * text.c: the public tokenizer entry points (thin wrappers over nk_vocab) and the
 * streaming detokenizer, which releases only complete UTF-8 characters.
 */
#include "model/arch.h"

#include <string.h>

nook_status nook_tokenize(const nook_model *m, const char *text, size_t len,
                          bool add_special, bool parse_special,
                          nook_token *out, size_t cap, size_t *n_out, nook_error *err) {
    if (!m || (!text && len) || (!out && cap) || !n_out)
        return nk_fail(err, NOOK_EINVAL, "nook_tokenize: NULL argument");
    return nk_vocab_tokenize(m->vocab, text ? text : "", len, add_special, parse_special, out, cap, n_out, err);
}

int nook_token_to_piece(const nook_model *m, nook_token tok, bool special, char *buf, size_t cap) {
    if (!m || (!buf && cap)) return -1;
    return nk_vocab_piece(m->vocab, tok, special, buf, cap);
}

nook_token nook_token_bos(const nook_model *m) { return nk_vocab_bos(m->vocab); }
nook_token nook_token_eos(const nook_model *m) { return nk_vocab_eos(m->vocab); }
bool nook_token_is_eog(const nook_model *m, nook_token tok) { return nk_vocab_is_eog(m->vocab, tok); }

/* ---- streaming detokenizer ---------------------------------------------------------
 * A byte-at-a-time UTF-8 decoder. pending holds the start of a character that may
 * still complete; a byte that cannot continue it releases U+FFFD for the pending
 * bytes (one per maximal invalid subpart, as the Unicode standard recommends) and is
 * then looked at afresh. */

typedef struct out_buf {
    char *p;
    size_t cap, n;
} out_buf;

static void emit(out_buf *o, const char *s, size_t n) {
    /* keep one byte for the NUL; a full buffer drops the rest (documented cap) */
    if (o->cap == 0) return;
    size_t room = o->cap - 1 - o->n;
    if (n > room) n = room;
    memcpy(o->p + o->n, s, n);
    o->n += n;
}

static void emit_fffd(out_buf *o) { emit(o, "\xEF\xBF\xBD", 3); }

/* Length of the character a lead byte starts (0: not a lead byte). */
static int lead_len(uint8_t c) {
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) return 3;
    if (c >= 0xF0 && c <= 0xF4) return 4;
    return 0;
}

/* Whether b may follow the bytes in pending (n >= 1 of them). The second byte has
 * tighter bounds after E0, ED, F0 and F4 (no overlongs, surrogates or > U+10FFFF). */
static bool continues(const char *pending, int n, uint8_t b) {
    if ((b & 0xC0) != 0x80) return false;
    if (n != 1) return true;
    switch ((uint8_t)pending[0]) {
    case 0xE0: return b >= 0xA0;
    case 0xED: return b <= 0x9F;
    case 0xF0: return b >= 0x90;
    case 0xF4: return b <= 0x8F;
    default: return true;
    }
}

static void detok_byte(nook_detok *d, out_buf *o, uint8_t b) {
    if (d->n_pending > 0) {
        if (continues(d->pending, d->n_pending, b)) {
            d->pending[d->n_pending++] = (char)b;
            if (d->n_pending == lead_len((uint8_t)d->pending[0])) {
                emit(o, d->pending, (size_t)d->n_pending);
                d->n_pending = 0;
            }
            return;
        }
        emit_fffd(o);
        d->n_pending = 0;
    }
    const int n = lead_len(b);
    if (n == 1) {
        char c = (char)b;
        emit(o, &c, 1);
    } else if (n == 0) {
        emit_fffd(o);
    } else {
        d->pending[0] = (char)b;
        d->n_pending = 1;
    }
}

void nook_detok_init(nook_detok *d, const nook_model *m, bool special) {
    memset(d, 0, sizeof *d);
    d->model = m;
    d->special = special;
}

size_t nook_detok_push(nook_detok *d, nook_token tok, char *buf, size_t cap) {
    out_buf o = { .p = buf, .cap = cap, .n = 0 };
    char piece[1024];
    int n = nook_token_to_piece(d->model, tok, d->special, piece, sizeof piece);
    if (n > (int)sizeof piece) n = (int)sizeof piece;   /* no real token is this long */
    for (int i = 0; i < n; i++) detok_byte(d, &o, (uint8_t)piece[i]);
    if (cap) buf[o.n] = 0;
    return o.n;
}

size_t nook_detok_flush(nook_detok *d, char *buf, size_t cap) {
    out_buf o = { .p = buf, .cap = cap, .n = 0 };
    if (d->n_pending > 0) {
        emit_fffd(&o);
        d->n_pending = 0;
    }
    if (cap) buf[o.n] = 0;
    return o.n;
}
