/*
 * This node's VMs: carries out what the local VM policy
 * (lib/local_policy.h) decides — start, adopt, stop, kill, report — with
 * the QEMU driver (vm_qemu.h), and keeps what only this node knows of
 * each VM (what it started, for which attempt, how it ended, what it
 * reported).
 */
#ifndef VMCD_LOCAL_VMS_H
#define VMCD_LOCAL_VMS_H

#include <json-c/json.h>

#include "context.h"
#include "views.h"

struct vmcd_local_hooks {
	void (*changed)(struct vmcd *d); /* a VM event arrived: decide again */
};

/* Starts the QEMU driver and re-attaches to the QEMUs a previous daemon left. */
int vmcd_local_init(struct vmcd *d, const struct vmcd_local_hooks *hooks);
void vmcd_local_fini(struct vmcd *d);
/* Decide and act, level-triggered: after every event. */
void vmcd_local_reconcile(struct vmcd *d);
/* After a sync: a report may have been lost on the way, so each may go again. */
void vmcd_local_resync(struct vmcd *d);
/* A report this module sent was decided (rc 0: applied). */
void vmcd_local_outcome(struct vmcd *d, uint64_t request_id, int rc);
/* The VMs that run here, a new JSON array of names (every one: the recovery barrier). */
json_object *vmcd_local_running(void);
/* Corosync went away: kill the VMs or leave them, as the policy says. */
void vmcd_local_corosync_lost(struct vmcd *d);
/*
 * The incoming QEMU for migration id of vm: "ready" (it waits for the
 * stream), "starting", "failed" (why says why: its start or its QEMU
 * failed), or "none" (not started for it here).
 */
const char *vmcd_local_incoming(const char *vm, const char *id, char *why, size_t len);
/* VMs starting or stopping here, with their age, for status. */
size_t vmcd_local_waits(const struct vmcd *d, struct vmc_wait *out, size_t max);

#endif
