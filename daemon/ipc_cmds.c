/*
 * IPC commands (ipc_cmds.h). A read is answered at once from this node's
 * copy through the views. A change is checked here (syntax, node names,
 * quorum, privilege) and multicast; its answer comes once this node has
 * applied and persisted it (ipc.c). Checks that touch a VM's files run in
 * a child (fs_check.h), never in the loop.
 *
 * Privilege: root and haclient may manage VMs; only root may change the
 * fence settings (they choose a program root runs) or confirm a node
 * fenced by hand (it lets VMs restart without proof).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "cpg.h"
#include "fence.h"
#include "fence_policy.h"
#include "fs_check.h"
#include "failback.h"
#include "ipc_change.h"
#include "ipc_cmds.h"
#include "ipc_nodes.h"
#include "leases.h"
#include "ipc_proto.h"
#include "json_util.h"
#include "lifecycle.h"
#include "local_vms.h"
#include "migrate_proto.h"
#include "migration.h"
#include "migrations.h"
#include "log.h"
#include "logring.h"
#include "nodes.h"
#include "privilege.h"
#include "views.h"
#include "vmc_errors.h"

#define WAITS_MAX (3 * VMC_NODES_MAX + 256)

/* ---- the views' input ---- */

struct view_ctx {
	struct vmc_view_input in;
	struct vmc_view_node nodes[VMC_NODES_MAX];
	struct vmc_wait waits[WAITS_MAX];
};

static size_t sync_waits(const struct vmcd *d, struct vmc_wait *w, size_t max)
{
	const struct vmc_replica *r = &d->replica;
	int64_t since = vmcd_cpg_sync_started_ms(d);
	size_t n = 0;

	if (r->phase != VMC_SYNC_DONE && n < max) {
		memset(&w[n], 0, sizeof(w[n]));
		snprintf(w[n].kind, sizeof(w[n].kind), "sync");
		w[n].age_ms = since ? vmc_now_ms() - since : -1;
		w[n].left_ms = -1;
		snprintf(w[n].detail, sizeof(w[n].detail), "%s phase, %zu of %zu hellos in%s",
			 vmc_sync_phase_to_str(r->phase), r->n_hellos, r->n_active,
			 r->excluded_self ? "; this node was excluded and asked for the sync again" : "");
		n++;
	}
	for (size_t i = 0; i < r->n_excluded && n < max; i++) {
		memset(&w[n], 0, sizeof(w[n]));
		snprintf(w[n].kind, sizeof(w[n].kind), "excluded");
		w[n].node = r->excluded[i];
		w[n].age_ms = w[n].left_ms = -1;
		snprintf(w[n].detail, sizeof(w[n].detail),
			 "its daemon did not answer the last sync within the hello deadline");
		n++;
	}
	return n;
}

/* A lost node's groups wait for its fencing: which ones. */
static size_t recovery_waits(const struct vmcd *d, struct vmc_wait *w, size_t max)
{
	const struct vmc_state *s = d->replica.state;
	size_t n = 0;

	for (size_t i = 0; i < s->n_groups; i++) {
		const struct vmc_group *g = &s->groups[i];
		size_t k;
		if (g->owner == 0 || g->state == VMC_GROUP_OFFLINE || g->state == VMC_GROUP_FAILED ||
		    vmc_replica_is_active(&d->replica, g->owner)) {
			continue;
		}
		for (k = 0; k < n && w[k].node != g->owner; k++) {
		}
		if (k == n && n < max) {
			memset(&w[n], 0, sizeof(w[n]));
			snprintf(w[n].kind, sizeof(w[n].kind), "recovery");
			w[n].node = g->owner;
			w[n].age_ms = w[n].left_ms = -1;
			n++;
		}
		if (k < n) {
			size_t used = strlen(w[k].detail);
			snprintf(w[k].detail + used, sizeof(w[k].detail) - used, "%s%s", used ? ", " : "", g->def->name);
		}
	}
	return n;
}

static void view_fill(struct vmcd *d, struct view_ctx *v)
{
	size_t n = 0;

	for (size_t i = 0; i < d->n_nodes; i++) {
		v->nodes[i] = (struct vmc_view_node){ d->nodes[i].id, d->nodes[i].name, d->nodes[i].addr,
						      d->nodes[i].votes };
	}
	n += sync_waits(d, v->waits + n, WAITS_MAX - n);
	n += vmcd_fence_waits(d, v->waits + n, WAITS_MAX - n);
	n += recovery_waits(d, v->waits + n, WAITS_MAX - n);
	n += vmcd_local_waits(d, v->waits + n, WAITS_MAX - n);
	v->in = (struct vmc_view_input){
		.state = d->replica.state,
		.my_id = d->my_id,
		.cluster_name = d->cluster_name,
		.nodes = v->nodes,
		.n_nodes = d->n_nodes,
		.view = d->replica.members,
		.n_view = d->replica.n_members,
		.active = d->replica.active,
		.n_active = d->replica.n_active,
		.corosync = d->cs_members,
		.n_corosync = d->n_cs_members,
		.quorate = d->quorate,
		.accepting_changes = d->quorate && vmc_replica_accepts_changes(&d->replica),
		.sync_phase = vmc_sync_phase_to_str(d->replica.phase),
		.protocol = d->replica.proto,
		.expected_votes = d->vq_expected_votes,
		.total_votes = d->vq_total_votes,
		.digest = vmc_replica_digest(&d->replica),
		.warning = vmc_fence_warning(d->replica.state),
		.waits = v->waits,
		.n_waits = n,
		.now_s = (uint64_t)time(NULL),
		.stale_since_s = d->stale_since_s,
	};
	v->in.minute_of_day = vmc_zone_minute_of_day(d->replica.state->settings.timezone, v->in.now_s);
}

/* Views are large (every wait): one at a time, kept off the stack. */
static struct view_ctx *view_get(struct vmcd *d)
{
	static struct view_ctx v;

	view_fill(d, &v);
	return &v;
}

/* ---- reads ---- */

static int cmd_status(struct vmcd *d, const struct vmcd_ipc_req *req, json_object **result, char *err,
		      size_t errlen)
{
	*result = vmc_view_status(&view_get(d)->in);
	return 0;
}

static int cmd_node_list(struct vmcd *d, const struct vmcd_ipc_req *req, json_object **result, char *err,
			 size_t errlen)
{
	*result = vmc_view_node_list(&view_get(d)->in);
	return 0;
}

static int cmd_vm_list(struct vmcd *d, const struct vmcd_ipc_req *req, json_object **result, char *err,
		       size_t errlen)
{
	*result = vmc_view_vm_list(&view_get(d)->in);
	return 0;
}

static const struct vmc_group *group_named(struct vmcd *d, const struct vmcd_ipc_req *req, const char *verb,
					   char *err, size_t errlen, int *rc)
{
	const char *name = vmc_json_str(req->args, "name");
	const struct vmc_group *g;

	if (name == NULL) {
		snprintf(err, errlen, "vm %s needs a VM name", verb);
		*rc = -VMC_E_INVALID;
		return NULL;
	}
	g = vmc_state_group_find(d->replica.state, name);
	if (g == NULL) {
		snprintf(err, errlen, "no vm named '%s' (see 'clusterctl vm list')", name);
		*rc = -VMC_E_NOT_FOUND;
	}
	return g;
}

static int cmd_vm_show(struct vmcd *d, const struct vmcd_ipc_req *req, json_object **result, char *err,
		       size_t errlen)
{
	int rc = 0;
	const struct vmc_group *g = group_named(d, req, "show", err, errlen, &rc);

	if (g == NULL) {
		return rc;
	}
	*result = vmc_view_vm_show(&view_get(d)->in, g);
	return 0;
}

static int cmd_cluster_show(struct vmcd *d, const struct vmcd_ipc_req *req, json_object **result, char *err,
			    size_t errlen)
{
	*result = vmc_settings_to_json(&d->replica.state->settings);
	return 0;
}

static int cmd_dump(struct vmcd *d, const struct vmcd_ipc_req *req, json_object **result, char *err,
		    size_t errlen)
{
	uint32_t last = VMCD_LOGRING_LINES;

	if (json_object_object_get_ex(req->args, "last", NULL) && !vmc_json_u32(req->args, "last", &last)) {
		snprintf(err, errlen, "dump: 'last' must be a count of events");
		return -VMC_E_INVALID;
	}
	*result = vmcd_logring_to_json(last);
	return 0;
}

/* ---- changes ---- */

static int check_owner_names(struct vmcd *d, const struct vmc_strlist *l, const char *field, char *err,
			     size_t errlen)
{
	for (size_t i = 0; i < l->n; i++) {
		if (vmcd_node_by_name(d, l->v[i]) == NULL) {
			char known[512] = "";
			for (size_t j = 0; j < d->n_nodes; j++) {
				strncat(known, j ? ", " : "", sizeof(known) - strlen(known) - 1);
				strncat(known, d->nodes[j].name, sizeof(known) - strlen(known) - 1);
			}
			snprintf(err, errlen, "field '%s': '%s' is not a cluster node (nodes: %s)", field, l->v[i],
				 known);
			return -VMC_E_INVALID;
		}
	}
	return 0;
}

static int check_definition(struct vmcd *d, const struct vmc_group_def *def, char *err, size_t errlen)
{
	int rc = check_owner_names(d, &def->preferred_owners, "preferred_owners", err, errlen);

	return rc == 0 ? check_owner_names(d, &def->possible_owners, "possible_owners", err, errlen) : rc;
}

static int cmd_vm_add(struct vmcd *d, const struct vmcd_ipc_req *req, json_object **result, char *err,
		      size_t errlen)
{
	struct vmc_group_def *def = NULL;
	json_object *j, *body;
	int rc;

	if (req->args == NULL || !json_object_object_get_ex(req->args, "definition", &j)) {
		snprintf(err, errlen, "vm add needs a definition");
		return -VMC_E_INVALID;
	}
	if (vmc_group_def_from_json(j, &def, err, errlen) != 0) {
		return -VMC_E_INVALID;
	}
	rc = check_definition(d, def, err, errlen);
	if (rc == 0) {
		rc = vmcd_change_gate(d, err, errlen);
	}
	if (rc == 0) {
		body = json_object_new_object();
		json_object_object_add(body, "definition", vmc_group_def_to_json(def));
		rc = vmcd_change_send(d, req, VMC_MSG_GROUP_ADD, body, err, errlen);
		json_object_put(body);
	}
	vmc_group_def_free(def);
	return rc;
}

static uint32_t node_named(const struct vmcd *d, const char *name)
{
	const struct vmc_state *s = d->replica.state;

	for (size_t i = 0; i < s->n_nodes; i++) {
		if (strcmp(s->nodes[i].name, name) == 0) {
			return s->nodes[i].id;
		}
	}
	return 0;
}

/*
 * The node a start or stop is limited to ("node" in its args, what
 * pacemaker's agent sends): *id 0 when none. A negative VMC_E_* on a
 * name no node has.
 */
static int args_node(const struct vmcd *d, const struct vmcd_ipc_req *req, uint32_t *id, char *err, size_t errlen)
{
	const char *name = vmc_json_str(req->args, "node");

	*id = 0;
	if (name == NULL) {
		return 0;
	}
	*id = node_named(d, name);
	if (*id == 0) {
		snprintf(err, errlen, "no node named '%s' (see 'clusterctl node list')", name);
		return -VMC_E_NOT_FOUND;
	}
	if (!VMC_PROTO_HAS_PACEMAKER(d->replica.proto)) {
		snprintf(err, errlen, "a node of this cluster speaks protocol %u: a start or stop on one node needs 7 "
			 "(upgrade it)", d->replica.proto);
		return -VMC_E_VERSION;
	}
	return 0;
}

/* A change that names one VM and nothing else: remove, start, stop. */
static int name_change(struct vmcd *d, const struct vmcd_ipc_req *req, uint16_t type, const char *verb,
		       char *err, size_t errlen)
{
	int rc = 0;
	const struct vmc_group *g = group_named(d, req, verb, err, errlen, &rc);
	json_object *body;
	uint32_t node = 0;

	if (g == NULL) {
		return rc;
	}
	if (type == VMC_MSG_GROUP_STOP) {
		rc = args_node(d, req, &node, err, errlen);
	}
	if (rc == 0) {
		rc = vmcd_change_gate(d, err, errlen);
	}
	if (rc != 0) {
		return rc;
	}
	body = json_object_new_object();
	json_object_object_add(body, "name", json_object_new_string(g->def->name));
	if (node != 0) {
		json_object_object_add(body, "node", json_object_new_int64(node));
	}
	rc = vmcd_change_send(d, req, type, body, err, errlen);
	json_object_put(body);
	return rc;
}

static int cmd_vm_remove(struct vmcd *d, const struct vmcd_ipc_req *req, json_object **result, char *err,
			 size_t errlen)
{
	return name_change(d, req, VMC_MSG_GROUP_REMOVE, "remove", err, errlen);
}

static int cmd_vm_stop(struct vmcd *d, const struct vmcd_ipc_req *req, json_object **result, char *err,
		       size_t errlen)
{
	return name_change(d, req, VMC_MSG_GROUP_STOP, "stop", err, errlen);
}

/* The VM's files checked in a child; then the start goes to the cluster. */
struct start_check {
	struct vmcd_ipc_call *call;
	char name[VMC_NAME_MAX + 1];
	uint32_t node; /* start there only; 0: where placement says */
};

static void start_checked(struct vmcd *d, void *ctx, int rc, const char *why)
{
	struct start_check *sc = ctx;
	json_object *body;
	char err[512];

	if (rc != 0) {
		log_info("refused vm start: %s", why);
		vmcd_ipc_call_fail(sc->call, rc == -ETIMEDOUT ? -ETIMEDOUT : -VMC_E_INVALID, why);
	} else if (vmc_state_group_find(d->replica.state, sc->name) == NULL) {
		snprintf(err, sizeof(err), "no vm named '%s' (removed meanwhile)", sc->name);
		vmcd_ipc_call_fail(sc->call, -VMC_E_NOT_FOUND, err);
	} else if ((rc = vmcd_change_gate(d, err, sizeof(err))) != 0) {
		vmcd_ipc_call_fail(sc->call, rc, err);
	} else {
		body = json_object_new_object();
		json_object_object_add(body, "name", json_object_new_string(sc->name));
		if (sc->node != 0) {
			json_object_object_add(body, "node", json_object_new_int64(sc->node));
		}
		if (vmcd_ipc_call_send(d, sc->call, VMC_MSG_GROUP_START, body, err, sizeof(err)) < 0) {
			vmcd_ipc_call_fail(sc->call, -EIO, err);
		}
		json_object_put(body);
	}
	free(sc);
}

static int cmd_vm_start(struct vmcd *d, const struct vmcd_ipc_req *req, json_object **result, char *err,
			size_t errlen)
{
	int rc = 0;
	const struct vmc_group *g = group_named(d, req, "start", err, errlen, &rc);
	struct start_check *sc;
	uint32_t node = 0;

	if (g == NULL || (rc = args_node(d, req, &node, err, errlen)) != 0 ||
	    (rc = vmcd_change_gate(d, err, errlen)) != 0) {
		return rc;
	}
	sc = calloc(1, sizeof(*sc));
	if (sc == NULL || (sc->call = vmcd_ipc_defer(req)) == NULL) {
		free(sc);
		return -ENOMEM;
	}
	snprintf(sc->name, sizeof(sc->name), "%s", g->def->name);
	sc->node = node;
	/* Its files must be there before the cluster is asked (shared storage: what this node sees, its owner sees). */
	rc = vmcd_fs_check_vm_files(d, g->def, start_checked, sc);
	if (rc != 0) {
		snprintf(err, errlen, "cannot check vm %s's files: %s", g->def->name, strerror(-rc));
		vmcd_ipc_call_cancel(sc->call);
		free(sc);
		return rc;
	}
	return 1;
}

static int cmd_vm_set(struct vmcd *d, const struct vmcd_ipc_req *req, json_object **result, char *err,
		      size_t errlen)
{
	int rc = 0;
	const struct vmc_group *g;
	const char *assignments[VMC_SET_MAX];
	struct vmc_group_def *def = NULL;
	json_object *set = vmc_json_array(req->args, "set"), *body;
	size_t n;

	if (vmc_json_str(req->args, "name") == NULL || set == NULL) {
		snprintf(err, errlen, "vm set needs a VM name and KEY=VALUE assignments");
		return -VMC_E_INVALID;
	}
	g = group_named(d, req, "set", err, errlen, &rc);
	if (g == NULL) {
		return rc;
	}
	rc = vmc_set_assignments(set, assignments, VMC_SET_MAX, &n, err, errlen);
	if (rc != 0) {
		return rc;
	}
	/* Validate here for a quick answer; every replica validates again when applying. */
	if (vmc_group_def_set(g->def, assignments, n, &def, err, errlen) != 0) {
		return -VMC_E_INVALID;
	}
	rc = check_definition(d, def, err, errlen);
	vmc_group_def_free(def);
	if (rc == 0) {
		rc = vmcd_change_gate(d, err, errlen);
	}
	if (rc != 0) {
		return rc;
	}
	body = json_object_new_object();
	json_object_object_add(body, "name", json_object_new_string(g->def->name));
	json_object_object_add(body, "set", json_object_get(set));
	rc = vmcd_change_send(d, req, VMC_MSG_GROUP_SET, body, err, errlen);
	json_object_put(body);
	return rc;
}

/* Does any assignment change a fence setting (they choose what runs as root)? */
/* A setting only root may change: the fence settings, and turning migration encryption off. */
static const char *fence_key(const char *const *assignments, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (strncmp(assignments[i], "fence_", 6) == 0 || strncmp(assignments[i], "migration_encrypt=", 18) == 0) {
			return assignments[i];
		}
	}
	return NULL;
}

static int cmd_cluster_set(struct vmcd *d, const struct vmcd_ipc_req *req, json_object **result, char *err,
			   size_t errlen)
{
	const char *assignments[VMC_SET_MAX], *key;
	struct vmc_settings next;
	json_object *set = vmc_json_array(req->args, "set"), *body;
	char why[384];
	size_t n;
	int rc;

	if (set == NULL) {
		snprintf(err, errlen, "cluster set needs KEY=VALUE assignments");
		return -VMC_E_INVALID;
	}
	rc = vmc_set_assignments(set, assignments, VMC_SET_MAX, &n, err, errlen);
	if (rc != 0) {
		return rc;
	}
	key = fence_key(assignments, n);
	if (key != NULL && req->uid != 0) {
		snprintf(err, errlen, "permission denied: '%.*s' needs root (fence settings choose what runs as "
			 "root; migration_encrypt guards the VMs' memory on the wire); members of haclient may manage VMs",
			 (int)strcspn(key, "="), key);
		log_warn("refused cluster set %s from uid %u (pid %d): fence settings need root", key,
			 (unsigned int)req->uid, (int)req->pid);
		return -VMC_E_DENIED;
	}
	if (vmc_settings_set(&d->replica.state->settings, assignments, n, &next, err, errlen) != 0) {
		return -VMC_E_INVALID;
	}
	if (next.fence_agent[0] != '\0' && access(next.fence_agent, X_OK) != 0) {
		snprintf(err, errlen, "setting 'fence_agent': %s is not an executable on %s: %s", next.fence_agent,
			 vmcd_node_name(d, d->my_id), strerror(errno));
		return -VMC_E_INVALID;
	}
	if (next.fence_agent[0] != '\0' &&
	    vmcd_path_root_safe("setting 'fence_agent':", next.fence_agent, false, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "%s: root runs it, so it must be root's alone", why);
		return -VMC_E_INVALID;
	}
	if (strcmp(next.timezone, d->replica.state->settings.timezone) != 0 &&
	    vmc_zone_minute_of_day(next.timezone, 0) < 0) {
		snprintf(err, errlen, "setting 'timezone': %s has no /usr/share/zoneinfo/%s (install tzdata on every node, "
			 "or pick another zone)", vmcd_node_name(d, d->my_id), next.timezone);
		return -VMC_E_INVALID;
	}
	rc = vmcd_change_gate(d, err, errlen);
	if (rc != 0) {
		return rc;
	}
	body = json_object_new_object();
	json_object_object_add(body, "set", json_object_get(set));
	rc = vmcd_change_send(d, req, VMC_MSG_SETTINGS_SET, body, err, errlen);
	json_object_put(body);
	return rc;
}

static int cmd_node_confirm_fenced(struct vmcd *d, const struct vmcd_ipc_req *req, json_object **result,
				   char *err, size_t errlen)
{
	const char *name = vmc_json_str(req->args, "node");
	const struct vmcd_node *n = name ? vmcd_node_by_name(d, name) : NULL;
	struct vmcd_ipc_call *call;
	char by[96];
	int64_t id;
	int rc;

	if (req->uid != 0) {
		snprintf(err, errlen, "permission denied: confirming a node fenced needs root (its VMs restart "
			 "without proof)");
		return -VMC_E_DENIED;
	}
	if (name == NULL) {
		snprintf(err, errlen, "node confirm-fenced needs a node name");
		return -VMC_E_INVALID;
	}
	if (n == NULL) {
		snprintf(err, errlen, "no node named '%s' in corosync's nodelist (see 'clusterctl node list')", name);
		return -VMC_E_NOT_FOUND;
	}
	rc = vmcd_change_gate(d, err, errlen);
	if (rc == 0) {
		rc = vmcd_fence_confirm_check(d, n->id, err, errlen);
	}
	if (rc != 0) {
		return rc;
	}
	call = vmcd_ipc_defer(req);
	if (call == NULL) {
		return -ENOMEM;
	}
	snprintf(by, sizeof(by), "clusterctl on %s, pid %d", vmcd_node_name(d, d->my_id), (int)req->pid);
	id = vmcd_fence_confirm(d, n->id, by, vmcd_ipc_call_take_id(d, call), err, errlen);
	if (id < 0) {
		vmcd_ipc_call_cancel(call);
		return (int)id;
	}
	return 1;
}

/* ---- volumes ---- */

static const struct vmc_volume *volume_named(struct vmcd *d, const struct vmcd_ipc_req *req, const char *verb,
					     char *err, size_t errlen, int *rc)
{
	const char *name = vmc_json_str(req->args, "name");
	const struct vmc_volume *v;

	if (name == NULL) {
		snprintf(err, errlen, "volume %s needs a volume name", verb);
		*rc = -VMC_E_INVALID;
		return NULL;
	}
	v = vmc_state_volume_find(d->replica.state, name);
	if (v == NULL) {
		snprintf(err, errlen, "no volume named '%s' (see 'clusterctl volume list')", name);
		*rc = -VMC_E_NOT_FOUND;
	}
	return v;
}

static int cmd_volume_list(struct vmcd *d, const struct vmcd_ipc_req *req, json_object **result, char *err,
			   size_t errlen)
{
	*result = vmc_view_volume_list(&view_get(d)->in);
	return 0;
}

static int cmd_volume_show(struct vmcd *d, const struct vmcd_ipc_req *req, json_object **result, char *err,
			   size_t errlen)
{
	int rc = 0;
	const struct vmc_volume *v = volume_named(d, req, "show", err, errlen, &rc);

	if (v == NULL) {
		return rc;
	}
	*result = vmc_view_volume_show(&view_get(d)->in, v);
	/* What this node sees of the lease file: its own renewal, every node's slot. */
	json_object_object_add(*result, "from_here", vmcd_leases_volume_json(d, v->name));
	return 0;
}

/* The directory resolved in a child (it may be a hung mount); then the add goes to the cluster. */
struct volume_check {
	struct vmcd_ipc_call *call;
	char name[VMC_NAME_MAX + 1];
	char path[VMC_VOLUME_PATH_MAX];
};

static void volume_checked(struct vmcd *d, void *ctx, int rc, const char *why)
{
	struct volume_check *vc = ctx;
	json_object *body;
	char err[512];

	if (rc != 0) {
		snprintf(err, sizeof(err), "volume %s: %s", vc->name, why);
		log_info("refused volume add: %s", err);
		vmcd_ipc_call_fail(vc->call, rc == -ETIMEDOUT ? -ETIMEDOUT : -VMC_E_INVALID, err);
	} else if (!vmc_volume_path_valid(why, err, sizeof(err))) {
		vmcd_ipc_call_fail(vc->call, -VMC_E_INVALID, err);
	} else if ((rc = vmcd_change_gate(d, err, sizeof(err))) != 0) {
		vmcd_ipc_call_fail(vc->call, rc, err);
	} else {
		body = json_object_new_object();
		json_object_object_add(body, "name", json_object_new_string(vc->name));
		json_object_object_add(body, "path", json_object_new_string(why));
		if (vmcd_ipc_call_send(d, vc->call, VMC_MSG_VOLUME_ADD, body, err, sizeof(err)) < 0) {
			vmcd_ipc_call_fail(vc->call, -EIO, err);
		}
		json_object_put(body);
	}
	free(vc);
}

static int cmd_volume_add(struct vmcd *d, const struct vmcd_ipc_req *req, json_object **result, char *err,
			  size_t errlen)
{
	const char *name = vmc_json_str(req->args, "name"), *path = vmc_json_str(req->args, "path");
	struct volume_check *vc;
	int rc;

	if (name == NULL || path == NULL) {
		snprintf(err, errlen, "volume add needs a NAME and a PATH");
		return -VMC_E_INVALID;
	}
	if (!vmc_valid_name(name)) {
		snprintf(err, errlen, "'%s' is not a valid volume name (1-%d letters, digits, '-', '_', '.')", name,
			 VMC_NAME_MAX);
		return -VMC_E_INVALID;
	}
	if (path[0] != '/' || strlen(path) >= VMC_VOLUME_PATH_MAX) {
		snprintf(err, errlen, "volume %s: '%s' is not an absolute path shorter than %d", name, path,
			 VMC_VOLUME_PATH_MAX);
		return -VMC_E_INVALID;
	}
	if ((rc = vmcd_change_gate(d, err, errlen)) != 0) {
		return rc;
	}
	vc = calloc(1, sizeof(*vc));
	if (vc == NULL || (vc->call = vmcd_ipc_defer(req)) == NULL) {
		free(vc);
		return -ENOMEM;
	}
	snprintf(vc->name, sizeof(vc->name), "%s", name);
	snprintf(vc->path, sizeof(vc->path), "%s", path);
	rc = vmcd_fs_check_volume_dir(d, vc->path, volume_checked, vc);
	if (rc != 0) {
		snprintf(err, errlen, "cannot check volume %s's directory: %s", name, strerror(-rc));
		vmcd_ipc_call_cancel(vc->call);
		free(vc);
		return rc;
	}
	return 1;
}

static int volume_change(struct vmcd *d, const struct vmcd_ipc_req *req, uint16_t type, const char *verb,
			 char *err, size_t errlen)
{
	int rc = 0;
	const struct vmc_volume *v = volume_named(d, req, verb, err, errlen, &rc);
	const char *node = vmc_json_str(req->args, "node");
	json_object *body;

	if (v == NULL) {
		return rc;
	}
	if (type == VMC_MSG_VOLUME_MOVE && node == NULL) {
		snprintf(err, errlen, "volume move needs a NODE (see 'clusterctl node list')");
		return -VMC_E_INVALID;
	}
	rc = vmcd_change_gate(d, err, errlen);
	if (rc != 0) {
		return rc;
	}
	body = json_object_new_object();
	json_object_object_add(body, "name", json_object_new_string(v->name));
	if (type == VMC_MSG_VOLUME_MOVE) {
		json_object_object_add(body, "node", json_object_new_string(node));
	}
	rc = vmcd_change_send(d, req, type, body, err, errlen);
	json_object_put(body);
	return rc;
}

static int cmd_volume_remove(struct vmcd *d, const struct vmcd_ipc_req *req, json_object **result, char *err,
			     size_t errlen)
{
	return volume_change(d, req, VMC_MSG_VOLUME_REMOVE, "remove", err, errlen);
}

static int cmd_volume_move(struct vmcd *d, const struct vmcd_ipc_req *req, json_object **result, char *err,
			   size_t errlen)
{
	return volume_change(d, req, VMC_MSG_VOLUME_MOVE, "move", err, errlen);
}

/* ---- moves ---- */

static int cmd_vm_move(struct vmcd *d, const struct vmcd_ipc_req *req, json_object **result, char *err,
		       size_t errlen)
{
	int rc = 0;
	const struct vmc_group *g = group_named(d, req, "move", err, errlen, &rc);
	const char *node = vmc_json_str(req->args, "node"), *id = vmc_json_str(req->args, "id");
	const char *mode = vmc_json_str(req->args, "mode"), *cause = vmc_json_str(req->args, "cause");
	struct vmc_apply_ctx ctx = { .sender = d->my_id, .version = d->replica.proto, .members = d->replica.active,
				     .n_members = d->replica.n_active };
	enum vmc_mig_cause by = VMC_MIG_BY_OPERATOR;
	bool check = false;
	uint32_t target;
	char why[768];
	json_object *body;

	if (g == NULL) {
		return rc;
	}
	if (id == NULL || !vmc_migp_id_valid(id) || (mode != NULL && strcmp(mode, "live") != 0 && strcmp(mode, "quick") != 0)) {
		snprintf(err, errlen, "move-vm needs a migration id (32 hex digits) and mode live or quick");
		return -VMC_E_INVALID;
	}
	if (cause != NULL && strcmp(cause, "pacemaker") != 0) {
		snprintf(err, errlen, "move-vm's cause is pacemaker or none, not '%.64s'", cause);
		return -VMC_E_INVALID;
	}
	by = cause != NULL ? VMC_MIG_BY_PACEMAKER : VMC_MIG_BY_OPERATOR;
	if (mode != NULL && strcmp(mode, "quick") == 0 &&
	    vmc_migration_state_file(d->replica.state, g, id, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "vm %s cannot move quick: %.400s", g->def->name, why);
		return -VMC_E_BUSY;
	}
	if ((rc = vmcd_change_gate(d, err, errlen)) != 0) {
		return rc;
	}
	if (!VMC_PROTO_HAS_MIGRATION(d->replica.proto)) {
		snprintf(err, errlen, "a node of this cluster speaks protocol %u: migration needs 5 (upgrade it)",
			 d->replica.proto);
		return -VMC_E_VERSION;
	}
	if (node != NULL) {
		target = node_named(d, node);
		if (target == 0) {
			snprintf(err, errlen, "no node named '%s' (see 'clusterctl node list')", node);
			return -VMC_E_NOT_FOUND;
		}
		rc = vmc_migration_check(d->replica.state, &ctx, g, target, why, sizeof(why));
	} else {
		target = vmc_migration_pick_target(d->replica.state, &ctx, g, why, sizeof(why));
		rc = target == 0 ? -VMC_E_BUSY : 0;
	}
	if (rc == 0) {
		rc = vmc_migration_cause_allowed(d->replica.state, &ctx, g, by, target, why, sizeof(why));
	}
	if (rc != 0) {
		snprintf(err, errlen, "vm %s cannot move: %.400s", g->def->name, why);
		return rc;
	}
	if (json_object_object_get_ex(req->args, "check_only", NULL) && vmc_json_bool(req->args, "check_only", &check) &&
	    check) {
		/* clusterctl asks before it has pacemaker move the VM: a refusal then changes nothing. */
		*result = json_object_new_object();
		json_object_object_add(*result, "target", json_object_new_string(vmc_state_node(d->replica.state, target)->name));
		return 0;
	}
	body = json_object_new_object();
	json_object_object_add(body, "name", json_object_new_string(g->def->name));
	json_object_object_add(body, "id", json_object_new_string(id));
	json_object_object_add(body, "target", json_object_new_int64(target));
	json_object_object_add(body, "mode", json_object_new_string(mode != NULL ? mode : "live"));
	json_object_object_add(body, "at_s", json_object_new_int64((int64_t)time(NULL)));
	if (by == VMC_MIG_BY_PACEMAKER) {
		json_object_object_add(body, "cause", json_object_new_string("pacemaker"));
	}
	rc = vmcd_change_send(d, req, VMC_MSG_MIGRATE_REQUEST, body, err, errlen);
	json_object_put(body);
	return rc;
}

/* Every move in the state (queued ones too), with this node's agents' progress. */
static int cmd_migration_status(struct vmcd *d, const struct vmcd_ipc_req *req, json_object **result, char *err,
				size_t errlen)
{
	const struct vmc_state *s = d->replica.state;
	json_object *list = json_object_new_array(), *progress = vmcd_migrations_progress();
	char a[24], b[24];

	for (size_t i = 0; i < s->n_groups; i++) {
		const struct vmc_group *g = &s->groups[i];
		json_object *o;
		if (g->mig.phase == VMC_MIG_NONE) {
			continue;
		}
		o = json_object_new_object();
		json_object_object_add(o, "vm", json_object_new_string(g->def->name));
		json_object_object_add(o, "id", json_object_new_string(g->mig.id));
		json_object_object_add(o, "phase", json_object_new_string(vmc_mig_phase_to_str(g->mig.phase)));
		json_object_object_add(o, "mode", json_object_new_string(g->mig.quick ? "quick" : "live"));
		json_object_object_add(o, "source", json_object_new_string(vmc_state_node_label(s, g->owner, a, sizeof(a))));
		json_object_object_add(o, "target",
				       json_object_new_string(vmc_state_node_label(s, g->mig.target, b, sizeof(b))));
		json_object_object_add(o, "since_s", json_object_new_uint64(g->mig.since_s));
		for (size_t k = 0; k < json_object_array_length(progress); k++) {
			json_object *p = json_object_array_get_idx(progress, k);
			if (strcmp(vmc_json_str(p, "id") ?: "", g->mig.id) == 0 &&
			    strcmp(vmc_json_str(p, "role") ?: "", "source") == 0) {
				json_object_object_add(o, "progress", json_object_get(p));
			}
		}
		json_object_array_add(list, o);
	}
	json_object_put(progress);
	*result = json_object_new_object();
	json_object_object_add(*result, "migrations", list);
	json_object_object_add(*result, "max_parallel", json_object_new_int64(s->settings.migration_max_parallel));
	json_object_object_add(*result, "network", json_object_new_string(s->settings.migration_network));
	json_object_object_add(*result, "encrypt", json_object_new_boolean(s->settings.migration_encrypt));
	return 0;
}

static const struct vmcd_ipc_command commands[] = {
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
	{ VMC_IPC_NODE_CONFIRM_FENCED, "node confirm-fenced", cmd_node_confirm_fenced },
	{ VMC_IPC_DUMP, "dump", cmd_dump },
	{ VMC_IPC_VOLUME_ADD, "volume add", cmd_volume_add },
	{ VMC_IPC_VOLUME_LIST, "volume list", cmd_volume_list },
	{ VMC_IPC_VOLUME_SHOW, "volume show", cmd_volume_show },
	{ VMC_IPC_VOLUME_REMOVE, "volume remove", cmd_volume_remove },
	{ VMC_IPC_VOLUME_MOVE, "volume move", cmd_volume_move },
	{ VMC_IPC_VM_MOVE, "vm move", cmd_vm_move },
	{ VMC_IPC_MIGRATION_STATUS, "migration status", cmd_migration_status },
	{ VMC_IPC_NODE_DRAIN, "node drain", vmcd_cmd_node_drain },
	{ VMC_IPC_NODE_RESUME, "node resume", vmcd_cmd_node_resume },
	{ VMC_IPC_NODE_SHUTDOWN, "node shutdown", vmcd_cmd_node_shutdown },
};

const struct vmcd_ipc_command *vmcd_ipc_commands(size_t *n)
{
	*n = sizeof(commands) / sizeof(commands[0]);
	return commands;
}
