/*
 * One QMP connection on the loop (vm_qmp.h).
 *
 * Connecting. A starting QEMU creates its QMP socket within ~100-300 ms
 * of its exec, and every millisecond until the driver sees it is failover
 * time: a start tries every CONNECT_RETRY_FIRST_MS for the first
 * CONNECT_BRISK_TRIES, then backs off; a QEMU found running (attach,
 * adopt) listens already, or is busy with another client, so its retries
 * back off from the first.
 *
 * Writing. The engine queues what it sends; a flush writes until the
 * socket is full, and POLLOUT is asked for only while something waits.
 * Inside the link's own dispatch, writes wait for the end of the dispatch
 * (the callbacks may queue several commands); outside it, a write failure
 * is reported from a zero-length timer, so that lost never runs inside a
 * call into the link.
 *
 * Re-entrancy. The owner may free the link from any callback. busy counts
 * the link's dispatches on the stack; a free while busy only marks the
 * link doomed (no callback runs any more) and the dispatch finishes the
 * free on its way out. lost is different: the link calls it last, when it
 * has closed everything and will not touch itself again.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "group_def.h"
#include "log.h"
#include "vm_qmp.h"

#define log_link(level, l, fmt, ...) qb_log(level, "VM %s: " fmt, (l)->vm, ##__VA_ARGS__)

#define CONNECT_RETRY_FIRST_MS 5
#define CONNECT_BRISK_TRIES 200
#define CONNECT_RETRY_MAX_MS 500
#define ATTACH_RETRY_MAX_MS 1000
/* Reads after the process is gone: what a dead QEMU left is small. */
#define DRAIN_READS_MAX 64
#define REASON_LEN 256

enum link_state {
	LINK_IDLE = 0,
	LINK_RETRYING,
	LINK_CONNECTED,
	LINK_CLOSED,
};

struct link_timer {
	qb_loop_timer_handle handle;
	bool armed;
};

struct vmcd_qmp_link {
	qb_loop_t *loop;
	struct vmcd_qmp_link_ops ops;
	void *ctx;
	char vm[VMC_NAME_MAX + 1];
	char *path;
	enum link_state state;
	int fd;
	struct vmc_qmp *q;
	bool pollout;      /* POLLOUT asked for */
	unsigned int busy; /* dispatches of this link on the stack */
	bool doomed;       /* freed while busy */
	bool draining;
	enum vmcd_qmp_retry retry;
	unsigned int retry_ms;
	unsigned int tries;
	struct link_timer t_connect;
	struct link_timer t_check; /* a failure seen outside a dispatch */
};

/* One command in flight: its owner's callback, dropped if nobody wants it any more. */
struct link_cmd {
	struct vmcd_qmp_link *link;
	vmcd_qmp_link_done_fn done;
	void *opaque;
};

static int32_t link_dispatch(int32_t fd, int32_t revents, void *data);

/* ---- timers ---- */

static void link_timer_disarm(struct vmcd_qmp_link *l, struct link_timer *t)
{
	if (t->armed) {
		qb_loop_timer_del(l->loop, t->handle);
		t->armed = false;
	}
}

static void link_timer_arm(struct vmcd_qmp_link *l, struct link_timer *t, unsigned int ms,
			   qb_loop_timer_dispatch_fn fn)
{
	int rc;

	link_timer_disarm(l, t);
	rc = qb_loop_timer_add(l->loop, QB_LOOP_MED, (uint64_t)ms * QB_TIME_NS_IN_MSEC, l, fn,
			       &t->handle);
	if (rc != 0) {
		log_link(LOG_ERR, l, "cannot add a loop timer for QMP: %s", strerror(-rc));
		return;
	}
	t->armed = true;
}

/* ---- the engine's callbacks ---- */

/* Nobody wants ready or replies any more. */
static bool link_quiet(const struct vmcd_qmp_link *l)
{
	return l->doomed || l->draining;
}

static void engine_greeting(void *ctx, const struct vmc_qmp_greeting *g)
{
	struct vmcd_qmp_link *l = ctx;

	log_link(LOG_DEBUG, l, "QMP greeting from QEMU %d.%d.%d%s%s", g->major, g->minor, g->micro,
		 g->package[0] != '\0' ? " " : "", g->package);
}

static void engine_ready(void *ctx)
{
	struct vmcd_qmp_link *l = ctx;

	if (!link_quiet(l) && l->ops.ready != NULL) {
		l->ops.ready(l->ctx);
	}
}

static void engine_event(void *ctx, const struct vmc_qmp_event *ev)
{
	struct vmcd_qmp_link *l = ctx;

	if (!l->doomed && l->ops.event != NULL) {
		l->ops.event(l->ctx, ev);
	}
}

static void engine_failed(void *ctx, const char *reason)
{
	struct vmcd_qmp_link *l = ctx;

	log_link(LOG_DEBUG, l, "QMP connection ended: %s", reason);
}

static void engine_warn(void *ctx, const char *what)
{
	struct vmcd_qmp_link *l = ctx;

	log_link(LOG_WARNING, l, "QMP: %s", what);
}

static const struct vmc_qmp_ops engine_ops = {
	.greeting = engine_greeting,
	.ready = engine_ready,
	.event = engine_event,
	.failed = engine_failed,
	.warn = engine_warn,
};

/* DISCONNECTED comes when the engine fails or is freed: the lost path tells that. */
static void link_cmd_done(struct vmc_qmp *q, void *opaque, const struct vmc_qmp_reply *reply)
{
	struct link_cmd *c = opaque;

	if (reply->status != VMC_QMP_DISCONNECTED && !link_quiet(c->link) && c->done != NULL) {
		c->done(c->opaque, reply);
	}
	free(c);
}

/* ---- the socket ---- */

/* Not from inside the engine: it frees it. */
static void link_close(struct vmcd_qmp_link *l)
{
	link_timer_disarm(l, &l->t_connect);
	link_timer_disarm(l, &l->t_check);
	if (l->q != NULL) {
		qb_loop_poll_del(l->loop, l->fd);
		close(l->fd);
		l->fd = -1;
		l->pollout = false;
		/* Pending commands complete with DISCONNECTED: link_cmd_done frees them. */
		vmc_qmp_free(l->q);
		l->q = NULL;
	}
	l->state = LINK_CLOSED;
}

static void link_destroy(struct vmcd_qmp_link *l)
{
	link_close(l);
	free(l->path);
	free(l);
}

/* The connection is gone: close, then tell the owner, and touch nothing after. */
static void link_lost(struct vmcd_qmp_link *l)
{
	void (*lost)(void *, const char *) = l->ops.lost;
	void *ctx = l->ctx;
	char reason[REASON_LEN];

	snprintf(reason, sizeof(reason), "%s", vmc_qmp_failure_reason(l->q));
	link_close(l);
	log_link(LOG_INFO, l, "QMP connection closed: %s", reason);
	if (lost != NULL) {
		lost(ctx, reason);
	}
}

static void check_failed(void *data)
{
	struct vmcd_qmp_link *l = data;

	l->t_check.armed = false;
	if (l->q != NULL && vmc_qmp_state_get(l->q) == VMC_QMP_FAILED) {
		link_lost(l);
	}
}

static void link_flush(struct vmcd_qmp_link *l)
{
	bool want_out;
	int rc;

	if (l->q == NULL || vmc_qmp_state_get(l->q) == VMC_QMP_FAILED) {
		return;
	}
	rc = vmc_qmp_fd_flush(l->q, l->fd);
	want_out = rc == -EAGAIN;
	if (want_out != l->pollout) {
		/* poll_mod replaces the dispatch function too: pass ours again. */
		qb_loop_poll_mod(l->loop, QB_LOOP_MED, l->fd, POLLIN | (want_out ? POLLOUT : 0), l,
				 link_dispatch);
		l->pollout = want_out;
	}
	if (rc < 0 && rc != -EAGAIN && l->busy == 0) {
		link_timer_arm(l, &l->t_check, 0, check_failed);
	}
}

static int32_t link_dispatch(int32_t fd, int32_t revents, void *data)
{
	struct vmcd_qmp_link *l = data;

	l->busy++;
	if ((revents & POLLOUT) != 0) {
		vmc_qmp_fd_flush(l->q, l->fd);
	}
	if ((revents & (POLLIN | POLLHUP | POLLERR)) != 0 &&
	    vmc_qmp_state_get(l->q) != VMC_QMP_FAILED) {
		vmc_qmp_fd_receive(l->q, l->fd);
	}
	l->busy--;
	/* -1 whenever our entry is gone: libqb must not mark it active again. */
	if (l->doomed) {
		link_destroy(l);
		return -1;
	}
	if (l->draining) {
		link_close(l);
		return -1;
	}
	link_flush(l);
	if (vmc_qmp_state_get(l->q) == VMC_QMP_FAILED) {
		link_lost(l);
		return -1;
	}
	return 0;
}

/* ---- connecting ---- */

static void connect_backoff(struct vmcd_qmp_link *l)
{
	bool attach = l->retry == VMCD_QMP_RETRY_ATTACH;
	unsigned int max_ms = attach ? ATTACH_RETRY_MAX_MS : CONNECT_RETRY_MAX_MS;

	if (attach || ++l->tries > CONNECT_BRISK_TRIES) {
		l->retry_ms = l->retry_ms * 2 > max_ms ? max_ms : l->retry_ms * 2;
	}
}

static void connect_try(void *data);

static void connect_later(struct vmcd_qmp_link *l, unsigned int ms)
{
	link_timer_arm(l, &l->t_connect, ms, connect_try);
}

static void connect_try(void *data)
{
	struct vmcd_qmp_link *l = data;
	int rc;
	int fd;

	l->t_connect.armed = false;
	if (l->state != LINK_RETRYING) {
		return;
	}
	rc = vmc_qmp_fd_connect(l->path, &fd);
	if (rc < 0) {
		/* ENOENT/ECONNREFUSED: QEMU has not created it yet; EAGAIN: backlog full. */
		if (rc != -ENOENT && rc != -ECONNREFUSED && rc != -EAGAIN) {
			log_link(LOG_WARNING, l, "cannot connect to %s: %s", l->path,
				 strerror(-rc));
		}
		connect_later(l, l->retry_ms);
		connect_backoff(l);
		return;
	}
	l->q = vmc_qmp_new(&engine_ops, l);
	rc = l->q == NULL ? -ENOMEM
			  : qb_loop_poll_add(l->loop, QB_LOOP_MED, fd, POLLIN, l, link_dispatch);
	if (rc != 0) {
		log_link(LOG_ERR, l, "cannot follow the QMP socket: %s", strerror(-rc));
		vmc_qmp_free(l->q);
		l->q = NULL;
		close(fd);
		connect_later(l, ATTACH_RETRY_MAX_MS);
		return;
	}
	l->fd = fd;
	l->state = LINK_CONNECTED;
	log_link(LOG_DEBUG, l, "connected to %s", l->path);
}

void vmcd_qmp_link_connect(struct vmcd_qmp_link *l, enum vmcd_qmp_retry retry)
{
	if (l == NULL || l->state != LINK_IDLE || l->doomed) {
		return;
	}
	l->state = LINK_RETRYING;
	l->retry = retry;
	l->retry_ms = CONNECT_RETRY_FIRST_MS;
	l->tries = 0;
	connect_later(l, 0);
}

void vmcd_qmp_link_connect_cancel(struct vmcd_qmp_link *l)
{
	if (l != NULL && l->state == LINK_RETRYING) {
		link_timer_disarm(l, &l->t_connect);
		l->state = LINK_IDLE;
	}
}

/* ---- the owner's calls ---- */

struct vmcd_qmp_link *vmcd_qmp_link_new(qb_loop_t *loop, const char *vm, const char *path,
					const struct vmcd_qmp_link_ops *ops, void *ctx)
{
	struct vmcd_qmp_link *l = calloc(1, sizeof(*l));

	if (l == NULL) {
		return NULL;
	}
	l->path = strdup(path);
	if (l->path == NULL) {
		free(l);
		return NULL;
	}
	l->loop = loop;
	if (ops != NULL) {
		l->ops = *ops;
	}
	l->ctx = ctx;
	snprintf(l->vm, sizeof(l->vm), "%s", vm);
	l->fd = -1;
	return l;
}

void vmcd_qmp_link_free(struct vmcd_qmp_link *l)
{
	if (l == NULL) {
		return;
	}
	if (l->busy > 0) {
		l->doomed = true;
		link_timer_disarm(l, &l->t_connect);
		link_timer_disarm(l, &l->t_check);
		return;
	}
	link_destroy(l);
}

bool vmcd_qmp_link_ready(const struct vmcd_qmp_link *l)
{
	return l != NULL && l->state == LINK_CONNECTED && !link_quiet(l) &&
	       vmc_qmp_state_get(l->q) == VMC_QMP_READY;
}

int vmcd_qmp_link_send(struct vmcd_qmp_link *l, const char *command, vmcd_qmp_link_done_fn done,
		       void *opaque)
{
	return vmcd_qmp_link_send_args(l, command, NULL, done, opaque);
}

int vmcd_qmp_link_send_args(struct vmcd_qmp_link *l, const char *command, json_object *args,
			    vmcd_qmp_link_done_fn done, void *opaque)
{
	struct link_cmd *c;
	int rc;

	if (!vmcd_qmp_link_ready(l)) {
		json_object_put(args);
		return -ENOTCONN;
	}
	c = malloc(sizeof(*c));
	if (c == NULL) {
		json_object_put(args);
		return -ENOMEM;
	}
	c->link = l;
	c->done = done;
	c->opaque = opaque;
	rc = vmc_qmp_command(l->q, command, args, link_cmd_done, c, NULL);
	if (rc < 0) {
		free(c);
		log_link(LOG_ERR, l, "cannot send %s over QMP: %s", command, strerror(-rc));
		return rc;
	}
	if (l->busy == 0) {
		link_flush(l);
	}
	return 0;
}

void vmcd_qmp_link_drain(struct vmcd_qmp_link *l)
{
	if (l == NULL || l->doomed || l->state == LINK_CLOSED) {
		return;
	}
	l->draining = true;
	if (l->busy > 0) {
		return; /* the dispatch on the stack reads, then closes */
	}
	if (l->state == LINK_CONNECTED) {
		l->busy++;
		for (int i = 0; i < DRAIN_READS_MAX && !l->doomed; i++) {
			if (vmc_qmp_state_get(l->q) == VMC_QMP_FAILED ||
			    vmc_qmp_fd_receive(l->q, l->fd) <= 0) {
				break;
			}
		}
		l->busy--;
		if (l->doomed) {
			link_destroy(l);
			return;
		}
	}
	link_close(l);
}
