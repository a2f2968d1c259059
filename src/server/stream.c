/*
 * stream.c: streamed response bodies. Producers (a generation running on the
 * scheduler's thread, a pull running on its own) append bytes from any thread; the
 * connection's thread drains them through libmicrohttpd's content-reader callback,
 * which sends them as HTTP/1.1 chunks.
 *
 * Why a queue and not a blocking write: the producer is usually the batching
 * scheduler, which serves many sequences; one slow client must never stall the
 * others. Writes only append (a client that lets more than SRV_STREAM_MAX bytes pile
 * up is treated as gone). While waiting for bytes the reader wakes every 50 ms to poll
 * the socket, so a client that disconnects cancels its work within that time even
 * when nothing is being written (a long prompt evaluation).
 */
#include "server/http_internal.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SRV_STREAM_MAX (16u << 20)

struct srv_stream {
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    char   *buf;
    size_t  off, len, cap;      /* queued bytes are buf[off..len) */
    int     refs;               /* the caller's and the response's */
    bool    ended;              /* the producer finished the body */
    bool    gone;               /* the client went away (or stopped reading) */
    bool    cancel_ran;
    void  (*cancel)(void *);
    void   *cancel_arg;
    struct MHD_Connection *conn;
    int     fd;
    int     timeout_s;
};

bool srv_fd_gone(int fd) {
    if (fd < 0) return false;
    struct pollfd p = { .fd = fd, .events = POLLRDHUP };
    int n = poll(&p, 1, 0);
    return n > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

static void stream_unref(srv_stream *s) {
    pthread_mutex_lock(&s->mu);
    int left = --s->refs;
    pthread_mutex_unlock(&s->mu);
    if (left) return;
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    nk_free(s->buf);
    nk_free(s);
}

/* Marks the stream gone and runs the cancel hook once (outside the lock). */
static void stream_mark_gone(srv_stream *s) {
    void (*fn)(void *) = NULL;
    void *arg = NULL;
    pthread_mutex_lock(&s->mu);
    s->gone = true;
    if (!s->ended && !s->cancel_ran && s->cancel) {
        s->cancel_ran = true;
        fn = s->cancel;
        arg = s->cancel_arg;
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (fn) fn(arg);
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *out, size_t max) {
    (void)pos;
    srv_stream *s = cls;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->len > s->off) {
            size_t n = s->len - s->off;
            if (n > max) n = max;
            memcpy(out, s->buf + s->off, n);
            s->off += n;
            if (s->off == s->len) s->off = s->len = 0;
            pthread_mutex_unlock(&s->mu);
            return (ssize_t)n;
        }
        if (s->ended) {
            pthread_mutex_unlock(&s->mu);
            /* The body is done: the idle timeout applies again (from now). */
            MHD_set_connection_option(s->conn, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)s->timeout_s);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        if (s->gone) {
            pthread_mutex_unlock(&s->mu);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        int rc = pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        if (rc == ETIMEDOUT && s->len == s->off && !s->ended && srv_fd_gone(s->fd)) {
            pthread_mutex_unlock(&s->mu);
            stream_mark_gone(s);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
}

static void stream_response_freed(void *cls) {
    srv_stream *s = cls;
    /* The response is gone: sent completely, or the connection failed. */
    pthread_mutex_lock(&s->mu);
    bool done = s->ended;
    pthread_mutex_unlock(&s->mu);
    if (!done) stream_mark_gone(s);
    stream_unref(s);
}

struct MHD_Response *srv_stream_create(struct MHD_Connection *conn, int fd, int timeout_s,
                                       srv_stream **out) {
    srv_stream *s = nk_calloc(1, sizeof *s);
    if (!s) return NULL;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->refs = 2;
    s->conn = conn;
    s->fd = fd;
    s->timeout_s = timeout_s;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_reader, s, stream_response_freed);
    if (!resp) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        nk_free(s);
        return NULL;
    }
    *out = s;
    return resp;
}

bool srv_stream_write(srv_stream *s, const void *data, size_t len) {
    if (!s) return false;
    pthread_mutex_lock(&s->mu);
    if (s->gone || s->ended) {
        pthread_mutex_unlock(&s->mu);
        return false;
    }
    size_t used = s->len - s->off;
    if (used + len > SRV_STREAM_MAX) {
        pthread_mutex_unlock(&s->mu);
        nk_log(NK_LOG_WARN, "server: a client stopped reading its stream; cancelling");
        stream_mark_gone(s);
        return false;
    }
    if (s->off && s->len + len > s->cap) {   /* compact before growing */
        memmove(s->buf, s->buf + s->off, used);
        s->len = used;
        s->off = 0;
    }
    if (s->len + len > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + len) cap *= 2;
        char *nb = nk_realloc(s->buf, cap);
        if (!nb) {
            pthread_mutex_unlock(&s->mu);
            stream_mark_gone(s);
            return false;
        }
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return true;
}

bool srv_stream_json_line(srv_stream *s, const json_t *v) {
    char *txt = json_dumps(v, JSON_COMPACT);
    if (!txt) return false;
    size_t n = strlen(txt);
    bool ok = srv_stream_write(s, txt, n) && srv_stream_write(s, "\n", 1);
    free(txt);
    return ok;
}

bool srv_stream_sse(srv_stream *s, const json_t *v) {
    char *txt = json_dumps(v, JSON_COMPACT);
    if (!txt) return false;
    bool ok = srv_stream_write(s, "data: ", 6) && srv_stream_write(s, txt, strlen(txt)) &&
              srv_stream_write(s, "\n\n", 2);
    free(txt);
    return ok;
}

void srv_stream_on_cancel(srv_stream *s, void (*fn)(void *arg), void *arg) {
    pthread_mutex_lock(&s->mu);
    s->cancel = fn;
    s->cancel_arg = arg;
    bool now = s->gone && !s->cancel_ran && !s->ended;
    if (now) s->cancel_ran = true;
    pthread_mutex_unlock(&s->mu);
    if (now && fn) fn(arg);
}

bool srv_stream_cancelled(srv_stream *s) {
    pthread_mutex_lock(&s->mu);
    bool g = s->gone;
    pthread_mutex_unlock(&s->mu);
    return g;
}

void srv_stream_end(srv_stream *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->ended = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    stream_unref(s);
}
