/*
 * A blocking QMP client on the I/O-free engine (qmp_sync.h): poll() with a
 * deadline around vmc_qmp_fd_flush and vmc_qmp_fd_receive.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "qmp.h"
#include "qmp_sync.h"

struct qmp_sync {
	struct vmc_qmp *q;
	int sock;
	bool ready;
	bool failed;
	char failure[256];
	char version[32];
	bool event_seen;   /* an event arrived since the last qmp_sync_wait_event */
	/* the one command in flight */
	bool done;
	int status;
	json_object *ret;
	char error[256];
};

static void on_greeting(void *ctx, const struct vmc_qmp_greeting *g)
{
	struct qmp_sync *s = ctx;

	snprintf(s->version, sizeof(s->version), "%d.%d.%d", g->major, g->minor, g->micro);
}

static void on_ready(void *ctx)
{
	((struct qmp_sync *)ctx)->ready = true;
}

static void on_failed(void *ctx, const char *reason)
{
	struct qmp_sync *s = ctx;

	s->failed = true;
	snprintf(s->failure, sizeof(s->failure), "%s", reason);
}

static void on_event(void *ctx, const struct vmc_qmp_event *ev)
{
	(void)ev;
	((struct qmp_sync *)ctx)->event_seen = true;
}

static const struct vmc_qmp_ops sync_ops = { .greeting = on_greeting, .ready = on_ready, .failed = on_failed,
					     .event = on_event };

/* Writes what is queued and reads until cond holds, the engine fails, or the deadline. */
static int pump(struct qmp_sync *s, const bool *cond, int64_t deadline_ms)
{
	while (!*cond && !s->failed) {
		struct pollfd p = { .fd = s->sock, .events = POLLIN };
		int64_t left = deadline_ms - vmc_now_ms();
		int rc = vmc_qmp_fd_flush(s->q, s->sock);

		if (rc == -EAGAIN) {
			p.events |= POLLOUT;
		} else if (rc < 0) {
			return -1;
		}
		if (left <= 0) {
			/* A reply may still come: the stream is out of step from now on. */
			s->failed = true;
			snprintf(s->failure, sizeof(s->failure), "QEMU did not answer in time");
			return -ETIMEDOUT;
		}
		rc = poll(&p, 1, (int)left);
		if (rc < 0 && errno != EINTR) {
			snprintf(s->failure, sizeof(s->failure), "poll: %s", strerror(errno));
			return -1;
		}
		if (rc > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
			ssize_t n = vmc_qmp_fd_receive(s->q, s->sock);
			if (n == 0) {
				s->failed = true;
				snprintf(s->failure, sizeof(s->failure), "QEMU closed its QMP socket");
			}
		}
	}
	return s->failed ? -1 : 0;
}

struct qmp_sync *qmp_sync_open(const char *path, int timeout_ms, char *err, size_t errlen)
{
	struct qmp_sync *s = calloc(1, sizeof(*s));
	int rc;

	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->sock = -1;
	s->q = vmc_qmp_new(&sync_ops, s);
	rc = s->q != NULL ? vmc_qmp_fd_connect(path, &s->sock) : -ENOMEM;
	if (rc != 0) {
		snprintf(err, errlen, "cannot connect to QMP socket %s: %s", path, strerror(-rc));
		qmp_sync_close(s);
		return NULL;
	}
	if (pump(s, &s->ready, vmc_now_ms() + timeout_ms) != 0) {
		snprintf(err, errlen, "QMP socket %s: %s", path, s->failure);
		qmp_sync_close(s);
		return NULL;
	}
	return s;
}

void qmp_sync_close(struct qmp_sync *s)
{
	if (s == NULL) {
		return;
	}
	vmc_qmp_free(s->q);
	if (s->sock >= 0) {
		close(s->sock);
	}
	free(s);
}

static void call_done(struct vmc_qmp *q, void *opaque, const struct vmc_qmp_reply *reply)
{
	struct qmp_sync *s = opaque;

	(void)q;
	s->done = true;
	s->status = reply->status;
	if (reply->status == VMC_QMP_OK) {
		s->ret = json_object_get(reply->ret);
	} else {
		snprintf(s->error, sizeof(s->error), "%s: %s", reply->command, reply->error_desc);
	}
}

int qmp_sync_call(struct qmp_sync *s, const char *command, json_object *args, int fd, int timeout_ms,
		  json_object **ret, char *err, size_t errlen)
{
	int rc;

	s->done = false;
	s->ret = NULL;
	rc = fd >= 0 ? vmc_qmp_command_with_fd(s->q, command, args, fd, call_done, s, NULL)
		     : vmc_qmp_command(s->q, command, args, call_done, s, NULL);
	if (rc != 0) {
		snprintf(err, errlen, "%s: cannot send: %s", command, s->failed ? s->failure : strerror(-rc));
		return -1;
	}
	if (pump(s, &s->done, vmc_now_ms() + timeout_ms) != 0 || !s->done) {
		snprintf(err, errlen, "%s: %s", command, s->failure);
		return -1;
	}
	if (s->status != VMC_QMP_OK) {
		snprintf(err, errlen, "%s", s->error);
		return -1;
	}
	if (ret != NULL) {
		*ret = s->ret;
	} else {
		json_object_put(s->ret);
	}
	return 0;
}

int qmp_sync_run(struct qmp_sync *s, const char *command, json_object *args, int timeout_ms, char *err,
		 size_t errlen)
{
	return qmp_sync_call(s, command, args, -1, timeout_ms, NULL, err, errlen);
}

bool qmp_sync_wait_event(struct qmp_sync *s, int timeout_ms)
{
	bool timed_out = false;
	int64_t deadline = vmc_now_ms() + timeout_ms;

	while (!s->event_seen && !s->failed && !timed_out) {
		struct pollfd p = { .fd = s->sock, .events = POLLIN };
		int64_t left = deadline - vmc_now_ms();
		if (left <= 0 || poll(&p, 1, (int)left) == 0) {
			timed_out = true;
		} else if (vmc_qmp_fd_receive(s->q, s->sock) == 0) {
			s->failed = true;
			snprintf(s->failure, sizeof(s->failure), "QEMU closed its QMP socket");
		}
	}
	timed_out = !s->event_seen;
	s->event_seen = false;
	return !timed_out;
}

const char *qmp_sync_version(const struct qmp_sync *s)
{
	return s->version;
}
