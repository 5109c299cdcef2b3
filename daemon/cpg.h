/*
 * CPG: the daemon's member of the process group "vmcluster", the replica
 * it feeds (lib/replica.h), and the outbox every message leaves through.
 * What happens is published through the hooks given at init; this module
 * knows nothing above it.
 */
#ifndef VMCD_CPG_H
#define VMCD_CPG_H

#include <json-c/json.h>

#include "context.h"

struct vmcd_cpg_hooks {
	/* A batch of deliveries was applied: the state may have changed. */
	void (*delivered)(struct vmcd *d);
	/* A request this node sent was decided here (rc 0 applied, else refused or dropped). */
	void (*outcome)(struct vmcd *d, uint64_t request_id, int rc, const char *detail);
	/* What the client of a request this node sent is told (lib/replica.h, ops->answer):
	 * rc 0 once the view holds it, else not applied, unknown or the refusal. */
	void (*answer)(struct vmcd *d, uint64_t request_id, int rc, const char *detail);
	/* A sync of the view finished (the state may have been replaced). */
	void (*synced)(struct vmcd *d);
	/* The connection to corosync is gone. */
	void (*lost)(struct vmcd *d);
	/* What runs on this node, a new JSON array of names, for the hello. */
	json_object *(*running)(struct vmcd *d);
};

int vmcd_cpg_init(struct vmcd *d, const struct vmcd_cpg_hooks *hooks);
void vmcd_cpg_fini(struct vmcd *d);
/* Multicast a change request; returns the request id (>0) or -errno. */
int64_t vmcd_cpg_send_request(struct vmcd *d, uint16_t type, json_object *body);
/* The same with an id the caller took from ++d->next_request_id. */
int64_t vmcd_cpg_send_request_as(struct vmcd *d, uint16_t type, json_object *body, uint64_t id);
/* Is id in the CPG view (whether or not its daemon answers)? */
bool vmcd_cpg_is_member(const struct vmcd *d, uint32_t id);
/* When the current hello phase began (vmc_now_ms), 0 outside one. */
int64_t vmcd_cpg_sync_started_ms(const struct vmcd *d);
/* Messages waiting in the outbox (corosync said "try again"). */
size_t vmcd_cpg_outbox_length(void);
/* votequorum spoke (d->vq) or the nodelist may have changed: tell the replica. */
void vmcd_cpg_quorum_changed(struct vmcd *d);
/* Everything applied is persisted: confirm it to the view (settle.h, step 1). */
void vmcd_cpg_committed(struct vmcd *d);

#endif
