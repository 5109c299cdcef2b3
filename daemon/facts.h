/*
 * This node's facts in the replicated state (NODE_FACTS): its name and
 * the memory it offers to VMs, which placement needs to be the same
 * answer on every node.
 */
#ifndef VMCD_FACTS_H
#define VMCD_FACTS_H

#include "context.h"

/*
 * After each sync: announce them when the state's copy differs (a new
 * node, a changed --vm-memory, a state restored from elsewhere) or when
 * the others hold a fencing record of this node (it is back: the record
 * goes when it speaks for itself).
 */
void vmcd_facts_announce(struct vmcd *d);

#endif
