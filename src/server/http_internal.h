/*
 * http_internal.h: what http.c and stream.c share (not for route files: they use
 * server.h only).
 */
#ifndef NOOK_SERVER_HTTP_INTERNAL_H
#define NOOK_SERVER_HTTP_INTERNAL_H

#include "server/server.h"

#include <microhttpd.h>

/* Builds the stream object for a response being queued on conn (fd is the client's
 * socket, timeout_s the idle timeout restored when the body ends). Returns the MHD
 * response (its free callback holds one reference) and *out (one reference for the
 * caller), or NULL on out-of-memory. */
struct MHD_Response *srv_stream_create(struct MHD_Connection *conn, int fd, int timeout_s,
                                       srv_stream **out);

/* Whether the peer of fd has closed or reset the connection (poll, no wait). */
bool srv_fd_gone(int fd);

#endif
