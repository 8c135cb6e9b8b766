/*
 * fs_stream.c - send and receive frames (fs_proto.c) over pipes or an SSH
 * channel, counting bytes and honouring the bandwidth limit.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fs_stream.h"

void
stream_init_fds(struct fs_stream *s, int rfd, int wfd, int zlevel)
{
	memset(s, 0, sizeof(*s));
	s->rfd = rfd;
	s->wfd = wfd;
	s->zlevel = zlevel;
}

void
stream_free(struct fs_stream *s)
{
	buf_free(&s->in);
}

static int
raw_write(struct fs_stream *s, const void *data, size_t len, char *err, size_t errlen)
{
	const char *p = data;

	if (s->io_write)
		return s->io_write(s->io, data, len, err, errlen);
	while (len > 0) {
		ssize_t n = write(s->wfd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "write to peer: %s", strerror(errno));
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
send_locked(struct fs_stream *s, enum frame_type type, const void *payload, size_t len, char *err,
    size_t errlen)
{
	struct buf b = BUF_INIT;
	int rc;

	if (frame_encode(&b, type, payload, len, s->zlevel) < 0) {
		snprintf(err, errlen, "frame of %zu bytes is too large", len);
		buf_free(&b);
		return -1;
	}
	if (s->bwlimit > 0) {
		double now = clock_mono(), due;

		if (s->bw_start == 0)
			s->bw_start = now;
		due = s->bw_start + (double)s->bw_sent / (double)s->bwlimit;
		if (due > now) {
			struct timespec ts;

			ts.tv_sec = (time_t)(due - now);
			ts.tv_nsec = (long)((due - now - (double)ts.tv_sec) * 1e9);
			nanosleep(&ts, NULL);
		}
		s->bw_sent += b.len;
	}
	rc = raw_write(s, b.data, b.len, err, errlen);
	if (rc == 0)
		s->sent += b.len;
	else
		s->failed = 1;
	s->last_send = clock_mono();
	buf_free(&b);
	return rc;
}

int
stream_send(struct fs_stream *s, enum frame_type type, const void *payload, size_t len, char *err,
    size_t errlen)
{
	int rc;

	if (s->send_lock)
		pthread_mutex_lock(s->send_lock);
	rc = send_locked(s, type, payload, len, err, errlen);
	if (s->send_lock)
		pthread_mutex_unlock(s->send_lock);
	return rc;
}

int
stream_ping_if_quiet(struct fs_stream *s, double secs, char *err, size_t errlen)
{
	int rc = 0;

	if (s->send_lock)
		pthread_mutex_lock(s->send_lock);
	if (clock_mono() - s->last_send >= secs)
		rc = send_locked(s, F_PING, NULL, 0, err, errlen);
	if (s->send_lock)
		pthread_mutex_unlock(s->send_lock);
	return rc;
}

int
stream_recv(struct fs_stream *s, struct frame *f, char *err, size_t errlen)
{
	for (;;) {
		uint8_t tmp[65536];
		ssize_t n;

		if (s->in.len > s->in_off) {
			long used = frame_decode((const uint8_t *)s->in.data + s->in_off,
			    s->in.len - s->in_off, f, err, errlen);

			if (used < 0) {
				s->failed = 1;
				return -1;
			}
			if (used > 0) {
				s->in_off += (size_t)used;
				if (s->in_off == s->in.len) {
					buf_reset(&s->in);
					s->in_off = 0;
				}
				if (f->type == F_PING) {
					frame_free(f);
					continue;
				}
				return 0;
			}
		}
		if (s->in_off > 0) {
			memmove(s->in.data, s->in.data + s->in_off, s->in.len - s->in_off);
			s->in.len -= s->in_off;
			s->in_off = 0;
		}
		if (s->io_read)
			n = s->io_read(s->io, tmp, sizeof(tmp), err, errlen);
		else
			do
				n = read(s->rfd, tmp, sizeof(tmp));
			while (n < 0 && errno == EINTR);
		if (n < 0) {
			if (!s->io_read)
				snprintf(err, errlen, "read from peer: %s", strerror(errno));
			s->failed = 1;
			return -1;
		}
		if (n == 0) {
			snprintf(err, errlen, "the peer closed the connection");
			s->failed = 1;
			return -1;
		}
		s->received += (unsigned long long)n;
		buf_add(&s->in, tmp, (size_t)n);
	}
}

int
stream_call(struct fs_stream *s, enum frame_type type, const void *payload, size_t len,
    struct frame *reply, char *err, size_t errlen)
{
	if (stream_send(s, type, payload, len, err, errlen) < 0 ||
	    stream_recv(s, reply, err, errlen) < 0)
		return -1;
	if (reply->type == F_ERROR) {
		snprintf(err, errlen, "%.*s", (int)reply->payload.len,
		    reply->payload.data ? reply->payload.data : "");
		frame_free(reply);
		return -1;
	}
	return 0;
}
