/*
 * The cluster's coordinator (the lowest active member) asks, on a timer,
 * for what only time decides (lib/failback.h): the failbacks that are
 * due, and the end of a node's quarantine once it has run out. Every
 * replica checks each request again when it applies it, so a second
 * coordinator for a moment (a membership change) asks twice at most,
 * and the second is refused.
 */
#ifndef VMCD_FAILBACKS_H
#define VMCD_FAILBACKS_H

#include "context.h"

void vmcd_failbacks_init(struct vmcd *d);
void vmcd_failbacks_fini(struct vmcd *d);

#endif
