/*
 * Asking the cluster for a change on behalf of an IPC client (ipc_change.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>

#include "cpg.h"
#include "ipc_change.h"
#include "nodes.h"
#include "vmc_errors.h"

int vmcd_change_gate(struct vmcd *d, char *err, size_t errlen)
{
	if (!d->quorate) {
		snprintf(err, errlen,
			 "no quorum: node %s is not in a quorate partition, so the cluster refuses changes here "
			 "(corosync-quorumtool -s shows the membership)",
			 vmcd_node_name(d, d->my_id));
		return -VMC_E_NO_QUORUM;
	}
	if (d->replica.phase == VMC_SYNC_DONE && !d->replica.primary) {
		if (d->replica.tainted) {
			snprintf(err, errlen, "node %s is resyncing after a local failure: retry in a moment",
				 vmcd_node_name(d, d->my_id));
			return -VMC_E_RETRY;
		}
		snprintf(err, errlen, "%s", d->replica.not_primary);
		return -VMC_E_NO_QUORUM;
	}
	return 0;
}

/* Defer req and multicast the change; answered once it is decided. */
int vmcd_change_send(struct vmcd *d, const struct vmcd_ipc_req *req, uint16_t type, json_object *body,
		       char *err, size_t errlen)
{
	struct vmcd_ipc_call *call = vmcd_ipc_defer(req);
	int rc;

	if (call == NULL) {
		return -ENOMEM;
	}
	rc = vmcd_ipc_call_send(d, call, type, body, err, errlen);
	if (rc < 0) {
		vmcd_ipc_call_cancel(call); /* answered at once, with err */
	}
	return rc;
}
