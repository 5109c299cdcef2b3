/*
 * Placement: where a VM group should run. Pure policy — a function of the
 * nodes' facts and the groups already placed — so every node computes the
 * same answer from the same replicated state, and so the rules are tested
 * with golden cases (the .case files in tests/placement) like pacemaker's
 * scheduler.
 *
 * The rules, in order:
 *  1. hard: the node is up (in the quorate partition, fencing of lost nodes
 *     done), active (not paused or draining), among possible_owners when
 *     that list is not empty, not excluded by the caller, sees every
 *     volume the group's disks lie on healthy (it does not report one
 *     failing or hung), and has the group's memory free;
 *  2. soft: anti-affinity — the fewer groups sharing an anti-affinity
 *     class already run on a node, the better; if every candidate has
 *     some, the group still runs (Windows treats AntiAffinityClassNames the
 *     same way), where it adds to the fewest;
 *  3. preferred_owners in their order (names not in the cluster are
 *     skipped); then any other candidate, the one with the most free memory
 *     in MiB first, ties to the lowest node id.
 * Groups are placed one at a time (as Windows and pacemaker do); nothing
 * is preempted to make room. A group with an owner counts — memory and
 * anti-affinity — on that node, whatever its state, except the group being
 * placed, so restarting it where it was finds its own memory free.
 * Recovery after nodes are lost (the caller passes only nodes whose
 * fencing is confirmed: a down node not in that list keeps its groups)
 * places their groups high priority first (then medium, then low; by name
 * in byte order within a priority), each decision taking
 * the memory and anti-affinity of the ones before it into account.
 * no-auto-start groups are never started by the cluster on its own.
 */
#ifndef VMC_PLACEMENT_H
#define VMC_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "group_def.h"

struct vmc_place_node {
	uint32_t id;
	const char *name;
	bool up;           /* member of the quorate partition */
	bool active;       /* not paused, not draining */
	uint32_t mem_mib;  /* memory for VMs on this node, in total */
	uint32_t bad_volumes; /* bit i: the state's volume i fails or hangs here */
};

struct vmc_place_group {
	const struct vmc_group_def *def;
	uint32_t owner;    /* node id; 0 when it runs nowhere */
	bool wanted;       /* desired state: started */
	uint32_t volumes;  /* bit i: a disk lies on the state's volume i */
	bool shadow;       /* a move's room at its target: it counts there, and is never placed */
};

struct vmc_place_view {
	const struct vmc_place_node *nodes;
	size_t n_nodes;
	const struct vmc_place_group *groups;
	size_t n_groups;
};

enum vmc_place_verdict {
	VMC_PLACE_START = 0,   /* start (or restart) it on node */
	VMC_PLACE_NO_NODE,     /* wanted, but no node can take it now */
	VMC_PLACE_LEAVE,       /* not the cluster's to start (no-auto-start, not wanted, pacemaker) */
	VMC_PLACE_NO_MEMORY,   /* this node ran out of memory computing it: not a verdict (apply.h) */
};

struct vmc_place_decision {
	const struct vmc_place_group *group;
	enum vmc_place_verdict verdict;
	uint32_t node;
	char why[192];
};

/*
 * Where group g would start, ignoring node `exclude` (0: none). This
 * answers "where", not "whether": the caller decides if the cluster may
 * start it (wanted, not no-auto-start, not managed by pacemaker).
 */
enum vmc_place_verdict vmc_place_group(const struct vmc_place_view *view,
				       const struct vmc_place_group *g, uint32_t exclude,
				       uint32_t *node, char *why, size_t why_len);

/*
 * May group g start on node (the same hard rules as vmc_place_group)?
 * VMC_PLACE_START, else VMC_PLACE_NO_NODE with why; for starts an
 * operator (or pacemaker) places by hand.
 */
enum vmc_place_verdict vmc_place_group_on(const struct vmc_place_view *view, const struct vmc_place_group *g,
					  uint32_t node, char *why, size_t why_len);

/*
 * The groups owned by the lost nodes, in recovery order, each with its
 * decision. out must hold view->n_groups entries; returns how many were
 * written, or VMC_PLAN_NO_MEMORY. Groups on lost nodes count as running
 * nowhere.
 */
#define VMC_PLAN_NO_MEMORY SIZE_MAX
size_t vmc_plan_recovery(const struct vmc_place_view *view, const uint32_t *lost, size_t n_lost,
			 struct vmc_place_decision *out);

const char *vmc_place_verdict_to_str(enum vmc_place_verdict v);

#endif
