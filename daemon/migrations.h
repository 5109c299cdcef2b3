/*
 * This node's part in moving VMs (lib/migration.h says what the cluster
 * state does): the migration agents it runs and what it tells the
 * cluster about them.
 *
 * - One listening agent (vmcluster-migrate listen) on this node's address
 *   in the migration network (or its corosync ring address while no
 *   network is set), restarted when it dies or the address changes. It is
 *   told which migrations to expect here, and when their QEMU waits.
 * - One sending agent per migration from this node, spawned when the
 *   state says transfer. At pre-switchover it waits; this module sends
 *   MIGRATE_SWITCHOVER, and once the cluster applied it (the image locks
 *   are the target's) tells the agent to continue.
 * - The target sends MIGRATE_DONE once its agent has the whole VM; either
 *   side sends MIGRATE_ABORT when its agent or QEMU fails, and the source
 *   when the target leaves the view.
 * Level-triggered like local_vms.c: vmcd_migrations_reconcile after every
 * event compares the state with the agents and acts on the difference.
 */
#ifndef VMCD_MIGRATIONS_H
#define VMCD_MIGRATIONS_H

#include <stddef.h>
#include <json-c/json.h>

#include "context.h"

struct vmcd_migrations_hooks {
	void (*changed)(struct vmcd *d);      /* an agent said something: decide again */
	void (*addr_changed)(struct vmcd *d); /* this node's migration address changed: announce it */
};

int vmcd_migrations_init(struct vmcd *d, const struct vmcd_migrations_hooks *hooks);
void vmcd_migrations_fini(struct vmcd *d);
void vmcd_migrations_reconcile(struct vmcd *d);

/* This node's address for migrations, "" when it has none (buf). */
const char *vmcd_migration_local_addr(const struct vmcd *d, char *buf, size_t len);

/* What this node's agents report of migrations in flight: [{id, vm, role, ...progress}]. */
json_object *vmcd_migrations_progress(void);

#endif
