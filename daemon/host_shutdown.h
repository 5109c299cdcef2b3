/*
 * A host shutdown of this node (lib/drain.h, NODE_DRAIN shutdown): once
 * the cluster reads this node paused for it and no QEMU runs here any
 * more, vmclusterd exits by itself, two seconds later so that a
 * clusterctl following the shutdown reads how it ended. A daemon that
 * was merely restarted is another incarnation: the shutdown record is not
 * its own, and it stays.
 */
#ifndef VMCD_HOST_SHUTDOWN_H
#define VMCD_HOST_SHUTDOWN_H

#include "context.h"

/* After every settle: is this node's shutdown done? */
void vmcd_host_shutdown_check(struct vmcd *d);
void vmcd_host_shutdown_fini(struct vmcd *d);

#endif
