/*
 * Client side of vmclusterd's IPC (see ipc_proto.h), used by clusterctl
 * and the benchmarks.
 */
#ifndef VMC_CLIENT_H
#define VMC_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "ipc_proto.h"

struct vmc_client;

/*
 * Returns -ENOTCONN when no daemon answers, -EACCES when the daemon
 * refuses this user, other -errno otherwise.
 */
int vmc_client_connect(struct vmc_client **out, size_t max_msg);
void vmc_client_close(struct vmc_client *c);

/*
 * One request, one response. args may be NULL. On success *result holds
 * the response object (caller puts it) and the return value is the
 * daemon's verdict: 0 or a negative vmc_errors.h code, with the
 * operator's line in err. Transport failures return -errno.
 */
int vmc_client_call(struct vmc_client *c, enum vmc_ipc_cmd cmd, json_object *args,
		    int timeout_ms, json_object **result, char *err, size_t errlen);

/* Pipelining: send now, receive later; match them by "tag". */
int vmc_client_send(struct vmc_client *c, enum vmc_ipc_cmd cmd, json_object *args);
int vmc_client_recv(struct vmc_client *c, int timeout_ms, json_object **result, int *verdict);

#endif
