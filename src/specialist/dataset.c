/*
 * dataset.c: labelled JSON lines ({"text", "label"}) for training and evaluation.
 *
 * Training files are untrusted: every failure names the file and line, no line is
 * ever held beyond NK_SPEC_MAX_LINE bytes (a 1 GB line is refused after its first
 * MiB), and the counts are bounded. jansson parses each line (docs/dependencies.md);
 * it also refuses invalid UTF-8.
 */
#include "specialist/specialist.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

void nk_dataset_free(nk_dataset *d) {
    if (!d) return;
    for (size_t i = 0; i < d->n; i++) nk_free(d->texts[i]);
    for (int i = 0; i < d->n_labels; i++) nk_free(d->label_names[i]);
    nk_free(d->texts);
    nk_free(d->labels);
    nk_free(d->lines);
    nk_free(d->label_names);
    memset(d, 0, sizeof *d);
}

typedef struct builder {
    nk_dataset *d;
    size_t cap;
    int label_cap;
    const char *name;
    bool require_label;
} builder;

static int find_label(const nk_dataset *d, const char *s) {
    for (int i = 0; i < d->n_labels; i++)
        if (strcmp(d->label_names[i], s) == 0) return i;
    return -1;
}

static bool all_space(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!(s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\f' || s[i] == '\v'))
            return false;
    return true;
}

/* One line (without its newline). Blank lines are skipped. */
static nook_status add_line(builder *b, const char *line, size_t len, size_t lineno, nook_error *err) {
    nk_dataset *d = b->d;
    if (all_space(line, len)) return NOOK_OK;
    json_error_t je;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!o)
        return nk_fail(err, NOOK_EFORMAT, "%s:%zu: invalid JSON at column %d: %s", b->name, lineno,
                       je.column, je.text);
    nook_status st = NOOK_OK;
    char lbuf[32];
    const char *label = NULL;
    json_t *t = json_object_get(o, "text");
    json_t *l = json_object_get(o, "label");
    if (!json_is_object(o)) {
        st = nk_fail(err, NOOK_EFORMAT, "%s:%zu: expected a JSON object {\"text\": ..., \"label\": ...}",
                     b->name, lineno);
        goto out;
    }
    if (!t) { st = nk_fail(err, NOOK_EFORMAT, "%s:%zu: missing \"text\"", b->name, lineno); goto out; }
    if (!json_is_string(t)) {
        st = nk_fail(err, NOOK_EFORMAT, "%s:%zu: \"text\" is not a string", b->name, lineno);
        goto out;
    }
    const char *text = json_string_value(t);
    size_t tlen = json_string_length(t);
    if (all_space(text, tlen)) {
        st = nk_fail(err, NOOK_EFORMAT, "%s:%zu: \"text\" is empty", b->name, lineno);
        goto out;
    }
    if (memchr(text, 0, tlen)) {
        st = nk_fail(err, NOOK_EFORMAT, "%s:%zu: \"text\" contains a NUL character", b->name, lineno);
        goto out;
    }
    if (b->require_label) {
        if (!l) { st = nk_fail(err, NOOK_EFORMAT, "%s:%zu: missing \"label\"", b->name, lineno); goto out; }
        if (json_is_integer(l)) {
            snprintf(lbuf, sizeof lbuf, "%lld", (long long)json_integer_value(l));
            label = lbuf;
        } else if (json_is_string(l)) {
            label = json_string_value(l);
            size_t ll = json_string_length(l);
            if (ll == 0 || all_space(label, ll)) {
                st = nk_fail(err, NOOK_EFORMAT, "%s:%zu: \"label\" is empty", b->name, lineno);
                goto out;
            }
            if (ll > NK_SPEC_MAX_LABEL || memchr(label, 0, ll)) {
                st = nk_fail(err, NOOK_EFORMAT, "%s:%zu: \"label\" is longer than %u bytes or contains NUL",
                             b->name, lineno, NK_SPEC_MAX_LABEL);
                goto out;
            }
        } else {
            st = nk_fail(err, NOOK_EFORMAT, "%s:%zu: \"label\" is not a string or an integer", b->name, lineno);
            goto out;
        }
    }
    if (d->n >= NK_SPEC_MAX_EXAMPLES) {
        st = nk_fail(err, NOOK_ERANGE, "%s:%zu: more than %u examples", b->name, lineno, NK_SPEC_MAX_EXAMPLES);
        goto out;
    }
    int li = 0;
    if (label) {
        li = find_label(d, label);
        if (li < 0) {
            if ((unsigned)d->n_labels >= NK_SPEC_MAX_LABELS) {
                st = nk_fail(err, NOOK_ERANGE, "%s:%zu: more than %u distinct labels", b->name, lineno,
                             NK_SPEC_MAX_LABELS);
                goto out;
            }
            if (d->n_labels == b->label_cap) {
                int nc = b->label_cap ? b->label_cap * 2 : 8;
                char **nl = nk_realloc(d->label_names, (size_t)nc * sizeof *nl);
                if (!nl) { st = nk_fail(err, NOOK_ENOMEM, "out of memory"); goto out; }
                d->label_names = nl;
                b->label_cap = nc;
            }
            char *copy = nk_strdup(label);
            if (!copy) { st = nk_fail(err, NOOK_ENOMEM, "out of memory"); goto out; }
            li = d->n_labels;
            d->label_names[d->n_labels++] = copy;
        }
    }
    if (d->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 64;
        char **nt = nk_realloc(d->texts, nc * sizeof *nt);
        if (nt) d->texts = nt;
        int *nl = nt ? nk_realloc(d->labels, nc * sizeof *nl) : NULL;
        if (nl) d->labels = nl;
        size_t *nn = nl ? nk_realloc(d->lines, nc * sizeof *nn) : NULL;
        if (nn) d->lines = nn;
        if (!nn) { st = nk_fail(err, NOOK_ENOMEM, "out of memory"); goto out; }
        b->cap = nc;
    }
    char *tc = nk_strndup(text, tlen);
    if (!tc) { st = nk_fail(err, NOOK_ENOMEM, "out of memory"); goto out; }
    d->texts[d->n] = tc;
    d->labels[d->n] = li;
    d->lines[d->n] = lineno;
    d->n++;
out:
    json_decref(o);
    return st;
}

nook_status nk_dataset_parse(const char *buf, size_t len, const char *name, bool require_label,
                             nk_dataset *out, nook_error *err) {
    memset(out, 0, sizeof *out);
    builder b = { .d = out, .name = name ? name : "input", .require_label = require_label };
    size_t lineno = 0, pos = 0;
    while (pos < len) {
        lineno++;
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len;
        size_t ll = end - pos;
        if (ll > NK_SPEC_MAX_LINE) {
            nk_dataset_free(out);
            return nk_fail(err, NOOK_EFORMAT, "%s:%zu: line is longer than %u bytes", b.name, lineno,
                           NK_SPEC_MAX_LINE);
        }
        if (ll && buf[end - 1] == '\r') ll--;
        nook_status st = add_line(&b, buf + pos, ll, lineno, err);
        if (st) { nk_dataset_free(out); return st; }
        pos = end + 1;
    }
    return NOOK_OK;
}

nook_status nk_dataset_read(const char *path, bool require_label, nk_dataset *out, nook_error *err) {
    memset(out, 0, sizeof *out);
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) return nk_fail(err, NOOK_EIO, "%s: %s", path, strerror(errno));
    builder b = { .d = out, .name = path, .require_label = require_label };
    size_t cap = NK_SPEC_MAX_LINE + 2;
    char *line = nk_malloc(cap);
    if (!line) {
        if (f != stdin) fclose(f);
        return nk_fail(err, NOOK_ENOMEM, "out of memory");
    }
    nook_status st = NOOK_OK;
    size_t lineno = 0;
    for (;;) {
        size_t n = 0;
        int c = 0;
        /* getc_unlocked: one byte at a time is fast enough (about 1 GB/s) and bounds
         * the line without a second buffer. */
        while ((c = getc_unlocked(f)) != EOF && c != '\n') {
            if (n == NK_SPEC_MAX_LINE) {
                st = nk_fail(err, NOOK_EFORMAT, "%s:%zu: line is longer than %u bytes", path, lineno + 1,
                             NK_SPEC_MAX_LINE);
                goto done;
            }
            line[n++] = (char)c;
        }
        if (ferror(f)) { st = nk_fail(err, NOOK_EIO, "%s: read error: %s", path, strerror(errno)); goto done; }
        if (c == EOF && n == 0) break;
        lineno++;
        if (n && line[n - 1] == '\r') n--;
        if ((st = add_line(&b, line, n, lineno, err))) goto done;
        if (c == EOF) break;
    }
done:
    nk_free(line);
    if (f != stdin) fclose(f);
    if (st) nk_dataset_free(out);
    return st;
}

nook_status nk_dataset_check_trainable(const nk_dataset *d, const char *name, nook_error *err) {
    if (d->n == 0) return nk_fail(err, NOOK_EINVAL, "%s: no examples", name);
    if (d->n_labels == 0) return nk_fail(err, NOOK_EINVAL, "%s: the examples have no labels", name);
    if (d->n_labels < 2)
        return nk_fail(err, NOOK_EINVAL,
                       "%s: all %zu examples have the label '%s' (line %zu); a classifier needs at least two labels",
                       name, d->n, d->label_names[0], d->lines[0]);
    return NOOK_OK;
}
