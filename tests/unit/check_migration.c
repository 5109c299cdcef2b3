/*
 * Unit tests of group moves in the replicated state (lib/migration.h):
 * the phases and who may advance them, the image locks at each phase,
 * rollback, the per-node limit and its queue in priority order, the
 * refusals, and a move kept across a snapshot.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "image_locks.h"
#include "migrate_proto.h"
#include "mig_window.h"
#include "migration.h"
#include "msg.h"
#include "state.h"
#include "vmc_errors.h"
#include "apply_cluster.h"
#include "check_run.h"

#define ID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* node1 runs vm NAME (256 MiB, disk on csv1, priority PRIO). */
static void vm_online_on_node1(struct cluster *c, const char *name, const char *prio)
{
	char body[512];

	snprintf(body, sizeof(body),
		 "{\"definition\":{\"name\":\"%s\",\"memory_mib\":256,\"boot\":{\"kernel\":\"/k\"},\"priority\":\"%s\","
		 "\"preferred_owners\":[\"node1\"],\"disks\":[{\"path\":\"/srv/csv1/%s.img\"}]}}",
		 name, prio, name);
	OK(c, 1, VMC_MSG_GROUP_ADD, body);
	snprintf(body, sizeof(body), "{\"name\":\"%s\"}", name);
	OK(c, 1, VMC_MSG_GROUP_START, body);
	snprintf(body, sizeof(body), "{\"name\":\"%s\",\"event\":\"running\",\"at_s\":1,\"attempt\":1}", name);
	OK(c, 1, VMC_MSG_GROUP_REPORT, body);
}

/* Three nodes with node_mem MiB each; csv1 reported healthy by nodes 1 to seen_by. */
static void cluster_seen(struct cluster *c, uint32_t node_mem, uint32_t seen_by)
{
	cluster_init(c);
	for (uint32_t id = 1; id <= 3; id++) {
		char body[96];
		snprintf(body, sizeof(body), "{\"name\":\"node%u\",\"mem_mib\":%u}", id, node_mem);
		OK(c, id, VMC_MSG_NODE_FACTS, body);
	}
	OK(c, 1, VMC_MSG_VOLUME_ADD, "{\"name\":\"csv1\",\"path\":\"/srv/csv1\"}");
	for (uint32_t id = 1; id <= seen_by; id++) {
		OK(c, id, VMC_MSG_VOLUME_HEALTH, "{\"name\":\"csv1\",\"health\":\"ok\",\"errno\":0,\"detail\":\"\",\"at_s\":1}");
	}
}

static void cluster_with_nodes(struct cluster *c, uint32_t node_mem)
{
	cluster_seen(c, node_mem, 3);
}

static void request(struct cluster *c, const char *vm, const char *id, uint32_t target)
{
	char body[256];

	snprintf(body, sizeof(body), "{\"name\":\"%s\",\"id\":\"%s\",\"target\":%u,\"mode\":\"live\",\"at_s\":5}", vm,
		 id, target);
	OK(c, 3, VMC_MSG_MIGRATE_REQUEST, body);
}

static int step(struct cluster *c, uint32_t sender, uint16_t type, const char *vm, const char *id)
{
	char body[256];

	snprintf(body, sizeof(body), "{\"name\":\"%s\",\"id\":\"%s\",\"reason\":\"test\"}", vm, id);
	return send(c, sender, type, body);
}

static void g_report_running(struct cluster *c, const char *name)
{
	char body[160];
	const struct vmc_group *g = vmc_state_group_find(c->s, name);

	snprintf(body, sizeof(body), "{\"name\":\"%s\",\"event\":\"running\",\"at_s\":1,\"attempt\":%u}", name,
		 g->attempt);
	OK(c, g->owner, VMC_MSG_GROUP_REPORT, body);
}

START_TEST(test_volume_not_seen_on_the_target)
{
	struct cluster c;

	cluster_seen(&c, 4096, 2);
	vm_online_on_node1(&c, "web1", "medium");
	ck_assert_int_eq(send(&c, 3, VMC_MSG_MIGRATE_REQUEST, "{\"name\":\"web1\",\"id\":\"" ID_A "\",\"target\":3}"),
			 -VMC_E_BUSY);
	ck_assert_ptr_nonnull(strstr(c.detail, "not seen there"));
	request(&c, "web1", ID_A, 2);
	vmc_state_free(c.s);
}
END_TEST

START_TEST(test_failing_volume_moves_its_vms_live)
{
	struct cluster c;
	struct vmc_group *g;
	char id[VMC_MIG_ID_MAX + 1];

	cluster_with_nodes(&c, 4096);
	vm_online_on_node1(&c, "web1", "medium");
	OK(&c, 1, VMC_MSG_GROUP_ADD,
	   "{\"definition\":{\"name\":\"nodisk\",\"memory_mib\":64,\"boot\":{\"kernel\":\"/k\"},"
	   "\"preferred_owners\":[\"node1\"]}}");
	OK(&c, 1, VMC_MSG_GROUP_START, "{\"name\":\"nodisk\"}");
	g_report_running(&c, "nodisk");
	/* node2 does not see csv1 well either: web1 goes to node3 */
	OK(&c, 2, VMC_MSG_VOLUME_HEALTH, "{\"name\":\"csv1\",\"health\":\"hung\",\"errno\":0,\"detail\":\"\",\"at_s\":2}");
	OK(&c, 1, VMC_MSG_VOLUME_HEALTH, "{\"name\":\"csv1\",\"health\":\"failing\",\"errno\":5,\"detail\":\"EIO\",\"at_s\":3}");
	ck_assert_ptr_nonnull(strstr(c.detail, "1 VM moves live"));
	g = vmc_state_group_find(c.s, "web1");
	ck_assert_int_eq(g->state, VMC_GROUP_MIGRATING);
	ck_assert_uint_eq(g->mig.target, 3);
	ck_assert(vmc_migp_id_valid(g->mig.id));
	ck_assert_ptr_nonnull(strstr(g->reason, "volume csv1 fails on node1"));
	ck_assert_int_eq(vmc_state_group_find(c.s, "nodisk")->mig.phase, VMC_MIG_NONE);
	memcpy(id, g->mig.id, sizeof(id));
	/* reported again while it moves: nothing more */
	OK(&c, 1, VMC_MSG_VOLUME_HEALTH, "{\"name\":\"csv1\",\"health\":\"failing\",\"errno\":5,\"detail\":\"EIO\",\"at_s\":4}");
	ck_assert_str_eq(g->mig.id, id);
	vmc_state_free(c.s);
	/* a view with a protocol-4 member moves nothing by itself */
	cluster_with_nodes(&c, 4096);
	vm_online_on_node1(&c, "web1", "medium");
	c.version = 4;
	OK(&c, 1, VMC_MSG_VOLUME_HEALTH, "{\"name\":\"csv1\",\"health\":\"failing\",\"errno\":5,\"detail\":\"EIO\",\"at_s\":3}");
	ck_assert_int_eq(vmc_state_group_find(c.s, "web1")->state, VMC_GROUP_ONLINE);
	vmc_state_free(c.s);
}
END_TEST

START_TEST(test_target_must_run_what_the_source_runs)
{
	struct cluster c;

	cluster_with_nodes(&c, 4096);
	OK(&c, 1, VMC_MSG_NODE_FACTS, "{\"name\":\"node1\",\"mem_mib\":4096,\"qemu_version\":\"7.2.0\",\"accel\":\"tcg\","
				      "\"cpu_vendor\":\"GenuineIntel\",\"cpu_models\":\"qemu64,Skylake-Server\"}");
	OK(&c, 2, VMC_MSG_NODE_FACTS, "{\"name\":\"node2\",\"mem_mib\":4096,\"qemu_version\":\"7.2.0\",\"accel\":\"tcg\","
				      "\"cpu_vendor\":\"AuthenticAMD\",\"cpu_models\":\"qemu64,max\"}");
	OK(&c, 3, VMC_MSG_NODE_FACTS, "{\"name\":\"node3\",\"mem_mib\":4096,\"qemu_version\":\"7.1.0\",\"accel\":\"tcg\","
				      "\"cpu_vendor\":\"GenuineIntel\",\"cpu_models\":\"qemu64,Skylake-Server\"}");
	OK(&c, 1, VMC_MSG_GROUP_ADD,
	   "{\"definition\":{\"name\":\"sky\",\"memory_mib\":64,\"cpu\":\"Skylake-Server\",\"boot\":{\"kernel\":\"/k\"},"
	   "\"preferred_owners\":[\"node1\"],\"disks\":[{\"path\":\"/srv/csv1/sky.img\"}]}}");
	OK(&c, 1, VMC_MSG_GROUP_START, "{\"name\":\"sky\"}");
	g_report_running(&c, "sky");
	ck_assert_int_eq(send(&c, 3, VMC_MSG_MIGRATE_REQUEST, "{\"name\":\"sky\",\"id\":\"" ID_A "\",\"target\":2}"),
			 -VMC_E_BUSY);
	ck_assert_msg(strstr(c.detail, "cannot run CPU model Skylake-Server under tcg") != NULL, "%s", c.detail);
	ck_assert_int_eq(send(&c, 3, VMC_MSG_MIGRATE_REQUEST, "{\"name\":\"sky\",\"id\":\"" ID_A "\",\"target\":3}"),
			 -VMC_E_BUSY);
	ck_assert_msg(strstr(c.detail, "runs QEMU 7.1.0, older than node1's 7.2.0") != NULL, "%s", c.detail);
	/* under KVM the vendor matters too (QEMU's default model, no pin) */
	OK(&c, 1, VMC_MSG_NODE_FACTS, "{\"name\":\"node1\",\"mem_mib\":4096,\"qemu_version\":\"7.2.0\",\"accel\":\"kvm\","
				      "\"cpu_vendor\":\"GenuineIntel\",\"cpu_models\":\"qemu64\"}");
	vm_online_on_node1(&c, "web1", "medium");
	ck_assert_int_eq(send(&c, 3, VMC_MSG_MIGRATE_REQUEST, "{\"name\":\"web1\",\"id\":\"" ID_B "\",\"target\":2}"),
			 -VMC_E_BUSY);
	ck_assert_msg(strstr(c.detail, "across CPU vendors") != NULL, "%s", c.detail);
	ck_assert_int_eq(vmc_state_group_find(c.s, "web1")->state, VMC_GROUP_ONLINE);
	vmc_state_free(c.s);
}
END_TEST

START_TEST(test_live_move_phases_and_locks)
{
	struct cluster c;
	struct vmc_group *g;

	cluster_with_nodes(&c, 4096);
	vm_online_on_node1(&c, "web1", "medium");
	g = vmc_state_group_find(c.s, "web1");
	request(&c, "web1", ID_A, 2);
	ck_assert_int_eq(g->state, VMC_GROUP_MIGRATING);
	ck_assert_int_eq(g->mig.phase, VMC_MIG_TRANSFER);
	ck_assert_uint_eq(g->owner, 1);
	ck_assert_uint_eq(lock_of(&c, "/srv/csv1/web1.img")->node, 1);
	/* only the source switches over, only the target completes, each in its phase */
	ck_assert_int_eq(step(&c, 2, VMC_MSG_MIGRATE_SWITCHOVER, "web1", ID_A), -VMC_E_BUSY);
	ck_assert_int_eq(step(&c, 2, VMC_MSG_MIGRATE_DONE, "web1", ID_A), -VMC_E_BUSY);
	ck_assert_int_eq(step(&c, 1, VMC_MSG_MIGRATE_SWITCHOVER, "web1", ID_B), -VMC_E_BUSY);
	ck_assert_int_eq(step(&c, 1, VMC_MSG_MIGRATE_SWITCHOVER, "web1", ID_A), 0);
	ck_assert_int_eq(g->mig.phase, VMC_MIG_SWITCHOVER);
	ck_assert_uint_eq(g->owner, 1);
	ck_assert_uint_eq(lock_of(&c, "/srv/csv1/web1.img")->node, 2);
	ck_assert(!vmc_locks_held_by(c.s, g, 1));
	ck_assert(vmc_locks_held_by(c.s, g, 2));
	ck_assert_int_eq(step(&c, 1, VMC_MSG_MIGRATE_DONE, "web1", ID_A), -VMC_E_BUSY);
	ck_assert_int_eq(step(&c, 2, VMC_MSG_MIGRATE_DONE, "web1", ID_A), 0);
	ck_assert_int_eq(g->state, VMC_GROUP_ONLINE);
	ck_assert_uint_eq(g->owner, 2);
	ck_assert_int_eq(g->mig.phase, VMC_MIG_NONE);
	ck_assert_uint_eq(g->attempt, 1);
	ck_assert_uint_eq(lock_of(&c, "/srv/csv1/web1.img")->node, 2);
	ck_assert_msg(strstr(g->reason, "moved live from node1 to node2") != NULL, "%s", g->reason);
	/* the same migration cannot end twice */
	ck_assert_int_eq(step(&c, 2, VMC_MSG_MIGRATE_ABORT, "web1", ID_A), -VMC_E_BUSY);
	ck_assert_uint_eq(g->owner, 2);
	vmc_state_free(c.s);
}
END_TEST

START_TEST(test_abort_rolls_back_whichever_comes_first)
{
	struct cluster c;
	struct vmc_group *g;

	cluster_with_nodes(&c, 4096);
	vm_online_on_node1(&c, "web1", "medium");
	g = vmc_state_group_find(c.s, "web1");
	request(&c, "web1", ID_A, 2);
	OK(&c, 1, VMC_MSG_MIGRATE_SWITCHOVER, "{\"name\":\"web1\",\"id\":\"" ID_A "\"}");
	/* the target's QEMU died after the locks moved: its abort comes first, its done is refused */
	ck_assert_int_eq(step(&c, 2, VMC_MSG_MIGRATE_ABORT, "web1", ID_A), 0);
	ck_assert_int_eq(step(&c, 2, VMC_MSG_MIGRATE_DONE, "web1", ID_A), -VMC_E_BUSY);
	ck_assert_int_eq(g->state, VMC_GROUP_ONLINE);
	ck_assert_uint_eq(g->owner, 1);
	ck_assert_int_eq(g->mig.phase, VMC_MIG_NONE);
	ck_assert_uint_eq(lock_of(&c, "/srv/csv1/web1.img")->node, 1);
	ck_assert_ptr_nonnull(strstr(g->reason, "move to node2 failed: test; it runs on node1"));
	/* and it may move again, with a new id */
	request(&c, "web1", ID_B, 3);
	ck_assert_int_eq(g->mig.phase, VMC_MIG_TRANSFER);
	vmc_state_free(c.s);
}
END_TEST

START_TEST(test_limit_queues_in_priority_order)
{
	struct cluster c;
	static const char *const vms[] = { "a1", "a2", "a3", "a4" };

	cluster_with_nodes(&c, 4096);
	vm_online_on_node1(&c, "a1", "medium");
	vm_online_on_node1(&c, "a2", "medium");
	vm_online_on_node1(&c, "a3", "low");
	vm_online_on_node1(&c, "a4", "high");
	request(&c, "a1", "11111111111111111111111111111111", 2);
	request(&c, "a2", "22222222222222222222222222222222", 3);
	request(&c, "a3", "33333333333333333333333333333333", 2);
	request(&c, "a4", "44444444444444444444444444444444", 3);
	ck_assert_uint_eq(vmc_migrations_in_flight(c.s, 1), 2);
	ck_assert_int_eq(vmc_state_group_find(c.s, "a3")->mig.phase, VMC_MIG_QUEUED);
	ck_assert_int_eq(vmc_state_group_find(c.s, "a3")->state, VMC_GROUP_ONLINE);
	ck_assert_ptr_nonnull(strstr(vmc_state_group_find(c.s, "a3")->reason, "queued"));
	/* a1 is done: the high-priority a4 goes next, though asked for last */
	OK(&c, 1, VMC_MSG_MIGRATE_SWITCHOVER, "{\"name\":\"a1\",\"id\":\"11111111111111111111111111111111\"}");
	OK(&c, 2, VMC_MSG_MIGRATE_DONE, "{\"name\":\"a1\",\"id\":\"11111111111111111111111111111111\"}");
	ck_assert_int_eq(vmc_state_group_find(c.s, "a4")->mig.phase, VMC_MIG_TRANSFER);
	ck_assert_int_eq(vmc_state_group_find(c.s, "a3")->mig.phase, VMC_MIG_QUEUED);
	ck_assert_uint_eq(vmc_migrations_in_flight(c.s, 1), 2);
	/* a2 fails: a3 goes */
	ck_assert_int_eq(step(&c, 1, VMC_MSG_MIGRATE_ABORT, "a2", "22222222222222222222222222222222"), 0);
	ck_assert_int_eq(vmc_state_group_find(c.s, "a3")->mig.phase, VMC_MIG_TRANSFER);
	/* never more than the limit in flight on any node at any point */
	for (size_t i = 0; i < 4; i++) {
		ck_assert_uint_le(vmc_migrations_in_flight(c.s, vmc_state_group_find(c.s, vms[i])->owner), 2);
	}
	vmc_state_free(c.s);
}
END_TEST

START_TEST(test_refusals_change_nothing)
{
	struct cluster c;
	uint64_t version;

	cluster_with_nodes(&c, 400);
	vm_online_on_node1(&c, "web1", "medium");
	OK(&c, 1, VMC_MSG_GROUP_ADD,
	   "{\"definition\":{\"name\":\"only1\",\"memory_mib\":64,\"boot\":{\"kernel\":\"/k\"},"
	   "\"possible_owners\":[\"node1\"],\"disks\":[{\"path\":\"/srv/csv1/only1.img\"}]}}");
	OK(&c, 1, VMC_MSG_GROUP_START, "{\"name\":\"only1\"}");
	OK(&c, 1, VMC_MSG_GROUP_REPORT, "{\"name\":\"only1\",\"event\":\"running\",\"at_s\":1,\"attempt\":1}");
	OK(&c, 1, VMC_MSG_GROUP_ADD,
	   "{\"definition\":{\"name\":\"off1\",\"memory_mib\":64,\"boot\":{\"kernel\":\"/k\"},"
	   "\"disks\":[{\"path\":\"/srv/csv1/off1.img\"}]}}");
	version = c.s->config_version;
#define REFUSED(body, code, text)                                                                           \
	do {                                                                                                \
		ck_assert_int_eq(send(&c, 3, VMC_MSG_MIGRATE_REQUEST, body), code);                          \
		ck_assert_msg(strstr(c.detail, text) != NULL, "'%s' not in '%s'", text, c.detail);          \
	} while (0)
	REFUSED("{\"name\":\"nope\",\"id\":\"" ID_A "\",\"target\":2}", -VMC_E_NOT_FOUND, "no vm named 'nope'");
	REFUSED("{\"name\":\"web1\",\"id\":\"" ID_A "\",\"target\":9}", -VMC_E_NOT_FOUND, "no node with id 9");
	REFUSED("{\"name\":\"web1\",\"id\":\"" ID_A "\",\"target\":1}", -VMC_E_BUSY, "runs on node1 already");
	REFUSED("{\"name\":\"only1\",\"id\":\"" ID_A "\",\"target\":2}", -VMC_E_BUSY, "not a possible owner");
	REFUSED("{\"name\":\"off1\",\"id\":\"" ID_A "\",\"target\":2}", -VMC_E_BUSY, "only a running VM moves");
	ck_assert_int_eq(send(&c, 3, VMC_MSG_MIGRATE_REQUEST, "{\"name\":\"web1\",\"id\":\"short\",\"target\":2}"),
			 -VMC_E_PROTOCOL);
	/* node2 has 400 MiB: web1 (256) fits, but not once big (200) runs there */
	OK(&c, 1, VMC_MSG_GROUP_ADD,
	   "{\"definition\":{\"name\":\"big\",\"memory_mib\":200,\"boot\":{\"kernel\":\"/k\"},"
	   "\"preferred_owners\":[\"node2\"],\"disks\":[{\"path\":\"/srv/csv1/big.img\"}]}}");
	OK(&c, 1, VMC_MSG_GROUP_START, "{\"name\":\"big\"}");
	version = c.s->config_version;
	REFUSED("{\"name\":\"web1\",\"id\":\"" ID_A "\",\"target\":2}", -VMC_E_BUSY, "has 200 MiB free");
	/* the target lost from the view */
	c.n_members = 2;
	REFUSED("{\"name\":\"web1\",\"id\":\"" ID_A "\",\"target\":3}", -VMC_E_BUSY, "node3 is down");
	c.n_members = 3;
	/* settings: no migration into node2, none out of node1 */
	OK(&c, 1, VMC_MSG_SETTINGS_SET, "{\"set\":[\"migration_no_incoming=node2\"]}");
	version = c.s->config_version;
	REFUSED("{\"name\":\"web1\",\"id\":\"" ID_A "\",\"target\":2}", -VMC_E_BUSY, "migrations into node node2 are disabled");
	OK(&c, 1, VMC_MSG_SETTINGS_SET, "{\"set\":[\"migration_no_incoming=\",\"migration_no_outgoing=node3,node1\"]}");
	version = c.s->config_version;
	REFUSED("{\"name\":\"web1\",\"id\":\"" ID_A "\",\"target\":3}", -VMC_E_BUSY, "migrations out of node node1 are disabled");
	OK(&c, 1, VMC_MSG_SETTINGS_SET, "{\"set\":[\"migration_no_outgoing=\"]}");
	/* a volume failing on the target */
	OK(&c, 3, VMC_MSG_VOLUME_HEALTH, "{\"name\":\"csv1\",\"health\":\"failing\",\"errno\":5,\"detail\":\"EIO\",\"at_s\":1}");
	version = c.s->config_version;
	REFUSED("{\"name\":\"web1\",\"id\":\"" ID_A "\",\"target\":3}", -VMC_E_BUSY, "volume csv1");
	/* a local disk stays where it is */
	OK(&c, 1, VMC_MSG_GROUP_ADD,
	   "{\"definition\":{\"name\":\"loc1\",\"memory_mib\":64,\"boot\":{\"kernel\":\"/k\"},"
	   "\"disks\":[{\"path\":\"/var/lib/l.img\",\"local\":true}]}}");
	OK(&c, 1, VMC_MSG_GROUP_START, "{\"name\":\"loc1\"}");
	g_report_running(&c, "loc1");
	version = c.s->config_version;
	REFUSED("{\"name\":\"loc1\",\"id\":\"" ID_A "\",\"target\":1}", -VMC_E_BUSY, "has a local disk");
	/* a view with an older member */
	c.version = 4;
	ck_assert_int_eq(send(&c, 3, VMC_MSG_MIGRATE_REQUEST, "{\"name\":\"web1\",\"id\":\"" ID_A "\",\"target\":2}"),
			 -VMC_E_VERSION);
	ck_assert_uint_eq(c.s->config_version, version);
	ck_assert_int_eq(vmc_state_group_find(c.s, "web1")->state, VMC_GROUP_ONLINE);
	ck_assert_int_eq(vmc_state_group_find(c.s, "web1")->mig.phase, VMC_MIG_NONE);
#undef REFUSED
	vmc_state_free(c.s);
}
END_TEST

START_TEST(test_twice_at_once_and_leaving_online)
{
	struct cluster c;
	struct vmc_group *g;

	cluster_with_nodes(&c, 4096);
	OK(&c, 3, VMC_MSG_SETTINGS_SET, "{\"set\":[\"migration_max_parallel=1\"]}");
	vm_online_on_node1(&c, "web1", "medium");
	vm_online_on_node1(&c, "web2", "medium");
	g = vmc_state_group_find(c.s, "web2");
	request(&c, "web1", ID_A, 2);
	/* a second move of the same VM is refused, whoever asks */
	ck_assert_int_eq(send(&c, 2, VMC_MSG_MIGRATE_REQUEST, "{\"name\":\"web1\",\"id\":\"" ID_B "\",\"target\":3}"),
			 -VMC_E_BUSY);
	ck_assert_ptr_nonnull(strstr(c.detail, "already moving to node2"));
	request(&c, "web2", ID_B, 3);
	ck_assert_int_eq(g->mig.phase, VMC_MIG_QUEUED);
	/* stopped while queued: the move is gone with it */
	OK(&c, 1, VMC_MSG_GROUP_STOP, "{\"name\":\"web2\"}");
	ck_assert_int_eq(g->mig.phase, VMC_MIG_NONE);
	/* the migrating one crashes at the source: it fails over, the move is over */
	OK(&c, 1, VMC_MSG_GROUP_REPORT, "{\"name\":\"web1\",\"event\":\"crashed\",\"at_s\":9,\"attempt\":1}");
	g = vmc_state_group_find(c.s, "web1");
	ck_assert_int_eq(g->mig.phase, VMC_MIG_NONE);
	ck_assert_int_ne(g->state, VMC_GROUP_MIGRATING);
	ck_assert_int_eq(step(&c, 2, VMC_MSG_MIGRATE_DONE, "web1", ID_A), -VMC_E_BUSY);
	vmc_state_free(c.s);
}
END_TEST

START_TEST(test_move_kept_across_a_snapshot)
{
	struct cluster c;
	struct vmc_state *copy = NULL;
	char *a, *b, err[256];
	json_object *j;

	cluster_with_nodes(&c, 4096);
	vm_online_on_node1(&c, "web1", "medium");
	request(&c, "web1", ID_A, 2);
	OK(&c, 1, VMC_MSG_MIGRATE_SWITCHOVER, "{\"name\":\"web1\",\"id\":\"" ID_A "\"}");
	a = vmc_state_to_string(c.s);
	j = json_tokener_parse(a);
	ck_assert_int_eq(vmc_state_from_json(j, &copy, err, sizeof(err)), 0);
	b = vmc_state_to_string(copy);
	ck_assert_str_eq(a, b);
	ck_assert_str_eq(vmc_state_group_find(copy, "web1")->mig.id, ID_A);
	ck_assert_int_eq(vmc_state_group_find(copy, "web1")->mig.phase, VMC_MIG_SWITCHOVER);
	ck_assert_uint_eq(vmc_group_lock_holder(vmc_state_group_find(copy, "web1")), 2);
	json_object_put(j);
	free(a);
	free(b);
	vmc_state_free(copy);
	vmc_state_free(c.s);
}
END_TEST

START_TEST(test_migration_settings)
{
	struct vmc_settings cur, next;
	const char *good[] = { "migration_network=198.51.100.0/24", "migration_max_parallel=4",
			       "migration_encrypt=off", "migration_bandwidth_mib=0", "migration_port=7800" };
	const char *bad[] = { "migration_network=198.51.100.0", "migration_network=300.1.1.1/24",
			      "migration_max_parallel=0", "migration_max_parallel=17", "migration_encrypt=yes",
			      "migration_port=70000", "migration_downtime_ms=x" };
	char err[256];
	json_object *j;

	vmc_settings_defaults(&cur);
	ck_assert_uint_eq(cur.migration_max_parallel, 2);
	ck_assert(cur.migration_encrypt);
	ck_assert_int_eq(vmc_settings_set(&cur, good, 5, &next, err, sizeof(err)), 0);
	ck_assert_str_eq(next.migration_network, "198.51.100.0/24");
	ck_assert(!next.migration_encrypt);
	ck_assert(vmc_settings_migration_changed(&cur, &next));
	j = vmc_settings_to_json(&next);
	ck_assert_int_eq(vmc_settings_from_json(j, &cur, err, sizeof(err)), 0);
	ck_assert(!vmc_settings_migration_changed(&cur, &next));
	json_object_put(j);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(vmc_settings_set(&cur, &bad[i], 1, &next, err, sizeof(err)) == -EINVAL, "%s", bad[i]);
		ck_assert_ptr_nonnull(strstr(err, "migration_"));
	}
	/* the defaults add nothing to the snapshot, so older states keep their digest */
	vmc_settings_defaults(&cur);
	j = vmc_settings_to_json(&cur);
	ck_assert(!json_object_object_get_ex(j, "migration_port", NULL));
	ck_assert(!json_object_object_get_ex(j, "migration_encrypt", NULL));
	json_object_put(j);
}
END_TEST

/* n converging migrations, each copying rate MiB/s, past their first pass. */
static size_t samples(struct vmc_mig_sample *s, size_t n, double rate, double dirty)
{
	for (size_t i = 0; i < n; i++) {
		s[i] = (struct vmc_mig_sample){ .rate_mib_s = rate, .dirty_mib_s = dirty, .pass = 3 };
	}
	return n;
}

/* The adaptive window grows while one more raises the total, shrinks when one falls behind its guest. */
START_TEST(test_adaptive_window)
{
	struct vmc_mig_window w;
	struct vmc_mig_sample s[8];
	int64_t t = 100000;

	vmc_mig_window_init(&w, 8);
	ck_assert_uint_eq(w.window, 2);
	/* Two at 100 MiB/s each, all converging, nothing known with one fewer: it grows. */
	ck_assert(vmc_mig_window_update(&w, s, samples(s, 2, 100, 10), 8, t));
	ck_assert_uint_eq(w.window, 3);
	/* Not again within 2 s. */
	ck_assert(!vmc_mig_window_update(&w, s, samples(s, 3, 75, 10), 8, t += 1000));
	/* Three share the link: 3 * 75 = 225, above 200 * 1.1: it grows again. */
	ck_assert(vmc_mig_window_update(&w, s, samples(s, 3, 75, 10), 8, t += 2000));
	ck_assert_uint_eq(w.window, 4);
	/* Four give 4 * 55 = 220: no room (not above 225 * 1.1), not worse (not under 225 * 0.9): it stays. */
	ck_assert(!vmc_mig_window_update(&w, s, samples(s, 4, 55, 10), 8, t += 2000));
	ck_assert_uint_eq(w.window, 4);
	/* Four give 4 * 40 = 160 (smoothed with 220: 190, under 0.9 * 225): one fewer was faster. */
	ck_assert(vmc_mig_window_update(&w, s, samples(s, 4, 40, 10), 8, t += 100));
	ck_assert_uint_eq(w.window, 3);
	/* One of three copies 30 while its guest dirties 64: it does not converge, two at most. */
	samples(s, 3, 80, 10);
	s[1] = (struct vmc_mig_sample){ .rate_mib_s = 30, .dirty_mib_s = 64, .pass = 4 };
	ck_assert(vmc_mig_sample_stalls(&s[1]));
	ck_assert(vmc_mig_window_update(&w, s, 3, 8, t += 2000));
	ck_assert_uint_eq(w.window, 2);
	/* In its first pass nobody stalls yet. */
	s[1].pass = 1;
	ck_assert(!vmc_mig_sample_stalls(&s[1]));
	/* The cap wins at once; a minute idle starts over at 2. */
	ck_assert(vmc_mig_window_update(&w, s, samples(s, 1, 80, 10), 1, t += 10));
	ck_assert_uint_eq(w.window, 1);
	ck_assert(!vmc_mig_window_update(&w, s, 0, 8, t += 1000));
	ck_assert(vmc_mig_window_update(&w, s, 0, 8, t += 60000));
	ck_assert_uint_eq(w.window, 2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("migration");
	TCase *t = tcase_create("apply");

	tcase_add_test(t, test_live_move_phases_and_locks);
	tcase_add_test(t, test_volume_not_seen_on_the_target);
	tcase_add_test(t, test_failing_volume_moves_its_vms_live);
	tcase_add_test(t, test_target_must_run_what_the_source_runs);
	tcase_add_test(t, test_abort_rolls_back_whichever_comes_first);
	tcase_add_test(t, test_limit_queues_in_priority_order);
	tcase_add_test(t, test_refusals_change_nothing);
	tcase_add_test(t, test_twice_at_once_and_leaving_online);
	tcase_add_test(t, test_move_kept_across_a_snapshot);
	tcase_add_test(t, test_migration_settings);
	tcase_add_test(t, test_adaptive_window);
	suite_add_tcase(s, t);
	return check_suite_run(s);
}
