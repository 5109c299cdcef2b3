/*
 * The local IPC between clusterctl (or the OCF agent) and vmclusterd, over
 * libqb IPC service "vmcluster". A request is a qb_ipc_request_header whose
 * id is an enum vmc_ipc_cmd, followed by a NUL-terminated JSON object of
 * arguments. A response is a qb_ipc_response_header (id echoed, error 0 or
 * a negative vmc_errors.h code) followed by a NUL-terminated JSON object:
 * the result, or {"error": "one line for the operator"}.
 * A request may carry "tag" (an integer); the response echoes it, so a
 * client can pipeline requests.
 */
#ifndef VMC_IPC_PROTO_H
#define VMC_IPC_PROTO_H

#define VMC_IPC_NAME "vmcluster"
/*
 * Buffer sizes a client asks for. libqb backs each with shared memory it
 * allocates in full at connect time, so small requests use small buffers
 * and only listings ask for the large one.
 */
#define VMC_IPC_SMALL_MSG (256 * 1024)
#define VMC_IPC_LIST_MSG (1024 * 1024)
/* Asked for only after an answer did not fit (-EMSGSIZE): ~60,000 groups. */
#define VMC_IPC_MAX_MSG (16 * 1024 * 1024)
#define VMC_IPC_GROUP "haclient"

enum vmc_ipc_cmd {
	VMC_IPC_INVALID = 0,
	VMC_IPC_STATUS = 1,
	VMC_IPC_NODE_LIST = 2,
	VMC_IPC_VM_ADD = 3,
	VMC_IPC_VM_LIST = 4,
	VMC_IPC_VM_SHOW = 5,
	VMC_IPC_VM_REMOVE = 6,
	VMC_IPC_VM_SET = 7,
	VMC_IPC_CLUSTER_SHOW = 8,
	VMC_IPC_CLUSTER_SET = 9,
	VMC_IPC_VM_START = 10,
	VMC_IPC_VM_STOP = 11,
	VMC_IPC_NODE_CONFIRM_FENCED = 12, /* root only */
	VMC_IPC_DUMP = 13,                /* the daemon's recent log events */
	VMC_IPC_VOLUME_ADD = 14,
	VMC_IPC_VOLUME_LIST = 15,
	VMC_IPC_VOLUME_SHOW = 16,
	VMC_IPC_VOLUME_REMOVE = 17,
	VMC_IPC_VOLUME_MOVE = 18,
	VMC_IPC_VM_MOVE = 19,             /* {name, node (optional), id, mode} */
	VMC_IPC_MIGRATION_STATUS = 20,
	VMC_IPC_NODE_DRAIN = 21,          /* {node, force, target (optional)} */
	VMC_IPC_NODE_RESUME = 22,         /* {node, failback: none|immediate|policy} */
	VMC_IPC_NODE_SHUTDOWN = 23,       /* {node (optional: this one)} */
	VMC_IPC_CMD_COUNT,
};

#endif
