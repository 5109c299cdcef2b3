/*
 * The commands clusterctl (and the OCF agent) send over IPC: reads answered
 * from the views (lib/views.h), changes checked here and multicast. The
 * table goes to vmcd_ipc_init().
 */
#ifndef VMCD_IPC_CMDS_H
#define VMCD_IPC_CMDS_H

#include <stddef.h>

#include <json-c/json.h>

#include "context.h"
#include "ipc.h"

const struct vmcd_ipc_command *vmcd_ipc_commands(size_t *n);

/* May a change be asked for here now? 0, or a negative VMC_E_* with one line in err. */
int vmcd_change_gate(struct vmcd *d, char *err, size_t errlen);
/* Defer req and multicast the change; answered once it is decided. */
int vmcd_change_send(struct vmcd *d, const struct vmcd_ipc_req *req, uint16_t type, json_object *body,
		     char *err, size_t errlen);

#endif
