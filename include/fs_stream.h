/*
 * fs_stream.h - frames over a byte transport: a pair of pipes (the local
 * agent, tests) or an SSH channel (a remote agent).  Counts the bytes that
 * crossed it and can limit the send rate.
 */
#ifndef REPCTL_FS_STREAM_H
#define REPCTL_FS_STREAM_H

#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "fs_proto.h"

struct fs_stream {
	/* transport: either fds or callbacks */
	int rfd, wfd;
	void *io;
	ssize_t (*io_read)(void *io, void *buf, size_t len, char *err, size_t errlen);
	int (*io_write)(void *io, const void *buf, size_t len, char *err, size_t errlen);
	struct buf in; /* received, not yet decoded */
	size_t in_off;
	unsigned long long sent, received;
	int zlevel;      /* zstd level for payloads, 0 = never */
	long bwlimit;    /* bytes per second, 0 = unlimited */
	double bw_start; /* monotonic time of the first limited send */
	unsigned long long bw_sent;
	pthread_mutex_t *send_lock; /* when set, stream_send and stream_ping hold it */
	double last_send;           /* monotonic time of the last frame sent */
	int failed; /* the transport broke (a failed read or write, EOF, a bad frame) */
};

void stream_init_fds(struct fs_stream *s, int rfd, int wfd, int zlevel);
void stream_free(struct fs_stream *s);
int stream_send(struct fs_stream *s, enum frame_type type, const void *payload, size_t len,
    char *err, size_t errlen) __attribute__((warn_unused_result));
/*
 * Send F_PING when nothing was sent for at least secs seconds (an agent busy
 * with a long request, from its heartbeat thread: the peer's idle timeout
 * must not take the silence for a hung agent).  0, or -1 with err.
 */
int stream_ping_if_quiet(struct fs_stream *s, double secs, char *err, size_t errlen);
/*
 * Receive one frame (blocking), skipping F_PING.  0, or -1 (EOF or error,
 * message in err).
 */
int stream_recv(struct fs_stream *s, struct frame *f, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Send a request and wait for its reply; an F_ERROR reply becomes -1 with its text in err. */
int stream_call(struct fs_stream *s, enum frame_type type, const void *payload, size_t len,
    struct frame *reply, char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
