/*
 * The source side of a migration (agent.h): authenticate, offer, open the
 * data channel, drive QEMU's pre-copy, stop at pre-switchover until the
 * daemon has moved the locks, complete, and wait for the destination to
 * say it has everything. Any failure before completion cancels QEMU's
 * migration, which resumes the source VM where it runs.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "clock.h"
#include "conn.h"
#include "json_util.h"
#include "qmp_sync.h"
#include "stream.h"

#define CONNECT_MS 5000
#define LISTENER_WAIT_MS 10000 /* a destination listener being restarted */
#define ACCEPT_MS 60000     /* the destination starts its QEMU meanwhile */
#define CONTINUE_MS 30000   /* the lock handover through the cluster */
#define RECEIVED_MS 30000
#define POLL_MS 50
#define QMP_MS 5000

/* SIGTERM or SIGINT (the daemon went away: PR_SET_PDEATHSIG): cancel, so the source runs on. */
static volatile sig_atomic_t stop_asked;

static void on_stop(int sig)
{
	(void)sig;
	stop_asked = 1;
}

struct send {
	const struct send_opts *o;
	int ctl_fd;
	struct vmc_migp *ctl;
	struct stream st;
	struct qmp_sync *q;
	bool started;      /* QEMU's migration was started: cancel it on failure */
	bool completed;    /* QEMU says completed: the source is paused for good unless rolled back */
	int64_t t0_ms;
	char err[384];
	char code[24];
};

static void fail(struct send *s, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(struct send *s, const char *code, const char *fmt, ...)
{
	va_list ap;

	if (s->err[0] != '\0') {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
	snprintf(s->code, sizeof(s->code), "%s", code);
}

static bool authenticate(struct send *s, int fd, struct vmc_migp *c, const char *what)
{
	struct vmc_migp_event ev;

	migp_pump(fd, c, vmc_now_ms() + CONNECT_MS + VMCM_READ_DEADLINE_MS, &ev);
	if (ev.kind != VMC_MIGP_EV_AUTHED) {
		fail(s, ev.code, "%s channel to %s:%d: %s%s", what, s->o->peer, s->o->peer_port,
		     ev.from_peer ? "the destination says: " : "", ev.reason);
		return false;
	}
	return true;
}

/* The destination's listener may be restarting (its vmclusterd respawns it): retry a refused connection a while. */
static int connect_retrying(struct send *s)
{
	int64_t deadline = vmc_now_ms() + LISTENER_WAIT_MS;
	int fd;

	for (;;) {
		s->err[0] = '\0';
		fd = net_connect(s->o->peer, s->o->peer_port, s->o->bind, CONNECT_MS, s->err, sizeof(s->err));
		if (fd >= 0 || errno != ECONNREFUSED || vmc_now_ms() > deadline || stop_asked) {
			return fd;
		}
		usleep(200 * 1000);
	}
}

static bool control_open(struct send *s)
{
	struct vmc_migp_event ev;
	json_object *offer;

	s->ctl_fd = connect_retrying(s);
	if (s->ctl_fd < 0) {
		snprintf(s->code, sizeof(s->code), "%s", VMC_MIGP_E_ABORTED);
		return false;
	}
	s->ctl = vmc_migp_client_new(s->o->key, s->o->id, VMC_MIGP_CONTROL, 0);
	if (s->ctl == NULL || !authenticate(s, s->ctl_fd, s->ctl, "control")) {
		fail(s, VMC_MIGP_E_INTERNAL, "out of memory");
		return false;
	}
	offer = json_object_new_object();
	json_object_object_add(offer, "definition", json_object_get(s->o->definition));
	json_object_object_add(offer, "mode", json_object_new_string("live"));
	json_object_object_add(offer, "encrypt", json_object_new_boolean(s->o->encrypt));
	json_object_object_add(offer, "channels", json_object_new_int(1));
	json_object_object_add(offer, "source", json_object_new_string(s->o->source));
	vmc_migp_client_offer(s->ctl, offer);
	migp_pump(s->ctl_fd, s->ctl, vmc_now_ms() + ACCEPT_MS, &ev);
	if (ev.kind != VMC_MIGP_EV_ACCEPTED) {
		fail(s, ev.code, "%s%s", ev.from_peer ? "the destination refused: " : "", ev.reason);
		return false;
	}
	report(report_new("accepted", s->o->id));
	return true;
}

static bool data_open(struct send *s)
{
	struct vmc_migp *d = vmc_migp_client_new(s->o->key, s->o->id, VMC_MIGP_DATA, 0);
	int fd = net_connect(s->o->peer, s->o->peer_port, s->o->bind, CONNECT_MS, s->err, sizeof(s->err));
	bool ok = d != NULL && fd >= 0 && authenticate(s, fd, d, "data");

	if (ok && stream_open(&s->st, fd, d, s->o->encrypt, s->err, sizeof(s->err)) != 0) {
		ok = false;
	} else if (!ok && fd >= 0) {
		close(fd);
	}
	if (fd < 0) {
		snprintf(s->code, sizeof(s->code), "%s", VMC_MIGP_E_ABORTED);
	}
	vmc_migp_free(d);
	return ok;
}

static bool qemu_prepare(struct send *s)
{
	/* events: the daemon's own QMP learns the source is paused for good (postmigrate). */
	static const struct capability caps[] = {
		{ "pause-before-switchover", true }, { "auto-converge", true }, { "events", true } };
	uint64_t bw = s->o->bandwidth_mib ? (uint64_t)s->o->bandwidth_mib << 20 : (uint64_t)1 << 40;
	json_object *args;

	if (migrate_capabilities(s->q, caps, sizeof(caps) / sizeof(caps[0]), s->err, sizeof(s->err)) != 0) {
		return false;
	}
	args = json_object_new_object();
	/* Always set: QEMU's default is 128 MiB/s, a tenth of a 10 GbE link. */
	json_object_object_add(args, "max-bandwidth", json_object_new_int64((int64_t)bw));
	json_object_object_add(args, "downtime-limit", json_object_new_int64(s->o->downtime_ms));
	return qmp_sync_run(s->q, "migrate-set-parameters", args, QMP_MS, s->err, sizeof(s->err)) == 0;
}

static bool qemu_start(struct send *s)
{
	json_object *args = json_object_new_object();

	s->q = qmp_sync_open(s->o->qmp, QMP_MS, s->err, sizeof(s->err));
	if (s->q == NULL || !qemu_prepare(s) || stream_give_to_qemu(&s->st, s->q, s->err, sizeof(s->err)) != 0) {
		json_object_put(args);
		snprintf(s->code, sizeof(s->code), "%s", VMC_MIGP_E_INTERNAL);
		return false;
	}
	json_object_object_add(args, "uri", json_object_new_string("fd:vmcmigrate"));
	if (qmp_sync_run(s->q, "migrate", args, QMP_MS, s->err, sizeof(s->err)) != 0) {
		snprintf(s->code, sizeof(s->code), "%s", VMC_MIGP_E_INTERNAL);
		return false;
	}
	s->started = true;
	return true;
}

static void progress_report(struct send *s, json_object *info)
{
	json_object *ram = NULL, *o = report_new("progress", s->o->id);
	int64_t v;

	json_object_object_get_ex(info, "ram", &ram);
#define COPY(from, key, as)                                                     \
	if (from != NULL && vmc_json_int64(from, key, &v)) {                    \
		json_object_object_add(o, as, json_object_new_int64(v));        \
	}
	COPY(ram, "transferred", "transferred")
	COPY(ram, "remaining", "remaining")
	COPY(ram, "total", "total")
	COPY(ram, "dirty-sync-count", "pass")
	COPY(ram, "dirty-pages-rate", "dirty_pages_rate")
	COPY(info, "expected-downtime", "expected_downtime_ms")
#undef COPY
	if (ram != NULL && json_object_object_get_ex(ram, "mbps", NULL)) {
		json_object *mbps;
		json_object_object_get_ex(ram, "mbps", &mbps);
		json_object_object_add(o, "mbps", json_object_new_double(json_object_get_double(mbps)));
	}
	json_object_object_add(o, "elapsed_ms", json_object_new_int64(vmc_now_ms() - s->t0_ms));
	report(o);
}

/* A line from the daemon on stdin within timeout_ms: "continue", or anything else (abort). */
static bool daemon_says_continue(int timeout_ms)
{
	struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
	char line[128];

	if (poll(&p, 1, timeout_ms) != 1 || fgets(line, sizeof(line), stdin) == NULL) {
		return false;
	}
	return strncmp(line, "continue", 8) == 0;
}

static bool switchover(struct send *s)
{
	json_object *args;

	report(report_new("pre-switchover", s->o->id));
	if (s->o->wait_continue && !daemon_says_continue(CONTINUE_MS)) {
		fail(s, VMC_MIGP_E_ABORTED, "the image locks were not handed over (the cluster refused or did not answer)");
		return false;
	}
	args = json_object_new_object();
	json_object_object_add(args, "state", json_object_new_string("pre-switchover"));
	if (qmp_sync_run(s->q, "migrate-continue", args, QMP_MS, s->err, sizeof(s->err)) != 0) {
		snprintf(s->code, sizeof(s->code), "%s", VMC_MIGP_E_INTERNAL);
		return false;
	}
	return true;
}

/* The control channel has something to say before RECEIVED: only an ERROR can come. */
static bool control_quiet(struct send *s)
{
	struct pollfd p = { .fd = s->ctl_fd, .events = POLLIN };
	struct vmc_migp_event ev;

	if (poll(&p, 1, 0) != 1) {
		return true;
	}
	migp_pump(s->ctl_fd, s->ctl, vmc_now_ms() + VMCM_READ_DEADLINE_MS, &ev);
	fail(s, ev.kind == VMC_MIGP_EV_FAILED ? ev.code : VMC_MIGP_E_PROTOCOL, "%s%s",
	     ev.from_peer ? "the destination says: " : "", ev.kind == VMC_MIGP_EV_FAILED ? ev.reason : "unexpected message");
	return false;
}

static bool converge(struct send *s)
{
	int64_t deadline = s->t0_ms + (int64_t)s->o->timeout_s * 1000;
	char status[32];
	bool paused = false;

	for (;;) {
		json_object *info = NULL;
		if (migrate_query(s->q, status, sizeof(status), &info, s->err, sizeof(s->err)) != 0) {
			snprintf(s->code, sizeof(s->code), "%s", VMC_MIGP_E_INTERNAL);
			return false;
		}
		if (strcmp(status, "completed") == 0) {
			int64_t downtime = -1, total = -1;
			json_object *o = report_new("completed", s->o->id);
			/* QEMU 7.2 says completed before it fills in its times: ask again a few times. */
			for (int again = 0; again < 20 && vmc_json_int64(info, "total-time", &total) && total == 0; again++) {
				usleep(5000);
				json_object_put(info);
				info = NULL;
				if (migrate_query(s->q, status, sizeof(status), &info, s->err, sizeof(s->err)) != 0) {
					break;
				}
			}
			vmc_json_int64(info, "downtime", &downtime);
			vmc_json_int64(info, "total-time", &total);
			json_object_object_add(o, "downtime_ms", json_object_new_int64(downtime));
			json_object_object_add(o, "qemu_total_ms", json_object_new_int64(total));
			report(o);
			json_object_put(info);
			s->completed = true;
			return true;
		}
		if (strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0) {
			fail(s, VMC_MIGP_E_ABORTED, "QEMU's migration %s: %s", status,
			     vmc_json_str(info, "error-desc") ? vmc_json_str(info, "error-desc") : "no reason given");
			json_object_put(info);
			return false;
		}
		if (strcmp(status, "pre-switchover") == 0 && !paused) {
			json_object_put(info);
			paused = true;
			if (!switchover(s)) {
				return false;
			}
			continue;
		}
		if (!paused) {
			progress_report(s, info);
		}
		json_object_put(info);
		if (!control_quiet(s)) {
			return false;
		}
		if (stop_asked) {
			fail(s, VMC_MIGP_E_ABORTED, "the agent was stopped (its vmclusterd went away): cancelled");
			return false;
		}
		if (!paused && vmc_now_ms() > deadline) {
			fail(s, VMC_MIGP_E_TIMEOUT, "did not converge within migration_timeout_s (%u s): cancelled, it runs on the source",
			     s->o->timeout_s);
			return false;
		}
		/* A MIGRATION event (pre-switchover, completed) wakes us at once: it is downtime. */
		qmp_sync_wait_event(s->q, POLL_MS);
	}
}

static bool await_received(struct send *s)
{
	struct vmc_migp_event ev;

	migp_pump(s->ctl_fd, s->ctl, vmc_now_ms() + RECEIVED_MS, &ev);
	if (ev.kind != VMC_MIGP_EV_RECEIVED) {
		fail(s, ev.code, "the destination did not confirm: %s%s", ev.from_peer ? "it says: " : "", ev.reason);
		return false;
	}
	return true;
}

static void cancel_and_report(struct send *s)
{
	json_object *o;
	char ignored[128];

	if (s->started && !s->completed && s->q != NULL) {
		/* QEMU resumes the source itself once its migration is cancelled. */
		qmp_sync_run(s->q, "migrate_cancel", NULL, QMP_MS, ignored, sizeof(ignored));
	}
	if (s->ctl != NULL && s->ctl_fd >= 0 && vmc_migp_state_get(s->ctl) != VMC_MIGP_FAILED) {
		vmc_migp_abort(s->ctl, s->code[0] ? s->code : VMC_MIGP_E_ABORTED, s->err);
		migp_flush(s->ctl_fd, s->ctl);
	}
	o = report_new("failed", s->o->id);
	json_object_object_add(o, "code", json_object_new_string(s->code[0] ? s->code : VMC_MIGP_E_INTERNAL));
	json_object_object_add(o, "reason", json_object_new_string(s->err));
	json_object_object_add(o, "completed", json_object_new_boolean(s->completed));
	report(o);
	agent_log("migration %s of %s failed: %s", s->o->id, s->o->vm, s->err);
}

int send_run(const struct send_opts *o)
{
	struct send s = { .o = o, .ctl_fd = -1, .st = { .qemu_fd = -1, .net_fd = -1, .plain_fd = -1 } };
	bool ok;
	json_object *done;

	struct sigaction sa = { .sa_handler = on_stop };

	sigaction(SIGTERM, &sa, NULL); /* no SA_RESTART: a blocked poll returns at once */
	sigaction(SIGINT, &sa, NULL);
	s.t0_ms = vmc_now_ms();
	ok = control_open(&s) && data_open(&s) && qemu_start(&s) && converge(&s) && await_received(&s);
	if (!ok) {
		cancel_and_report(&s);
	} else {
		done = report_new("received", o->id);
		json_object_object_add(done, "total_ms", json_object_new_int64(vmc_now_ms() - s.t0_ms));
		report(done);
	}
	stream_close(&s.st);
	qmp_sync_close(s.q);
	vmc_migp_free(s.ctl);
	if (s.ctl_fd >= 0) {
		close(s.ctl_fd);
	}
	return ok ? 0 : 1;
}
