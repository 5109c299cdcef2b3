/*
 * The destination side (agent.h): one listening socket on the migration
 * network, one thread per connection. A connection must authenticate
 * before anything else; a control channel must name a migration the
 * daemon said to expect, once; a data channel only one whose control
 * channel was accepted, once. The daemon says when the destination QEMU
 * waits (ready) or could not start (refuse); the control thread then
 * accepts, takes the data channel, feeds QEMU and confirms the end.
 *
 * Daemon lines on stdin (one JSON object each):
 *   {"expect": {"id": ID, "vm": NAME, "encrypt": BOOL}}
 *                                          a migration to this node was decided (sealed
 *                                          or not as this cluster says: the offer must agree)
 *   {"ready":  {"id": ID, "qmp": PATH}}    its QEMU waits (-incoming defer)
 *   {"refuse": {"id": ID, "reason": WHY}}  its QEMU could not start: refuse the offer
 *   {"forget": {"id": ID}}                 it ended: refuse anything more for it
 *   {"peers": [ADDR, ...]}                 the other nodes' migration addresses: only they
 *                                          may connect (until this line comes, anyone may)
 * An address gets at most PER_PEER_MAX handshakes at once (a migration
 * under way counts no more once authenticated), so silent
 * connections from one host cannot shut the others out.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"
#include "clock.h"
#include "conn.h"
#include "json_util.h"
#include "qmp_sync.h"
#include "stream.h"

#define EXPECT_MAX 64
#define CONN_THREADS_MAX 64
#define READY_MS 60000
#define EXPECT_WAIT_MS 3000 /* an id not expected yet may be a moment early */
#define DATA_MS 10000
#define INCOMING_MS (24 * 3600 * 1000)
#define POLL_MS 50
#define QMP_MS 5000

struct expect {
	bool used;
	char id[VMC_MIGP_ID_LEN + 1];
	char vm[128];
	char qmp[512];
	bool ready, refused, accepted, forgotten;
	/* A channel is taken once its peer authenticated: ids travel in clear,
	 * so a HELLO alone, which anyone can send, must not hold one. */
	bool control_taken, data_taken;
	int encrypt;                 /* what this cluster requires: 1, 0, or -1 when not said (standalone) */
	char reason[256];
	int data_fd;
	struct vmc_migp *data;
};

static struct expect table[EXPECT_MAX];
/* The daemon's list of the other nodes' migration addresses: no one else gets a thread. */
#define PEERS_MAX 64
#define PER_PEER_MAX 8 /* handshakes at once from one address (a source needs 2) */
static struct in_addr peers[PEERS_MAX];
static size_t n_peers;
static bool peers_set;
static struct {
	struct in_addr addr;
	int n;
} busy[CONN_THREADS_MAX];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int threads;
static const struct listen_opts *opts;
static int served_standalone; /* standalone: the one migration ended */

static struct expect *expect_find(const char *id)
{
	for (size_t i = 0; i < EXPECT_MAX; i++) {
		if (table[i].used && strcmp(table[i].id, id) == 0) {
			return &table[i];
		}
	}
	return NULL;
}

static struct expect *expect_add(const char *id, const char *vm)
{
	struct expect *e = expect_find(id);

	for (size_t i = 0; e == NULL && i < EXPECT_MAX; i++) {
		if (!table[i].used) {
			e = &table[i];
			*e = (struct expect){ .used = true, .data_fd = -1, .encrypt = -1 };
			snprintf(e->id, sizeof(e->id), "%s", id);
		}
	}
	if (e != NULL) {
		snprintf(e->vm, sizeof(e->vm), "%s", vm);
	}
	return e;
}

static void expect_drop(struct expect *e)
{
	if (e->data_fd >= 0) {
		close(e->data_fd);
	}
	vmc_migp_free(e->data);
	memset(e, 0, sizeof(*e));
}

/* May this HELLO go on? Takes the channel when it may (under lock). */
static bool hello_admit(const struct vmc_migp_event *ev, const char **code, const char **why)
{
	struct expect *e = expect_find(ev->id);

	*code = VMC_MIGP_E_UNKNOWN_ID;
	*why = "no such migration is expected on this node";
	if (e == NULL || e->forgotten) {
		return false;
	}
	*code = VMC_MIGP_E_ID_USED;
	if (ev->channel == VMC_MIGP_CONTROL) {
		*why = "that migration's control channel came already";
		return !e->control_taken;
	}
	*why = "that migration has no accepted control channel, or its data channel came already";
	return e->accepted && !e->data_taken && ev->index == 0;
}

/* An authenticated peer takes its channel, unless another one took it first (under lock). */
static bool channel_take(struct expect *e, enum vmc_migp_channel ch)
{
	bool *taken = ch == VMC_MIGP_CONTROL ? &e->control_taken : &e->data_taken;

	if (*taken) {
		return false;
	}
	*taken = true;
	return true;
}

static void refused_report(const char *peer, const struct vmc_migp_event *ev)
{
	json_object *o = report_new("refused", ev->id[0] ? ev->id : NULL);

	json_object_object_add(o, "peer", json_object_new_string(peer));
	json_object_object_add(o, "code", json_object_new_string(ev->code));
	json_object_object_add(o, "reason", json_object_new_string(ev->reason));
	report(o);
	agent_log("refused a connection from %s: %s: %s", peer, ev->code, ev->reason);
}

/* Refused before any thread: one line for the daemon like the others. */
static void refused_early(const char *ip, unsigned port, const char *why)
{
	json_object *o = report_new("refused", NULL);
	char peer[64];

	snprintf(peer, sizeof(peer), "%s:%u", ip, port);
	json_object_object_add(o, "peer", json_object_new_string(peer));
	json_object_object_add(o, "code", json_object_new_string(VMC_MIGP_E_REFUSED));
	json_object_object_add(o, "reason", json_object_new_string(why));
	report(o);
}

static void failed_report(const char *id, const char *reason)
{
	json_object *o = report_new("failed", id);

	json_object_object_add(o, "reason", json_object_new_string(reason));
	report(o);
	agent_log("migration %s failed: %s", id, reason);
}

/* Waits under lock for a change, at most until deadline_ms; false once it is past. */
static bool changed_wait(int64_t deadline_ms)
{
	struct timespec ts;
	int64_t left = deadline_ms - vmc_now_ms();

	if (left <= 0) {
		return false;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += left / 1000;
	ts.tv_nsec += (left % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&changed, &lock, &ts);
	return true;
}

/* Waits under lock until cond(e) or the deadline; false on the deadline. */
static bool wait_for(struct expect *e, bool (*cond)(const struct expect *), int64_t deadline_ms)
{
	while (!cond(e)) {
		if (!changed_wait(deadline_ms)) {
			return false;
		}
	}
	return true;
}

static bool decided(const struct expect *e)
{
	return e->ready || e->refused || e->forgotten;
}

static bool data_came(const struct expect *e)
{
	return e->data != NULL || e->forgotten;
}

/* Feeds the incoming QEMU from the data channel until it has the whole VM. */
static int incoming_run(struct expect *e, int ctl_fd, struct vmc_migp *ctl, bool encrypt, char *err, size_t len)
{
	struct stream st = { .qemu_fd = -1, .net_fd = -1, .plain_fd = -1 };
	struct qmp_sync *q = qmp_sync_open(e->qmp, QMP_MS, err, len);
	json_object *args;
	char status[32] = "";
	int64_t deadline = vmc_now_ms() + INCOMING_MS;
	int rc = -1;

	static const struct capability caps[] = { { "events", true } };

	if (q == NULL || migrate_capabilities(q, caps, 1, err, len) != 0 ||
	    stream_open(&st, e->data_fd, e->data, encrypt, err, len) != 0) {
		goto out;
	}
	e->data_fd = -1; /* the stream has it */
	if (stream_give_to_qemu(&st, q, err, len) != 0) {
		goto out;
	}
	args = json_object_new_object();
	json_object_object_add(args, "uri", json_object_new_string("fd:vmcmigrate"));
	if (qmp_sync_run(q, "migrate-incoming", args, QMP_MS, err, len) != 0) {
		goto out;
	}
	while (vmc_now_ms() < deadline) {
		struct pollfd p = { .fd = ctl_fd, .events = POLLIN };
		json_object *info = NULL;
		if (migrate_query(q, status, sizeof(status), &info, err, len) != 0) {
			goto out; /* QEMU gone: a failed incoming migration ends it */
		}
		if (strcmp(status, "completed") == 0) {
			json_object_put(info);
			rc = 0;
			goto out;
		}
		if (strcmp(status, "failed") == 0) {
			snprintf(err, len, "the destination QEMU failed the migration: %s",
				 vmc_json_str(info, "error-desc") ? vmc_json_str(info, "error-desc") : "no reason given");
			json_object_put(info);
			goto out;
		}
		json_object_put(info);
		qmp_sync_wait_event(q, POLL_MS);
		if (poll(&p, 1, 0) == 1) {
			struct vmc_migp_event ev;
			migp_pump(ctl_fd, ctl, vmc_now_ms() + VMCM_READ_DEADLINE_MS, &ev);
			snprintf(err, len, "the source gave up: %s", ev.reason);
			goto out;
		}
	}
	snprintf(err, len, "the migration did not end in time");
out:
	stream_close(&st);
	qmp_sync_close(q);
	return rc;
}

static void control_serve(struct expect *e, int fd, struct vmc_migp *c)
{
	struct vmc_migp_event ev;
	char id[VMC_MIGP_ID_LEN + 1], err[384];
	json_object *def;
	const char *name = NULL;
	bool encrypt = true;
	json_object *o;

	snprintf(id, sizeof(id), "%s", e->id);
	pthread_mutex_unlock(&lock);
	migp_pump(fd, c, vmc_now_ms() + VMCM_READ_DEADLINE_MS, &ev);
	pthread_mutex_lock(&lock);
	if (ev.kind != VMC_MIGP_EV_OFFER) {
		snprintf(err, sizeof(err), "no offer from the source: %s", ev.reason);
		goto fail;
	}
	if (json_object_object_get_ex(ev.offer, "definition", &def)) {
		name = vmc_json_str(def, "name");
	}
	json_object *enc;
	if (json_object_object_get_ex(ev.offer, "encrypt", &enc)) {
		encrypt = json_object_get_boolean(enc);
	}
	if (name == NULL || strcmp(name, e->vm) != 0) {
		snprintf(err, sizeof(err), "the offer is for vm %s, this migration is vm %s", name ? name : "(none)", e->vm);
		vmc_migp_server_refuse(c, VMC_MIGP_E_REFUSED, err);
		goto fail;
	}
	/* The offer is not sealed: the destination holds to its own cluster's setting, never the offer's. */
	if (e->encrypt >= 0 && encrypt != (e->encrypt == 1)) {
		snprintf(err, sizeof(err), "the offer asks for a %s stream; this cluster's migration_encrypt is %s",
			 encrypt ? "sealed" : "plaintext", e->encrypt ? "on" : "off");
		vmc_migp_server_refuse(c, VMC_MIGP_E_REFUSED, err);
		goto fail;
	}
	o = report_new("offer", id);
	json_object_object_add(o, "vm", json_object_new_string(e->vm));
	json_object_object_add(o, "source", json_object_new_string(vmc_json_str(ev.offer, "source") ?: "?"));
	report(o);
	if (!wait_for(e, decided, vmc_now_ms() + READY_MS) || !e->ready) {
		snprintf(err, sizeof(err), "%s", e->refused ? e->reason : "the destination QEMU was not ready in time");
		vmc_migp_server_refuse(c, VMC_MIGP_E_REFUSED, err);
		goto fail;
	}
	vmc_migp_server_accept(c);
	e->accepted = true;
	pthread_mutex_unlock(&lock);
	migp_flush(fd, c);
	pthread_mutex_lock(&lock);
	if (!wait_for(e, data_came, vmc_now_ms() + DATA_MS) || e->data == NULL) {
		snprintf(err, sizeof(err), "the source opened no data channel in time");
		vmc_migp_abort(c, VMC_MIGP_E_TIMEOUT, err);
		goto fail;
	}
	pthread_mutex_unlock(&lock);
	report(report_new("receiving", id));
	if (incoming_run(e, fd, c, encrypt, err, sizeof(err)) != 0) {
		vmc_migp_abort(c, VMC_MIGP_E_ABORTED, err);
		migp_flush(fd, c);
		pthread_mutex_lock(&lock);
		goto fail;
	}
	vmc_migp_server_received(c);
	migp_flush(fd, c);
	report(report_new("received", id));
	agent_log("migration %s of vm %s received", id, e->vm);
	pthread_mutex_lock(&lock);
	expect_drop(e);
	served_standalone = 1;
	return;
fail:
	pthread_mutex_unlock(&lock);
	migp_flush(fd, c);
	failed_report(id, err);
	pthread_mutex_lock(&lock);
	if (expect_find(id) == e) {
		expect_drop(e); /* single use: a retry is a new migration */
	}
	served_standalone = 1;
}

struct conn {
	int fd;
	struct in_addr addr;
	char peer[64];
};

static bool peer_allowed(struct in_addr a)
{
	for (size_t i = 0; i < n_peers; i++) {
		if (peers[i].s_addr == a.s_addr) {
			return true;
		}
	}
	return !peers_set;
}

/* One more handshake from a (under lock): false when it has PER_PEER_MAX already. */
static bool peer_busy_add(struct in_addr a)
{
	size_t free_slot = CONN_THREADS_MAX;

	for (size_t i = 0; i < CONN_THREADS_MAX; i++) {
		if (busy[i].n > 0 && busy[i].addr.s_addr == a.s_addr) {
			if (busy[i].n >= PER_PEER_MAX) {
				return false;
			}
			busy[i].n++;
			return true;
		}
		if (busy[i].n == 0 && free_slot == CONN_THREADS_MAX) {
			free_slot = i;
		}
	}
	if (free_slot == CONN_THREADS_MAX) {
		return false;
	}
	busy[free_slot].addr = a;
	busy[free_slot].n = 1;
	return true;
}

static void peer_busy_drop(struct in_addr a)
{
	for (size_t i = 0; i < CONN_THREADS_MAX; i++) {
		if (busy[i].n > 0 && busy[i].addr.s_addr == a.s_addr) {
			busy[i].n--;
			return;
		}
	}
}

static void *conn_thread(void *arg)
{
	struct conn *cn = arg;
	struct in_addr addr = cn->addr;
	struct vmc_migp *c = vmc_migp_server_new(opts->key);
	struct vmc_migp_event ev = { 0 };
	const char *code, *why;
	struct expect *e = NULL;
	bool ok, in_handshake = true;

	if (c == NULL) {
		goto out;
	}
	migp_pump(cn->fd, c, vmc_now_ms() + VMCM_READ_DEADLINE_MS, &ev);
	if (ev.kind == VMC_MIGP_EV_HELLO) {
		pthread_mutex_lock(&lock);
		ok = hello_admit(&ev, &code, &why);
		/* The source's daemon may act on the move a moment before ours tells us to expect it. */
		for (int64_t until = vmc_now_ms() + EXPECT_WAIT_MS;
		     !ok && strcmp(code, VMC_MIGP_E_UNKNOWN_ID) == 0 && changed_wait(until);) {
			ok = hello_admit(&ev, &code, &why);
		}
		e = ok ? expect_find(ev.id) : NULL;
		pthread_mutex_unlock(&lock);
		vmc_migp_server_hello(c, ok, code, why);
		migp_pump(cn->fd, c, vmc_now_ms() + VMCM_READ_DEADLINE_MS, &ev);
	}
	pthread_mutex_lock(&lock);
	if (ev.kind == VMC_MIGP_EV_AUTHED && (e == NULL || expect_find(ev.id) != e || !channel_take(e, ev.channel))) {
		vmc_migp_abort(c, VMC_MIGP_E_ID_USED, "another authenticated source took that channel first");
		vmc_migp_event_next(c, &ev);
	}
	if (ev.kind == VMC_MIGP_EV_AUTHED) {
		/* The caps are on handshakes: a migration's control thread lives as long as it does. */
		in_handshake = false;
		threads--;
		peer_busy_drop(addr);
	}
	pthread_mutex_unlock(&lock);
	if (ev.kind != VMC_MIGP_EV_AUTHED) {
		migp_flush(cn->fd, c);
		refused_report(cn->peer, &ev);
		goto out;
	}
	pthread_mutex_lock(&lock);
	if (vmc_migp_state_get(c) == VMC_MIGP_AUTHED && e != NULL && expect_find(ev.id) == e) {
		if (ev.channel == VMC_MIGP_DATA) {
			e->data_fd = cn->fd;
			e->data = c;
			cn->fd = -1;
			c = NULL;
			pthread_cond_broadcast(&changed);
		} else {
			control_serve(e, cn->fd, c);
			pthread_cond_broadcast(&changed);
		}
	}
	pthread_mutex_unlock(&lock);
out:
	vmc_migp_free(c);
	if (cn->fd >= 0) {
		close(cn->fd);
	}
	free(cn);
	pthread_mutex_lock(&lock);
	if (in_handshake) {
		threads--;
		peer_busy_drop(addr);
	}
	pthread_cond_broadcast(&changed);
	pthread_mutex_unlock(&lock);
	return NULL;
}

static void conn_accept(int lfd)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int fd = accept4(lfd, (struct sockaddr *)&sin, &sl, SOCK_CLOEXEC);
	struct conn *cn;
	pthread_t t;
	char ip[INET_ADDRSTRLEN] = "?";

	if (fd < 0) {
		return;
	}
	net_tune(fd);
	inet_ntop(AF_INET, &sin.sin_addr, ip, sizeof(ip));
	pthread_mutex_lock(&lock);
	if (!peer_allowed(sin.sin_addr)) {
		pthread_mutex_unlock(&lock);
		refused_early(ip, ntohs(sin.sin_port), "not a node of this cluster");
		close(fd);
		return;
	}
	if (threads >= CONN_THREADS_MAX || !peer_busy_add(sin.sin_addr)) {
		pthread_mutex_unlock(&lock);
		refused_early(ip, ntohs(sin.sin_port), "too many connections in handshake from there");
		close(fd);
		return;
	}
	threads++;
	pthread_mutex_unlock(&lock);
	cn = malloc(sizeof(*cn));
	if (cn != NULL) {
		cn->fd = fd;
		cn->addr = sin.sin_addr;
		snprintf(cn->peer, sizeof(cn->peer), "%s:%u", ip, ntohs(sin.sin_port));
	}
	if (cn == NULL || pthread_create(&t, NULL, conn_thread, cn) != 0) {
		close(fd);
		free(cn);
		pthread_mutex_lock(&lock);
		threads--;
		peer_busy_drop(sin.sin_addr);
		pthread_mutex_unlock(&lock);
		return;
	}
	pthread_detach(t);
}

/* One line from the daemon. */
static void control_line(const char *line)
{
	json_object *o = json_tokener_parse(line), *b;
	const char *id;
	struct expect *e;

	pthread_mutex_lock(&lock);
	if (o == NULL) {
		agent_log("ignored a line from the daemon that is not JSON");
	} else if (json_object_object_get_ex(o, "expect", &b) && (id = vmc_json_str(b, "id")) != NULL &&
		   vmc_migp_id_valid(id)) {
		struct expect *n = expect_add(id, vmc_json_str(b, "vm") ?: "");
		bool enc;
		if (n == NULL) {
			agent_log("too many migrations expected: %s refused", id);
		} else if (vmc_json_bool(b, "encrypt", &enc)) {
			n->encrypt = enc ? 1 : 0;
		}
	} else if (json_object_object_get_ex(o, "ready", &b) && (e = expect_find(vmc_json_str(b, "id") ?: "")) != NULL) {
		snprintf(e->qmp, sizeof(e->qmp), "%s", vmc_json_str(b, "qmp") ?: "");
		e->ready = true;
	} else if (json_object_object_get_ex(o, "refuse", &b) && (e = expect_find(vmc_json_str(b, "id") ?: "")) != NULL) {
		snprintf(e->reason, sizeof(e->reason), "%s", vmc_json_str(b, "reason") ?: "refused");
		e->refused = true;
	} else if (json_object_object_get_ex(o, "peers", &b) && json_object_is_type(b, json_type_array)) {
		n_peers = 0;
		for (size_t i = 0; i < json_object_array_length(b) && n_peers < PEERS_MAX; i++) {
			const char *a = json_object_get_string(json_object_array_get_idx(b, i));
			if (a != NULL && inet_pton(AF_INET, a, &peers[n_peers]) == 1) {
				n_peers++;
			}
		}
		peers_set = true;
	} else if (json_object_object_get_ex(o, "forget", &b) && (e = expect_find(vmc_json_str(b, "id") ?: "")) != NULL) {
		if (!e->control_taken || e->forgotten) {
			expect_drop(e);
		} else {
			e->forgotten = true; /* its thread drops it */
		}
	}
	pthread_cond_broadcast(&changed);
	pthread_mutex_unlock(&lock);
	json_object_put(o);
}

/* Reads what stdin has and runs each whole line; false on EOF. */
static bool control_read(void)
{
	static char buf[8192];
	static size_t have;
	ssize_t n = read(STDIN_FILENO, buf + have, sizeof(buf) - 1 - have);
	char *nl;

	if (n <= 0) {
		return n < 0 && errno == EINTR;
	}
	have += (size_t)n;
	buf[have] = '\0';
	while ((nl = strchr(buf, '\n')) != NULL) {
		*nl = '\0';
		control_line(buf);
		have -= (size_t)(nl + 1 - buf);
		memmove(buf, nl + 1, have + 1);
	}
	if (have == sizeof(buf) - 1) {
		agent_log("a line from the daemon is longer than %zu bytes: dropped", sizeof(buf) - 1);
		have = 0;
	}
	return true;
}

int listen_run(const struct listen_opts *o)
{
	char err[256];
	int lfd = net_listen(o->addr, o->port, err, sizeof(err));
	json_object *r;

	opts = o;
	if (lfd < 0) {
		agent_log("%s", err);
		return 1;
	}
	if (o->expect_id != NULL) {
		struct expect *e = expect_add(o->expect_id, o->expect_vm);
		snprintf(e->qmp, sizeof(e->qmp), "%s", o->expect_qmp);
		e->ready = true;
	}
	r = report_new("listening", NULL);
	json_object_object_add(r, "address", json_object_new_string(o->addr));
	json_object_object_add(r, "port", json_object_new_int(o->port));
	report(r);
	for (;;) {
		struct pollfd p[2] = { { .fd = lfd, .events = POLLIN }, { .fd = STDIN_FILENO, .events = POLLIN } };
		int n = poll(p, o->daemon_control ? 2 : 1, 200);
		if (n > 0 && (p[0].revents & POLLIN)) {
			conn_accept(lfd);
		}
		if (o->daemon_control && n > 0 && (p[1].revents & (POLLIN | POLLHUP))) {
			if (!control_read()) {
				agent_log("the daemon closed its end: exiting");
				break;
			}
		}
		if (!o->daemon_control && served_standalone) {
			break;
		}
	}
	close(lfd);
	return 0;
}
