/*
 * The node commands that change what the cluster does with a node:
 * `node drain`, `node resume` and `node shutdown` (lib/drain.h).
 */
#ifndef VMCD_IPC_NODES_H
#define VMCD_IPC_NODES_H

#include <json-c/json.h>

#include "context.h"
#include "ipc.h"

int vmcd_cmd_node_drain(struct vmcd *d, const struct vmcd_ipc_req *req, json_object **result, char *err,
			size_t errlen);
int vmcd_cmd_node_resume(struct vmcd *d, const struct vmcd_ipc_req *req, json_object **result, char *err,
			 size_t errlen);

/* A host shutdown of a node (this one when none is named): NODE_DRAIN shutdown. */
int vmcd_cmd_node_shutdown(struct vmcd *d, const struct vmcd_ipc_req *req, json_object **result, char *err,
			   size_t errlen);

#endif
