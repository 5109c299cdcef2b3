/*
 * votequorum: whether corosync considers this partition quorate, on which
 * ring, with which quorum, and who is in corosync's membership. Kept in
 * the context (d->quorate, d->vq, d->cs_members); a change is published
 * through the hooks.
 */
#ifndef VMCD_QUORUM_H
#define VMCD_QUORUM_H

#include "context.h"

struct vmcd_quorum_hooks {
	void (*changed)(struct vmcd *d); /* quorum or corosync membership changed */
	void (*lost)(struct vmcd *d);    /* the connection to corosync is gone */
};

int vmcd_quorum_init(struct vmcd *d, const struct vmcd_quorum_hooks *hooks);
void vmcd_quorum_fini(struct vmcd *d);

#endif
