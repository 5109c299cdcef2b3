/*
 * This node's adaptive migration window (lib/mig_window.h): fed from its
 * sending agents' progress after every event, and told to the cluster
 * (MIGRATE_WINDOW) when it changes, so the replicated queue starts that
 * many live moves out of this node at once, within migration max_parallel.
 */
#ifndef VMCD_MIGRATE_WINDOW_H
#define VMCD_MIGRATE_WINDOW_H

#include "context.h"

void vmcd_migrate_window_update(struct vmcd *d);

#endif
