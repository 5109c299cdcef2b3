/*
 * Pacemaker's view of the cluster, for clusterctl: read from the CIB
 * (libcib) and worked out the way crm_mon and crm_resource do it
 * (libpe_status), so "where does pacemaker run web1" has pacemaker's own
 * answer. Only what clusterctl shows or needs: the ocf:vmcluster:VMGroup
 * resources with the group each runs, and the nodes with their standby.
 */
#ifndef VMC_CLI_PACEMAKER_H
#define VMC_CLI_PACEMAKER_H

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

#define PCMK_VIEW_NAME_MAX 128
#define PCMK_VIEW_RUNNING_MAX 4

struct pcmk_rsc {
	char id[PCMK_VIEW_NAME_MAX];
	char group[PCMK_VIEW_NAME_MAX]; /* its "group" parameter */
	char target_role[32];           /* meta target-role, "Started" when unset */
	char running_on[PCMK_VIEW_RUNNING_MAX][PCMK_VIEW_NAME_MAX];
	size_t n_running;
	bool failed;
	bool managed;
};

struct pcmk_node {
	char name[PCMK_VIEW_NAME_MAX];
	bool online;
	bool standby;
	bool unclean;
};

struct pcmk_view {
	struct pcmk_rsc *rscs;
	size_t n_rscs;
	struct pcmk_node *nodes;
	size_t n_nodes;
};

/*
 * Reads the CIB of the pacemaker on this node. 0, or a negative errno
 * with one line in err (-ENOTCONN: pacemaker does not run here).
 */
int pcmk_view_read(struct pcmk_view *v, char *err, size_t errlen);
/* The same from a CIB already read (cibadmin -Q's XML, in tests): cib is consumed. */
struct _xmlNode;
int pcmk_view_from_cib(struct _xmlNode *cib, struct pcmk_view *v, char *err, size_t errlen);
void pcmk_view_free(struct pcmk_view *v);
/* The VMGroup resource that runs group, or NULL. */
const struct pcmk_rsc *pcmk_view_group(const struct pcmk_view *v, const char *group);
const struct pcmk_node *pcmk_view_node(const struct pcmk_view *v, const char *name);
/* {"resource", "running_on": [...], "target_role", "failed"} */
json_object *pcmk_rsc_to_json(const struct pcmk_rsc *r);

/*
 * Puts (or removes) the location constraint that makes pacemaker run rsc
 * on node, as crm_resource --move does, under an id of vmcluster's own so
 * that only what clusterctl wrote is removed. 0, or a negative errno.
 */
int pcmk_prefer_node(const char *rsc, const char *node, char *err, size_t errlen);
int pcmk_prefer_clear(const char *rsc, char *err, size_t errlen);
/* Is there a location constraint on rsc (any, by anyone)? 1 yes, 0 no, or a negative errno. */
int pcmk_has_location(const char *rsc, char *err, size_t errlen);

#endif
