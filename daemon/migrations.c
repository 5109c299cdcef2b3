/*
 * This node's migration agents (migrations.h).
 */
#include "config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent_proc.h"
#include "clock.h"
#include "cpg.h"
#include "json_util.h"
#include "local_vms.h"
#include "log.h"
#include "migration.h"
#include "migrations.h"
#include "nodes.h"
#include "vm_qemu.h"

#define MOVES_MAX 64
#define LISTENER_RETRY_MS 1000

/* A migration this node takes part in. */
struct move {
	bool used;
	bool outgoing;               /* this node is the source */
	char id[VMC_MIG_ID_MAX + 1];
	char vm[VMC_NAME_MAX + 1];
	uint32_t peer;               /* the other node */
	struct agent_proc *agent;    /* outgoing: the sending agent */
	bool agent_started;
	bool quick;                  /* saved to a file and restored, not live */
	bool switchover_sent, continued, completed, received, saved, failed, ended_sent, told_expect, told_ready;
	bool restore_started;
	char reason[256];
	json_object *progress;       /* the sending agent's last progress line */
	int64_t started_ms;
	int64_t step_sent_ms;        /* when the last SWITCHOVER, DONE or ABORT went out */
};

static struct move moves[MOVES_MAX];
static struct agent_proc *listener;
static char listener_addr[48];
static uint32_t listener_port;
static int64_t listener_retry_ms;
static qb_loop_timer_handle retry_timer;
static bool retry_armed;
static char peers_sent[2048]; /* the last peers line the listener got */
static const struct vmcd_migrations_hooks *hooks;
static struct vmcd *ctx;

/* ---- addresses ---- */

static bool ipv4_in(const char *addr, uint32_t net, unsigned prefix)
{
	struct in_addr a;
	uint32_t mask = prefix == 0 ? 0 : ~0u << (32 - prefix);

	return inet_pton(AF_INET, addr, &a) == 1 && (ntohl(a.s_addr) & mask) == (net & mask);
}

/*
 * Asked on every pass of the loop: the interfaces are read again at most
 * every ADDR_REFRESH_MS, or at once when the network setting changes.
 */
#define ADDR_REFRESH_MS 5000

static void local_addr_find(const struct vmcd *d, char *buf, size_t len);

const char *vmcd_migration_local_addr(const struct vmcd *d, char *buf, size_t len)
{
	static char cached[48], for_network[VMC_MIGRATION_NETWORK_MAX];
	static int64_t at_ms;
	static bool valid;
	const char *network = d->replica.state->settings.migration_network;

	if (!valid || strcmp(network, for_network) != 0 || vmc_now_ms() - at_ms > ADDR_REFRESH_MS) {
		local_addr_find(d, cached, sizeof(cached));
		snprintf(for_network, sizeof(for_network), "%s", network);
		at_ms = vmc_now_ms();
		valid = true;
	}
	snprintf(buf, len, "%s", cached);
	return buf;
}

static void local_addr_find(const struct vmcd *d, char *buf, size_t len)
{
	const struct vmc_settings *st = &d->replica.state->settings;
	const struct vmcd_node *self = vmcd_node_by_id(d, d->my_id);
	struct ifaddrs *ifs, *i;
	uint32_t net;
	unsigned prefix;
	struct in_addr probe;

	buf[0] = '\0';
	if (st->migration_network[0] == '\0') {
		if (self != NULL && inet_pton(AF_INET, self->addr, &probe) == 1) {
			snprintf(buf, len, "%.47s", self->addr);
		}
		return;
	}
	if (vmc_cidr_parse(st->migration_network, &net, &prefix) != 0 || getifaddrs(&ifs) != 0) {
		return;
	}
	for (i = ifs; i != NULL && buf[0] == '\0'; i = i->ifa_next) {
		char a[INET_ADDRSTRLEN];
		if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET) {
			continue;
		}
		inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, a, sizeof(a));
		if (ipv4_in(a, net, prefix)) {
			snprintf(buf, len, "%s", a);
		}
	}
	freeifaddrs(ifs);
}

/* Where node's agent listens: what it announced, else its ring address. */
static const char *peer_addr(const struct vmcd *d, uint32_t node)
{
	const struct vmc_node_facts *f = vmc_state_node(d->replica.state, node);
	const struct vmcd_node *n = vmcd_node_by_id(d, node);

	if (f != NULL && f->migration_addr[0] != '\0') {
		return f->migration_addr;
	}
	return n != NULL ? n->addr : "";
}

/* ---- the table ---- */

static struct move *move_find(const char *id)
{
	for (size_t i = 0; i < MOVES_MAX; i++) {
		if (moves[i].used && strcmp(moves[i].id, id) == 0) {
			return &moves[i];
		}
	}
	return NULL;
}

static struct move *move_get(const struct vmc_group *g, bool outgoing, uint32_t peer)
{
	struct move *m = move_find(g->mig.id);

	for (size_t i = 0; m == NULL && i < MOVES_MAX; i++) {
		if (!moves[i].used) {
			m = &moves[i];
			*m = (struct move){ .used = true, .outgoing = outgoing, .peer = peer, .quick = g->mig.quick,
					    .started_ms = vmc_now_ms() };
			snprintf(m->id, sizeof(m->id), "%s", g->mig.id);
			snprintf(m->vm, sizeof(m->vm), "%s", g->def->name);
		}
	}
	return m;
}

static void def_file_path(const struct vmcd *d, const char *id, char *buf, size_t len)
{
	if ((size_t)snprintf(buf, len, "%.3900s/migration-%.32s.json", d->opt.run_dir, id) >= len) {
		buf[0] = '\0';
	}
}

/* Forget a move. Its definition file stays when the daemon stops mid-move: it tells the next one. */
static void move_drop(struct vmcd *d, struct move *m, bool stopping)
{
	char path[PATH_MAX];

	if (m->agent != NULL) {
		agent_proc_abandon(m->agent, !stopping);
	}
	def_file_path(d, m->id, path, sizeof(path));
	if (!stopping) {
		unlink(path);
	}
	json_object_put(m->progress);
	memset(m, 0, sizeof(*m));
}

/* ---- messages to the cluster ---- */

/*
 * A step sent that the state does not show yet after this long is sent
 * again: a membership change may have come first ("not applied"). A
 * repeat of one that was applied is refused: its migration moved on.
 */
#define STEP_RESEND_MS 2000
#define TICK_MS 1000

static bool step_due(const struct move *m)
{
	return vmc_now_ms() - m->step_sent_ms > STEP_RESEND_MS;
}

static void send_step(struct vmcd *d, uint16_t type, struct move *m, const char *reason)
{
	json_object *body = json_object_new_object();

	json_object_object_add(body, "name", json_object_new_string(m->vm));
	json_object_object_add(body, "id", json_object_new_string(m->id));
	if (reason != NULL) {
		json_object_object_add(body, "reason", json_object_new_string(reason));
	}
	if (vmcd_cpg_send_request(d, type, body) < 0) {
		log_warn("vm %s: cannot send %s for migration %s", m->vm, vmc_msg_type_to_str(type), m->id);
	}
	m->step_sent_ms = vmc_now_ms();
	json_object_put(body);
}

static void move_abort(struct vmcd *d, struct move *m, const char *reason)
{
	if (m->ended_sent && !step_due(m)) {
		return;
	}
	if (m->ended_sent) {
		log_info("vm %s: migration %s: the cluster has not applied its end yet: asking again", m->vm, m->id);
		send_step(d, VMC_MSG_MIGRATE_ABORT, m, reason);
		return;
	}
	m->ended_sent = true;
	log_warn("vm %s: move to %s failed: %s", m->vm,
		 m->outgoing ? vmcd_node_name(d, m->peer) : vmcd_node_name(d, d->my_id), reason);
	send_step(d, VMC_MSG_MIGRATE_ABORT, m, reason);
}

/* ---- the listening agent ---- */

/* Refused connections, at most REFUSED_BURST logged per REFUSED_WINDOW_MS: a flood is one line more. */
#define REFUSED_BURST 10
#define REFUSED_WINDOW_MS 10000

static struct {
	unsigned logged, dropped;
	qb_loop_timer_handle timer;
	bool armed;
} refusals;

/* The window ends: what it did not log one by one is one line, even if the flood has stopped. */
static void refused_flush(void *data)
{
	(void)data;
	refusals.armed = false;
	if (refusals.dropped > 0) {
		log_warn("migration listener refused %u more connections in the last %d s (not logged one by one)",
			 refusals.dropped, REFUSED_WINDOW_MS / 1000);
	}
	refusals.logged = refusals.dropped = 0;
}

static void refused_log(struct vmcd *d, json_object *o)
{
	if (!refusals.armed) {
		if (qb_loop_timer_add(d->loop, QB_LOOP_LOW, (uint64_t)REFUSED_WINDOW_MS * QB_TIME_NS_IN_MSEC, d,
				      refused_flush, &refusals.timer) == 0) {
			refusals.armed = true;
		}
	}
	if (refusals.logged++ >= REFUSED_BURST) {
		refusals.dropped++;
		return;
	}
	log_warn("migration listener refused a connection from %s: %s: %s", vmc_json_str(o, "peer") ?: "?",
		 vmc_json_str(o, "code") ?: "?", vmc_json_str(o, "reason") ?: "?");
}

static void listener_line(void *c, struct agent_proc *p, json_object *o, const char *text)
{
	struct vmcd *d = c;
	const char *event = vmc_json_str(o, "event"), *id = vmc_json_str(o, "id");
	struct move *m = id != NULL ? move_find(id) : NULL;

	(void)p;
	if (event == NULL) {
		log_warn("migration listener: a line that is not an event: %.200s", text);
		return;
	}
	if (strcmp(event, "refused") == 0) {
		refused_log(d, o);
	} else if (strcmp(event, "listening") == 0) {
		log_notice("migration agent listening on %s:%u", listener_addr, listener_port);
	} else if (m != NULL && strcmp(event, "received") == 0) {
		m->received = true;
	} else if (m != NULL && strcmp(event, "failed") == 0) {
		m->failed = true;
		snprintf(m->reason, sizeof(m->reason), "on %s: %s", vmcd_node_name(d, d->my_id),
			 vmc_json_str(o, "reason") ?: "no reason given");
	} else if (m != NULL) {
		log_info("vm %s: migration %s: %s", m->vm, id, event);
	}
	hooks->changed(d);
}

static void listener_exited(void *c, struct agent_proc *p, int status)
{
	struct vmcd *d = c;

	(void)p;
	log_warn("migration listener (pid %d) exited (status %d): restarting it", (int)agent_proc_pid(p), status);
	listener = NULL;
	listener_retry_ms = vmc_now_ms() + LISTENER_RETRY_MS;
	hooks->changed(d);
}

static const struct agent_proc_ops listener_ops = { .line = listener_line, .exited = listener_exited };

static void retry_fire(void *data)
{
	retry_armed = false;
	hooks->changed(data);
}

static void listener_ensure(struct vmcd *d)
{
	char addr[48], hostport[80];
	uint32_t port = d->replica.state->settings.migration_port;
	char err[256];

	vmcd_migration_local_addr(d, addr, sizeof(addr));
	if (listener != NULL && (strcmp(addr, listener_addr) != 0 || port != listener_port)) {
		log_notice("migration network changed: moving the listener from %s:%u to %s:%u", listener_addr,
			   listener_port, addr[0] ? addr : "(none)", port);
		agent_proc_abandon(listener, true);
		listener = NULL;
	}
	if (listener != NULL || addr[0] == '\0') {
		return;
	}
	if (vmc_now_ms() < listener_retry_ms) {
		if (!retry_armed &&
		    qb_loop_timer_add(d->loop, QB_LOOP_LOW,
				      (uint64_t)(listener_retry_ms - vmc_now_ms()) * QB_TIME_NS_IN_MSEC, d, retry_fire,
				      &retry_timer) == 0) {
			retry_armed = true;
		}
		return;
	}
	snprintf(hostport, sizeof(hostport), "%s:%u", addr, port);
	{
		char *argv[] = { d->opt.migrate_agent, (char *)"listen", (char *)"--daemon", (char *)"--listen", hostport,
				 (char *)"--key-file", d->opt.cluster_key, NULL };
		listener = agent_proc_start(d->loop, argv, &listener_ops, d, err, sizeof(err));
	}
	if (listener == NULL) {
		log_err("cannot start the migration listener: %s", err);
		listener_retry_ms = vmc_now_ms() + LISTENER_RETRY_MS;
		return;
	}
	if (strcmp(listener_addr, addr) != 0) {
		snprintf(listener_addr, sizeof(listener_addr), "%s", addr);
		hooks->addr_changed(d);
	}
	listener_port = port;
	/* A new listener knows nothing: tell it again what this node expects, and who may connect. */
	peers_sent[0] = '\0';
	for (size_t i = 0; i < MOVES_MAX; i++) {
		moves[i].told_expect = moves[i].told_ready = false;
	}
}

static void listener_tell(const char *verb, const struct move *m, const char *key, const char *value)
{
	json_object *o = json_object_new_object(), *b = json_object_new_object();

	json_object_object_add(b, "id", json_object_new_string(m->id));
	if (key != NULL) {
		json_object_object_add(b, key, json_object_new_string(value));
	}
	json_object_object_add(o, verb, b);
	if (listener != NULL) {
		agent_proc_send(listener, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	}
	json_object_put(o);
}

/* The listener may take this migration's channels, sealed or not as this cluster says. */
static void listener_expect(const struct vmcd *d, const struct move *m)
{
	json_object *o = json_object_new_object(), *b = json_object_new_object();

	json_object_object_add(b, "id", json_object_new_string(m->id));
	json_object_object_add(b, "vm", json_object_new_string(m->vm));
	json_object_object_add(b, "encrypt", json_object_new_boolean(d->replica.state->settings.migration_encrypt));
	json_object_object_add(o, "expect", b);
	if (listener != NULL) {
		agent_proc_send(listener, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	}
	json_object_put(o);
}

/* The other nodes' migration addresses, when they changed: nobody else reaches the listener. */
static void listener_peers(struct vmcd *d)
{
	char *last = peers_sent;
	json_object *o = json_object_new_object(), *a = json_object_new_array();
	const char *text;

	for (size_t i = 0; i < d->replica.state->n_nodes; i++) {
		uint32_t id = d->replica.state->nodes[i].id;
		const char *addr = peer_addr(d, id);
		if (id != d->my_id && addr[0] != '\0') {
			json_object_array_add(a, json_object_new_string(addr));
		}
	}
	json_object_object_add(o, "peers", a);
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	if (listener != NULL && strcmp(text, last) != 0 && agent_proc_send(listener, text) == 0) {
		snprintf(last, sizeof(peers_sent), "%s", text);
	}
	json_object_put(o);
}

/* ---- the sending agent ---- */

static void sender_line(void *c, struct agent_proc *p, json_object *o, const char *text)
{
	struct vmcd *d = c;
	struct move *m = move_find(agent_proc_tag(p));
	const char *event = vmc_json_str(o, "event");

	if (m == NULL || event == NULL) {
		log_warn("migration agent: a line that is not an event: %.200s", text);
		return;
	}
	if (strcmp(event, "progress") == 0) {
		json_object_put(m->progress);
		m->progress = json_object_get(o);
		return; /* nothing to decide */
	}
	log_info("vm %s: migration %s to %s: %s", m->vm, m->id, vmcd_node_name(d, m->peer), event);
	if ((strcmp(event, "pre-switchover") == 0 || strcmp(event, "saved") == 0) && !m->switchover_sent) {
		/* Live: paused at pre-switchover; quick: its state is on the volume. The locks go next. */
		m->saved = strcmp(event, "saved") == 0;
		m->switchover_sent = true;
		send_step(d, VMC_MSG_MIGRATE_SWITCHOVER, m, NULL);
	} else if (strcmp(event, "completed") == 0) {
		int64_t down = -1, total = -1;
		vmc_json_int64(o, "downtime_ms", &down);
		vmc_json_int64(o, "qemu_total_ms", &total);
		log_notice("vm %s: migration %s to %s: the source sent it all; downtime %lld ms (the lock handover "
			   "included), %lld ms in QEMU since the start", m->vm, m->id, vmcd_node_name(d, m->peer),
			   (long long)down, (long long)total);
		m->completed = true;
	} else if (strcmp(event, "received") == 0 || strcmp(event, "restored") == 0) {
		m->received = true;
	} else if (strcmp(event, "failed") == 0) {
		m->failed = true;
		snprintf(m->reason, sizeof(m->reason), "%s", vmc_json_str(o, "reason") ?: "no reason given");
	}
	hooks->changed(d);
}

static void sender_exited(void *c, struct agent_proc *p, int status)
{
	struct vmcd *d = c;
	struct move *m = move_find(agent_proc_tag(p));

	if (m == NULL) {
		return;
	}
	m->agent = NULL;
	if (!m->received && !m->saved && !m->failed) {
		m->failed = true;
		snprintf(m->reason, sizeof(m->reason), "the migration agent on %s exited (status %d) before the end",
			 vmcd_node_name(d, d->my_id), status);
	}
	hooks->changed(d);
}

static const struct agent_proc_ops sender_ops = { .line = sender_line, .exited = sender_exited };

static int def_file_write(const struct vmcd *d, const struct vmc_group *g, char *path, size_t len)
{
	json_object *def = vmc_group_def_to_json(g->def);
	const char *text = json_object_to_json_string_ext(def, JSON_C_TO_STRING_PLAIN);
	int fd, rc = 0;

	def_file_path(d, g->mig.id, path, len);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		rc = -errno;
	}
	if (fd >= 0) {
		close(fd);
	}
	json_object_put(def);
	return rc;
}

/* A quick migration's save (the source) or restore (the target), or the removal of its file. */
static void quick_agent_start(struct vmcd *d, struct move *m, const struct vmc_group *g, const char *verb)
{
	char qmp[PATH_MAX], file[PATH_MAX], timeout[16], err[256];
	char *argv[] = { d->opt.migrate_agent, (char *)verb, (char *)"--daemon", (char *)"--qmp", qmp, (char *)"--file",
			 file, (char *)"--id", m->id, (char *)"--timeout", timeout, NULL };

	snprintf(timeout, sizeof(timeout), "%u", d->replica.state->settings.migration_timeout_s);
	if (vmcd_vm_migrate_qmp_path(m->vm, qmp, sizeof(qmp)) != 0 ||
	    vmc_migration_state_file(d->replica.state, g, m->id, file, sizeof(file)) != 0) {
		m->failed = true;
		snprintf(m->reason, sizeof(m->reason), "vm %s has no state file for a quick migration", m->vm);
		return;
	}
	m->agent = agent_proc_start(d->loop, argv, &sender_ops, d, err, sizeof(err));
	if (m->agent == NULL) {
		m->failed = true;
		snprintf(m->reason, sizeof(m->reason), "%s", err);
		return;
	}
	agent_proc_set_tag(m->agent, m->id);
	log_notice("vm %s: quick migration %s to %s: %s %s", m->vm, m->id,
		   vmcd_node_name(d, m->outgoing ? m->peer : d->my_id), strcmp(verb, "save") == 0 ? "saving it to" : "loading it from",
		   file);
}

static void sender_start(struct vmcd *d, struct move *m, const struct vmc_group *g)
{
	const struct vmc_settings *st = &d->replica.state->settings;
	char to[80], bw[16], down[16], timeout[16], from[48], qmp[PATH_MAX], def[PATH_MAX], err[256];
	char *argv[32];
	size_t n = 0;

	m->agent_started = true;
	if (vmcd_vm_migrate_qmp_path(m->vm, qmp, sizeof(qmp)) != 0 || def_file_write(d, g, def, sizeof(def)) != 0) {
		m->failed = true;
		snprintf(m->reason, sizeof(m->reason), "cannot prepare the migration agent's files in %.180s",
			 d->opt.run_dir);
		return;
	}
	snprintf(to, sizeof(to), "%s:%u", peer_addr(d, m->peer), st->migration_port);
	snprintf(bw, sizeof(bw), "%u", st->migration_bandwidth_mib);
	snprintf(down, sizeof(down), "%u", st->migration_downtime_ms);
	snprintf(timeout, sizeof(timeout), "%u", st->migration_timeout_s);
	vmcd_migration_local_addr(d, from, sizeof(from));
	argv[n++] = d->opt.migrate_agent;
	argv[n++] = (char *)"send";
	argv[n++] = (char *)"--daemon";
	argv[n++] = (char *)"--wait-continue";
	argv[n++] = (char *)"--vm", argv[n++] = m->vm;
	argv[n++] = (char *)"--qmp", argv[n++] = qmp;
	argv[n++] = (char *)"--to", argv[n++] = to;
	argv[n++] = (char *)"--id", argv[n++] = m->id;
	argv[n++] = (char *)"--key-file", argv[n++] = d->opt.cluster_key;
	argv[n++] = (char *)"--definition", argv[n++] = def;
	argv[n++] = (char *)"--source", argv[n++] = (char *)vmcd_node_name(d, d->my_id);
	argv[n++] = (char *)"--bandwidth", argv[n++] = bw;
	argv[n++] = (char *)"--downtime", argv[n++] = down;
	argv[n++] = (char *)"--timeout", argv[n++] = timeout;
	if (from[0] != '\0') {
		argv[n++] = (char *)"--from", argv[n++] = from;
	}
	if (!st->migration_encrypt) {
		argv[n++] = (char *)"--no-encrypt";
	}
	argv[n] = NULL;
	if (m->quick) {
		quick_agent_start(d, m, g, "save");
		return;
	}
	m->agent = agent_proc_start(d->loop, argv, &sender_ops, d, err, sizeof(err));
	if (m->agent == NULL) {
		m->failed = true;
		snprintf(m->reason, sizeof(m->reason), "%s", err);
		return;
	}
	agent_proc_set_tag(m->agent, m->id);
	log_notice("vm %s: moving it %s to %s (%s, migration %s)", m->vm, g->mig.quick ? "(quick)" : "live",
		   vmcd_node_name(d, m->peer), to, m->id);
}

/* ---- reconcile ---- */

static bool member(const struct vmcd *d, uint32_t id)
{
	for (size_t i = 0; i < d->replica.n_active; i++) {
		if (d->replica.active[i] == id) {
			return true;
		}
	}
	return false;
}

static void outgoing_reconcile(struct vmcd *d, const struct vmc_group *g)
{
	struct move *m = move_get(g, true, g->mig.target);

	if (m == NULL) {
		return;
	}
	if (!member(d, g->mig.target)) {
		char why[160];
		snprintf(why, sizeof(why), "node %s left the cluster", vmcd_node_name(d, g->mig.target));
		move_abort(d, m, why);
		return;
	}
	if (!m->agent_started) {
		char path[PATH_MAX];
		def_file_path(d, m->id, path, sizeof(path));
		if (access(path, F_OK) == 0) {
			/* An earlier vmclusterd started this move; its agent died with it. */
			m->agent_started = true;
			move_abort(d, m, "the source's vmclusterd restarted during the move");
			return;
		}
		sender_start(d, m, g);
	}
	if (g->mig.phase == VMC_MIG_TRANSFER && m->switchover_sent && !m->failed && step_due(m)) {
		send_step(d, VMC_MSG_MIGRATE_SWITCHOVER, m, NULL); /* lost in a membership change */
	}
	if (g->mig.phase == VMC_MIG_SWITCHOVER && m->agent != NULL && !m->continued) {
		m->continued = true;
		agent_proc_send(m->agent, "continue");
	}
	if (m->failed) {
		move_abort(d, m, m->reason);
	}
}

static void incoming_reconcile(struct vmcd *d, const struct vmc_group *g)
{
	struct move *m = move_get(g, false, g->owner);
	char qmp[PATH_MAX], why[256];
	const char *state;

	if (m == NULL) {
		return;
	}
	if (!m->told_expect && !m->quick) {
		m->told_expect = true;
		listener_expect(d, m);
	}
	state = vmcd_local_incoming(m->vm, m->id, why, sizeof(why));
	if (m->quick && strcmp(state, "ready") == 0 && g->mig.phase == VMC_MIG_SWITCHOVER && !m->restore_started) {
		/* The source saved it and the locks are ours: load it. */
		m->restore_started = true;
		quick_agent_start(d, m, g, "restore");
	} else if (!m->quick && strcmp(state, "ready") == 0 && !m->told_ready &&
		   vmcd_vm_migrate_qmp_path(m->vm, qmp, sizeof(qmp)) == 0) {
		m->told_ready = true;
		listener_tell("ready", m, "qmp", qmp);
	} else if (strcmp(state, "failed") == 0 && !m->received) {
		if (!m->quick) {
			listener_tell("refuse", m, "reason", why);
		}
		move_abort(d, m, why);
	}
	if (m->received && g->mig.phase == VMC_MIG_SWITCHOVER && (!m->ended_sent || step_due(m))) {
		m->ended_sent = true;
		send_step(d, VMC_MSG_MIGRATE_DONE, m, NULL);
	} else if (m->failed) {
		move_abort(d, m, m->reason);
	}
}

static void remover_line(void *c, struct agent_proc *p, json_object *o, const char *text)
{
	(void)c;
	(void)p;
	(void)o;
	(void)text;
}

static void remover_exited(void *c, struct agent_proc *p, int status)
{
	(void)c;
	(void)p;
	(void)status;
}

static const struct agent_proc_ops remover_ops = { .line = remover_line, .exited = remover_exited };

/* Whatever became of a quick move, its file goes (in a child: the volume may hang). */
static void state_file_remove(struct vmcd *d, const struct move *m, const struct vmc_group *g)
{
	char file[PATH_MAX], err[256];
	char *argv[] = { d->opt.migrate_agent, (char *)"remove", (char *)"--file", file, NULL };

	if (vmc_migration_state_file(d->replica.state, g, m->id, file, sizeof(file)) == 0 &&
	    agent_proc_start(d->loop, argv, &remover_ops, d, err, sizeof(err)) == NULL) {
		log_warn("vm %s: cannot remove the quick migration's file %s: %s", m->vm, file, err);
	}
}

/* Moves the state no longer has: stop what still runs for them. */
static void ended_reconcile(struct vmcd *d)
{
	for (size_t i = 0; i < MOVES_MAX; i++) {
		struct move *m = &moves[i];
		const struct vmc_group *g;
		if (!m->used) {
			continue;
		}
		g = vmc_state_group_find(d->replica.state, m->vm);
		if (g != NULL && g->mig.phase != VMC_MIG_NONE && strcmp(g->mig.id, m->id) == 0) {
			continue;
		}
		if (m->outgoing && g != NULL && g->owner == d->my_id) {
			/* Rolled back: a QEMU left paused at pre-switchover runs again. */
			vmcd_vm_migrate_cancel(m->vm);
		}
		if (!m->outgoing && !m->quick) {
			listener_tell("forget", m, NULL, NULL);
		}
		if (m->outgoing && m->quick && g != NULL) {
			state_file_remove(d, m, g);
		}
		log_info("vm %s: migration %s is over here", m->vm, m->id);
		move_drop(d, m, false);
	}
}

/*
 * Once synced: the definition files an earlier daemon left for moves the
 * state no longer has (a move in flight keeps its file: it tells the
 * restarted daemon its agent died with the old one).
 */
static void stale_files_remove(struct vmcd *d)
{
	static bool done;
	DIR *dir;
	struct dirent *e;

	if (done || (dir = opendir(d->opt.run_dir)) == NULL) {
		return;
	}
	done = true;
	while ((e = readdir(dir)) != NULL) {
		char id[VMC_MIG_ID_MAX + 1], path[PATH_MAX];
		bool live = false;
		if (sscanf(e->d_name, "migration-%32[0-9a-f].json", id) != 1) {
			continue;
		}
		for (size_t i = 0; i < d->replica.state->n_groups; i++) {
			const struct vmc_group *g = &d->replica.state->groups[i];
			live = live || (g->mig.phase != VMC_MIG_NONE && strcmp(g->mig.id, id) == 0);
		}
		def_file_path(d, id, path, sizeof(path));
		if (!live && path[0] != '\0') {
			unlink(path);
		}
	}
	closedir(dir);
}

static qb_loop_timer_handle tick_timer;
static bool tick_armed;

static void tick_fire(void *data)
{
	tick_armed = false;
	hooks->changed(data);
}

/* While moves are under way, decide again every second: steps to send again, deadlines. */
static void tick_ensure(struct vmcd *d)
{
	bool any = false;

	for (size_t i = 0; i < MOVES_MAX; i++) {
		any = any || moves[i].used;
	}
	if (any && !tick_armed &&
	    qb_loop_timer_add(d->loop, QB_LOOP_LOW, (uint64_t)TICK_MS * QB_TIME_NS_IN_MSEC, d, tick_fire, &tick_timer) == 0) {
		tick_armed = true;
	}
}

void vmcd_migrations_reconcile(struct vmcd *d)
{
	const struct vmc_state *s = d->replica.state;

	listener_ensure(d);
	if (d->replica.phase != VMC_SYNC_DONE || !vmc_replica_writable(&d->replica)) {
		return;
	}
	stale_files_remove(d);
	listener_peers(d);
	for (size_t i = 0; i < s->n_groups; i++) {
		const struct vmc_group *g = &s->groups[i];
		if (g->state != VMC_GROUP_MIGRATING ||
		    (g->mig.phase != VMC_MIG_TRANSFER && g->mig.phase != VMC_MIG_SWITCHOVER)) {
			continue;
		}
		if (g->owner == d->my_id) {
			outgoing_reconcile(d, g);
		} else if (g->mig.target == d->my_id) {
			incoming_reconcile(d, g);
		}
	}
	ended_reconcile(d);
	tick_ensure(d);
}

json_object *vmcd_migrations_progress(void)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; i < MOVES_MAX; i++) {
		const struct move *m = &moves[i];
		json_object *o;
		if (!m->used) {
			continue;
		}
		o = m->progress != NULL ? json_object_get(m->progress) : json_object_new_object();
		json_object_object_add(o, "id", json_object_new_string(m->id));
		json_object_object_add(o, "vm", json_object_new_string(m->vm));
		json_object_object_add(o, "role", json_object_new_string(m->outgoing ? "source" : "target"));
		json_object_object_add(o, "age_ms", json_object_new_int64(vmc_now_ms() - m->started_ms));
		json_object_array_add(a, o);
	}
	return a;
}

int vmcd_migrations_init(struct vmcd *d, const struct vmcd_migrations_hooks *h)
{
	hooks = h;
	ctx = d;
	return 0;
}

void vmcd_migrations_fini(struct vmcd *d)
{
	for (size_t i = 0; i < MOVES_MAX; i++) {
		if (moves[i].used) {
			move_drop(d, &moves[i], true);
		}
	}
	if (listener != NULL) {
		agent_proc_abandon(listener, true);
		listener = NULL;
	}
	if (retry_armed) {
		qb_loop_timer_del(d->loop, retry_timer);
		retry_armed = false;
	}
	if (tick_armed) {
		qb_loop_timer_del(d->loop, tick_timer);
		tick_armed = false;
	}
	if (refusals.armed) {
		qb_loop_timer_del(d->loop, refusals.timer);
		refusals.armed = false;
	}
	ctx = NULL;
}
