/*
 * Moves of groups between nodes in the replicated state (migration.h).
 * Every handler checks everything before it changes anything, and none
 * allocates, so none can fail half-way (apply.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "group_fsm.h"
#include "json_util.h"
#include "drain.h"
#include "mig_window.h"
#include "migration.h"
#include "node_admin.h"
#include "vmc_errors.h"
#include "volume_apply.h"

const char *vmc_mig_phase_to_str(enum vmc_mig_phase p)
{
	static const char *const names[] = {
		[VMC_MIG_NONE] = "none",
		[VMC_MIG_QUEUED] = "queued",
		[VMC_MIG_TRANSFER] = "transfer",
		[VMC_MIG_SWITCHOVER] = "switchover",
	};

	return (size_t)p < sizeof(names) / sizeof(names[0]) ? names[p] : "unknown";
}

static const char *const cause_names[] = {
	[VMC_MIG_BY_OPERATOR] = "operator",
	[VMC_MIG_BY_DRAIN] = "drain",
	[VMC_MIG_BY_FAILBACK] = "failback",
	[VMC_MIG_BY_EVACUATION] = "evacuation",
	[VMC_MIG_BY_PACEMAKER] = "pacemaker",
};

const char *vmc_mig_cause_to_str(enum vmc_mig_cause c)
{
	return (size_t)c < sizeof(cause_names) / sizeof(cause_names[0]) ? cause_names[c] : "unknown";
}

int vmc_mig_cause_from_str(const char *str, enum vmc_mig_cause *out)
{
	for (size_t i = 0; i < sizeof(cause_names) / sizeof(cause_names[0]); i++) {
		if (strcmp(str, cause_names[i]) == 0) {
			*out = (enum vmc_mig_cause)i;
			return 0;
		}
	}
	return -EINVAL;
}


static bool in_flight(const struct vmc_group *g)
{
	return g->state == VMC_GROUP_MIGRATING &&
	       (g->mig.phase == VMC_MIG_TRANSFER || g->mig.phase == VMC_MIG_SWITCHOVER);
}

size_t vmc_migrations_in_flight(const struct vmc_state *s, uint32_t node)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n_groups; i++) {
		const struct vmc_group *g = &s->groups[i];
		if (in_flight(g) && (g->owner == node || g->mig.target == node)) {
			n++;
		}
	}
	return n;
}

/* Memory the groups on node take, counting those on their way there. */
static uint64_t memory_used_on(const struct vmc_state *s, uint32_t node, const struct vmc_group *except)
{
	uint64_t used = 0;

	for (size_t i = 0; i < s->n_groups; i++) {
		const struct vmc_group *g = &s->groups[i];
		bool runs = g->state != VMC_GROUP_OFFLINE && g->state != VMC_GROUP_FAILED && g->owner == node;
		bool coming = in_flight(g) && g->mig.target == node;
		if (g != except && (runs || coming)) {
			used += g->def->memory_mib;
		}
	}
	return used;
}

/* The first volume the VM uses that node does not report healthy (never seen, failing, hung), or NULL. */
static const struct vmc_volume *volume_bad_on(const struct vmc_state *s, const struct vmc_group_def *def,
					      uint32_t node)
{
	for (size_t i = 0; i < s->n_volumes; i++) {
		const struct vmc_volume_seen *e = vmc_volume_seen_by(&s->volumes[i], node);
		if (vmc_group_uses_volume(def, &s->volumes[i]) && (e == NULL || e->health != VMC_VOLUME_OK)) {
			return &s->volumes[i];
		}
	}
	return NULL;
}

/* "7.2.0" against "8.0.1": <0, 0, >0; unknown versions compare equal (nothing to go by). */
static int version_cmp(const char *a, const char *b)
{
	unsigned x[3] = { 0 }, y[3] = { 0 };

	if (a[0] == '\0' || b[0] == '\0' || sscanf(a, "%u.%u.%u", &x[0], &x[1], &x[2]) < 2 ||
	    sscanf(b, "%u.%u.%u", &y[0], &y[1], &y[2]) < 2) {
		return 0;
	}
	for (int i = 0; i < 3; i++) {
		if (x[i] != y[i]) {
			return x[i] < y[i] ? -1 : 1;
		}
	}
	return 0;
}

/* Can the target run what the source runs: QEMU no older, the CPU model, the CPU vendor under KVM. */
static int compatible(const struct vmc_group *g, const struct vmc_node_facts *src, const struct vmc_node_facts *t,
		      char *why, size_t len)
{
	if (src != NULL && version_cmp(t->qemu_version, src->qemu_version) < 0) {
		snprintf(why, len, "node %s runs QEMU %s, older than %s's %s: a VM does not move to an older QEMU", t->name,
			 t->qemu_version, src->name, src->qemu_version);
		return -VMC_E_BUSY;
	}
	if (g->def->cpu != NULL && t->cpu_models[0] != '\0' && !vmc_name_in_list(t->cpu_models, g->def->cpu)) {
		snprintf(why, len, "node %s cannot run CPU model %s under %s: its QEMU lacks some of that model's features",
			 t->name, g->def->cpu, t->accel[0] ? t->accel : "its accelerator");
		return -VMC_E_BUSY;
	}
	if (src != NULL && strcmp(src->accel, "kvm") == 0 && src->cpu_vendor[0] != '\0' && t->cpu_vendor[0] != '\0' &&
	    strcmp(src->cpu_vendor, t->cpu_vendor) != 0) {
		snprintf(why, len, "node %s has a %s CPU and %s a %s one: a VM under KVM does not move across CPU vendors",
			 t->name, t->cpu_vendor, src->name, src->cpu_vendor);
		return -VMC_E_BUSY;
	}
	return 0;
}

static int group_movable(const struct vmc_state *s, const struct vmc_group *g, char *why, size_t len)
{
	char node[24];

	if (g->mig.phase != VMC_MIG_NONE) {
		snprintf(why, len, "vm %s is already moving to %s (%s)", g->def->name,
			 vmc_state_node_label(s, g->mig.target, node, sizeof(node)), vmc_mig_phase_to_str(g->mig.phase));
		return -VMC_E_BUSY;
	}
	if (g->state != VMC_GROUP_ONLINE) {
		snprintf(why, len, "vm %s is %s: only a running VM moves (start it first, or wait)", g->def->name,
			 vmc_group_state_to_str(g->state));
		return -VMC_E_BUSY;
	}
	return 0;
}

int vmc_migration_check(const struct vmc_state *s, const struct vmc_apply_ctx *ctx, const struct vmc_group *g,
			uint32_t target, char *why, size_t len)
{
	const struct vmc_node_facts *t = vmc_state_node(s, target);
	const struct vmc_volume *bad;
	uint64_t used;
	int rc = group_movable(s, g, why, len);

	if (rc != 0) {
		return rc;
	}
	if (t == NULL) {
		snprintf(why, len, "no node with id %u in the cluster (see 'clusterctl node list')", target);
		return -VMC_E_NOT_FOUND;
	}
	if (target == g->owner) {
		snprintf(why, len, "vm %s runs on %s already", g->def->name, t->name);
		return -VMC_E_BUSY;
	}
	if (!vmc_apply_in_view(ctx, target)) {
		snprintf(why, len, "node %s is down: a VM moves only to a node in the cluster", t->name);
		return -VMC_E_BUSY;
	}
	if (!vmc_node_takes_groups(s, target)) {
		snprintf(why, len, "node %s is %s: it takes no VMs (clusterctl node resume %s)", t->name,
			 vmc_node_mode_to_str(vmc_node_mode(s, target)), t->name);
		return -VMC_E_BUSY;
	}
	if (vmc_name_in_list(s->settings.migration_no_incoming, t->name)) {
		snprintf(why, len, "migrations into node %s are disabled (clusterctl migration set no_incoming=...)", t->name);
		return -VMC_E_BUSY;
	}
	if (vmc_state_node(s, g->owner) != NULL &&
	    vmc_name_in_list(s->settings.migration_no_outgoing, vmc_state_node(s, g->owner)->name)) {
		snprintf(why, len, "migrations out of node %s are disabled (clusterctl migration set no_outgoing=...)",
			 vmc_state_node(s, g->owner)->name);
		return -VMC_E_BUSY;
	}
	if (g->def->possible_owners.n > 0 && !vmc_strlist_contains(&g->def->possible_owners, t->name)) {
		snprintf(why, len, "node %s is not a possible owner of vm %s", t->name, g->def->name);
		return -VMC_E_BUSY;
	}
	rc = compatible(g, vmc_state_node(s, g->owner), t, why, len);
	if (rc != 0) {
		return rc;
	}
	used = memory_used_on(s, target, g);
	if (used + g->def->memory_mib > t->mem_mib) {
		snprintf(why, len, "node %s has %llu MiB free for VMs, vm %s needs %u MiB", t->name,
			 used > t->mem_mib ? 0ULL : (unsigned long long)(t->mem_mib - used), g->def->name,
			 g->def->memory_mib);
		return -VMC_E_BUSY;
	}
	for (size_t i = 0; i < g->def->n_disks; i++) {
		if (g->def->disks[i].local) {
			snprintf(why, len, "vm %s has a local disk (%s): on another node that path is another disk", g->def->name,
				 g->def->disks[i].path);
			return -VMC_E_BUSY;
		}
	}
	if (s->settings.migration_network[0] != '\0' && t->migration_addr[0] == '\0') {
		snprintf(why, len, "node %s has no address in the migration network %s", t->name,
			 s->settings.migration_network);
		return -VMC_E_BUSY;
	}
	bad = volume_bad_on(s, g->def, target);
	if (bad != NULL) {
		snprintf(why, len, "volume %s, which vm %s uses, is not healthy on node %s (or not seen there)", bad->name,
			 g->def->name, t->name);
		return -VMC_E_BUSY;
	}
	return 0;
}

uint32_t vmc_migration_pick_target(const struct vmc_state *s, const struct vmc_apply_ctx *ctx,
				   const struct vmc_group *g, char *why, size_t len)
{
	uint32_t best = 0;
	uint64_t best_free = 0;
	size_t used_len = 0;
	char one[256];

	why[0] = '\0';
	for (size_t p = 0; p < g->def->preferred_owners.n; p++) {
		for (size_t i = 0; i < s->n_nodes; i++) {
			if (strcmp(s->nodes[i].name, g->def->preferred_owners.v[p]) == 0 &&
			    vmc_migration_check(s, ctx, g, s->nodes[i].id, one, sizeof(one)) == 0) {
				return s->nodes[i].id;
			}
		}
	}
	for (size_t i = 0; i < s->n_nodes; i++) {
		const struct vmc_node_facts *n = &s->nodes[i];
		uint64_t used = memory_used_on(s, n->id, g);
		if (n->id == g->owner) {
			continue;
		}
		if (vmc_migration_check(s, ctx, g, n->id, one, sizeof(one)) != 0) {
			used_len += (size_t)snprintf(why + used_len, used_len < len ? len - used_len : 0, "%s%s",
						     used_len ? "; " : "", one);
			continue;
		}
		if (best == 0 || n->mem_mib - used > best_free) {
			best = n->id;
			best_free = n->mem_mib - used;
		}
	}
	if (best == 0 && why[0] == '\0') {
		snprintf(why, len, "no other node is in the cluster");
	}
	return best;
}

int vmc_migration_state_file(const struct vmc_state *s, const struct vmc_group *g, const char *id, char *buf,
			     size_t len)
{
	for (size_t i = 0; i < s->n_volumes; i++) {
		if (vmc_group_uses_volume(g->def, &s->volumes[i]) &&
		    (size_t)snprintf(buf, len, "%s/.vmcluster-migrate/%s.%s.state", s->volumes[i].path, g->def->name, id) <
			    len) {
			return 0;
		}
	}
	snprintf(buf, len, "quick migration saves the VM to one of its volumes, and vm %s has no disk on one "
		 "(move it live)", g->def->name);
	return -ENOENT;
}

uint32_t vmc_migration_out_limit(const struct vmc_state *s, uint32_t node)
{
	const struct vmc_node_facts *f = vmc_state_node(s, node);
	uint32_t cap = s->settings.migration_max_parallel;
	uint32_t w = f != NULL && f->mig_window != 0 ? f->mig_window : VMC_MIG_WINDOW_START;

	if (!s->settings.migration_adaptive) {
		return cap;
	}
	return w < cap ? w : cap;
}

static bool has_slot(const struct vmc_state *s, const struct vmc_group *g)
{
	size_t out = vmc_migration_out_limit(s, g->owner), in = s->settings.migration_max_parallel;

	/* A quick move copies through a file, not the link: only the cap counts for it. */
	if (g->mig.quick) {
		out = in;
	}
	return vmc_migrations_in_flight(s, g->owner) < out && vmc_migrations_in_flight(s, g->mig.target) < in;
}

int vmc_apply_migrate_window(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const union vmc_body *b,
			     char *detail, size_t len)
{
	struct vmc_node_facts f;
	int rc = vmc_apply_need_version(ctx, 6, "the adaptive migration window needs", detail, len);

	if (rc != 0) {
		return rc;
	}
	if (vmc_state_node(s, ctx->sender) == NULL) {
		snprintf(detail, len, "migrate-window from node %u, which has not said its facts", ctx->sender);
		return -VMC_E_BUSY;
	}
	f = *vmc_state_node(s, ctx->sender);
	f.mig_window = b->window.window;
	vmc_state_node_set(s, &f);
	snprintf(detail, len, "node %s moves up to %u VMs out at once (adaptive; cap %u)", f.name, f.mig_window,
		 s->settings.migration_max_parallel);
	return 0;
}

static void migration_start(struct vmc_state *s, struct vmc_group *g)
{
	char node[24];
	char ignored[160];

	vmc_group_transition(g, VMC_GEV_MIGRATE, ignored, sizeof(ignored));
	g->mig.phase = VMC_MIG_TRANSFER;
	snprintf(g->reason, sizeof(g->reason), "moving %s to %s", g->mig.quick ? "(quick)" : "live",
		 vmc_state_node_label(s, g->mig.target, node, sizeof(node)));
}

/* The queued group to start next: high priority first, then the order they were asked in. */
static struct vmc_group *queue_next(struct vmc_state *s, const struct vmc_apply_ctx *ctx)
{
	struct vmc_group *best = NULL;

	for (size_t i = 0; i < s->n_groups; i++) {
		struct vmc_group *g = &s->groups[i];
		char why[256];
		struct vmc_migration m = g->mig;
		if (g->mig.phase != VMC_MIG_QUEUED) {
			continue;
		}
		g->mig.phase = VMC_MIG_NONE; /* checked as if it were not moving yet */
		if (vmc_migration_check(s, ctx, g, m.target, why, sizeof(why)) != 0) {
			snprintf(g->reason, sizeof(g->reason), "queued move dropped: %.280s", why);
			continue;
		}
		g->mig = m;
		if (has_slot(s, g) &&
		    (best == NULL || g->def->priority < best->def->priority ||
		     (g->def->priority == best->def->priority && g->mig.seq < best->mig.seq))) {
			best = g;
		}
	}
	return best;
}

void vmc_migrations_promote(struct vmc_state *s, const struct vmc_apply_ctx *ctx)
{
	struct vmc_group *g;

	/* Each start takes slots, so the next pick sees them taken. */
	while ((g = queue_next(s, ctx)) != NULL) {
		migration_start(s, g);
	}
}

static struct vmc_group *migration_named(struct vmc_state *s, const struct vmc_body_migrate *b, char *detail,
					 size_t len, int *rc)
{
	struct vmc_group *g = vmc_state_group_find(s, b->name);

	if (g == NULL) {
		snprintf(detail, len, "no vm named '%s' (see 'clusterctl vm list')", b->name);
		*rc = -VMC_E_NOT_FOUND;
		return NULL;
	}
	if (g->mig.phase == VMC_MIG_NONE || strcmp(g->mig.id, b->id) != 0) {
		snprintf(detail, len, "vm %s has no migration %s (it ended, or another one runs)", b->name, b->id);
		*rc = -VMC_E_BUSY;
		return NULL;
	}
	return g;
}

static int need_version(const struct vmc_apply_ctx *ctx, char *detail, size_t len)
{
	return vmc_apply_need_version(ctx, 5, "migration needs", detail, len);
}

bool vmc_migration_queue(struct vmc_state *s, struct vmc_group *g, uint32_t target, bool quick,
			 enum vmc_mig_cause cause, uint64_t at_s, const char *id)
{
	g->mig = (struct vmc_migration){ .phase = VMC_MIG_QUEUED, .cause = cause, .target = target, .quick = quick,
					 .since_s = at_s, .seq = s->config_version + 1 };
	snprintf(g->mig.id, sizeof(g->mig.id), "%s", id);
	if (has_slot(s, g)) {
		migration_start(s, g);
		return true;
	}
	return false;
}

int vmc_migration_cause_allowed(const struct vmc_state *s, const struct vmc_apply_ctx *ctx, const struct vmc_group *g,
				enum vmc_mig_cause cause, uint32_t target, char *detail, size_t len)
{
	char node[24];
	bool by_pacemaker = vmc_apply_by_pacemaker(ctx, g->def);

	if (cause == VMC_MIG_BY_PACEMAKER) {
		int rc = vmc_apply_need_version(ctx, 7, "a move by pacemaker needs", detail, len);
		if (rc == 0 && !by_pacemaker) {
			snprintf(detail, len, "vm %s is not managed by pacemaker (its manager is vmcluster): move it with "
				 "clusterctl move-vm", g->def->name);
			rc = -VMC_E_BUSY;
		}
		return rc;
	}
	if (by_pacemaker) {
		/* Moved behind pacemaker's back, its monitor would see the VM gone and "recover" it. */
		snprintf(detail, len, "vm %s is managed by pacemaker: clusterctl move-vm moves it through pacemaker (a "
			 "location constraint), or crm_resource --move", g->def->name);
		return -VMC_E_BUSY;
	}
	if (cause == VMC_MIG_BY_OPERATOR) {
		return 0;
	}
	if (cause != VMC_MIG_BY_FAILBACK) {
		snprintf(detail, len, "migrate-request with cause %s: only the cluster itself moves for that",
			 vmc_mig_cause_to_str(cause));
		return -VMC_E_PROTOCOL;
	}
	if (g->home.kind == VMC_HOME_NONE || g->home.node != target) {
		snprintf(detail, len, "vm %s has no failback to %s (its home is %s)", g->def->name,
			 vmc_state_node_label(s, target, node, sizeof(node)),
			 g->home.kind == VMC_HOME_NONE ? "none" : vmc_state_node_label(s, g->home.node, node, sizeof(node)));
		return -VMC_E_BUSY;
	}
	return 0;
}

int vmc_apply_migrate_request(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const union vmc_body *b,
			      char *detail, size_t len)
{
	const struct vmc_body_migrate *m = &b->migrate;
	struct vmc_group *g = vmc_state_group_find(s, m->name);
	char why[256], node_buf[24];
	const char *node;
	int rc = need_version(ctx, detail, len);

	if (rc != 0) {
		return rc;
	}
	if (g == NULL) {
		snprintf(detail, len, "no vm named '%s' (see 'clusterctl vm list')", m->name);
		return -VMC_E_NOT_FOUND;
	}
	rc = vmc_migration_cause_allowed(s, ctx, g, m->cause, m->target, detail, len);
	if (rc != 0) {
		return rc;
	}
	rc = vmc_migration_check(s, ctx, g, m->target, why, sizeof(why));
	if (rc != 0) {
		snprintf(detail, len, "%s", why);
		return rc;
	}
	node = vmc_state_node_label(s, m->target, node_buf, sizeof(node_buf));
	if (vmc_migration_queue(s, g, m->target, m->quick, m->cause, m->at_s, m->id)) {
		snprintf(detail, len, "vm %s moving %s to %s%s", g->def->name, m->quick ? "(quick)" : "live", node,
			 m->cause == VMC_MIG_BY_FAILBACK ? " (failback)" : "");
	} else {
		snprintf(g->reason, sizeof(g->reason), "queued to move to %s (migration_max_parallel %u reached)", node,
			 s->settings.migration_max_parallel);
		snprintf(detail, len, "vm %s %s", g->def->name, g->reason);
	}
	return 0;
}

void vmc_migration_derive_id(const struct vmc_state *s, const struct vmc_group *g, const char *why,
			     char id[VMC_MIG_ID_MAX + 1])
{
	uint64_t h[2] = { 0xcbf29ce484222325ull, 0x84222325cbf29ce4ull };
	char key[160];
	int n = snprintf(key, sizeof(key), "%s:%s:%llu:%llu", why, g->def->name, (unsigned long long)s->config_version,
			 (unsigned long long)s->epoch);

	n = n < (int)sizeof(key) ? n : (int)sizeof(key) - 1;
	for (int k = 0; k < 2; k++) {
		for (int i = 0; i < n; i++) {
			h[k] = (h[k] ^ (uint8_t)key[i]) * 0x100000001b3ull;
		}
	}
	snprintf(id, VMC_MIG_ID_MAX + 1, "%016llx%016llx", (unsigned long long)h[0], (unsigned long long)h[1]);
}

size_t vmc_migrations_evacuate(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const struct vmc_volume *v,
			       uint32_t node)
{
	size_t n = 0;

	if (!VMC_PROTO_HAS_MIGRATION(ctx->version)) {
		return 0;
	}
	for (size_t i = 0; i < s->n_groups; i++) {
		struct vmc_group *g = &s->groups[i];
		char why[512], nb[24], vb[64], id[VMC_MIG_ID_MAX + 1];
		uint32_t target;
		/* A pacemaker group is pacemaker's to move: the kill deadline still guards its disks. */
		if (g->owner != node || g->state != VMC_GROUP_ONLINE || g->mig.phase != VMC_MIG_NONE ||
		    !vmc_group_uses_volume(g->def, v) || vmc_apply_by_pacemaker(ctx, g->def)) {
			continue;
		}
		target = vmc_migration_pick_target(s, ctx, g, why, sizeof(why));
		if (target == 0) {
			continue; /* it stays; if the volume stays lost, the kill deadline moves it the hard way */
		}
		vmc_migration_derive_id(s, g, "evacuate", id);
		vmc_migration_queue(s, g, target, false, VMC_MIG_BY_EVACUATION, 0, id);
		snprintf(vb, sizeof(vb), "%s", v->name);
		snprintf(g->reason, sizeof(g->reason), "%s live to %s: volume %s fails on %s",
			 g->mig.phase == VMC_MIG_QUEUED ? "queued to move" : "moving",
			 vmc_state_node_label(s, target, nb, sizeof(nb)), vb, vmc_state_node_label(s, node, why, 24));
		n++;
	}
	return n;
}

int vmc_apply_migrate_switchover(struct vmc_state *s, const struct vmc_apply_ctx *ctx,
				 const union vmc_body *b, char *detail, size_t len)
{
	int rc = need_version(ctx, detail, len);
	struct vmc_group *g = rc == 0 ? migration_named(s, &b->migrate, detail, len, &rc) : NULL;
	char node[24];

	if (g == NULL) {
		return rc;
	}
	if (ctx->sender != g->owner || g->mig.phase != VMC_MIG_TRANSFER) {
		snprintf(detail, len, "vm %s: switchover of migration %s refused: it is in phase %s, owned by node %u",
			 g->def->name, b->migrate.id, vmc_mig_phase_to_str(g->mig.phase), g->owner);
		return -VMC_E_BUSY;
	}
	g->mig.phase = VMC_MIG_SWITCHOVER;
	snprintf(detail, len, "vm %s switching over to %s: its image locks are the target's", g->def->name,
		 vmc_state_node_label(s, g->mig.target, node, sizeof(node)));
	return 0;
}

/* The names of a move's two ends, for the reasons an operator reads. */
struct move_ends {
	char from[24], to[24];
};

static void move_ends_name(const struct vmc_state *s, const struct vmc_group *g, struct move_ends *e)
{
	char buf[24];

	snprintf(e->from, sizeof(e->from), "%s", vmc_state_node_label(s, g->owner, buf, sizeof(buf)));
	snprintf(e->to, sizeof(e->to), "%s", vmc_state_node_label(s, g->mig.target, buf, sizeof(buf)));
}

int vmc_apply_migrate_done(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const union vmc_body *b,
			   char *detail, size_t len)
{
	int rc = need_version(ctx, detail, len);
	struct vmc_group *g = rc == 0 ? migration_named(s, &b->migrate, detail, len, &rc) : NULL;
	struct move_ends e;
	bool quick;

	if (g == NULL) {
		return rc;
	}
	if (ctx->sender != g->mig.target || g->mig.phase != VMC_MIG_SWITCHOVER) {
		snprintf(detail, len, "vm %s: migration %s cannot complete: it is in phase %s (target node %u)",
			 g->def->name, b->migrate.id, vmc_mig_phase_to_str(g->mig.phase), g->mig.target);
		return -VMC_E_BUSY;
	}
	move_ends_name(s, g, &e);
	quick = g->mig.quick;
	vmc_drain_move_ended(s, g, true);
	g->owner = g->mig.target;
	vmc_group_transition(g, VMC_GEV_MIGRATED, detail, len);
	snprintf(g->reason, sizeof(g->reason), "moved %s from %s to %s", quick ? "(quick)" : "live", e.from, e.to);
	snprintf(detail, len, "vm %s %s", g->def->name, g->reason);
	return 0;
}

int vmc_apply_migrate_abort(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const union vmc_body *b,
			    char *detail, size_t len)
{
	int rc = need_version(ctx, detail, len);
	struct vmc_group *g = rc == 0 ? migration_named(s, &b->migrate, detail, len, &rc) : NULL;
	struct move_ends e;
	bool queued;

	if (g == NULL) {
		return rc;
	}
	/* Its two ends decide; a queued move any node may cancel (an operator's). */
	if (g->mig.phase != VMC_MIG_QUEUED && ctx->sender != g->owner && ctx->sender != g->mig.target) {
		snprintf(detail, len, "vm %s: migration %s may only be ended by its source or its target, not node %u",
			 g->def->name, b->migrate.id, ctx->sender);
		return -VMC_E_BUSY;
	}
	move_ends_name(s, g, &e);
	queued = g->mig.phase == VMC_MIG_QUEUED;
	if (!queued) {
		vmc_drain_move_ended(s, g, false);
	}
	if (!queued) {
		vmc_group_transition(g, VMC_GEV_MIGRATE_ROLLBACK, detail, len);
	}
	g->mig = (struct vmc_migration){ 0 };
	snprintf(g->reason, sizeof(g->reason), "%s to %s %s: %.200s; it runs on %s", queued ? "queued move" : "move",
		 e.to, queued ? "cancelled" : "failed", b->migrate.reason[0] ? b->migrate.reason : "no reason given", e.from);
	snprintf(detail, len, "vm %s: %s", g->def->name, g->reason);
	return 0;
}

json_object *vmc_migration_to_json(const struct vmc_migration *m)
{
	json_object *o;

	if (m->phase == VMC_MIG_NONE) {
		return NULL;
	}
	o = json_object_new_object();
	json_object_object_add(o, "phase", json_object_new_string(vmc_mig_phase_to_str(m->phase)));
	json_object_object_add(o, "target", json_object_new_int64(m->target));
	json_object_object_add(o, "mode", json_object_new_string(m->quick ? "quick" : "live"));
	json_object_object_add(o, "id", json_object_new_string(m->id));
	json_object_object_add(o, "since_s", json_object_new_uint64(m->since_s));
	json_object_object_add(o, "seq", json_object_new_uint64(m->seq));
	/* Absent for an operator's move, as in states from before protocol 6. */
	if (m->cause != VMC_MIG_BY_OPERATOR) {
		json_object_object_add(o, "cause", json_object_new_string(vmc_mig_cause_to_str(m->cause)));
	}
	return o;
}

int vmc_migration_from_json(json_object *o, struct vmc_migration *m, char *err, size_t errlen)
{
	const char *phase = vmc_json_str(o, "phase"), *mode = vmc_json_str(o, "mode"), *id = vmc_json_str(o, "id");
	int64_t since = -1, seq = -1;

	*m = (struct vmc_migration){ 0 };
	if (phase == NULL || mode == NULL || id == NULL || strlen(id) != VMC_MIG_ID_MAX ||
	    !vmc_json_u32(o, "target", &m->target) || m->target == 0 || !vmc_json_int64(o, "since_s", &since) ||
	    since < 0 || !vmc_json_int64(o, "seq", &seq) || seq < 0) {
		snprintf(err, errlen, "migration is not {phase, target, mode, id, since_s, seq}");
		return -EINVAL;
	}
	for (int p = VMC_MIG_QUEUED; p <= VMC_MIG_SWITCHOVER; p++) {
		if (strcmp(phase, vmc_mig_phase_to_str((enum vmc_mig_phase)p)) == 0) {
			m->phase = (enum vmc_mig_phase)p;
		}
	}
	if (m->phase == VMC_MIG_NONE || (strcmp(mode, "live") != 0 && strcmp(mode, "quick") != 0)) {
		snprintf(err, errlen, "migration phase '%s' or mode '%s' unknown", phase, mode);
		return -EINVAL;
	}
	m->quick = strcmp(mode, "quick") == 0;
	if (vmc_json_str(o, "cause") != NULL && vmc_mig_cause_from_str(vmc_json_str(o, "cause"), &m->cause) != 0) {
		snprintf(err, errlen, "migration cause '%s' unknown", vmc_json_str(o, "cause"));
		return -EINVAL;
	}
	memcpy(m->id, id, VMC_MIG_ID_MAX + 1);
	m->since_s = (uint64_t)since;
	m->seq = (uint64_t)seq;
	return 0;
}
