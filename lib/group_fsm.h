/*
 * The life of a VM group, as one table: a group's state changes only
 * through vmc_group_transition(), which looks the (state, event) pair up
 * in group_fsm[] (group_fsm.c) and refuses any pair the table does not
 * have, with a detail that names both. It runs inside the apply path, so
 * every replica takes or refuses the same transition at the same point of
 * the total order.
 *
 *                start                    running
 *   offline ----------------> starting -----------------> online
 *   failed  ---------------->  |  ^  ^                    |  |  ^
 *      ^                       |  |  | restart-here,      |  |  | migrated,
 *      | give-up,              |  |  | fail-over,         |  |  | migrate-rollback
 *      | recover-none          |  |  | self-fenced,       |  |  |
 *      +-----------------------+  |  | recover            |  v  |
 *      |                          +--+--------------------+ migrating
 *      |  stop                                            |
 *      |                stopped, died-stopping            v stop (any running state)
 *   offline <--------------------------------------- stopping
 *
 *   relocate (a drain that cannot move it running): online -> stopping, and
 *   once stopped it starts on another node (lifecycle.c)
 *   adopt (a lost node's VM a member runs): -> online (stopping stays stopping)
 *   stopped (the guest powered itself off), recover-leave: -> offline
 *
 * Entering `starting` begins a new start attempt: the group's attempt
 * counter goes up, and an owner's report is taken only for the attempt it
 * names (lifecycle.c), so a late report about an earlier attempt can
 * never be mistaken for news about this one.
 */
#ifndef VMC_GROUP_FSM_H
#define VMC_GROUP_FSM_H

#include <stdbool.h>
#include <stddef.h>

#include "state.h"

enum vmc_group_event {
	VMC_GEV_START = 0,        /* an operator starts it (placed) */
	VMC_GEV_STOP,             /* an operator stops it */
	VMC_GEV_RUNNING,          /* its owner reports it running */
	VMC_GEV_STOPPED,          /* its owner reports it gone: stopped, or the guest powered off */
	VMC_GEV_RESTART_HERE,     /* it failed; the failure policy restarts it where it was */
	VMC_GEV_FAIL_OVER,        /* it failed; it restarts on another node */
	VMC_GEV_GIVE_UP,          /* it failed past its threshold, or nowhere else can take it */
	VMC_GEV_DIED_STOPPING,    /* it failed while being stopped */
	VMC_GEV_SELF_FENCED,      /* its node killed it on losing quorum: restarted, not a failure */
	VMC_GEV_RECOVER,          /* its node is proven dead: restart it on a survivor */
	VMC_GEV_RECOVER_NONE,     /* ... and no survivor can take it */
	VMC_GEV_RECOVER_LEAVE,    /* ... and it is not the cluster's to restart */
	VMC_GEV_ADOPT,            /* ... and a member reports it running already */
	VMC_GEV_MIGRATE,          /* a live migration begins */
	VMC_GEV_MIGRATED,         /* it switched over: online on the destination */
	VMC_GEV_MIGRATE_ROLLBACK, /* it failed before the switchover: online at the source */
	VMC_GEV_RELOCATE,         /* it stops here to start on another node (a drain's last resort) */
	VMC_GEV_COUNT,
};

/*
 * Takes event on g: 0 with g->state the table's next state (and
 * g->attempt raised when that is `starting`), or -VMC_E_BUSY with g
 * untouched and one line in detail.
 */
int vmc_group_transition(struct vmc_group *g, enum vmc_group_event ev, char *detail, size_t len);

/* Would event be taken in state st? (for callers that choose between events) */
bool vmc_group_transition_allowed(enum vmc_group_state st, enum vmc_group_event ev);

const char *vmc_group_event_to_str(enum vmc_group_event ev);

#endif
