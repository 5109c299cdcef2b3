/*
 * What every IPC command that changes the cluster does first and last:
 * check that a change may be asked for here now, then multicast it and
 * answer the client once the cluster has decided it.
 */
#ifndef VMCD_IPC_CHANGE_H
#define VMCD_IPC_CHANGE_H

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "context.h"
#include "ipc.h"

/* May a change be asked for here now? 0, or a negative VMC_E_* with one line in err. */
int vmcd_change_gate(struct vmcd *d, char *err, size_t errlen);
/* Defer req and multicast the change; answered once it is decided. */
int vmcd_change_send(struct vmcd *d, const struct vmcd_ipc_req *req, uint16_t type, json_object *body,
		     char *err, size_t errlen);

#endif
