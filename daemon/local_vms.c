/*
 * This node's VMs (local_vms.h). The replicated state says which VMs this
 * node owns and in what state; the driver says what really runs here;
 * lib/local_policy.c says what to do about the difference, and this file
 * does it. Level-triggered: after every batch of deliveries and every
 * driver event the whole table is decided again, so a missed event is
 * made up at the next pass.
 *
 * Reports are CPG messages (GROUP_REPORT) that name the start attempt
 * they are about; one is not sent twice for the same event and attempt,
 * except after a sync or when it was lost on its way.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "accel.h"
#include "clock.h"
#include "cpg.h"
#include "lifecycle.h"
#include "local_policy.h"
#include "leases.h"
#include "local_vms.h"
#include "start_order.h"
#include "log.h"
#include "nodes.h"
#include "vm_qemu.h"
#include "vmc_errors.h"

/* One VM this node knows, with the policy's facts. */
struct local_vm {
	struct vmc_local_vm v;
	int64_t start_ms;    /* when the start (or stop) under way began */
	int64_t stop_ms;
	uint64_t report_id;  /* the last report sent, until decided */
};

static struct local_vm *locals;
static size_t n_locals, cap_locals;
static const struct vmcd_local_hooks *local_hooks;
static struct vmcd *local_ctx;

static struct local_vm *local_find(const char *name)
{
	for (size_t i = 0; i < n_locals; i++) {
		if (strcmp(locals[i].v.name, name) == 0) {
			return &locals[i];
		}
	}
	return NULL;
}

static struct local_vm *local_get(const char *name)
{
	struct local_vm *l = local_find(name);

	if (l != NULL) {
		return l;
	}
	if (n_locals == cap_locals) {
		size_t cap = cap_locals ? cap_locals * 2 : 64;
		struct local_vm *grown = realloc(locals, cap * sizeof(*grown));
		if (grown == NULL) {
			log_err("out of memory: VM %s is not followed by the local table", name);
			return NULL;
		}
		locals = grown;
		cap_locals = cap;
	}
	l = &locals[n_locals++];
	memset(l, 0, sizeof(*l));
	snprintf(l->v.name, sizeof(l->v.name), "%s", name);
	return l;
}

/* What the driver follows, into the table; VMs neither followed nor in the state go. */
static void locals_refresh(const struct vmcd *d)
{
	size_t n = vmcd_vm_count(), k = 0;
	const char **names = calloc(n ? n : 1, sizeof(*names));

	n = names != NULL ? vmcd_vm_list(names, n) : 0;
	for (size_t i = 0; i < n; i++) {
		local_get(names[i]);
	}
	free(names);
	for (size_t i = 0; i < n_locals; i++) {
		struct local_vm *l = &locals[i];
		const char *status;
		l->v.running = vmcd_vm_is_running(l->v.name, NULL);
		status = vmcd_vm_run_status(l->v.name);
		/* An incoming QEMU waits paused once fed, whatever status was seen last. */
		l->v.paused = strcmp(status, "paused") == 0 || strcmp(status, "postmigrate") == 0 ||
			      strcmp(status, "finish-migrate") == 0 ||
			      (l->v.running && l->v.incoming_id[0] != '\0');
		if (l->v.running || l->v.exists_unfollowed || vmc_state_group_find(d->replica.state, l->v.name) != NULL) {
			locals[k++] = *l;
		}
	}
	n_locals = k;
}

static void report_send(struct vmcd *d, struct local_vm *l, const struct vmc_local_decision *dec)
{
	json_object *body = json_object_new_object();
	int64_t id;

	/* A member speaks protocol 1, which has no self_fenced: a crash, so it is restarted at least. */
	const char *event = strcmp(dec->event, VMC_REPORT_SELF_FENCED) == 0 && !VMC_PROTO_HAS_ATTEMPTS(d->replica.proto)
				    ? VMC_REPORT_CRASHED
				    : dec->event;

	json_object_object_add(body, "name", json_object_new_string(dec->vm));
	json_object_object_add(body, "event", json_object_new_string(event));
	json_object_object_add(body, "reason", json_object_new_string(dec->why));
	json_object_object_add(body, "at_s", json_object_new_int64((int64_t)time(NULL)));
	json_object_object_add(body, "attempt", json_object_new_int64(dec->attempt));
	id = vmcd_cpg_send_request(d, VMC_MSG_GROUP_REPORT, body);
	json_object_put(body);
	if (id < 0) {
		log_warn("vm %s: cannot send the report %s: %s", dec->vm, dec->event, strerror((int)-id));
		return;
	}
	log_info("vm %s: reporting %s (attempt %u): %s", dec->vm, dec->event, dec->attempt, dec->why);
	l->report_id = (uint64_t)id;
	l->v.reported = true;
	snprintf(l->v.reported_event, sizeof(l->v.reported_event), "%s", dec->event);
	l->v.reported_attempt = dec->attempt;
}

static void vm_start_here(struct vmcd *d, struct local_vm *l, const struct vmc_local_decision *dec)
{
	const struct vmc_group *g = vmc_state_group_find(d->replica.state, dec->vm);
	/* auto uses the verdict of the probe run at start-up */
	enum vmc_accel accel = vmcd_accel_resolve(d->replica.state->settings.accel, NULL, NULL);
	char err[512];
	int rc;

	log_notice("vm %s: starting on %s (attempt %u, accel %s)", dec->vm, vmcd_node_name(d, d->my_id),
		   dec->attempt, vmc_accel_to_str(accel));
	rc = vmcd_vm_start(g->def, accel, err, sizeof(err));
	if (rc == -EEXIST) {
		/* A QEMU for it runs here already: follow it, never call that a failed start. */
		log_warn("vm %s: %s", dec->vm, err);
		l->v.exists_unfollowed = true;
		return;
	}
	l->v.started = true;
	l->v.started_attempt = dec->attempt;
	l->v.incoming_id[0] = '\0';
	l->v.exit = VMC_EXIT_NONE;
	l->v.self_fenced = false;
	l->v.volume_lost = false;
	l->start_ms = vmc_now_ms();
	if (rc != 0) {
		log_warn("vm %s: cannot start: %s", dec->vm, err);
		l->v.exit = VMC_EXIT_START_FAILED;
		l->v.exit_attempt = dec->attempt;
		snprintf(l->v.exit_reason, sizeof(l->v.exit_reason), "%.255s", err);
		return;
	}
	l->v.start_pending = true;
}

static void vm_start_incoming_here(struct vmcd *d, struct local_vm *l, const struct vmc_local_decision *dec)
{
	const struct vmc_group *g = vmc_state_group_find(d->replica.state, dec->vm);
	enum vmc_accel accel = vmcd_accel_resolve(d->replica.state->settings.accel, NULL, NULL);
	char err[512];
	int rc;

	log_notice("vm %s: starting its QEMU on %s to receive migration %s (%s)", dec->vm,
		   vmcd_node_name(d, d->my_id), dec->mig_id, dec->why);
	snprintf(l->v.incoming_id, sizeof(l->v.incoming_id), "%s", dec->mig_id);
	l->v.exit_reason[0] = '\0';
	rc = vmcd_vm_start_incoming(g->def, accel, err, sizeof(err));
	l->start_ms = vmc_now_ms();
	if (rc != 0) {
		log_warn("vm %s: cannot start its incoming QEMU: %s", dec->vm, err);
		snprintf(l->v.exit_reason, sizeof(l->v.exit_reason), "%.255s", err);
		return;
	}
	l->v.start_pending = true;
}

static void vm_resume_here(struct vmcd *d, struct local_vm *l, const struct vmc_local_decision *dec)
{
	int rc = vmcd_vm_resume(dec->vm, dec->announce);

	if (rc != 0) {
		log_warn("vm %s: cannot resume it: %s", dec->vm, strerror(-rc));
		return;
	}
	log_notice("vm %s: resuming it on %s: %s", dec->vm, vmcd_node_name(d, d->my_id), dec->why);
	l->v.incoming_id[0] = '\0';
	l->v.paused = false;
}

static void vm_adopt_here(struct vmcd *d, struct local_vm *l)
{
	int rc = vmcd_vm_adopt(l->v.name);

	l->v.exists_unfollowed = false;
	if (rc == 0) {
		log_notice("vm %s: following the QEMU that runs it here (left by an earlier daemon)", l->v.name);
	} else if (rc != -EEXIST) {
		log_warn("vm %s: cannot follow the QEMU found for it: %s", l->v.name, strerror(-rc));
	}
}

/* Deciding again when a start's wait for its start_after groups runs out. */
static qb_loop_timer_handle order_timer;
static bool order_timer_armed;
static int64_t order_deadline_ms;

static void order_timer_fire(void *data)
{
	order_timer_armed = false;
	local_hooks->changed(data);
}

/* A start waits for its start_after groups: when it began (once per attempt), and a wake-up at its end. */
static void order_wait_note(struct vmcd *d, struct local_vm *l, const struct vmc_local_decision *dec)
{
	if (l->v.order_attempt != dec->attempt || l->v.order_since_ms == 0) {
		l->v.order_attempt = dec->attempt;
		l->v.order_since_ms = vmc_now_ms();
		log_notice("vm %s: %s", dec->vm, dec->why);
	}
	if (order_timer_armed && order_deadline_ms <= vmc_now_ms() + dec->order_wait_ms) {
		return; /* an earlier wake-up decides again anyway */
	}
	if (order_timer_armed) {
		qb_loop_timer_del(d->loop, order_timer);
		order_timer_armed = false;
	}
	if (qb_loop_timer_add(d->loop, QB_LOOP_MED, (uint64_t)(dec->order_wait_ms + 50) * QB_TIME_NS_IN_MSEC, d,
			      order_timer_fire, &order_timer) == 0) {
		order_timer_armed = true;
		order_deadline_ms = vmc_now_ms() + dec->order_wait_ms;
	}
}

static void act(struct vmcd *d, const struct vmc_local_decision *dec)
{
	struct local_vm *l = local_get(dec->vm);

	if (l == NULL) {
		return;
	}
	switch (dec->action) {
	case VMC_LOCAL_START:
		vm_start_here(d, l, dec);
		return;
	case VMC_LOCAL_ADOPT:
		vm_adopt_here(d, l);
		return;
	case VMC_LOCAL_START_INCOMING:
		vm_start_incoming_here(d, l, dec);
		return;
	case VMC_LOCAL_RESUME:
		vm_resume_here(d, l, dec);
		return;
	case VMC_LOCAL_REPORT:
		report_send(d, l, dec);
		return;
	case VMC_LOCAL_STOP:
		log_notice("vm %s: stopping (ACPI shutdown, forced after %u s)", dec->vm, d->opt.stop_timeout_s);
		if (vmcd_vm_stop(dec->vm, d->opt.stop_timeout_s) == 0) {
			l->v.stop_pending = true;
			l->stop_ms = vmc_now_ms();
		}
		return;
	case VMC_LOCAL_KILL:
		log_warn("vm %s: %s: killing it", dec->vm, dec->why);
		vmcd_vm_kill(dec->vm);
		return;
	case VMC_LOCAL_END_SOURCE:
		if (!l->v.stop_pending) {
			log_notice("vm %s: %s", dec->vm, dec->why);
		}
		l->v.stop_pending = true;
		vmcd_vm_kill(dec->vm);
		return;
	case VMC_LOCAL_SELF_FENCE:
		log_warn("vm %s: node %s lost quorum: killing it now so the quorate side may restart it",
			 dec->vm, vmcd_node_name(d, d->my_id));
		l->v.self_fenced = true;
		vmcd_vm_kill(dec->vm);
		return;
	case VMC_LOCAL_VOLUME_KILL:
		if (!l->v.volume_lost) {
			log_warn("vm %s: %s: killing it so another node may restart it", dec->vm, dec->why);
		}
		l->v.volume_lost = true;
		vmcd_vm_kill(dec->vm);
		return;
	case VMC_LOCAL_WAIT:
		if (dec->order_wait_ms > 0) {
			order_wait_note(d, l, dec);
		}
		return;
	case VMC_LOCAL_NONE:
	case VMC_LOCAL_KEEP:
		return;
	}
}

void vmcd_local_reconcile(struct vmcd *d)
{
	struct vmc_local_decision *decs;
	struct vmc_local_vm *vms;
	struct vmc_local_input in = {
		.state = d->replica.state,
		.my_id = d->my_id,
		.quorum_known = d->quorum_known,
		.quorate = d->quorate,
		.synced = d->replica.phase == VMC_SYNC_DONE,
		.writable = vmc_replica_writable(&d->replica),
		.members = d->replica.active,
		.n_members = d->replica.n_active,
		.volumes_lost = vmcd_leases_lost_mask(d),
		.volumes_overdue = vmcd_leases_overdue_mask(d),
		.now_ms = vmc_now_ms(),
	};
	size_t n, max;

	locals_refresh(d);
	max = d->replica.state->n_groups + n_locals;
	decs = calloc(max ? max : 1, sizeof(*decs));
	vms = calloc(n_locals ? n_locals : 1, sizeof(*vms));
	if (decs == NULL || vms == NULL) {
		log_err("out of memory deciding about this node's VMs: trying again at the next event");
		free(decs);
		free(vms);
		return;
	}
	for (size_t i = 0; i < n_locals; i++) {
		vms[i] = locals[i].v;
	}
	in.vms = vms;
	in.n_vms = n_locals;
	n = vmc_local_decide(&in, decs, max);
	for (size_t i = 0; i < n; i++) {
		act(d, &decs[i]);
	}
	free(decs);
	free(vms);
}

void vmcd_local_resync(struct vmcd *d)
{
	for (size_t i = 0; i < n_locals; i++) {
		struct local_vm *l = &locals[i];
		const struct vmc_group *g = vmc_state_group_find(d->replica.state, l->v.name);
		l->v.reported = false;
		l->report_id = 0;
		/* The sync brought an older count of attempts (from a daemon that keeps none):
		 * what this node did is about attempts that, here, no longer exist. */
		if (g != NULL && l->v.started && g->attempt < l->v.started_attempt) {
			l->v.started = false;
			l->v.exit = VMC_EXIT_NONE;
			l->v.self_fenced = false;
			l->v.volume_lost = false;
		}
	}
}

void vmcd_local_outcome(struct vmcd *d, uint64_t request_id, int rc)
{
	for (size_t i = 0; i < n_locals && request_id != 0; i++) {
		struct local_vm *l = &locals[i];
		if (l->report_id != request_id) {
			continue;
		}
		l->report_id = 0;
		/* Lost on the way (a view change, corosync refused it): it may go again. */
		if (rc == -VMC_E_RETRY || rc == -EIO || rc == -VMC_E_NO_QUORUM || rc == -ENOMEM) {
			l->v.reported = false;
		}
	}
}

json_object *vmcd_local_running(void)
{
	size_t n = vmcd_vm_count();
	const char **names = calloc(n ? n : 1, sizeof(*names));
	json_object *a = json_object_new_array();

	n = names != NULL ? vmcd_vm_list(names, n) : 0;
	for (size_t i = 0; i < n; i++) {
		const struct local_vm *l = local_find(names[i]);
		/* A QEMU waiting for a migration does not run the VM: no recovery may adopt it. */
		if (l == NULL || l->v.incoming_id[0] == '\0') {
			json_object_array_add(a, json_object_new_string(names[i]));
		}
	}
	free(names);
	return a;
}

void vmcd_local_corosync_lost(struct vmcd *d)
{
	char why[256];
	size_t n = vmcd_vm_count();
	const char **names;

	if (vmc_local_on_corosync_lost(&d->replica.state->settings, why, sizeof(why)) != VMC_LOCAL_KILL) {
		log_warn("corosync is gone: vmclusterd exits and leaves its %zu VMs: %s", n, why);
		return;
	}
	log_err("corosync is gone: killing this node's %zu VMs before exiting: %s", n, why);
	names = calloc(n ? n : 1, sizeof(*names));
	n = names != NULL ? vmcd_vm_list(names, n) : 0;
	for (size_t i = 0; i < n; i++) {
		vmcd_vm_kill(names[i]);
	}
	free(names);
}

static void vm_event(void *ctx, const char *vm, enum vmcd_vm_event ev, const char *reason)
{
	struct vmcd *d = ctx;
	const struct vmc_group *g = vmc_state_group_find(d->replica.state, vm);
	struct local_vm *l = local_get(vm);

	if (l == NULL) {
		return;
	}
	l->v.start_pending = false;
	if (ev == VMCD_VM_STATUS) {
		/* paused or resumed: read again at the next pass */
	} else if (ev == VMCD_VM_RUNNING) {
		log_notice("vm %s: running on %s (%s)", vm, vmcd_node_name(d, d->my_id), reason ? reason : "");
	} else if (l->v.incoming_id[0] != '\0') {
		/* An incoming QEMU that ended: its move fails; nothing to report for the group. */
		snprintf(l->v.exit_reason, sizeof(l->v.exit_reason), "its incoming QEMU ended: %s",
			 reason ? reason : "no reason given");
		log_notice("vm %s: %s on %s", vm, l->v.exit_reason, vmcd_node_name(d, d->my_id));
	} else {
		l->v.stop_pending = false;
		l->v.exit = ev == VMCD_VM_STOPPED ? VMC_EXIT_STOPPED
			    : ev == VMCD_VM_CRASHED ? VMC_EXIT_CRASHED
						    : VMC_EXIT_START_FAILED;
		l->v.exit_attempt = l->v.started ? l->v.started_attempt : (g != NULL ? g->attempt : 0);
		snprintf(l->v.exit_reason, sizeof(l->v.exit_reason), "%s", reason ? reason : "");
		log_notice("vm %s: %s on %s: %s", vm, vmcd_vm_event_to_str(ev), vmcd_node_name(d, d->my_id),
			   reason ? reason : "no reason given");
	}
	local_hooks->changed(d);
}

const char *vmcd_local_incoming(const char *vm, const char *id, char *why, size_t len)
{
	const struct local_vm *l = local_find(vm);

	why[0] = '\0';
	if (l == NULL || strcmp(l->v.incoming_id, id) != 0) {
		return "none";
	}
	if (l->v.start_pending) {
		return "starting";
	}
	if (vmcd_vm_is_running(vm, NULL)) {
		return strcmp(vmcd_vm_run_status(vm), "inmigrate") == 0 ? "ready" : "starting";
	}
	snprintf(why, len, "%s", l->v.exit_reason[0] ? l->v.exit_reason : "its incoming QEMU is gone");
	return "failed";
}

size_t vmcd_local_waits(const struct vmcd *d, struct vmc_wait *out, size_t max)
{
	int64_t now = vmc_now_ms();
	size_t n = 0;

	for (size_t i = 0; i < n_locals && n < max; i++) {
		const struct local_vm *l = &locals[i];
		struct vmc_wait *w = &out[n];
		const struct vmc_group *g = vmc_state_group_find(d->replica.state, l->v.name);
		if (g != NULL && g->owner == d->my_id && g->state == VMC_GROUP_STARTING && l->v.order_since_ms != 0 &&
		    l->v.order_attempt == g->attempt && !l->v.start_pending && !l->v.running) {
			const struct vmc_group *blk = vmc_start_order_blocker(d->replica.state, g);
			memset(w, 0, sizeof(*w));
			snprintf(w->kind, sizeof(w->kind), "vm-start-order");
			snprintf(w->vm, sizeof(w->vm), "%s", l->v.name);
			w->node = d->my_id;
			w->age_ms = now - l->v.order_since_ms;
			w->left_ms = (int64_t)g->def->start_after_timeout_s * 1000 - w->age_ms;
			w->left_ms = w->left_ms < 0 ? 0 : w->left_ms;
			snprintf(w->detail, sizeof(w->detail), "vm %s starts after %s (start_after)", l->v.name,
				 blk != NULL ? blk->def->name : "its start_after groups");
			n++;
			continue;
		}
		if (!l->v.start_pending && !l->v.stop_pending) {
			continue;
		}
		memset(w, 0, sizeof(*w));
		snprintf(w->kind, sizeof(w->kind), "%s", l->v.stop_pending ? "vm-stop" : "vm-start");
		snprintf(w->vm, sizeof(w->vm), "%s", l->v.name);
		w->node = d->my_id;
		w->age_ms = now - (l->v.stop_pending ? l->stop_ms : l->start_ms);
		w->left_ms = l->v.stop_pending ? (int64_t)d->opt.stop_timeout_s * 1000 - w->age_ms
					       : (int64_t)d->timeouts.vm_start_deadline_ms - w->age_ms;
		if (w->left_ms < 0) {
			w->left_ms = 0;
		}
		n++;
	}
	return n;
}

int vmcd_local_init(struct vmcd *d, const struct vmcd_local_hooks *hooks)
{
	static const struct vmcd_vm_ops ops = { .event = vm_event };
	size_t n;
	int rc;

	local_hooks = hooks;
	local_ctx = d;
	rc = vmcd_vm_driver_init(d->loop, d->opt.run_dir, d->opt.state_dir, &ops, d);
	if (rc != 0) {
		return rc;
	}
	vmcd_vm_driver_vm_paths(d->opt.vm_paths);
	n = vmcd_vm_attach_all();
	if (n > 0) {
		log_notice("re-attached to %zu VMs left running by a previous vmclusterd", n);
	}
	return 0;
}

void vmcd_local_fini(struct vmcd *d)
{
	if (order_timer_armed) {
		qb_loop_timer_del(d->loop, order_timer);
		order_timer_armed = false;
	}
	vmcd_vm_driver_fini();
	free(locals);
	locals = NULL;
	n_locals = cap_locals = 0;
	local_ctx = NULL;
}
