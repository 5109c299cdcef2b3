/*
 * The loop tail. Every event — CPG deliveries, quorum, IPC, timers, QMP,
 * a fence agent or a file check ending — only records what happened and
 * asks for a settle; the settle step then runs once, from the loop, in
 * this order (dlm_controld's end-of-loop sequence):
 *
 *   0. on lost quorum, this node's VMs first (self-fencing waits for no fsync)
 *   1. persist what the replica applied (a change is durable before
 *      anyone hears of it; a node that cannot persist stops), then
 *      confirm it to the view (one message per commit group)
 *   2. answer the clients whose changes are decided: held by every
 *      member of the view, refused, or not applied
 *   3. bring this node's VMs in line with the state (local_vms.c)
 *   4. fencing of lost nodes (fence.c)
 */
#ifndef VMCD_SETTLE_H
#define VMCD_SETTLE_H

#include "context.h"

/* Ask for a settle step (coalesced: one runs for any number of asks). */
void vmcd_settle_request(struct vmcd *d);
/* Run it now (start-up, and the loop's timer). */
void vmcd_settle(struct vmcd *d);
void vmcd_settle_fini(struct vmcd *d);

#endif
