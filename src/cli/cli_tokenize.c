/*
 * cli_tokenize.c: `nook tokenize MODEL TEXT` and `nook detokenize MODEL ID...`,
 * the model's own tokenizer from the command line.
 */
#include "cli/cli.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The arguments argv[from..n) joined by spaces, or stdin when there are none, so
 * `echo text | nook tokenize MODEL` works too. */
static char *text_from_args(char **argv, int from, int n, size_t *len) {
    if (from >= n) return cli_read_stream(stdin, false, len);
    return cli_join_args(argv, from, n, len);
}

/* A piece as a JSON string: invalid UTF-8 bytes (half a character in a byte token)
 * become U+FFFD, since JSON strings must be valid Unicode; the caller adds the exact
 * bytes separately. */
static json_t *piece_json(const char *p, size_t n, bool *lossy) {
    *lossy = nk_utf8_invalid_at(p, n) >= 0;
    if (!*lossy) return json_stringn(p, n);
    char fixed[4 * 256 + 4];
    size_t k = 0;
    for (size_t i = 0; i < n && k + 4 < sizeof fixed;) {
        int l = nk_utf8_len((uint8_t)p[i]);
        if (l > 0 && i + (size_t)l <= n && nk_utf8_invalid_at(p + i, (size_t)l) < 0) {
            memcpy(fixed + k, p + i, (size_t)l);
            k += (size_t)l;
            i += (size_t)l;
        } else {
            memcpy(fixed + k, "\xEF\xBF\xBD", 3);
            k += 3;
            i++;
        }
    }
    return json_stringn(fixed, k);
}

static bool o_no_bos, o_special, o_json;

static const cli_opt k_tok_opts[] = {
    { "no-bos",  0, OPT_FLAG, &o_no_bos,  0, 0, NULL, "do not add BOS/EOS (add_special off)" },
    { "special", 0, OPT_FLAG, &o_special, 0, 0, NULL, "parse control tokens written in the text (\"<|im_start|>\")" },
    { "json",    0, OPT_FLAG, &o_json,    0, 0, NULL, "print a JSON array of {\"id\", \"piece\"}" },
};
static const cli_verb_info k_tok_info = {
    "tokenize", "MODEL [TEXT...]",
    "Print the token ids of TEXT (the arguments joined by spaces, else stdin), space-separated.",
    k_tok_opts, (int)NK_ARRAY_LEN(k_tok_opts),
};

int cli_tokenize_cmd(int argc, char **argv) {
    int npos;
    o_no_bos = o_special = o_json = false;
    int rc = cli_parse(&k_tok_info, argc, argv, &npos);
    if (rc) return rc;
    if (npos < 1) return cli_fail(CLI_EUSAGE, "tokenize: missing MODEL (usage: nook tokenize MODEL TEXT)");
    size_t len = 0;
    char *text = text_from_args(argv, 1, npos, &len);
    if (!text) return cli_fail(CLI_EFAIL, "tokenize: cannot read the text");
    nook_model *m = cli_load_model_ex(argv[0], 0, false, true);
    if (!m) { nk_free(text); return CLI_EFAIL; }
    nook_token *toks = NULL;
    size_t n = 0;
    rc = cli_tokenize(m, text, len, !o_no_bos, o_special, &toks, &n);
    if (rc == CLI_OK && !o_json) {
        for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", toks[i]);
        putchar('\n');
    } else if (rc == CLI_OK) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n && arr; i++) {
            char piece[512];
            int pl = nook_token_to_piece(m, toks[i], true, piece, sizeof piece);
            if (pl < 0) pl = 0;
            if ((size_t)pl > sizeof piece) pl = (int)sizeof piece;   /* a piece is short; be safe */
            bool lossy;
            json_t *o = json_object();
            json_object_set_new(o, "id", json_integer(toks[i]));
            json_object_set_new(o, "piece", piece_json(piece, (size_t)pl, &lossy));
            if (lossy) {
                json_t *b = json_array();
                for (int j = 0; j < pl; j++) json_array_append_new(b, json_integer((unsigned char)piece[j]));
                json_object_set_new(o, "bytes", b);
            }
            json_array_append_new(arr, o);
        }
        if (!arr || json_dumpf(arr, stdout, JSON_COMPACT) != 0) rc = cli_fail(CLI_EFAIL, "tokenize: writing JSON failed");
        else putchar('\n');
        json_decref(arr);
    }
    nk_free(toks);
    nk_free(text);
    nook_model_free(m);
    if (rc == CLI_OK && fflush(stdout) != 0) rc = cli_fail(CLI_EFAIL, "tokenize: writing to stdout failed");
    return rc;
}

/* ---- detokenize ---------------------------------------------------------------------- */

static bool o_dt_special;

static const cli_opt k_detok_opts[] = {
    { "special", 0, OPT_FLAG, &o_dt_special, 0, 0, NULL, "render control tokens (<s>, <|im_end|>) as text" },
};
static const cli_verb_info k_detok_info = {
    "detokenize", "MODEL [ID...]",
    "Print the text of token ids (arguments, else whitespace-separated on stdin).",
    k_detok_opts, (int)NK_ARRAY_LEN(k_detok_opts),
};

/* Parses one id: a decimal integer in [0, n_vocab). */
static int parse_id(const char *s, int n_vocab, nook_token *out) {
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return cli_fail(CLI_EUSAGE, "detokenize: bad token id '%s' (expected an integer)", s);
    if (x < 0 || x >= n_vocab)
        return cli_fail(CLI_EFAIL, "detokenize: token id %lld is outside the vocabulary (0..%d)", x, n_vocab - 1);
    *out = (nook_token)x;
    return CLI_OK;
}

int cli_detokenize_cmd(int argc, char **argv) {
    int npos;
    o_dt_special = false;
    int rc = cli_parse(&k_detok_info, argc, argv, &npos);
    if (rc) return rc;
    if (npos < 1) return cli_fail(CLI_EUSAGE, "detokenize: missing MODEL (usage: nook detokenize MODEL ID...)");
    char *input = NULL;
    size_t in_len = 0;
    if (npos == 1) {                       /* ids on stdin */
        input = cli_read_stream(stdin, false, &in_len);
        if (!input) return cli_fail(CLI_EFAIL, "detokenize: cannot read stdin");
    }
    nook_model *m = cli_load_model_ex(argv[0], 0, false, true);
    if (!m) { nk_free(input); return CLI_EFAIL; }
    const int n_vocab = nook_model_n_vocab(m);

    /* the whole text first, so a leading space can be dropped (see below) */
    size_t cap = 4096, len = 0;
    char *out = nk_malloc(cap);
    nook_detok d;
    nook_detok_init(&d, m, o_dt_special);
    char *save = NULL;
    char *tok_s = input ? strtok_r(input, " \t\r\n,", &save) : NULL;
    for (int i = 1; rc == CLI_OK && out; ) {
        const char *s;
        if (input) { if (!tok_s) break; s = tok_s; tok_s = strtok_r(NULL, " \t\r\n,", &save); }
        else { if (i >= npos) break; s = argv[i++]; }
        nook_token t = 0;
        rc = parse_id(s, n_vocab, &t);
        if (rc != CLI_OK) break;
        char piece[1024];
        size_t pl = nook_detok_push(&d, t, piece, sizeof piece);
        if (len + pl + 1 > cap) {
            char *no = nk_realloc(out, (cap + pl) * 2);
            if (!no) { nk_free(out); out = NULL; break; }
            out = no;
            cap = (cap + pl) * 2;
        }
        memcpy(out + len, piece, pl);
        len += pl;
    }
    if (rc == CLI_OK && out) {
        char tail[64];
        size_t tl = nook_detok_flush(&d, tail, sizeof tail);
        if (len + tl + 1 > cap) {
            char *no = nk_realloc(out, len + tl + 1);
            if (!no) { nk_free(out); out = NULL; }
            else out = no;
        }
        if (out) { memcpy(out + len, tail, tl); len += tl; }
    }
    if (rc == CLI_OK && !out) rc = cli_fail(CLI_EFAIL, "detokenize: out of memory");
    if (rc == CLI_OK) {
        /* SentencePiece puts a space in front of the text when tokenizing; llama.cpp's
         * detokenizer takes it off again so that text -> ids -> text round-trips. */
        size_t skip = (len > 0 && out[0] == ' ' && cli_adds_space_prefix(m)) ? 1 : 0;
        fwrite(out + skip, 1, len - skip, stdout);
        if (isatty(STDOUT_FILENO)) putchar('\n');
        if (fflush(stdout) != 0) rc = cli_fail(CLI_EFAIL, "detokenize: writing to stdout failed");
    }
    nk_free(out);
    nk_free(input);
    nook_model_free(m);
    return rc;
}
