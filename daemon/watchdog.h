/*
 * The watchdog (softdog, a hardware one, or the test harness's emulator)
 * that resets this node when its leases may lapse with VMs still running
 * (lib/timeouts.h has the timeline). Opened once the cluster has a
 * volume, its timeout set to the timeline's; petted from the main loop
 * only while no VM runs here, or corosync says quorate and every volume a
 * running VM uses renewed in time (leases.h). A loop that stops (SIGSTOP,
 * a hang) stops petting with it.
 *
 * At exit it is disarmed (magic close) only when no VM runs here; else it
 * stays armed, and a restarted vmclusterd must open it again within its
 * timeout, as it does first thing, for the VMs to keep running.
 */
#ifndef VMCD_WATCHDOG_H
#define VMCD_WATCHDOG_H

#include "context.h"

struct vmcd_watchdog_hooks {
	void (*changed)(struct vmcd *d); /* armed or disarmed: announce the node's facts */
};

void vmcd_watchdog_init(struct vmcd *d, const struct vmcd_watchdog_hooks *hooks);
/* After every event: open it when the cluster has volumes. */
void vmcd_watchdog_reconcile(struct vmcd *d);
void vmcd_watchdog_fini(struct vmcd *d);

#endif
