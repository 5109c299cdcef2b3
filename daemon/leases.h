/*
 * Host leases on the cluster's volumes (lib/lease_slot.h has the format,
 * lib/timeouts.h the timeline). One worker thread per volume does the
 * I/O, so a hung volume (an NFS server gone) blocks that thread alone,
 * never the main loop: each renewal reads the whole lease file's slots,
 * writes this node's slot (only while corosync says quorate) and reads
 * it back. The main loop asks for every renewal — a stopped or stuck
 * loop renews nothing — and keeps, on its own clock:
 *   - this node's renewal on each volume (health, last success), from
 *     which VMs die when the kill deadline passes (local_policy.h) and
 *     the watchdog stops being petted (watchdog.h);
 *   - every node's slot as last seen, for `volume show`, and for a lost
 *     node a watch that proves its lease expired (lease_watch.h).
 * A change of this node's health is reported to the cluster
 * (VOLUME_HEALTH), which moves coordinators and VMs by it.
 */
#ifndef VMCD_LEASES_H
#define VMCD_LEASES_H

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>

#include "context.h"

struct vmcd_leases_hooks {
	void (*changed)(struct vmcd *d); /* a renewal or read ended: decide again */
};

int vmcd_leases_init(struct vmcd *d, const struct vmcd_leases_hooks *hooks);
void vmcd_leases_fini(struct vmcd *d);
/* Follow the state's volumes (workers come and go) and report health changes. */
void vmcd_leases_reconcile(struct vmcd *d);
/* Bit i: the state's volume i has not renewed here within the kill deadline. */
uint32_t vmcd_leases_lost_mask(struct vmcd *d);
/* Bit i: state->volumes[i]'s renewal is overdue here (no VM starts on it). */
uint32_t vmcd_leases_overdue_mask(struct vmcd *d);
/* May the watchdog be petted, as far as the leases go: every volume a running VM here uses renewed in time? */
bool vmcd_leases_allow_pet(struct vmcd *d, const char *const *running, size_t n_running, char *why, size_t len);
/*
 * Proving node dead by its leases: the watch begins at the first call
 * after it was lost, with a read at once (and ends with
 * vmcd_leases_unwatch). 1 once its slot stayed unchanged for the lease
 * timeout on every volume, from the first read after the watch began; 0
 * while not yet (*left_ms: at least how long still; a read is made the
 * moment it may expire); -EIO when a volume cannot be read here (why
 * says which).
 */
int vmcd_leases_proven(struct vmcd *d, uint32_t node, uint64_t *left_ms, char *why, size_t len);
void vmcd_leases_unwatch(struct vmcd *d, uint32_t node);
/* What this node sees of a volume's lease file, for `volume show`. */
json_object *vmcd_leases_volume_json(struct vmcd *d, const char *volume);

#endif
