/*
 * clusterctl and groups pacemaker manages: pacemaker's view added to the
 * daemon's answers (vm list, vm show, node list), and move-vm carried out
 * by pacemaker through a location constraint that clusterctl writes,
 * waits on, and removes.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "clock.h"
#include "pacemaker.h"

static bool by_pacemaker(json_object *vm)
{
	json_object *def = jget(vm, "definition");

	return strcmp(jstr(vm, "manager"), "pacemaker") == 0 ||
	       (def != NULL && strcmp(jstr(def, "manager"), "pacemaker") == 0);
}

static json_object *error_object(const char *err)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "error", json_object_new_string(err));
	return o;
}

/* Adds "pacemaker" to each of the n VMs pacemaker manages; says once on stderr when it cannot. */
static void vms_annotate(json_object **vms, size_t n, bool json)
{
	struct pcmk_view v;
	char err[512];
	size_t managed = 0;

	for (size_t i = 0; i < n; i++) {
		managed += by_pacemaker(vms[i]);
	}
	if (managed == 0) {
		return;
	}
	if (pcmk_view_read(&v, err, sizeof(err)) != 0) {
		for (size_t i = 0; i < n; i++) {
			if (by_pacemaker(vms[i])) {
				json_object_object_add(vms[i], "pacemaker", error_object(err));
			}
		}
		if (!json) {
			fprintf(stderr, "clusterctl: %s: where pacemaker runs the VMs it manages is unknown\n", err);
		}
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct pcmk_rsc *r = by_pacemaker(vms[i]) ? pcmk_view_group(&v, jstr(vms[i], "name")) : NULL;
		if (r != NULL) {
			json_object_object_add(vms[i], "pacemaker", pcmk_rsc_to_json(r));
		} else if (by_pacemaker(vms[i])) {
			json_object_object_add(vms[i], "pacemaker", error_object("no ocf:vmcluster:VMGroup resource "
										 "runs it"));
		}
	}
	pcmk_view_free(&v);
}

void pcmk_annotate_vm_list(json_object *r, bool json)
{
	json_object *vms = jget(r, "vms");
	size_t n = vms != NULL ? json_object_array_length(vms) : 0;
	json_object *list[n ? n : 1];

	for (size_t i = 0; i < n; i++) {
		list[i] = json_object_array_get_idx(vms, i);
	}
	vms_annotate(list, n, json);
}

void pcmk_annotate_vm_show(json_object *r, bool json)
{
	vms_annotate(&r, 1, json);
}

/* Standby and online as pacemaker has them, when it runs here; nothing otherwise (no pacemaker, no noise). */
void pcmk_annotate_nodes(json_object *nodes)
{
	struct pcmk_view v;
	char err[512];

	if (nodes == NULL || pcmk_view_read(&v, err, sizeof(err)) != 0) {
		return;
	}
	for (size_t i = 0; i < json_object_array_length(nodes); i++) {
		json_object *n = json_object_array_get_idx(nodes, i);
		const struct pcmk_node *p = pcmk_view_node(&v, jstr(n, "name"));
		json_object *o;
		if (p == NULL) {
			continue;
		}
		o = json_object_new_object();
		json_object_object_add(o, "online", json_object_new_boolean(p->online));
		json_object_object_add(o, "standby", json_object_new_boolean(p->standby));
		json_object_object_add(n, "pacemaker", o);
	}
	pcmk_view_free(&v);
}

/* "on node2", "on node1 and node2" or "nowhere" into buf. */
static const char *running_text(json_object *p, char *buf, size_t len)
{
	json_object *on = jget(p, "running_on");
	size_t n = on != NULL ? json_object_array_length(on) : 0;

	snprintf(buf, len, "%s", n == 0 ? "nowhere" : "on ");
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(buf);
		snprintf(buf + l, len - l, "%s%s", i == 0 ? "" : i + 1 == n ? " and " : ", ",
			 json_object_get_string(json_object_array_get_idx(on, i)));
	}
	return buf;
}

void pcmk_vm_text(json_object *vm, const char *prefix)
{
	json_object *p = jget(vm, "pacemaker");
	char on[256];

	if (p == NULL) {
		return;
	}
	if (jget(p, "error") != NULL) {
		printf("%spacemaker: %s\n", prefix, jstr(p, "error"));
		return;
	}
	printf("%spacemaker runs resource %s %s (target-role %s)%s\n", prefix, jstr(p, "resource"),
	       running_text(p, on, sizeof(on)), jstr(p, "target_role"),
	       json_object_get_boolean(jget(p, "failed")) ? ", FAILED" : "");
}

/* ---- move-vm through pacemaker ---- */

struct move_seen {
	bool there;   /* pacemaker runs it on the node, and only there */
	bool failed;  /* pacemaker marks it failed */
	bool online;  /* vmcluster has it online there */
	char where[256];
};

static int move_look(struct cli *cli, const char *vm, const char *node, struct move_seen *m,
		     char *err, size_t errlen)
{
	struct pcmk_view v;
	const struct pcmk_rsc *r;
	json_object *args = name_args(vm), *g = NULL;
	int rc = pcmk_view_read(&v, err, errlen);

	memset(m, 0, sizeof(*m));
	if (rc != 0) {
		json_object_put(args);
		return EXIT_REFUSED;
	}
	r = pcmk_view_group(&v, vm);
	if (r != NULL) {
		m->there = r->n_running == 1 && strcmp(r->running_on[0], node) == 0;
		m->failed = r->failed;
		json_object *j = pcmk_rsc_to_json(r);
		running_text(j, m->where, sizeof(m->where));
		json_object_put(j);
	}
	pcmk_view_free(&v);
	rc = read_call(cli, VMC_IPC_VM_SHOW, args, &g, err, errlen);
	json_object_put(args);
	if (rc == 0) {
		m->online = strcmp(jstr(g, "state"), "online") == 0 && strcmp(jstr(g, "owner"), node) == 0;
	}
	json_object_put(g);
	return rc;
}

/* What must hold before a constraint is written: the resource, a node pacemaker may use, vmcluster's own checks. */
static int move_precheck(struct cli *cli, const char *vm, const char *node, char *rsc, size_t rsc_len)
{
	struct pcmk_view v;
	const struct pcmk_rsc *r;
	const struct pcmk_node *n;
	json_object *args, *res = NULL;
	char err[512];
	int rc = pcmk_view_read(&v, err, sizeof(err));

	if (rc != 0) {
		return fail(EXIT_REFUSED, "vm %s is managed by pacemaker, and %s: nothing was changed", vm, err);
	}
	r = pcmk_view_group(&v, vm);
	n = pcmk_view_node(&v, node);
	if (r == NULL) {
		rc = fail(EXIT_REFUSED, "vm %s is managed by pacemaker, but no ocf:vmcluster:VMGroup resource runs it "
			  "(see ocf_vmcluster_VMGroup(7)): nothing was changed", vm);
	} else if (n == NULL) {
		rc = fail(EXIT_REFUSED, "pacemaker has no node named '%s' (crm_mon -1): nothing was changed", node);
	} else if (n->standby) {
		rc = fail(EXIT_REFUSED, "node %s is in standby in pacemaker, which runs nothing there (crm node online "
			  "%s, or pcs node unstandby %s): nothing was changed", node, node, node);
	} else if (!n->online) {
		rc = fail(EXIT_REFUSED, "node %s is offline in pacemaker: nothing was changed", node);
	} else if (!r->managed) {
		rc = fail(EXIT_REFUSED, "pacemaker resource %s is unmanaged (is-managed=false): nothing was changed", r->id);
	}
	if (rc == 0) {
		snprintf(rsc, rsc_len, "%s", r->id);
	}
	pcmk_view_free(&v);
	if (rc != 0) {
		return rc;
	}
	/* vmcluster's checks of the move, so that a refusal comes now and not as a failed migrate_to. */
	args = name_args(vm);
	json_object_object_add(args, "node", json_object_new_string(node));
	json_object_object_add(args, "id", json_object_new_string("00000000000000000000000000000000"));
	json_object_object_add(args, "mode", json_object_new_string("live"));
	json_object_object_add(args, "cause", json_object_new_string("pacemaker"));
	json_object_object_add(args, "check_only", json_object_new_boolean(true));
	rc = call(cli, VMC_IPC_VM_MOVE, args, &res);
	json_object_put(args);
	json_object_put(res);
	return rc;
}

int pcmk_move_vm(struct cli *cli, const char *vm, const char *node)
{
	long long deadline = vmc_now_ms() + cli->timeout_ms;
	char rsc[PCMK_VIEW_NAME_MAX], err[512] = "";
	struct move_seen m = { 0 };
	const char *removed;
	int rc, done = EXIT_TIMEOUT;

	if (node == NULL) {
		return fail(EXIT_USAGE, "vm %s is managed by pacemaker: name the node to move it to "
			    "(clusterctl move-vm %s NODE)", vm, vm);
	}
	if (cli->quick) {
		return fail(EXIT_USAGE, "vm %s is managed by pacemaker, which moves it live (allow-migrate=true) or "
			    "stops and starts it: --quick does not apply", vm);
	}
	/* A VM that runs on node already is refused there, as for any group ("runs on NODE already"). */
	rc = move_precheck(cli, vm, node, rsc, sizeof(rsc));
	if (rc != 0) {
		return rc;
	}
	rc = pcmk_prefer_node(rsc, node, err, sizeof(err));
	if (rc != 0) {
		return fail(EXIT_REFUSED, "vm %s: %s: nothing was changed", vm, err);
	}
	if (!cli->json) {
		printf("vm %s: pacemaker moves resource %s to %s (location constraint vmcluster-move-%s until it is "
		       "there)\n", vm, rsc, node, rsc);
		fflush(stdout);
	}
	while (vmc_now_ms() < deadline) {
		pause_ms(500);
		if (move_look(cli, vm, node, &m, err, sizeof(err)) != 0) {
			continue; /* pacemaker or the daemon busy for a moment: look again */
		}
		if (m.there && m.online) {
			done = EXIT_DONE;
			break;
		}
		if (m.failed) {
			done = EXIT_REFUSED;
			break;
		}
	}
	/* The constraint was only the means: leave none behind, whatever happened (pcs does the same). */
	rc = pcmk_prefer_clear(rsc, err, sizeof(err));
	removed = rc == 0 ? "the constraint is removed" : "the constraint is NOT removed (see above)";
	if (rc != 0) {
		fail(EXIT_UNKNOWN, "vm %s: %s (remove it by hand: cibadmin --delete --xml-text "
		     "'<rsc_location id=\"vmcluster-move-%s\"/>')", vm, err, rsc);
	}
	if (done == EXIT_DONE) {
		if (cli->json) {
			json_object *o = json_object_new_object();
			json_object_object_add(o, "vm", json_object_new_string(vm));
			json_object_object_add(o, "resource", json_object_new_string(rsc));
			json_object_object_add(o, "node", json_object_new_string(node));
			json_object_object_add(o, "outcome", json_object_new_string("moved"));
			json_object_object_add(o, "constraint_removed", json_object_new_boolean(rc == 0));
			print_json(o);
			json_object_put(o);
		} else {
			printf("vm %s runs on %s: moved by pacemaker; %s\n", vm, node, removed);
		}
		return rc != 0 ? EXIT_UNKNOWN : EXIT_DONE;
	}
	if (done == EXIT_REFUSED) {
		return fail(EXIT_REFUSED, "vm %s: pacemaker marks resource %s failed (crm_mon -1 says why); it runs %s; "
			    "%s", vm, rsc, m.where[0] ? m.where : "nowhere", removed);
	}
	return fail(EXIT_TIMEOUT, "vm %s: not on %s after %d s (pacemaker runs it %s); %s, pacemaker may still "
		    "carry on", vm, node, cli->timeout_ms / 1000, m.where[0] ? m.where : "nowhere", removed);
}
