/*
 * Pacemaker's view and its location constraints, through libcib and
 * libpe_status (pacemaker.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <crm/crm.h>
#include <crm/cib.h>
#include <crm/common/xml.h>
#include <crm/pengine/complex.h>
#include <crm/pengine/status.h>

#include "pacemaker.h"

#define VMGROUP_PROVIDER "vmcluster"
#define VMGROUP_TYPE "VMGroup"
/* Ours, so that removing it never removes an operator's crm_resource --move (cli-prefer-*). */
#define PREFER_ID_PREFIX "vmcluster-move-"

/*
 * Pacemaker's XML keeps private data in every document, which its own
 * hooks into libxml2 allocate (its ACL checks abort without them): set
 * once, before any XML is made.
 */
static void xml_ready(void)
{
	static bool ready;

	if (!ready) {
		crm_xml_init();
		ready = true;
	}
}

/* A connection to the CIB of this node's pacemaker, or NULL with err set. */
static cib_t *cib_open(char *err, size_t errlen)
{
	cib_t *cib;
	int rc;

	xml_ready();
	cib = cib_new();

	if (cib == NULL) {
		snprintf(err, errlen, "cannot set up a connection to pacemaker's CIB (out of memory)");
		return NULL;
	}
	rc = cib->cmds->signon(cib, "clusterctl", cib_command);
	if (rc != pcmk_ok) {
		snprintf(err, errlen, "pacemaker does not answer on this node (its CIB: %s): is pacemaker running?",
			 pcmk_strerror(rc));
		cib_delete(cib);
		return NULL;
	}
	return cib;
}

static void cib_close(cib_t *cib)
{
	cib->cmds->signoff(cib);
	cib_delete(cib);
}

static void copy_name(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src != NULL ? src : "");
}

static bool is_vmgroup(const pe_resource_t *r)
{
	const char *provider = crm_element_value(r->xml, "provider");
	const char *type = crm_element_value(r->xml, "type");

	return r->children == NULL && provider != NULL && type != NULL && strcmp(provider, VMGROUP_PROVIDER) == 0 &&
	       strcmp(type, VMGROUP_TYPE) == 0;
}

static int rsc_add(struct pcmk_view *v, pe_resource_t *r, pe_working_set_t *ws)
{
	struct pcmk_rsc *grown = realloc(v->rscs, (v->n_rscs + 1) * sizeof(*grown)), *out;
	GHashTable *params = pe_rsc_params(r, NULL, ws);
	const char *role = r->meta != NULL ? g_hash_table_lookup(r->meta, "target-role") : NULL;

	if (grown == NULL) {
		return -ENOMEM;
	}
	v->rscs = grown;
	out = &v->rscs[v->n_rscs++];
	memset(out, 0, sizeof(*out));
	copy_name(out->id, sizeof(out->id), r->id);
	copy_name(out->group, sizeof(out->group), params != NULL ? g_hash_table_lookup(params, "group") : NULL);
	copy_name(out->target_role, sizeof(out->target_role), role != NULL ? role : "Started");
	for (GList *l = r->running_on; l != NULL && out->n_running < PCMK_VIEW_RUNNING_MAX; l = l->next) {
		const pe_node_t *n = l->data;
		copy_name(out->running_on[out->n_running++], PCMK_VIEW_NAME_MAX, n->details->uname);
	}
	out->failed = (r->flags & pe_rsc_failed) != 0;
	out->managed = (r->flags & pe_rsc_managed) != 0;
	return 0;
}

/* Every VMGroup primitive, inside groups and clones too. */
static int rscs_collect(struct pcmk_view *v, GList *list, pe_working_set_t *ws)
{
	for (GList *l = list; l != NULL; l = l->next) {
		pe_resource_t *r = l->data;
		int rc = is_vmgroup(r) ? rsc_add(v, r, ws) : rscs_collect(v, r->children, ws);
		if (rc != 0) {
			return rc;
		}
	}
	return 0;
}

static int nodes_collect(struct pcmk_view *v, GList *list)
{
	size_t n = g_list_length(list), i = 0;

	v->nodes = calloc(n ? n : 1, sizeof(*v->nodes));
	if (v->nodes == NULL) {
		return -ENOMEM;
	}
	for (GList *l = list; l != NULL; l = l->next, i++) {
		const pe_node_t *node = l->data;
		copy_name(v->nodes[i].name, sizeof(v->nodes[i].name), node->details->uname);
		v->nodes[i].online = node->details->online;
		v->nodes[i].standby = node->details->standby;
		v->nodes[i].unclean = node->details->unclean;
	}
	v->n_nodes = n;
	return 0;
}

int pcmk_view_from_cib(xmlNode *cib, struct pcmk_view *v, char *err, size_t errlen)
{
	pe_working_set_t *ws;
	int rc;

	xml_ready();
	ws = pe_new_working_set();
	memset(v, 0, sizeof(*v));
	if (ws == NULL) {
		free_xml(cib);
		snprintf(err, errlen, "out of memory reading pacemaker's CIB");
		return -ENOMEM;
	}
	ws->input = cib; /* the working set frees it */
	ws->flags |= pe_flag_no_counts | pe_flag_no_compat;
	cluster_status(ws);
	rc = nodes_collect(v, ws->nodes);
	if (rc == 0) {
		rc = rscs_collect(v, ws->resources, ws);
	}
	pe_free_working_set(ws);
	if (rc != 0) {
		snprintf(err, errlen, "out of memory reading pacemaker's CIB");
		pcmk_view_free(v);
	}
	return rc;
}

int pcmk_view_read(struct pcmk_view *v, char *err, size_t errlen)
{
	cib_t *cib = cib_open(err, errlen);
	xmlNode *xml = NULL;
	int rc;

	memset(v, 0, sizeof(*v));
	if (cib == NULL) {
		return -ENOTCONN;
	}
	rc = cib->cmds->query(cib, NULL, &xml, cib_scope_local | cib_sync_call);
	cib_close(cib);
	if (rc != pcmk_ok || xml == NULL) {
		snprintf(err, errlen, "cannot read pacemaker's CIB: %s", pcmk_strerror(rc));
		free_xml(xml);
		return -EIO;
	}
	return pcmk_view_from_cib(xml, v, err, errlen);
}

void pcmk_view_free(struct pcmk_view *v)
{
	free(v->rscs);
	free(v->nodes);
	memset(v, 0, sizeof(*v));
}

const struct pcmk_rsc *pcmk_view_group(const struct pcmk_view *v, const char *group)
{
	for (size_t i = 0; i < v->n_rscs; i++) {
		if (strcmp(v->rscs[i].group, group) == 0) {
			return &v->rscs[i];
		}
	}
	return NULL;
}

const struct pcmk_node *pcmk_view_node(const struct pcmk_view *v, const char *name)
{
	for (size_t i = 0; i < v->n_nodes; i++) {
		if (strcmp(v->nodes[i].name, name) == 0) {
			return &v->nodes[i];
		}
	}
	return NULL;
}

json_object *pcmk_rsc_to_json(const struct pcmk_rsc *r)
{
	json_object *o = json_object_new_object(), *on = json_object_new_array();

	for (size_t i = 0; i < r->n_running; i++) {
		json_object_array_add(on, json_object_new_string(r->running_on[i]));
	}
	json_object_object_add(o, "resource", json_object_new_string(r->id));
	json_object_object_add(o, "running_on", on);
	json_object_object_add(o, "target_role", json_object_new_string(r->target_role));
	json_object_object_add(o, "failed", json_object_new_boolean(r->failed));
	json_object_object_add(o, "managed", json_object_new_boolean(r->managed));
	return o;
}

static xmlNode *prefer_xml(const char *rsc, const char *node)
{
	xmlNode *c = create_xml_node(NULL, "rsc_location");
	char id[PCMK_VIEW_NAME_MAX + sizeof(PREFER_ID_PREFIX)];

	if (c == NULL) {
		return NULL;
	}
	snprintf(id, sizeof(id), PREFER_ID_PREFIX "%s", rsc);
	crm_xml_add(c, "id", id);
	if (node != NULL) {
		crm_xml_add(c, "rsc", rsc);
		crm_xml_add(c, "role", "Started");
		crm_xml_add(c, "node", node);
		crm_xml_add(c, "score", "INFINITY");
	}
	return c;
}

/* One change of the constraints section, written through the whole cluster before it returns. */
static int constraint_change(const char *rsc, const char *node, char *err, size_t errlen)
{
	cib_t *cib = cib_open(err, errlen);
	xmlNode *c;
	int rc;

	if (cib == NULL) {
		return -ENOTCONN;
	}
	c = prefer_xml(rsc, node);
	if (c == NULL) {
		cib_close(cib);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (node == NULL) {
		rc = cib->cmds->remove(cib, "constraints", c, cib_sync_call);
	} else {
		rc = cib->cmds->create(cib, "constraints", c, cib_sync_call);
		if (rc == -ENOTUNIQ || rc == -EEXIST) { /* an earlier clusterctl's, left by a crash: this one replaces it */
			rc = cib->cmds->modify(cib, "constraints", c, cib_sync_call);
		}
	}
	free_xml(c);
	cib_close(cib);
	if (rc == -ENXIO && node == NULL) {
		return 0; /* gone already */
	}
	if (rc != pcmk_ok) {
		snprintf(err, errlen, "pacemaker refused to %s the location constraint " PREFER_ID_PREFIX "%s: %s",
			 node != NULL ? "write" : "remove", rsc, pcmk_strerror(rc));
		return rc < 0 ? rc : -EIO;
	}
	return 0;
}

int pcmk_prefer_node(const char *rsc, const char *node, char *err, size_t errlen)
{
	return constraint_change(rsc, node, err, errlen);
}

int pcmk_prefer_clear(const char *rsc, char *err, size_t errlen)
{
	return constraint_change(rsc, NULL, err, errlen);
}

int pcmk_has_location(const char *rsc, char *err, size_t errlen)
{
	cib_t *cib = cib_open(err, errlen);
	xmlNode *xml = NULL;
	int rc, found = 0;

	if (cib == NULL) {
		return -ENOTCONN;
	}
	rc = cib->cmds->query(cib, "constraints", &xml, cib_scope_local | cib_sync_call);
	cib_close(cib);
	if (rc != pcmk_ok) {
		snprintf(err, errlen, "cannot read pacemaker's constraints: %s", pcmk_strerror(rc));
		free_xml(xml);
		return -EIO;
	}
	for (xmlNode *c = xml != NULL ? xml->children : NULL; c != NULL; c = c->next) {
		const char *on = c->type == XML_ELEMENT_NODE ? crm_element_value(c, "rsc") : NULL;
		found |= on != NULL && strcmp((const char *)c->name, "rsc_location") == 0 && strcmp(on, rsc) == 0;
	}
	free_xml(xml);
	return found;
}
