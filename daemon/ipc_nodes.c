/*
 * node drain and node resume (ipc_nodes.h): the names checked here, the
 * rest decided where every replica decides it (lib/drain.c).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ipc_change.h"
#include "ipc_nodes.h"
#include "json_util.h"
#include "nodes.h"
#include "vmc_errors.h"

/* The id of the node called name, in corosync's nodelist; 0 with err set when there is none. */
static uint32_t node_id(struct vmcd *d, const char *name, const char *what, char *err, size_t errlen)
{
	const struct vmcd_node *n = name != NULL ? vmcd_node_by_name(d, name) : NULL;

	if (name == NULL) {
		snprintf(err, errlen, "%s needs a node name", what);
	} else if (n == NULL) {
		snprintf(err, errlen, "no node named '%s' in corosync's nodelist (see 'clusterctl node list')", name);
	}
	return n != NULL ? n->id : 0;
}

static int node_change(struct vmcd *d, const struct vmcd_ipc_req *req, uint16_t type, json_object *body,
		       char *err, size_t errlen)
{
	int rc = vmcd_change_gate(d, err, errlen);

	if (rc == 0 && !VMC_PROTO_HAS_DRAIN(d->replica.proto)) {
		snprintf(err, errlen, "a node of this cluster speaks protocol %u: drain and resume need 6 (upgrade it)",
			 d->replica.proto);
		rc = -VMC_E_VERSION;
	}
	if (rc == 0) {
		json_object_object_add(body, "at_s", json_object_new_int64((int64_t)time(NULL)));
		rc = vmcd_change_send(d, req, type, body, err, errlen);
	}
	json_object_put(body);
	return rc;
}

int vmcd_cmd_node_drain(struct vmcd *d, const struct vmcd_ipc_req *req, json_object **result, char *err,
			size_t errlen)
{
	const char *target_name = vmc_json_str(req->args, "target");
	uint32_t node = node_id(d, vmc_json_str(req->args, "node"), "node drain", err, errlen), target = 0;
	bool force = false;
	json_object *body;

	(void)result;
	if (node == 0) {
		return -VMC_E_NOT_FOUND;
	}
	if (target_name != NULL && (target = node_id(d, target_name, "node drain --target", err, errlen)) == 0) {
		return -VMC_E_NOT_FOUND;
	}
	if (json_object_object_get_ex(req->args, "force", NULL) && !vmc_json_bool(req->args, "force", &force)) {
		snprintf(err, errlen, "node drain: force is true or false");
		return -VMC_E_INVALID;
	}
	body = json_object_new_object();
	json_object_object_add(body, "node", json_object_new_int64(node));
	json_object_object_add(body, "force", json_object_new_boolean(force));
	if (target != 0) {
		json_object_object_add(body, "target", json_object_new_int64(target));
	}
	return node_change(d, req, VMC_MSG_NODE_DRAIN, body, err, errlen);
}

int vmcd_cmd_node_shutdown(struct vmcd *d, const struct vmcd_ipc_req *req, json_object **result, char *err,
			   size_t errlen)
{
	const char *name = vmc_json_str(req->args, "node");
	uint32_t node = name != NULL ? node_id(d, name, "node shutdown", err, errlen) : d->my_id;
	json_object *body;

	(void)result;
	if (node == 0) {
		return -VMC_E_NOT_FOUND;
	}
	body = json_object_new_object();
	json_object_object_add(body, "node", json_object_new_int64(node));
	json_object_object_add(body, "shutdown", json_object_new_boolean(true));
	return node_change(d, req, VMC_MSG_NODE_DRAIN, body, err, errlen);
}

int vmcd_cmd_node_resume(struct vmcd *d, const struct vmcd_ipc_req *req, json_object **result, char *err,
			 size_t errlen)
{
	const char *failback = vmc_json_str(req->args, "failback");
	uint32_t node = node_id(d, vmc_json_str(req->args, "node"), "node resume", err, errlen);
	json_object *body;

	(void)result;
	if (node == 0) {
		return -VMC_E_NOT_FOUND;
	}
	if (failback == NULL) {
		failback = "policy";
	}
	if (strcmp(failback, "none") != 0 && strcmp(failback, "immediate") != 0 && strcmp(failback, "policy") != 0) {
		snprintf(err, errlen, "node resume: --failback is none, immediate or policy, not '%s'", failback);
		return -VMC_E_INVALID;
	}
	body = json_object_new_object();
	json_object_object_add(body, "node", json_object_new_int64(node));
	json_object_object_add(body, "failback", json_object_new_string(failback));
	return node_change(d, req, VMC_MSG_NODE_RESUME, body, err, errlen);
}
