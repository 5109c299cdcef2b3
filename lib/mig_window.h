/*
 * Adaptive migration concurrency: how many live migrations out of one
 * node run at once, from what those migrations show (agent progress),
 * not a fixed number. Peers drain with a fixed 2, 4 or 8 whatever the
 * link and the VMs' dirt; this starts another migration only while the
 * running ones still converge and the link still has room:
 *
 *   - a migration past its first pass that copies less than 1.2 times
 *     what its guest dirties does not converge: the window shrinks to the
 *     ones running but one, so it gets the link to itself sooner;
 *   - else, with the window full, it grows by one when the total rate
 *     with this many running was 10% above the rate with one fewer (the
 *     link had room), up to the cap (migration max_parallel);
 *   - and shrinks by one when one more made the total slower (by 10%).
 * One change at most every 2 s; after a minute without migrations it
 * starts over at 2. Pure: the daemon feeds it samples (daemon/mig_window.c)
 * and tells the cluster the window (MIGRATE_WINDOW), which the queue then
 * uses for this node's moves out (migration.h).
 */
#ifndef VMC_MIG_WINDOW_H
#define VMC_MIG_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "settings.h"

#define VMC_MIG_WINDOW_START 2

/* One running outgoing live migration, as its agent last said. */
struct vmc_mig_sample {
	double rate_mib_s;   /* what it copies */
	double dirty_mib_s;  /* what the guest dirties */
	int64_t pass;        /* QEMU's dirty-sync count: 1 during the first pass */
};

struct vmc_mig_window {
	uint32_t window;
	double rate_with[VMC_MIGRATION_MAX_PARALLEL_MAX + 1]; /* total MiB/s seen with k running (smoothed) */
	int64_t changed_ms;
	int64_t idle_since_ms;   /* 0 while some migrate */
	char why[160];           /* the last change's reason */
};

void vmc_mig_window_init(struct vmc_mig_window *w, uint32_t cap);
/* The window after these samples at now_ms (cap: max_parallel). true when it changed. */
bool vmc_mig_window_update(struct vmc_mig_window *w, const struct vmc_mig_sample *s, size_t n, uint32_t cap,
			   int64_t now_ms);
/* Does this migration fall behind its guest? */
bool vmc_mig_sample_stalls(const struct vmc_mig_sample *s);

#endif
