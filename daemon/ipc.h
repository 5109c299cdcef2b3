/*
 * The local IPC server's transport (libqb service "vmcluster", protocol in
 * lib/ipc_proto.h): who may connect (root and group haclient), framing
 * and strict parsing of requests, replies, and the calls whose answer
 * comes later — after a change was applied and persisted (settle.c
 * flushes them), or after a check that runs in a child. The commands
 * themselves are ipc_cmds.c's, given to vmcd_ipc_init as a table.
 */
#ifndef VMCD_IPC_H
#define VMCD_IPC_H

#include <stdbool.h>
#include <sys/types.h>
#include <json-c/json.h>
#include <qb/qbipcs.h>

#include "context.h"

/* One request, as a command sees it. */
struct vmcd_ipc_req {
	qb_ipcs_connection_t *conn;
	int32_t cmd;
	json_object *args;
	uid_t uid;                 /* the client's, from the connection's credentials */
	pid_t pid;
};

/*
 * A command: 0 with *result (answered now), 1 when the answer comes later
 * (vmcd_ipc_defer), or a negative error with one line in err.
 */
typedef int (*vmcd_ipc_cmd_fn)(struct vmcd *d, const struct vmcd_ipc_req *req, json_object **result,
			       char *err, size_t errlen);

struct vmcd_ipc_command {
	int32_t cmd;
	const char *name;
	vmcd_ipc_cmd_fn fn;
};

/* A request whose answer comes later. */
struct vmcd_ipc_call;

int vmcd_ipc_init(struct vmcd *d, const struct vmcd_ipc_command *commands, size_t n);
void vmcd_ipc_fini(struct vmcd *d);

/* Keep req's connection for a later answer (returns NULL out of memory). */
struct vmcd_ipc_call *vmcd_ipc_defer(const struct vmcd_ipc_req *req);
/*
 * Multicast the change for call; answered when it is decided. 1, or -errno
 * with err: then call is still the caller's to fail or cancel.
 */
int vmcd_ipc_call_send(struct vmcd *d, struct vmcd_ipc_call *call, uint16_t type, json_object *body,
		       char *err, size_t errlen);
/* The request id to give a change sent for call by other means (fence.c's confirm). */
uint64_t vmcd_ipc_call_take_id(struct vmcd *d, struct vmcd_ipc_call *call);
/* Answer call with an error at the next flush (the caller makes sure one comes). */
void vmcd_ipc_call_fail(struct vmcd_ipc_call *call, int rc, const char *detail);
/* Forget call without answering it (the command answers at once instead). */
void vmcd_ipc_call_cancel(struct vmcd_ipc_call *call);
/* A request this node sent was decided; the answer waits for vmcd_ipc_flush(). */
void vmcd_ipc_request_done(struct vmcd *d, uint64_t request_id, int rc, const char *detail);
/* Send every answer that is ready (after what was applied is persisted). */
void vmcd_ipc_flush(struct vmcd *d);

#endif
