/*
 * The local IPC server (libqb service "vmcluster", protocol in
 * lib/ipc_proto.h). Only root and members of group haclient may connect.
 *
 * Reads are answered at once from this node's copy. A change is checked
 * here (syntax, node names, quorum), multicast, and answered only after
 * this node has applied its own message and persisted the result
 * (vmcd_commit), with the verdict every node reached.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <qb/qbipcs.h>

#include "ipc_proto.h"
#include "json_util.h"
#include "log.h"
#include "vmc_errors.h"
#include "vmclusterd.h"

struct pending {
	uint64_t request_id;
	qb_ipcs_connection_t *conn; /* NULL once the client went away */
	int32_t cmd;
	int64_t tag;
	bool has_tag;
	bool done;
	int rc;
	uint64_t config_version; /* right after this change was applied */
	char *detail;
	struct pending *next;
};

static qb_ipcs_service_t *ipc_service;
static struct pending *pending_head;
static struct vmcd *ipc_ctx;
static gid_t haclient_gid;
static bool have_haclient;

typedef int (*cmd_fn)(struct vmcd *d, qb_ipcs_connection_t *c, json_object *args,
		      json_object **result, char *err, size_t errlen);

struct ipc_command {
	enum vmc_ipc_cmd cmd;
	const char *name;
	cmd_fn fn;
};

static json_object *error_body(const char *msg);

static void reply_send(qb_ipcs_connection_t *c, int32_t id, int rc, json_object *body)
{
	const char *json = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
	size_t len = strlen(json) + 1;
	struct qb_ipc_response_header hdr = { .id = id, .size = (int32_t)(sizeof(hdr) + len), .error = rc };
	struct iovec iov[2] = { { &hdr, sizeof(hdr) }, { (void *)json, len } };
	ssize_t n = qb_ipcs_response_sendv(c, iov, 2);

	if (n == -EMSGSIZE) {
		char msg[160];
		json_object *small;
		snprintf(msg, sizeof(msg), "the answer (%zu bytes) is larger than the client's buffer (%d bytes)",
			 sizeof(hdr) + len, qb_ipcs_connection_get_buffer_size(c));
		small = error_body(msg);
		reply_send(c, id, -EMSGSIZE, small);
		json_object_put(small);
		return;
	}
	if (n < 0) {
		log_warn("cannot answer a client: %s", strerror((int)-n));
	}
}

static json_object *error_body(const char *msg)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "error", json_object_new_string(msg));
	return o;
}

static void tag_copy(json_object *args, json_object *body)
{
	json_object *tag;

	if (args != NULL && json_object_object_get_ex(args, "tag", &tag)) {
		json_object_object_add(body, "tag", json_object_get(tag));
	}
}

/* ---- reads ---- */

static const char *node_state(const struct vmcd *d, uint32_t id)
{
	return vmcd_cpg_is_member(d, id) ? "up" : "down";
}

/* What a node offers VMs and what it carries now (from the replicated state). */
static void node_load_to_json(struct vmcd *d, uint32_t id, json_object *n)
{
	const struct vmc_node_facts *f = vmc_state_node(d->replica.state, id);
	uint64_t used = 0;
	int64_t vms = 0;

	for (size_t i = 0; i < d->replica.state->n_groups; i++) {
		const struct vmc_group *g = &d->replica.state->groups[i];
		if (g->owner == id) {
			used += g->def->memory_mib;
			vms++;
		}
	}
	json_object_object_add(n, "vm_memory_mib", json_object_new_int64(f ? f->mem_mib : 0));
	json_object_object_add(n, "used_memory_mib", json_object_new_int64((int64_t)used));
	json_object_object_add(n, "vms", json_object_new_int64(vms));
}

static json_object *nodes_to_json(struct vmcd *d)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; i < d->n_nodes; i++) {
		json_object *n = json_object_new_object();
		json_object_object_add(n, "name", json_object_new_string(d->nodes[i].name));
		json_object_object_add(n, "id", json_object_new_int64(d->nodes[i].id));
		json_object_object_add(n, "address", json_object_new_string(d->nodes[i].addr));
		json_object_object_add(n, "state", json_object_new_string(node_state(d, d->nodes[i].id)));
		json_object_object_add(n, "votes", json_object_new_int64(d->nodes[i].votes));
		node_load_to_json(d, d->nodes[i].id, n);
		json_object_array_add(a, n);
	}
	return a;
}

/* What an operator must hear about on every status. */
static json_object *warnings_to_json(struct vmcd *d)
{
	json_object *a = json_object_new_array();
	const char *w = vmc_settings_warning(&d->replica.state->settings);

	if (w != NULL) {
		json_object_array_add(a, json_object_new_string(w));
	}
	return a;
}

static int cmd_status(struct vmcd *d, qb_ipcs_connection_t *c, json_object *args,
		      json_object **result, char *err, size_t errlen)
{
	json_object *o = json_object_new_object();
	const char *digest = vmc_replica_digest(&d->replica);

	json_object_object_add(o, "cluster_name", json_object_new_string(d->cluster_name));
	json_object_object_add(o, "node_id", json_object_new_int64(d->my_id));
	json_object_object_add(o, "node_name", json_object_new_string(vmcd_node_name(d, d->my_id)));
	json_object_object_add(o, "quorate", json_object_new_boolean(d->quorate));
	json_object_object_add(o, "accepting_changes",
			       json_object_new_boolean(d->quorate && vmc_replica_writable(&d->replica)));
	json_object_object_add(o, "sync", json_object_new_string(vmc_sync_phase_to_str(d->replica.phase)));
	json_object_object_add(o, "expected_votes", json_object_new_int64(d->vq_expected_votes));
	json_object_object_add(o, "total_votes", json_object_new_int64(d->vq_total_votes));
	json_object_object_add(o, "protocol", json_object_new_int(d->replica.proto));
	json_object_object_add(o, "config_version",
			       json_object_new_uint64(d->replica.state->config_version));
	json_object_object_add(o, "state_digest", json_object_new_string(digest));
	json_object_object_add(o, "vms", json_object_new_int64((int64_t)d->replica.state->n_groups));
	json_object_object_add(o, "nodes", nodes_to_json(d));
	json_object_object_add(o, "fence_method", json_object_new_string(vmc_fence_method_to_str(
								 d->replica.state->settings.fence_method)));
	json_object_object_add(o, "warnings", warnings_to_json(d));
	*result = o;
	return 0;
}

static int cmd_cluster_show(struct vmcd *d, qb_ipcs_connection_t *c, json_object *args,
			    json_object **result, char *err, size_t errlen)
{
	*result = vmc_settings_to_json(&d->replica.state->settings);
	return 0;
}

static int cmd_node_list(struct vmcd *d, qb_ipcs_connection_t *c, json_object *args,
			 json_object **result, char *err, size_t errlen)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "nodes", nodes_to_json(d));
	*result = o;
	return 0;
}

static json_object *group_summary(struct vmcd *d, const struct vmc_group *g)
{
	json_object *o = json_object_new_object();
	json_object *pref = json_object_new_array();

	for (size_t i = 0; i < g->def->preferred_owners.n; i++) {
		json_object_array_add(pref, json_object_new_string(g->def->preferred_owners.v[i]));
	}
	json_object_object_add(o, "name", json_object_new_string(g->def->name));
	json_object_object_add(o, "owner", g->owner ? json_object_new_string(vmcd_node_name(d, g->owner))
						  : NULL);
	json_object_object_add(o, "state", json_object_new_string(vmc_group_state_to_str(g->state)));
	json_object_object_add(o, "priority",
			       json_object_new_string(vmc_priority_to_str(g->def->priority)));
	json_object_object_add(o, "memory_mib", json_object_new_int64(g->def->memory_mib));
	json_object_object_add(o, "vcpus", json_object_new_int64(g->def->vcpus));
	json_object_object_add(o, "preferred_owners", pref);
	return o;
}

static int cmd_vm_list(struct vmcd *d, qb_ipcs_connection_t *c, json_object *args,
		       json_object **result, char *err, size_t errlen)
{
	json_object *o = json_object_new_object();
	json_object *a = json_object_new_array_ext((int)d->replica.state->n_groups);

	for (size_t i = 0; i < d->replica.state->n_groups; i++) {
		json_object_array_add(a, group_summary(d, &d->replica.state->groups[i]));
	}
	json_object_object_add(o, "vms", a);
	*result = o;
	return 0;
}

static const char *arg_string(json_object *args, const char *key)
{
	json_object *v;

	if (args == NULL || !json_object_object_get_ex(args, key, &v) ||
	    !json_object_is_type(v, json_type_string)) {
		return NULL;
	}
	return json_object_get_string(v);
}

/* Failures inside failover.period_s, the ones that count against the threshold. */
static int64_t recent_failures(const struct vmc_group *g)
{
	time_t now = time(NULL);
	int64_t n = 0;

	for (size_t i = 0; i < g->n_failures; i++) {
		if ((uint64_t)now >= g->failures[i].at_s && (uint64_t)now - g->failures[i].at_s < g->def->failover_period_s) {
			n++;
		}
	}
	return n;
}

static int cmd_vm_show(struct vmcd *d, qb_ipcs_connection_t *c, json_object *args,
		       json_object **result, char *err, size_t errlen)
{
	const char *name = arg_string(args, "name");
	const struct vmc_group *g;
	json_object *o;

	if (name == NULL) {
		snprintf(err, errlen, "vm show needs a VM name");
		return -VMC_E_INVALID;
	}
	g = vmc_state_group_find(d->replica.state, name);
	if (g == NULL) {
		snprintf(err, errlen, "no vm named '%s' (see 'clusterctl vm list')", name);
		return -VMC_E_NOT_FOUND;
	}
	o = group_summary(d, g);
	json_object_object_add(o, "want_started", json_object_new_boolean(g->want_started));
	json_object_object_add(o, "reason", json_object_new_string(g->reason));
	json_object_object_add(o, "recent_failures", json_object_new_int64(recent_failures(g)));
	json_object_object_add(o, "definition", vmc_group_def_to_json(g->def));
	*result = o;
	return 0;
}

/* ---- changes ---- */

static int change_gate(struct vmcd *d, char *err, size_t errlen)
{
	if (!d->quorate) {
		snprintf(err, errlen,
			 "no quorum: node %s is not in a quorate partition, so the cluster refuses changes here "
			 "(corosync-quorumtool -s shows the membership)",
			 vmcd_node_name(d, d->my_id));
		return -VMC_E_NO_QUORUM;
	}
	if (d->replica.phase == VMC_SYNC_DONE && !d->replica.primary) {
		snprintf(err, errlen,
			 "no quorum: the vmclusterd daemons in this partition hold %u of %u votes; "
			 "changes need a majority",
			 d->replica.view_votes, d->replica.expected_votes);
		return -VMC_E_NO_QUORUM;
	}
	return 0;
}

static int check_owner_names(struct vmcd *d, const struct vmc_strlist *l, const char *field,
			     char *err, size_t errlen)
{
	for (size_t i = 0; i < l->n; i++) {
		if (vmcd_node_by_name(d, l->v[i]) == NULL) {
			char known[512] = "";
			for (size_t j = 0; j < d->n_nodes; j++) {
				strncat(known, j ? ", " : "", sizeof(known) - strlen(known) - 1);
				strncat(known, d->nodes[j].name, sizeof(known) - strlen(known) - 1);
			}
			snprintf(err, errlen, "field '%s': '%s' is not a cluster node (nodes: %s)", field,
				 l->v[i], known);
			return -VMC_E_INVALID;
		}
	}
	return 0;
}

static int check_definition(struct vmcd *d, const struct vmc_group_def *def, char *err,
			    size_t errlen)
{
	int rc = check_owner_names(d, &def->preferred_owners, "preferred_owners", err, errlen);

	if (rc == 0) {
		rc = check_owner_names(d, &def->possible_owners, "possible_owners", err, errlen);
	}
	return rc;
}

static int pending_add(struct vmcd *d, qb_ipcs_connection_t *c, json_object *args, int32_t cmd,
		       uint16_t type, json_object *body, char *err, size_t errlen)
{
	struct pending *p = calloc(1, sizeof(*p));
	json_object *tag;
	int64_t id;

	if (p == NULL) {
		return -ENOMEM;
	}
	/* Listed before sending: a send that fails at once must find its pending. */
	p->request_id = ++d->next_request_id;
	p->conn = c;
	p->cmd = cmd;
	if (args != NULL && json_object_object_get_ex(args, "tag", &tag)) {
		p->has_tag = true;
		p->tag = json_object_get_int64(tag);
	}
	qb_ipcs_connection_ref(c);
	p->next = pending_head;
	pending_head = p;
	id = vmcd_cpg_send_request_as(d, type, body, p->request_id);
	if (id < 0) {
		pending_head = p->next;
		qb_ipcs_connection_unref(c);
		free(p->detail);
		free(p);
		snprintf(err, errlen, "cannot send the change to the cluster: %s", strerror((int)-id));
		return (int)id;
	}
	return 1; /* answered later */
}

static int cmd_vm_add(struct vmcd *d, qb_ipcs_connection_t *c, json_object *args,
		      json_object **result, char *err, size_t errlen)
{
	struct vmc_group_def *def = NULL;
	json_object *j, *body;
	int rc;

	if (args == NULL || !json_object_object_get_ex(args, "definition", &j)) {
		snprintf(err, errlen, "vm add needs a definition");
		return -VMC_E_INVALID;
	}
	rc = vmc_group_def_from_json(j, &def, err, errlen);
	if (rc != 0) {
		return -VMC_E_INVALID;
	}
	rc = check_definition(d, def, err, errlen);
	if (rc == 0) {
		rc = change_gate(d, err, errlen);
	}
	if (rc == 0) {
		body = json_object_new_object();
		json_object_object_add(body, "definition", vmc_group_def_to_json(def));
		rc = pending_add(d, c, args, VMC_IPC_VM_ADD, VMC_MSG_GROUP_ADD, body, err, errlen);
		json_object_put(body);
	}
	vmc_group_def_free(def);
	return rc;
}

/* A change that names one VM and nothing else: remove, start, stop. */
static int name_change(struct vmcd *d, qb_ipcs_connection_t *c, json_object *args, int32_t cmd,
		       uint16_t type, const char *verb, char *err, size_t errlen)
{
	const char *name = arg_string(args, "name");
	json_object *body;
	int rc;

	if (name == NULL) {
		snprintf(err, errlen, "vm %s needs a VM name", verb);
		return -VMC_E_INVALID;
	}
	if (vmc_state_group_find(d->replica.state, name) == NULL) {
		snprintf(err, errlen, "no vm named '%s' (see 'clusterctl vm list')", name);
		return -VMC_E_NOT_FOUND;
	}
	rc = change_gate(d, err, errlen);
	if (rc != 0) {
		return rc;
	}
	body = json_object_new_object();
	json_object_object_add(body, "name", json_object_new_string(name));
	rc = pending_add(d, c, args, cmd, type, body, err, errlen);
	json_object_put(body);
	return rc;
}

static int cmd_vm_remove(struct vmcd *d, qb_ipcs_connection_t *c, json_object *args,
			 json_object **result, char *err, size_t errlen)
{
	return name_change(d, c, args, VMC_IPC_VM_REMOVE, VMC_MSG_GROUP_REMOVE, "remove", err, errlen);
}

/*
 * The VM's files must be there before the cluster is asked to start it
 * (they live on shared storage, so what this node sees, its owner sees).
 */
static int check_vm_files(const struct vmc_group_def *def, char *err, size_t errlen)
{
	const char *paths[2 + VMC_DISKS_MAX];
	size_t n = 0;

	if (def->has_boot) {
		paths[n++] = def->kernel;
		if (def->initrd != NULL) {
			paths[n++] = def->initrd;
		}
	}
	for (size_t i = 0; i < def->n_disks; i++) {
		paths[n++] = def->disks[i].path;
	}
	for (size_t i = 0; i < n; i++) {
		if (access(paths[i], R_OK) != 0) {
			snprintf(err, errlen, "vm %s cannot start: %s: %s", def->name, paths[i], strerror(errno));
			return -VMC_E_INVALID;
		}
	}
	return 0;
}

static int cmd_vm_start(struct vmcd *d, qb_ipcs_connection_t *c, json_object *args,
			json_object **result, char *err, size_t errlen)
{
	const char *name = arg_string(args, "name");
	const struct vmc_group *g = name ? vmc_state_group_find(d->replica.state, name) : NULL;

	if (g != NULL) {
		int rc = check_vm_files(g->def, err, errlen);
		if (rc != 0) {
			return rc;
		}
	}
	return name_change(d, c, args, VMC_IPC_VM_START, VMC_MSG_GROUP_START, "start", err, errlen);
}

static int cmd_vm_stop(struct vmcd *d, qb_ipcs_connection_t *c, json_object *args,
		       json_object **result, char *err, size_t errlen)
{
	return name_change(d, c, args, VMC_IPC_VM_STOP, VMC_MSG_GROUP_STOP, "stop", err, errlen);
}

static int cmd_vm_set(struct vmcd *d, qb_ipcs_connection_t *c, json_object *args,
		      json_object **result, char *err, size_t errlen)
{
	const char *name = arg_string(args, "name");
	const char *assignments[64];
	struct vmc_group_def *def = NULL;
	const struct vmc_group *g;
	json_object *set, *body;
	size_t n;
	int rc;

	if (name == NULL || !json_object_object_get_ex(args, "set", &set) ||
	    !json_object_is_type(set, json_type_array)) {
		snprintf(err, errlen, "vm set needs a VM name and KEY=VALUE assignments");
		return -VMC_E_INVALID;
	}
	g = vmc_state_group_find(d->replica.state, name);
	if (g == NULL) {
		snprintf(err, errlen, "no vm named '%s' (see 'clusterctl vm list')", name);
		return -VMC_E_NOT_FOUND;
	}
	rc = vmc_set_assignments(set, assignments, sizeof(assignments) / sizeof(assignments[0]), &n,
				 err, errlen);
	if (rc != 0) {
		return rc;
	}
	/* Validate here for a quick answer; every replica validates again when applying. */
	rc = vmc_group_def_set(g->def, assignments, n, &def, err, errlen);
	if (rc != 0) {
		return -VMC_E_INVALID;
	}
	rc = check_definition(d, def, err, errlen);
	vmc_group_def_free(def);
	if (rc == 0) {
		rc = change_gate(d, err, errlen);
	}
	if (rc != 0) {
		return rc;
	}
	body = json_object_new_object();
	json_object_object_add(body, "name", json_object_new_string(name));
	json_object_object_add(body, "set", json_object_get(set));
	rc = pending_add(d, c, args, VMC_IPC_VM_SET, VMC_MSG_GROUP_SET, body, err, errlen);
	json_object_put(body);
	return rc;
}

static int cmd_cluster_set(struct vmcd *d, qb_ipcs_connection_t *c, json_object *args,
			   json_object **result, char *err, size_t errlen)
{
	const char *assignments[16];
	struct vmc_settings next;
	json_object *set, *body;
	size_t n;
	int rc;

	if (args == NULL || !json_object_object_get_ex(args, "set", &set) ||
	    !json_object_is_type(set, json_type_array)) {
		snprintf(err, errlen, "cluster set needs KEY=VALUE assignments");
		return -VMC_E_INVALID;
	}
	rc = vmc_set_assignments(set, assignments, sizeof(assignments) / sizeof(assignments[0]), &n,
				 err, errlen);
	if (rc != 0) {
		return rc;
	}
	if (vmc_settings_set(&d->replica.state->settings, assignments, n, &next, err, errlen) != 0) {
		return -VMC_E_INVALID;
	}
	if (next.fence_agent[0] != '\0' && access(next.fence_agent, X_OK) != 0) {
		snprintf(err, errlen, "setting 'fence_agent': %s is not an executable on %s: %s",
			 next.fence_agent, vmcd_node_name(d, d->my_id), strerror(errno));
		return -VMC_E_INVALID;
	}
	rc = change_gate(d, err, errlen);
	if (rc != 0) {
		return rc;
	}
	body = json_object_new_object();
	json_object_object_add(body, "set", json_object_get(set));
	rc = pending_add(d, c, args, VMC_IPC_CLUSTER_SET, VMC_MSG_SETTINGS_SET, body, err, errlen);
	json_object_put(body);
	return rc;
}

static const struct ipc_command ipc_commands[] = {
	{ VMC_IPC_STATUS, "status", cmd_status },
	{ VMC_IPC_NODE_LIST, "node list", cmd_node_list },
	{ VMC_IPC_VM_ADD, "vm add", cmd_vm_add },
	{ VMC_IPC_VM_LIST, "vm list", cmd_vm_list },
	{ VMC_IPC_VM_SHOW, "vm show", cmd_vm_show },
	{ VMC_IPC_VM_REMOVE, "vm remove", cmd_vm_remove },
	{ VMC_IPC_VM_SET, "vm set", cmd_vm_set },
	{ VMC_IPC_CLUSTER_SHOW, "cluster show", cmd_cluster_show },
	{ VMC_IPC_CLUSTER_SET, "cluster set", cmd_cluster_set },
	{ VMC_IPC_VM_START, "vm start", cmd_vm_start },
	{ VMC_IPC_VM_STOP, "vm stop", cmd_vm_stop },
};

void vmcd_ipc_request_done(struct vmcd *d, uint64_t request_id, int rc, const char *detail)
{
	for (struct pending *p = pending_head; p != NULL; p = p->next) {
		if (p->request_id == request_id && !p->done) {
			p->done = true;
			p->rc = rc;
			p->config_version = d->replica.state->config_version;
			p->detail = strdup(detail ? detail : "");
			return;
		}
	}
}

static void pending_answer(struct pending *p)
{
	json_object *body = p->rc == 0 ? json_object_new_object() : error_body(p->detail);

	if (p->has_tag) {
		json_object_object_add(body, "tag", json_object_new_int64(p->tag));
	}
	if (p->rc == 0) {
		json_object_object_add(body, "config_version", json_object_new_uint64(p->config_version));
	}
	reply_send(p->conn, p->cmd, p->rc, body);
	json_object_put(body);
}

void vmcd_ipc_flush(struct vmcd *d)
{
	struct pending **pp = &pending_head;

	while (*pp != NULL) {
		struct pending *p = *pp;
		if (!p->done) {
			pp = &p->next;
			continue;
		}
		/* Unlinked before the unref: the last unref runs connection_destroyed. */
		*pp = p->next;
		if (p->conn != NULL) {
			qb_ipcs_connection_t *c = p->conn;
			pending_answer(p);
			p->conn = NULL;
			qb_ipcs_connection_unref(c);
		}
		free(p->detail);
		free(p);
	}
}

static int32_t ipc_msg_process(qb_ipcs_connection_t *c, void *data, size_t size)
{
	struct qb_ipc_request_header *hdr = data;
	const char *payload = (const char *)data + sizeof(*hdr);
	size_t payload_len = size - sizeof(*hdr);
	json_object *args = NULL, *result = NULL;
	const struct ipc_command *cmd = NULL;
	char err[1024] = "";
	int rc;

	if (size <= sizeof(*hdr) || payload[payload_len - 1] != '\0' ||
	    strlen(payload) != payload_len - 1 ||
	    (args = vmc_json_parse(payload, err, sizeof(err))) == NULL ||
	    !json_object_is_type(args, json_type_object)) {
		log_warn("dropped a malformed IPC request (%zu bytes)", size);
		json_object_put(args);
		result = error_body("malformed request: expected a header and a JSON object");
		reply_send(c, size >= sizeof(*hdr) ? hdr->id : 0, -VMC_E_PROTOCOL, result);
		json_object_put(result);
		return 0;
	}
	for (size_t i = 0; i < sizeof(ipc_commands) / sizeof(ipc_commands[0]); i++) {
		if ((int32_t)ipc_commands[i].cmd == hdr->id) {
			cmd = &ipc_commands[i];
		}
	}
	if (cmd == NULL) {
		snprintf(err, sizeof(err), "unknown command %d: is clusterctl newer than vmclusterd?", hdr->id);
		rc = -VMC_E_PROTOCOL;
	} else {
		rc = cmd->fn(ipc_ctx, c, args, &result, err, sizeof(err));
	}
	if (rc == 1) {
		json_object_put(args);
		return 0;
	}
	if (rc != 0) {
		if (err[0] == '\0') {
			snprintf(err, sizeof(err), "%s", vmc_strerror(rc));
		}
		json_object_put(result);
		result = error_body(err);
		log_info("refused %s: %s", cmd ? cmd->name : "request", err);
	}
	tag_copy(args, result);
	reply_send(c, hdr->id, rc, result);
	json_object_put(result);
	json_object_put(args);
	return 0;
}

/* Root, or a process whose primary or supplementary groups include haclient. */
static bool client_in_haclient(pid_t pid, gid_t gid)
{
	char path[64], line[4096];
	bool found = false;
	FILE *f;

	if (!have_haclient) {
		return false;
	}
	if (gid == haclient_gid) {
		return true;
	}
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (f == NULL) {
		return false;
	}
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		char *save = NULL;
		if (strncmp(line, "Groups:", 7) != 0) {
			continue;
		}
		for (char *t = strtok_r(line + 7, " \t\n", &save); t; t = strtok_r(NULL, " \t\n", &save)) {
			if ((gid_t)strtoul(t, NULL, 10) == haclient_gid) {
				found = true;
			}
		}
	}
	fclose(f);
	return found;
}

static int32_t ipc_connection_accept(qb_ipcs_connection_t *c, uid_t uid, gid_t gid)
{
	struct qb_ipcs_connection_stats st = { 0 };

	qb_ipcs_connection_stats_get(c, &st, 0);
	if (uid == 0 || client_in_haclient(st.client_pid, gid)) {
		if (have_haclient) {
			qb_ipcs_connection_auth_set(c, -1, haclient_gid, 0660);
		}
		return 0;
	}
	log_warn("refused IPC connection from uid %u (pid %d): not root and not in group %s",
		 (unsigned int)uid, st.client_pid, VMC_IPC_GROUP);
	return -EACCES;
}

/* Pendings hold a reference, so none can point here any more; be safe anyway. */
static void ipc_connection_destroyed(qb_ipcs_connection_t *c)
{
	for (struct pending *p = pending_head; p != NULL; p = p->next) {
		if (p->conn == c) {
			p->conn = NULL;
		}
	}
}

static int32_t loop_job_add(enum qb_loop_priority p, void *data, qb_loop_job_dispatch_fn fn)
{
	return qb_loop_job_add(ipc_ctx->loop, p, data, fn);
}

static int32_t loop_dispatch_add(enum qb_loop_priority p, int32_t fd, int32_t evts, void *data,
				 qb_ipcs_dispatch_fn_t fn)
{
	return qb_loop_poll_add(ipc_ctx->loop, p, fd, evts, data, fn);
}

static int32_t loop_dispatch_mod(enum qb_loop_priority p, int32_t fd, int32_t evts, void *data,
				 qb_ipcs_dispatch_fn_t fn)
{
	return qb_loop_poll_mod(ipc_ctx->loop, p, fd, evts, data, fn);
}

static int32_t loop_dispatch_del(int32_t fd)
{
	return qb_loop_poll_del(ipc_ctx->loop, fd);
}

int vmcd_ipc_init(struct vmcd *d)
{
	static struct qb_ipcs_service_handlers handlers = {
		.connection_accept = ipc_connection_accept,
		.msg_process = ipc_msg_process,
		.connection_destroyed = ipc_connection_destroyed,
	};
	static struct qb_ipcs_poll_handlers poll_handlers = {
		.job_add = loop_job_add,
		.dispatch_add = loop_dispatch_add,
		.dispatch_mod = loop_dispatch_mod,
		.dispatch_del = loop_dispatch_del,
	};
	struct group *gr = getgrnam(VMC_IPC_GROUP);
	int rc;

	ipc_ctx = d;
	if (gr != NULL) {
		haclient_gid = gr->gr_gid;
		have_haclient = true;
	} else {
		log_warn("group %s does not exist: only root can use clusterctl", VMC_IPC_GROUP);
	}
	ipc_service = qb_ipcs_create(VMC_IPC_NAME, 0, QB_IPC_SHM, &handlers);
	if (ipc_service == NULL) {
		log_err("cannot create IPC service '%s'", VMC_IPC_NAME);
		return -EIO;
	}
	qb_ipcs_poll_handlers_set(ipc_service, &poll_handlers);
	rc = qb_ipcs_run(ipc_service);
	if (rc != 0) {
		log_err("cannot start IPC service '%s': %s (is another vmclusterd running?)",
			VMC_IPC_NAME, strerror(-rc));
		qb_ipcs_destroy(ipc_service);
		ipc_service = NULL;
		return rc;
	}
	return 0;
}

void vmcd_ipc_fini(struct vmcd *d)
{
	while (pending_head != NULL) {
		struct pending *p = pending_head;
		pending_head = p->next;
		if (p->conn != NULL) {
			qb_ipcs_connection_unref(p->conn);
		}
		free(p->detail);
		free(p);
	}
	if (ipc_service != NULL) {
		qb_ipcs_destroy(ipc_service);
		ipc_service = NULL;
	}
}
