/*
 * The group lifecycle table (diagram in group_fsm.h).
 */
#include "config.h"

#include <stdio.h>

#include "group_fsm.h"
#include "vmc_errors.h"

static const char *const event_names[VMC_GEV_COUNT] = {
	[VMC_GEV_START] = "start",
	[VMC_GEV_STOP] = "stop",
	[VMC_GEV_RUNNING] = "running",
	[VMC_GEV_STOPPED] = "stopped",
	[VMC_GEV_RESTART_HERE] = "restart-here",
	[VMC_GEV_FAIL_OVER] = "fail-over",
	[VMC_GEV_GIVE_UP] = "give-up",
	[VMC_GEV_DIED_STOPPING] = "died-stopping",
	[VMC_GEV_SELF_FENCED] = "self-fenced",
	[VMC_GEV_RECOVER] = "recover",
	[VMC_GEV_RECOVER_NONE] = "recover-none",
	[VMC_GEV_RECOVER_LEAVE] = "recover-leave",
	[VMC_GEV_ADOPT] = "adopt",
	[VMC_GEV_MIGRATE] = "migrate",
	[VMC_GEV_MIGRATED] = "migrated",
	[VMC_GEV_MIGRATE_ROLLBACK] = "migrate-rollback",
	[VMC_GEV_RELOCATE] = "relocate",
};

const char *vmc_group_event_to_str(enum vmc_group_event ev)
{
	return (size_t)ev < VMC_GEV_COUNT && event_names[ev] ? event_names[ev] : "unknown";
}

#define OFF VMC_GROUP_OFFLINE
#define STA VMC_GROUP_STARTING
#define ONL VMC_GROUP_ONLINE
#define STP VMC_GROUP_STOPPING
#define MIG VMC_GROUP_MIGRATING
#define FLD VMC_GROUP_FAILED

static const struct group_transition {
	enum vmc_group_state state;
	enum vmc_group_event event;
	enum vmc_group_state next;
} group_fsm[] = {
	{ OFF, VMC_GEV_START, STA },
	{ OFF, VMC_GEV_STOP, OFF },

	{ FLD, VMC_GEV_START, STA },
	{ FLD, VMC_GEV_STOP, OFF },

	{ STA, VMC_GEV_STOP, STP },
	{ STA, VMC_GEV_RUNNING, ONL },
	{ STA, VMC_GEV_STOPPED, OFF },
	{ STA, VMC_GEV_RESTART_HERE, STA },
	{ STA, VMC_GEV_FAIL_OVER, STA },
	{ STA, VMC_GEV_GIVE_UP, FLD },
	{ STA, VMC_GEV_SELF_FENCED, STA },
	{ STA, VMC_GEV_RECOVER, STA },
	{ STA, VMC_GEV_RECOVER_NONE, FLD },
	{ STA, VMC_GEV_RECOVER_LEAVE, OFF },
	{ STA, VMC_GEV_ADOPT, ONL },

	{ ONL, VMC_GEV_STOP, STP },
	{ ONL, VMC_GEV_RUNNING, ONL },
	{ ONL, VMC_GEV_STOPPED, OFF },
	{ ONL, VMC_GEV_RESTART_HERE, STA },
	{ ONL, VMC_GEV_FAIL_OVER, STA },
	{ ONL, VMC_GEV_GIVE_UP, FLD },
	{ ONL, VMC_GEV_SELF_FENCED, STA },
	{ ONL, VMC_GEV_RECOVER, STA },
	{ ONL, VMC_GEV_RECOVER_NONE, FLD },
	{ ONL, VMC_GEV_RECOVER_LEAVE, OFF },
	{ ONL, VMC_GEV_ADOPT, ONL },
	{ ONL, VMC_GEV_MIGRATE, MIG },
	{ ONL, VMC_GEV_RELOCATE, STP },

	{ STP, VMC_GEV_STOP, STP },
	{ STP, VMC_GEV_RUNNING, STP },
	{ STP, VMC_GEV_STOPPED, OFF },
	{ STP, VMC_GEV_DIED_STOPPING, OFF },
	{ STP, VMC_GEV_SELF_FENCED, OFF },
	{ STP, VMC_GEV_RECOVER_LEAVE, OFF },
	{ STP, VMC_GEV_ADOPT, STP },

	{ MIG, VMC_GEV_MIGRATED, ONL },
	{ MIG, VMC_GEV_MIGRATE_ROLLBACK, ONL },
	{ MIG, VMC_GEV_STOP, STP },
	{ MIG, VMC_GEV_RUNNING, MIG },
	{ MIG, VMC_GEV_STOPPED, OFF },
	{ MIG, VMC_GEV_RESTART_HERE, STA },
	{ MIG, VMC_GEV_FAIL_OVER, STA },
	{ MIG, VMC_GEV_GIVE_UP, FLD },
	{ MIG, VMC_GEV_SELF_FENCED, STA },
	{ MIG, VMC_GEV_RECOVER, STA },
	{ MIG, VMC_GEV_RECOVER_NONE, FLD },
	{ MIG, VMC_GEV_RECOVER_LEAVE, OFF },
	{ MIG, VMC_GEV_ADOPT, ONL },
};

#undef OFF
#undef STA
#undef ONL
#undef STP
#undef MIG
#undef FLD

static const struct group_transition *transition_find(enum vmc_group_state st, enum vmc_group_event ev)
{
	for (size_t i = 0; i < sizeof(group_fsm) / sizeof(group_fsm[0]); i++) {
		if (group_fsm[i].state == st && group_fsm[i].event == ev) {
			return &group_fsm[i];
		}
	}
	return NULL;
}

bool vmc_group_transition_allowed(enum vmc_group_state st, enum vmc_group_event ev)
{
	return transition_find(st, ev) != NULL;
}

int vmc_group_transition(struct vmc_group *g, enum vmc_group_event ev, char *detail, size_t len)
{
	const struct group_transition *t = transition_find(g->state, ev);

	if (t == NULL) {
		snprintf(detail, len, "vm %s: '%s' is not allowed while it is %s", g->def->name,
			 vmc_group_event_to_str(ev), vmc_group_state_to_str(g->state));
		return -VMC_E_BUSY;
	}
	if (t->next == VMC_GROUP_STARTING) {
		g->attempt++;
	}
	if (t->next != VMC_GROUP_FAILED) {
		g->failed_on = 0;
	}
	/* A move lives only while the group stays online (queued) or migrating. */
	if (t->next != VMC_GROUP_MIGRATING && !(t->next == VMC_GROUP_ONLINE && g->state == VMC_GROUP_ONLINE)) {
		g->mig = (struct vmc_migration){ 0 };
	}
	g->state = t->next;
	return 0;
}
