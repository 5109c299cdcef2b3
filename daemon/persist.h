/*
 * Persistence of the applied state: a snapshot and a journal under
 * STATE_DIR (the narrative is at the top of persist.c).
 */
#ifndef VMCD_PERSIST_H
#define VMCD_PERSIST_H

#include "context.h"

/* Loads STATE_DIR's snapshot and replays its journal into *out. 0 or -errno (logged). */
int vmcd_persist_load(const char *state_dir, struct vmc_state **out);
/*
 * Makes what the replica applied since the last call durable (journal
 * lines, or a snapshot after a sync replaced the state). 0, or -errno: the
 * caller must then stop, since it could not keep its promise.
 */
int vmcd_persist_commit(struct vmcd *d);
/* On the way out: one snapshot, so the next start replays nothing. */
void vmcd_persist_fini(struct vmcd *d);

#endif
