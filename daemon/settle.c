/*
 * The settle step (settle.h). It runs from a zero-length loop timer, not
 * a qb_loop job: libqb does not count a job added from a dispatch as work
 * to do, so it could wait for the next wake-up of a quiet loop.
 */
#include "config.h"

#include "cpg.h"
#include "fence.h"
#include "host_shutdown.h"
#include "ipc.h"
#include "leases.h"
#include "local_vms.h"
#include "migrate_window.h"
#include "migrations.h"
#include "log.h"
#include "persist.h"
#include "watchdog.h"
#include "settle.h"

static qb_loop_timer_handle settle_timer;
static bool settle_armed;

static void settle_fire(void *data)
{
	settle_armed = false;
	vmcd_settle(data);
}

void vmcd_settle_request(struct vmcd *d)
{
	if (!settle_armed && qb_loop_timer_add(d->loop, QB_LOOP_HIGH, 0, d, settle_fire, &settle_timer) == 0) {
		settle_armed = true;
	}
}

void vmcd_settle(struct vmcd *d)
{
	/* Self-fencing waits for nothing, not even an fsync. */
	if (d->quorum_known && !d->quorate) {
		vmcd_local_reconcile(d);
	}
	if (vmcd_persist_commit(d) != 0) {
		/* Acknowledging changes we could not make durable would be a lie. */
		log_err("stopping: this node cannot keep what it applied");
		vmcd_shutdown(d, VMCD_EXIT_PERSIST);
		return;
	}
	vmcd_cpg_committed(d);
	vmcd_ipc_flush(d);
	vmcd_leases_reconcile(d);
	vmcd_watchdog_reconcile(d);
	vmcd_local_reconcile(d);
	vmcd_migrations_reconcile(d);
	vmcd_migrate_window_update(d);
	vmcd_fence_check(d);
	vmcd_host_shutdown_check(d);
}

void vmcd_settle_fini(struct vmcd *d)
{
	if (settle_armed) {
		qb_loop_timer_del(d->loop, settle_timer);
		settle_armed = false;
	}
}
