/*
 * Reconciliation: the replicated state says which VMs this node owns and
 * in what state; the driver (vm_qemu.c) says what really runs here. After
 * every batch of deliveries and every driver event the two are brought
 * together, level-triggered, so a missed event is made up at the next pass:
 *
 *   owned here, starting, not running        -> start it
 *   owned here, starting or online, running  -> report running (once)
 *   owned here, online, not running          -> report crashed (it died
 *                                               while nobody watched)
 *   owned here, stopping, running            -> stop it (once)
 *   owned here, stopping, not running        -> report stopped
 *   running here but not owned here          -> kill it: a VM must never
 *                                               run on two nodes (unless its
 *                                               owner is lost: the recovery
 *                                               adopts it where it runs)
 *   corosync says this partition lost quorum -> kill every VM here
 *                                               (self-fencing: the others
 *                                               may restart them); a quorate
 *                                               node whose daemon group is
 *                                               too small just waits
 *
 * Reports are CPG messages (GROUP_REPORT); a report is not repeated while
 * the group's state is still the one it was sent from.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "accel.h"
#include "lifecycle.h"
#include "log.h"
#include "vm_qemu.h"
#include "vmclusterd.h"

#define LOCAL_MAX 256

/* What this node did about one VM, so it does it once. */
struct local_vm {
	char name[VMC_NAME_MAX + 1];
	bool start_pending;          /* driver start called, no event yet */
	bool stop_pending;           /* driver stop called */
	char reported[16];           /* last report sent ... */
	uint32_t reported_attempt;   /* ... about this start attempt */
};

static struct local_vm locals[LOCAL_MAX];
static size_t n_locals;
static struct vmcd *rec_ctx;
static bool self_fenced;

static struct local_vm *local_get(const char *name)
{
	for (size_t i = 0; i < n_locals; i++) {
		if (strcmp(locals[i].name, name) == 0) {
			return &locals[i];
		}
	}
	if (n_locals == LOCAL_MAX) {
		return NULL;
	}
	memset(&locals[n_locals], 0, sizeof(locals[0]));
	snprintf(locals[n_locals].name, sizeof(locals[0].name), "%s", name);
	return &locals[n_locals++];
}

static void report(struct vmcd *d, const struct vmc_group *g, const char *event, const char *reason)
{
	struct local_vm *l = local_get(g->def->name);
	json_object *body;

	if (l != NULL && strcmp(l->reported, event) == 0 && l->reported_attempt == g->attempt) {
		return;
	}
	body = json_object_new_object();
	json_object_object_add(body, "name", json_object_new_string(g->def->name));
	json_object_object_add(body, "event", json_object_new_string(event));
	json_object_object_add(body, "reason", json_object_new_string(reason ? reason : ""));
	json_object_object_add(body, "at_s", json_object_new_int64((int64_t)time(NULL)));
	json_object_object_add(body, "attempt", json_object_new_int64(g->attempt));
	if (vmcd_cpg_send_request(d, VMC_MSG_GROUP_REPORT, body) >= 0 && l != NULL) {
		snprintf(l->reported, sizeof(l->reported), "%s", event);
		l->reported_attempt = g->attempt;
	}
	log_info("vm %s: reporting %s%s%s", g->def->name, event, reason ? ": " : "", reason ? reason : "");
	json_object_put(body);
}

static void vm_start_here(struct vmcd *d, const struct vmc_group *g, struct local_vm *l)
{
	char err[512];
	/* auto uses the verdict of the probe run at start-up */
	enum vmc_accel accel = vmcd_accel_resolve(d->replica.state->settings.accel, NULL, NULL);

	log_notice("vm %s: starting on %s (accel %s)", g->def->name, vmcd_node_name(d, d->my_id),
		   vmc_accel_to_str(accel));
	if (vmcd_vm_start(g->def, accel, err, sizeof(err)) != 0) {
		log_warn("vm %s: cannot start: %s", g->def->name, err);
		report(d, g, VMC_REPORT_START_FAILED, err);
		return;
	}
	l->start_pending = true;
	l->stop_pending = false;
}

static void group_reconcile(struct vmcd *d, const struct vmc_group *g)
{
	struct local_vm *l = local_get(g->def->name);
	bool running = vmcd_vm_is_running(g->def->name, NULL);

	if (l == NULL) {
		return;
	}
	if (running && g->owner != d->my_id && g->owner != 0 && !vmcd_cpg_is_member(d, g->owner) &&
	    g->state != VMC_GROUP_OFFLINE && g->state != VMC_GROUP_FAILED) {
		/* Its owner is lost: this node reports it running (hello) and the
		 * recovery adopts it here rather than start a second copy. */
		return;
	}
	if (g->owner != d->my_id || g->state == VMC_GROUP_OFFLINE || g->state == VMC_GROUP_FAILED) {
		if (running) {
			log_warn("vm %s: runs here but the cluster says %s%s%s: killing it", g->def->name,
				 vmc_group_state_to_str(g->state), g->owner ? " on " : "",
				 g->owner ? vmcd_node_name(d, g->owner) : "");
			vmcd_vm_kill(g->def->name);
		}
		l->start_pending = l->stop_pending = false;
		return;
	}
	switch (g->state) {
	case VMC_GROUP_STARTING:
		/* Running only once QMP said so (the RUNNING event clears start_pending). */
		if (running && !l->start_pending) {
			report(d, g, VMC_REPORT_RUNNING, NULL);
		} else if (!running && !l->start_pending) {
			vm_start_here(d, g, l);
		}
		break;
	case VMC_GROUP_ONLINE:
		if (!running && !l->start_pending) {
			report(d, g, VMC_REPORT_CRASHED, "its QEMU is not running on this node");
		}
		break;
	case VMC_GROUP_STOPPING:
		if (!running) {
			report(d, g, VMC_REPORT_STOPPED, NULL);
		} else if (!l->stop_pending) {
			log_notice("vm %s: stopping (ACPI shutdown, forced after %u s)", g->def->name,
				   d->opt.stop_timeout_s);
			vmcd_vm_stop(g->def->name, d->opt.stop_timeout_s);
			l->stop_pending = true;
		}
		break;
	default:
		break;
	}
}

/* VMs running here that the state does not know at all (removed meanwhile). */
static void strays_kill(struct vmcd *d)
{
	const char *names[LOCAL_MAX];
	size_t n = vmcd_vm_list(names, LOCAL_MAX);

	for (size_t i = 0; i < n; i++) {
		if (vmc_state_group_find(d->replica.state, names[i]) == NULL) {
			log_warn("vm %s: runs here but the cluster has no such VM: killing it", names[i]);
			vmcd_vm_kill(names[i]);
		}
	}
}

static void self_fence(struct vmcd *d)
{
	const char *names[LOCAL_MAX];
	size_t n = vmcd_vm_list(names, LOCAL_MAX);

	if (n > 0 || !self_fenced) {
		log_warn("node %s lost quorum: stopping its %zu VMs now so the quorate side may "
			 "restart them", vmcd_node_name(d, d->my_id), n);
	}
	for (size_t i = 0; i < n; i++) {
		vmcd_vm_kill(names[i]);
	}
	self_fenced = true;
}

/* Names the state no longer has are forgotten, so the table never fills. */
static void locals_prune(const struct vmcd *d)
{
	size_t k = 0;

	for (size_t i = 0; i < n_locals; i++) {
		if (vmc_state_group_find(d->replica.state, locals[i].name) != NULL) {
			locals[k++] = locals[i];
		}
	}
	n_locals = k;
}

/*
 * A report can be dropped (a view change) or refused (no quorum) on its way:
 * after every sync, reports may be sent again.
 */
void vmcd_reconcile_resync(struct vmcd *d)
{
	for (size_t i = 0; i < n_locals; i++) {
		locals[i].reported[0] = '\0';
	}
	locals_prune(d);
}

void vmcd_reconcile(struct vmcd *d)
{
	if (d->quorum_known && !d->quorate) {
		/* Corosync says this partition lost quorum: the others may restart our
		 * VMs after fencing us, so they stop now, sync or no sync. */
		self_fence(d);
		return;
	}
	if (d->replica.phase != VMC_SYNC_DONE) {
		return; /* the state is about to be replaced: act on it once synced */
	}
	if (!d->replica.primary) {
		/* Quorate, but too few daemons in the group to decide anything (a
		 * cluster-wide daemon restart): leave the VMs alone and wait. */
		return;
	}
	self_fenced = false;
	/* High priority first: when a node takes over several VMs, they start in that order. */
	for (int p = VMC_PRIORITY_HIGH; p <= VMC_PRIORITY_NO_AUTO_START; p++) {
		for (size_t i = 0; i < d->replica.state->n_groups; i++) {
			if ((int)d->replica.state->groups[i].def->priority == p) {
				group_reconcile(d, &d->replica.state->groups[i]);
			}
		}
	}
	strays_kill(d);
}

static void vm_event(void *ctx, const char *vm, enum vmcd_vm_event ev, const char *reason)
{
	struct vmcd *d = ctx;
	const struct vmc_group *g = vmc_state_group_find(d->replica.state, vm);
	struct local_vm *l = local_get(vm);

	if (l != NULL) {
		l->start_pending = false;
		if (ev != VMCD_VM_RUNNING) {
			l->stop_pending = false;
		}
	}
	if (g == NULL || g->owner != d->my_id) {
		vmcd_reconcile(d);
		return;
	}
	switch (ev) {
	case VMCD_VM_RUNNING:
		log_notice("vm %s: running on %s", vm, vmcd_node_name(d, d->my_id));
		if (g->state == VMC_GROUP_STARTING) {
			report(d, g, VMC_REPORT_RUNNING, NULL);
		}
		break;
	case VMCD_VM_STOPPED:
		log_notice("vm %s: stopped%s%s", vm, reason ? ": " : "", reason ? reason : "");
		if (g->state == VMC_GROUP_ONLINE || g->state == VMC_GROUP_STARTING) {
			report(d, g, VMC_REPORT_STOPPED, reason); /* the guest powered itself off */
		}
		break;
	case VMCD_VM_CRASHED:
		log_warn("vm %s: crashed: %s", vm, reason ? reason : "no reason given");
		if (g->state == VMC_GROUP_STARTING || g->state == VMC_GROUP_ONLINE) {
			report(d, g, VMC_REPORT_CRASHED, reason);
		}
		break;
	case VMCD_VM_START_FAILED:
		log_warn("vm %s: could not start: %s", vm, reason ? reason : "no reason given");
		if (g->state == VMC_GROUP_STARTING) {
			report(d, g, VMC_REPORT_START_FAILED, reason);
		}
		break;
	}
	vmcd_reconcile(d);
}

int vmcd_reconcile_init(struct vmcd *d)
{
	static const struct vmcd_vm_ops ops = { .event = vm_event };
	size_t n;
	int rc;

	rec_ctx = d;
	rc = vmcd_vm_driver_init(d->loop, d->opt.run_dir, d->opt.state_dir, &ops, d);
	if (rc != 0) {
		return rc;
	}
	n = vmcd_vm_attach_all();
	if (n > 0) {
		log_notice("re-attached to %zu VMs left running by a previous vmclusterd", n);
	}
	return 0;
}

void vmcd_reconcile_fini(struct vmcd *d)
{
	vmcd_vm_driver_fini();
}
