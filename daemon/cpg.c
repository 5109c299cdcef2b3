/*
 * CPG wiring (cpg.h): the daemon joins the process group "vmcluster";
 * every change to the cluster state is multicast with agreed ordering and
 * applied by the replica (lib/replica.c) in delivery order on every
 * member.
 *
 * Sending never blocks the loop: messages go into an outbox that is
 * flushed at once, and when corosync answers CS_ERR_TRY_AGAIN (normal
 * during its own sync or under flow control) the rest waits for a retry
 * timer. The outbox keeps order, which per-sender FIFO delivery relies on.
 *
 * The hello phase of every sync has a deadline (lib/timeouts.h): when it
 * passes, the replica asks for the silent members to be excluded, so a
 * daemon that stopped answering cannot stall every sync in the cluster.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <corosync/cpg.h>

#include "clock.h"
#include "cpg.h"
#include "log.h"
#include "msg_types.h"
#include "nodes.h"
#include "vmc_errors.h"

#define CPG_GROUP_NAME "vmcluster"

struct outbox_msg {
	void *buf;
	size_t len;
	uint64_t request_id; /* 0 for sync traffic */
	struct outbox_msg *next;
};

static cpg_handle_t cpg_handle;
static int32_t cpg_fd = -1;
static const struct vmcd_cpg_hooks *cpg_hooks;
static struct outbox_msg *outbox_head;
static struct outbox_msg **outbox_tail = &outbox_head;
static size_t outbox_len;
static qb_loop_timer_handle retry_timer;
static bool retry_armed;
static uint32_t retry_ms;
static uint32_t members[VMC_NODES_MAX];
static size_t n_members;
static qb_loop_timer_handle hello_timer;
static bool hello_armed;
static int64_t hello_started_ms;
/* The message outbox_push is sending: a refusal of it goes back to its caller, not to the hook. */
static struct outbox_msg *pushing;
static bool pushing_refused;

static void outbox_flush(struct vmcd *d);

static void retry_fire(void *data)
{
	retry_armed = false;
	outbox_flush(data);
}

static void outbox_drop_head(void)
{
	struct outbox_msg *sent = outbox_head;

	outbox_head = sent->next;
	if (outbox_head == NULL) {
		outbox_tail = &outbox_head;
	}
	outbox_len--;
	free(sent->buf);
	free(sent);
}

static void outbox_flush(struct vmcd *d)
{
	while (outbox_head != NULL) {
		struct iovec iov = { outbox_head->buf, outbox_head->len };
		cs_error_t err = cpg_mcast_joined(cpg_handle, CPG_TYPE_AGREED, &iov, 1);

		if (err == CS_ERR_TRY_AGAIN) {
			if (!retry_armed) {
				retry_armed = true;
				qb_loop_timer_add(d->loop, QB_LOOP_MED, (uint64_t)retry_ms * QB_TIME_NS_IN_MSEC, d,
						  retry_fire, &retry_timer);
				retry_ms = retry_ms * 2 > d->timeouts.cpg_retry_max_ms ? d->timeouts.cpg_retry_max_ms
										       : retry_ms * 2;
			}
			return;
		}
		retry_ms = d->timeouts.cpg_retry_first_ms;
		if (err != CS_OK) {
			uint64_t id = outbox_head->request_id;
			bool caller_waits = outbox_head == pushing;
			log_err("cpg_mcast_joined failed (error %d): dropping a %zu-byte message", err,
				outbox_head->len);
			outbox_drop_head();
			if (caller_waits) {
				pushing_refused = true;
			} else if (id != 0) {
				static const char why[] = "corosync refused to send the change; nothing was applied";
				cpg_hooks->outcome(d, id, -EIO, why);
				cpg_hooks->answer(d, id, -EIO, why);
				cpg_hooks->delivered(d);
			}
			continue;
		}
		outbox_drop_head();
	}
}

static int outbox_push(struct vmcd *d, uint16_t type, uint64_t request_id, json_object *body)
{
	/* Sync traffic goes out in the lowest version: the new view has not agreed on one yet. */
	bool sync = type == VMC_MSG_HELLO || type == VMC_MSG_STATE_CHUNK;
	struct vmc_msg m = {
		.version = !sync && d->replica.proto ? d->replica.proto : VMC_PROTO_VERSION_MIN,
		.type = type,
		.sender = d->my_id,
		.request_id = request_id,
		.body = body,
	};
	const struct vmc_msg_type_info *info = vmc_msg_type_info(type);
	struct outbox_msg *o;
	int rc;

	/* Exclusion and restarts exist since protocol 2 and are sent before the
	 * view agreed on a version: written in 3, which every member that may
	 * take part in a protocol-3 or later view reads, and their bodies have
	 * not changed since. */
	if (type == VMC_MSG_SYNC_EXCLUDE || type == VMC_MSG_SYNC_RESTART) {
		m.version = 3;
	}
	/* A type the view's protocol lacks would be dropped by every older member. */
	if (info == NULL || info->since > m.version) {
		return -EPROTONOSUPPORT;
	}
	o = calloc(1, sizeof(*o));
	if (o == NULL) {
		return -ENOMEM;
	}
	rc = vmc_msg_encode(&m, &o->buf, &o->len);
	if (rc != 0) {
		free(o);
		return rc;
	}
	o->request_id = request_id;
	*outbox_tail = o;
	outbox_tail = &o->next;
	outbox_len++;
	pushing = o;
	pushing_refused = false;
	outbox_flush(d);
	pushing = NULL;
	return pushing_refused ? -EIO : 0;
}

size_t vmcd_cpg_outbox_length(void)
{
	return outbox_len;
}

static void replica_send(void *ctx, uint16_t type, json_object *body)
{
	struct vmcd *d = ctx;
	int rc = outbox_push(d, type, 0, body);

	if (rc != 0) {
		log_err("cannot queue %s message: %s", vmc_msg_type_to_str(type), strerror(-rc));
	}
}

static void replica_outcome(void *ctx, uint32_t origin, uint64_t request_id, int rc, const char *detail)
{
	struct vmcd *d = ctx;

	if (rc == 0) {
		log_notice("%s (change %llu from %s, config_version %llu)", detail,
			   (unsigned long long)request_id, vmcd_node_name(d, origin),
			   (unsigned long long)d->replica.state->config_version);
	} else {
		log_info("change %llu from %s refused: %s", (unsigned long long)request_id,
			 vmcd_node_name(d, origin), detail);
	}
	if (origin == d->my_id) {
		cpg_hooks->outcome(d, request_id, rc, detail);
	}
}

static void replica_answer(void *ctx, uint64_t request_id, int rc, const char *detail)
{
	struct vmcd *d = ctx;

	if (rc == -VMC_E_UNKNOWN || rc == -VMC_E_RETRY) {
		log_notice("change %llu: %s", (unsigned long long)request_id, detail);
	}
	cpg_hooks->answer(d, request_id, rc, detail);
}

static void hello_timer_disarm(struct vmcd *d)
{
	if (hello_armed) {
		qb_loop_timer_del(d->loop, hello_timer);
		hello_armed = false;
	}
}

static void replica_synced(void *ctx)
{
	struct vmcd *d = ctx;
	const char *digest = vmc_replica_digest(&d->replica);

	hello_timer_disarm(d);
	hello_started_ms = 0;
	log_notice("sync done: %zu members (%zu active), %s, source %s, config_version %llu, digest %.12s",
		   d->replica.n_members, d->replica.n_active,
		   d->replica.primary	      ? "primary"
		   : d->replica.recovery_only ? "recovery only (a member's daemon does not answer)"
					      : "NOT primary (no quorum)",
		   d->replica.source ? vmcd_node_name(d, d->replica.source->node_id) : "-",
		   (unsigned long long)d->replica.state->config_version, digest);
	cpg_hooks->synced(d);
}

static void replica_warn(void *ctx, const char *what)
{
	log_warn("sync: %s", what);
}

static json_object *replica_running(void *ctx)
{
	return cpg_hooks->running(ctx);
}

static uint32_t replica_votes(void *ctx, uint32_t node)
{
	const struct vmcd_node *n = vmcd_node_by_id(ctx, node);

	return n != NULL ? n->votes : 1;
}

static void hello_timer_arm(struct vmcd *d);

/* Each phase of a sync gets the deadline: the silent are excluded, phase by phase. */
static void hello_deadline(void *data)
{
	struct vmcd *d = data;

	hello_armed = false;
	if (d->replica.phase != VMC_SYNC_DONE) {
		log_warn("sync: phase %s not over within %u ms: asking to exclude the silent members",
			 vmc_sync_phase_to_str(d->replica.phase), d->timeouts.hello_deadline_ms);
		vmc_replica_hello_deadline(&d->replica);
		hello_timer_arm(d);
	}
}

static void hello_timer_arm(struct vmcd *d)
{
	if (!hello_armed &&
	    qb_loop_timer_add(d->loop, QB_LOOP_MED, (uint64_t)d->timeouts.hello_deadline_ms * QB_TIME_NS_IN_MSEC,
			      d, hello_deadline, &hello_timer) == 0) {
		hello_armed = true;
	}
}

static void replica_sync_started(void *ctx)
{
	struct vmcd *d = ctx;

	hello_timer_disarm(d);
	hello_started_ms = vmc_now_ms();
	hello_timer_arm(d);
}

int64_t vmcd_cpg_sync_started_ms(const struct vmcd *d)
{
	return d->replica.phase == VMC_SYNC_DONE ? 0 : hello_started_ms;
}

/* The nodelist's votes as this node reads them now (it may have been reloaded). */
static void nodelist_votes(struct vmcd *d, uint32_t *mine, uint32_t *sum)
{
	const struct vmcd_node *me = vmcd_node_by_id(d, d->my_id);

	*sum = 0;
	for (size_t i = 0; i < d->n_nodes; i++) {
		*sum += d->nodes[i].votes;
	}
	*mine = me != NULL ? me->votes : 1;
}

void vmcd_cpg_quorum_changed(struct vmcd *d)
{
	uint32_t mine, sum;

	/* A reload (corosync-cfgtool -R) may have shrunk the nodelist. */
	vmcd_nodes_load(d);
	nodelist_votes(d, &mine, &sum);
	vmc_replica_nodelist(&d->replica, mine, sum);
	vmc_replica_quorum(&d->replica, &d->vq);
}

/*
 * A member that stops confirming after the sync keeps our clients waiting:
 * when the oldest of our waiting changes is the same after a whole hello
 * deadline, ask for the sync again (the silent member is then excluded).
 */
static qb_loop_timer_handle ack_timer;
static bool ack_armed;
static uint64_t ack_oldest;

static void ack_check(void *data)
{
	struct vmcd *d = data;
	uint64_t oldest = vmc_replica_oldest_pending(&d->replica);

	ack_armed = false;
	if (oldest != 0 && oldest == ack_oldest) {
		vmc_replica_ack_deadline(&d->replica);
	}
	ack_oldest = oldest;
	if (oldest != 0 && qb_loop_timer_add(d->loop, QB_LOOP_MED,
					     (uint64_t)d->timeouts.hello_deadline_ms * QB_TIME_NS_IN_MSEC, d,
					     ack_check, &ack_timer) == 0) {
		ack_armed = true;
	}
}

void vmcd_cpg_committed(struct vmcd *d)
{
	bool current = d->quorate && vmc_replica_writable(&d->replica);

	vmc_replica_confirm(&d->replica);
	if (!ack_armed && vmc_replica_oldest_pending(&d->replica) != 0) {
		ack_oldest = 0;
		ack_check(d);
	}
	if (current) {
		d->stale_since_s = 0;
	} else if (d->stale_since_s == 0) {
		d->stale_since_s = (uint64_t)time(NULL);
	}
}

static const struct vmc_replica_ops replica_ops = {
	.send = replica_send,
	.outcome = replica_outcome,
	.answer = replica_answer,
	.synced = replica_synced,
	.warn = replica_warn,
	.running = replica_running,
	.votes = replica_votes,
	.sync_started = replica_sync_started,
};

int64_t vmcd_cpg_send_request(struct vmcd *d, uint16_t type, json_object *body)
{
	return vmcd_cpg_send_request_as(d, type, body, ++d->next_request_id);
}

int64_t vmcd_cpg_send_request_as(struct vmcd *d, uint16_t type, json_object *body, uint64_t id)
{
	int rc = outbox_push(d, type, id, body);

	return rc != 0 ? rc : (int64_t)id;
}

bool vmcd_cpg_is_member(const struct vmcd *d, uint32_t id)
{
	for (size_t i = 0; i < n_members; i++) {
		if (members[i] == id) {
			return true;
		}
	}
	return false;
}

static void cpg_deliver(cpg_handle_t h, const struct cpg_name *group, uint32_t nodeid, uint32_t pid,
			void *buf, size_t len)
{
	struct vmcd *d = NULL;
	struct vmc_msg m;
	char err[256];
	int rc;

	cpg_context_get(h, (void **)&d);
	rc = vmc_msg_decode(buf, len, &m, err, sizeof(err));
	if (rc != 0) {
		log_warn("dropped a message from %s: %s", vmcd_node_name(d, nodeid), err);
		return;
	}
	if (m.sender != nodeid) {
		log_warn("dropped a %s message from %s claiming to come from node id %u",
			 vmc_msg_type_to_str(m.type), vmcd_node_name(d, nodeid), m.sender);
		vmc_msg_clear(&m);
		return;
	}
	log_debug("delivered %s from %s (request %llu)", vmc_msg_type_to_str(m.type),
		  vmcd_node_name(d, nodeid), (unsigned long long)m.request_id);
	vmc_replica_deliver(&d->replica, &m);
	vmc_msg_clear(&m);
}

static void cpg_confchg(cpg_handle_t h, const struct cpg_name *group, const struct cpg_address *member_list,
			size_t member_entries, const struct cpg_address *left_list, size_t left_entries,
			const struct cpg_address *joined_list, size_t joined_entries)
{
	struct vmcd *d = NULL;

	cpg_context_get(h, (void **)&d);
	/* One entry per node: another process in the group on a node (a tool, a
	 * stray second daemon) must not count as a member whose hello we wait for. */
	n_members = 0;
	for (size_t i = 0; i < member_entries && n_members < VMC_NODES_MAX; i++) {
		if (!vmcd_cpg_is_member(d, member_list[i].nodeid)) {
			members[n_members++] = member_list[i].nodeid;
		}
	}
	/* A node added to corosync.conf since start-up gets its name now. */
	vmcd_nodes_load(d);
	for (size_t i = 0; i < left_entries; i++) {
		log_notice("node %s left the vmcluster group (reason %u)", vmcd_node_name(d, left_list[i].nodeid),
			   left_list[i].reason);
	}
	for (size_t i = 0; i < joined_entries; i++) {
		log_notice("node %s joined the vmcluster group", vmcd_node_name(d, joined_list[i].nodeid));
	}
	if (d->replica.phase != VMC_SYNC_DONE && d->replica.round > 0) {
		log_notice("membership changed during the sync (phase %s): starting the sync over",
			   vmc_sync_phase_to_str(d->replica.phase));
	}
	vmc_replica_view(&d->replica, members, n_members);
}

static int cpg_dispatch_fd(int32_t fd, int32_t revents, void *data)
{
	struct vmcd *d = data;
	cs_error_t err = cpg_dispatch(cpg_handle, CS_DISPATCH_ALL);

	if (err != CS_OK && err != CS_ERR_TRY_AGAIN) {
		log_err("lost the connection to corosync's CPG (error %d): stopping", err);
		cpg_hooks->lost(d);
		return -1;
	}
	cpg_hooks->delivered(d);
	return 0;
}

static cpg_callbacks_t cpg_callbacks = {
	.cpg_deliver_fn = cpg_deliver,
	.cpg_confchg_fn = cpg_confchg,
};

int vmcd_cpg_init(struct vmcd *d, const struct vmcd_cpg_hooks *hooks)
{
	struct cpg_name name;
	cs_error_t err;
	unsigned int tries = 0;
	uint32_t votes, my_votes;

	cpg_hooks = hooks;
	retry_ms = d->timeouts.cpg_retry_first_ms;
	err = cpg_initialize(&cpg_handle, &cpg_callbacks);
	if (err != CS_OK) {
		log_err("cannot connect to corosync's CPG (error %d)", err);
		return -ENOTCONN;
	}
	cpg_context_set(cpg_handle, d);
	if (cpg_local_get(cpg_handle, &d->my_id) != CS_OK) {
		log_err("cannot learn this node's corosync node id");
		return -EIO;
	}
	nodelist_votes(d, &my_votes, &votes);
	vmc_replica_init(&d->replica, d->my_id, my_votes, votes, d->replica.state, &replica_ops, d);
	/* What votequorum said before the first view: the first hello carries it. */
	vmc_replica_quorum(&d->replica, &d->vq);
	strcpy(name.value, CPG_GROUP_NAME);
	name.length = strlen(CPG_GROUP_NAME);
	do {
		err = cpg_join(cpg_handle, &name);
	} while (err == CS_ERR_TRY_AGAIN && ++tries < 100 && usleep(50000) == 0);
	if (err != CS_OK) {
		log_err("cannot join CPG group '%s' (error %d)", CPG_GROUP_NAME, err);
		return -EIO;
	}
	cpg_fd_get(cpg_handle, &cpg_fd);
	return qb_loop_poll_add(d->loop, QB_LOOP_HIGH, cpg_fd, POLLIN | POLLPRI, d, cpg_dispatch_fd);
}

void vmcd_cpg_fini(struct vmcd *d)
{
	struct cpg_name name;

	if (cpg_fd >= 0) {
		qb_loop_poll_del(d->loop, cpg_fd);
		cpg_fd = -1;
		strcpy(name.value, CPG_GROUP_NAME);
		name.length = strlen(CPG_GROUP_NAME);
		cpg_leave(cpg_handle, &name);
	}
	if (retry_armed) {
		qb_loop_timer_del(d->loop, retry_timer);
		retry_armed = false;
	}
	hello_timer_disarm(d);
	if (ack_armed) {
		qb_loop_timer_del(d->loop, ack_timer);
		ack_armed = false;
	}
	while (outbox_head != NULL) {
		outbox_drop_head();
	}
	cpg_finalize(cpg_handle);
}
