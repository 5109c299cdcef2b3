/*
 * The end of this node's host shutdown (host_shutdown.h).
 */
#include "config.h"

#include <qb/qbloop.h>

#include "host_shutdown.h"
#include "local_vms.h"
#include "log.h"
#include "node_admin.h"
#include "nodes.h"

#define GRACE_MS 2000

static qb_loop_timer_handle grace_timer;
static bool grace_armed;

static bool shutdown_done(const struct vmcd *d)
{
	const struct vmc_node_admin *a = vmc_node_admin(d->replica.state, d->my_id);
	json_object *running;
	bool empty;

	if (a == NULL || !a->shutdown || a->incarnation != d->incarnation || a->mode != VMC_NODE_PAUSED) {
		return false;
	}
	running = vmcd_local_running();
	empty = running == NULL || json_object_array_length(running) == 0;
	json_object_put(running);
	return empty;
}

static void grace_over(void *data)
{
	struct vmcd *d = data;

	grace_armed = false;
	if (shutdown_done(d)) {
		log_notice("node %s: shut down for the host: every VM has left; vmclusterd exits",
			   vmcd_node_name(d, d->my_id));
		vmcd_shutdown(d, VMCD_EXIT_OK);
	}
}

void vmcd_host_shutdown_check(struct vmcd *d)
{
	if (!grace_armed && shutdown_done(d) &&
	    qb_loop_timer_add(d->loop, QB_LOOP_LOW, (uint64_t)GRACE_MS * QB_TIME_NS_IN_MSEC, d, grace_over,
			      &grace_timer) == 0) {
		grace_armed = true;
	}
}

void vmcd_host_shutdown_fini(struct vmcd *d)
{
	if (grace_armed) {
		qb_loop_timer_del(d->loop, grace_timer);
		grace_armed = false;
	}
}
