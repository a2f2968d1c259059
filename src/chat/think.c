/*
 * think.c: split a streamed Qwen3-style answer into reasoning and content.
 *
 * The split mirrors how Qwen3's own template reads an assistant message back:
 *   reasoning = text between <think> and </think>, without leading/trailing newlines
 *   content   = text after </think>, without leading newlines
 * and an answer that does not start with <think> (thinking disabled) is all content, as is.
 * Works on arbitrary byte pieces: a tag split across pieces is held back (at most 8 bytes);
 * newlines that might be the reasoning's trailing ones are held back as a count.
 */
#include "chat/chat.h"

#include <string.h>

enum { TS_START = 0, TS_THINK = 1, TS_CONTENT = 2 };

static const char OPEN[] = "<think>", CLOSE[] = "</think>";

typedef struct sinks { nk_think_sink on_think, on_content; void *ud; } sinks;

void nk_think_init(nk_think_splitter *s, bool in_think) {
    memset(s, 0, sizeof *s);
    s->state = in_think ? TS_THINK : TS_START;
}

static void think_out(nk_think_splitter *s, const sinks *k, const char *p, size_t n) {
    static const char nl[] = "\n\n\n\n\n\n\n\n";
    for (size_t i = 0; i < n;) {
        if (p[i] == '\n') {
            if (s->think_started) s->pending_nl++;   /* leading newlines are dropped */
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && p[j] != '\n') j++;
        if (k->on_think) {
            while (s->pending_nl) {
                size_t m = s->pending_nl < 8 ? s->pending_nl : 8;
                k->on_think(nl, m, k->ud);
                s->pending_nl -= m;
            }
            k->on_think(p + i, j - i, k->ud);
        }
        s->pending_nl = 0;
        s->think_started = true;
        i = j;
    }
}

static void content_out(nk_think_splitter *s, const sinks *k, const char *p, size_t n) {
    size_t i = 0;
    if (s->skip_nl) {
        while (i < n && p[i] == '\n') i++;
        if (i < n) s->skip_nl = false;
    }
    if (i < n && k->on_content) k->on_content(p + i, n - i, k->ud);
}

void nk_think_feed(nk_think_splitter *s, const char *text, size_t len,
                   nk_think_sink on_think, nk_think_sink on_content, void *ud) {
    sinks k = { on_think, on_content, ud };
    size_t i = 0;
    while (i < len) {
        if (s->state == TS_START) {
            if (s->n_held < sizeof OPEN - 1 && text[i] == OPEN[s->n_held]) {
                s->held[s->n_held++] = text[i++];
                if (s->n_held == sizeof OPEN - 1) { s->state = TS_THINK; s->n_held = 0; }
                continue;
            }
            s->state = TS_CONTENT;   /* no reasoning: what was held is content */
            if (s->n_held) content_out(s, &k, s->held, s->n_held);
            s->n_held = 0;
            continue;
        }
        if (s->state == TS_THINK) {
            char ch = text[i];
            if (ch == CLOSE[s->n_held]) {
                s->n_held++;
                i++;
                if (s->n_held == sizeof CLOSE - 1) {
                    s->n_held = 0;
                    s->pending_nl = 0;   /* trailing newlines of the reasoning are dropped */
                    s->state = TS_CONTENT;
                    s->skip_nl = true;
                }
                continue;
            }
            if (s->n_held) {   /* the partial tag was text after all; retry ch fresh */
                size_t m = s->n_held;
                s->n_held = 0;
                think_out(s, &k, CLOSE, m);
                continue;
            }
            size_t r = i;
            while (r < len && text[r] != '<') r++;
            think_out(s, &k, text + i, r - i);
            i = r;
            continue;
        }
        content_out(s, &k, text + i, len - i);
        break;
    }
}

void nk_think_finish(nk_think_splitter *s, nk_think_sink on_think, nk_think_sink on_content, void *ud) {
    sinks k = { on_think, on_content, ud };
    if (s->state == TS_START && s->n_held) content_out(s, &k, s->held, s->n_held);
    else if (s->state == TS_THINK && s->n_held) think_out(s, &k, CLOSE, s->n_held);
    s->n_held = 0;
}
