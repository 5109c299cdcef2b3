/*
 * Unit tests of shared volumes in lib/: the lease slot codec (round trip,
 * torn and corrupted slots refused), the lease timeline and its
 * arithmetic, watching a slot and tracking renewals, the coordinator
 * choice, and volumes and image locks in the apply path (added, refused,
 * held, moved with a recovery, released, kept across a snapshot).
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "image_locks.h"
#include "lease_slot.h"
#include "lease_watch.h"
#include "lifecycle.h"
#include "msg.h"
#include "state.h"
#include "timeouts.h"
#include "vmc_errors.h"
#include "volume.h"
#include "apply_cluster.h"
#include "check_run.h"

static const uint32_t three[] = { 1, 2, 3 };

static struct vmc_lease_slot slot_make(uint32_t node, uint64_t counter)
{
	struct vmc_lease_slot s = { .node = node, .counter = counter, .incarnation = 0x1234567890abcdefull,
				    .written_unix_ms = 1764547200000ull };

	snprintf(s.cluster, sizeof(s.cluster), "vmctest");
	snprintf(s.node_name, sizeof(s.node_name), "node%u", node);
	return s;
}

START_TEST(test_slot_round_trip)
{
	static uint8_t block[VMC_LEASE_BLOCK];
	struct vmc_lease_slot in = slot_make(3, 41), out;
	char why[128];

	vmc_lease_slot_encode(&in, block);
	ck_assert_int_eq(vmc_lease_slot_decode(block, sizeof(block), &out, why, sizeof(why)), VMC_LEASE_VALID);
	ck_assert_uint_eq(out.node, 3);
	ck_assert_uint_eq(out.counter, 41);
	ck_assert_uint_eq(out.incarnation, in.incarnation);
	ck_assert_str_eq(out.cluster, "vmctest");
	ck_assert_str_eq(out.node_name, "node3");
	ck_assert(vmc_lease_slot_same(&in, &out));
	in.counter++;
	ck_assert(!vmc_lease_slot_same(&in, &out));
	/* little-endian at fixed offsets, as the header comment draws them */
	ck_assert_mem_eq(block, "VMCSLOT1", 8);
	ck_assert_uint_eq(block[8], 3);
	ck_assert_uint_eq(block[16], 41);
	ck_assert_int_eq(vmc_lease_slot_offset(3), 3 * VMC_LEASE_BLOCK);
	ck_assert_int_eq(vmc_lease_slot_offset(0), -1);
	ck_assert_int_eq(vmc_lease_slot_offset(VMC_LEASE_SLOTS_MAX + 1), -1);
}
END_TEST

START_TEST(test_slot_empty_and_corrupt_refused)
{
	static uint8_t block[VMC_LEASE_BLOCK];
	struct vmc_lease_slot in = slot_make(2, 7), out = { .node = 99 };
	char why[128];

	memset(block, 0, sizeof(block));
	ck_assert_int_eq(vmc_lease_slot_decode(block, sizeof(block), &out, why, sizeof(why)), VMC_LEASE_EMPTY);
	ck_assert_uint_eq(out.node, 99); /* untouched */
	/* every single bit flipped in the record is caught */
	for (size_t bit = 0; bit < 128 * 8; bit++) {
		vmc_lease_slot_encode(&in, block);
		block[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		ck_assert_msg(vmc_lease_slot_decode(block, sizeof(block), &out, why, sizeof(why)) == VMC_LEASE_CORRUPT,
			      "bit %zu flipped was not refused", bit);
	}
	/* a torn write: the first half new, the rest of an older value */
	{
		static uint8_t older[VMC_LEASE_BLOCK];
		struct vmc_lease_slot old = slot_make(2, 6);
		old.written_unix_ms -= 2000;
		vmc_lease_slot_encode(&old, older);
		vmc_lease_slot_encode(&in, block);
		memcpy(block + 20, older + 20, VMC_LEASE_BLOCK - 20);
		ck_assert_int_eq(vmc_lease_slot_decode(block, sizeof(block), &out, why, sizeof(why)), VMC_LEASE_CORRUPT);
		ck_assert_ptr_nonnull(strstr(why, "checksum"));
	}
	/* garbage after the record, a short read, another program's data */
	vmc_lease_slot_encode(&in, block);
	block[VMC_LEASE_BLOCK - 1] = 1;
	ck_assert_int_eq(vmc_lease_slot_decode(block, sizeof(block), &out, why, sizeof(why)), VMC_LEASE_CORRUPT);
	vmc_lease_slot_encode(&in, block);
	ck_assert_int_eq(vmc_lease_slot_decode(block, 512, &out, why, sizeof(why)), VMC_LEASE_CORRUPT);
	memset(block, 'x', sizeof(block));
	ck_assert_int_eq(vmc_lease_slot_decode(block, sizeof(block), &out, why, sizeof(why)), VMC_LEASE_CORRUPT);
	ck_assert_ptr_nonnull(strstr(why, "magic"));
}
END_TEST

START_TEST(test_header_round_trip)
{
	static uint8_t block[VMC_LEASE_BLOCK];
	struct vmc_lease_header in = { .block_size = VMC_LEASE_BLOCK, .slots = VMC_LEASE_SLOTS_MAX }, out;
	struct vmc_lease_slot slot;
	char why[128];

	snprintf(in.cluster, sizeof(in.cluster), "vmctest");
	snprintf(in.volume, sizeof(in.volume), "csv1");
	vmc_lease_header_encode(&in, block);
	ck_assert_int_eq(vmc_lease_header_decode(block, sizeof(block), &out, why, sizeof(why)), VMC_LEASE_VALID);
	ck_assert_str_eq(out.volume, "csv1");
	/* a header is not a slot, nor the other way round */
	ck_assert_int_eq(vmc_lease_slot_decode(block, sizeof(block), &slot, why, sizeof(why)), VMC_LEASE_CORRUPT);
	in.slots = 64;
	vmc_lease_header_encode(&in, block);
	ck_assert_int_eq(vmc_lease_header_decode(block, sizeof(block), &out, why, sizeof(why)), VMC_LEASE_CORRUPT);
	/* CRC-32C's check value */
	ck_assert_uint_eq(vmc_crc32c("123456789", 9), 0xe3069283u);
}
END_TEST

START_TEST(test_lease_timeline)
{
	struct vmc_timeouts t;
	char why[256];

	vmc_timeouts_derive(&t, 1000, 60, 30, 0);
	ck_assert_uint_eq(t.lease_io_ms, 10000);
	ck_assert_uint_eq(t.lease_renewal_ms, 20000);
	ck_assert_uint_eq(t.lease_kill_ms, 60000);
	ck_assert_uint_eq(t.watchdog_ms, 60000);
	ck_assert_uint_eq(t.lease_timeout_ms, 140000); /* sanlock's host-dead time */
	ck_assert_int_eq(vmc_timeouts_check(&t, why, sizeof(why)), 0);
	vmc_timeouts_derive(&t, 1000, 60, 30, 1);
	ck_assert_uint_eq(t.lease_timeout_ms, 14000);
	ck_assert_uint_eq(t.watchdog_ms, 6000);
	ck_assert_uint_eq(t.watchdog_pet_ms, 250);
	for (uint32_t io = 1; io <= 60; io++) {
		for (uint32_t token = 100; token <= 60000; token *= 3) {
			vmc_timeouts_derive(&t, token, 60, 30, io);
			ck_assert_msg(vmc_timeouts_check(&t, why, sizeof(why)) == 0, "io %u token %u: %s", io, token, why);
			/* the proof: a node whose renewals stopped is reset before its lease expires */
			ck_assert_uint_lt(t.lease_kill_ms + t.lease_kill_grace_ms + t.watchdog_ms, t.lease_timeout_ms);
			ck_assert_uint_le(t.watchdog_pet_ms, 1000);
		}
	}
	/* a timeline whose watchdog outlasts the lease is caught */
	vmc_timeouts_derive(&t, 1000, 60, 30, 1);
	t.watchdog_ms = t.lease_timeout_ms;
	ck_assert_int_ne(vmc_timeouts_check(&t, why, sizeof(why)), 0);
	ck_assert_ptr_nonnull(strstr(why, "watchdog"));
}
END_TEST

START_TEST(test_lease_arithmetic)
{
	struct vmc_timeouts t;

	vmc_timeouts_derive(&t, 1000, 60, 30, 1);
	ck_assert(!vmc_lease_expired(&t, 5000, 5000 + 13999));
	ck_assert(vmc_lease_expired(&t, 5000, 5000 + 14000));
	ck_assert(!vmc_lease_expired(&t, 5000, 4000)); /* a clock that went back proves nothing */
	ck_assert_uint_eq(vmc_lease_remaining_ms(&t, 5000, 6000), 13000);
	ck_assert_uint_eq(vmc_lease_remaining_ms(&t, 5000, 30000), 0);
	ck_assert(!vmc_lease_must_kill(&t, 1000, 1000 + 5999));
	ck_assert(vmc_lease_must_kill(&t, 1000, 1000 + 6000));
	ck_assert(vmc_lease_may_pet(&t, 1000, 1000 + 6999));
	ck_assert(!vmc_lease_may_pet(&t, 1000, 1000 + 7000));
}
END_TEST

static void watch_read(struct vmc_lease_watch *w, const struct vmc_lease_slot *s, uint64_t started, uint64_t done)
{
	static uint8_t block[VMC_LEASE_BLOCK];

	if (s != NULL) {
		vmc_lease_slot_encode(s, block);
	} else {
		memset(block, 0, sizeof(block));
	}
	vmc_lease_watch_read(w, block, started, done);
}

START_TEST(test_watch_expires_only_unchanged_after_begin)
{
	struct vmc_timeouts t;
	struct vmc_lease_watch w;
	struct vmc_lease_slot a = slot_make(3, 10), b = slot_make(3, 11);

	vmc_timeouts_derive(&t, 1000, 60, 30, 1);
	vmc_lease_watch_begin(&w, 100000);
	/* a read that started before the loss is no evidence */
	watch_read(&w, &a, 90000, 100010);
	ck_assert(!w.have);
	watch_read(&w, &a, 100000, 100020); /* first seen at 100020 */
	watch_read(&w, &a, 110000, 110005);
	ck_assert(!vmc_lease_watch_expired(&w, &t));
	ck_assert_uint_eq(vmc_lease_watch_remaining_ms(&w, &t, 110005), 14000 - 9985);
	/* a renewal begins the count again from when it was first seen */
	watch_read(&w, &b, 113000, 113004);
	watch_read(&w, &b, 114021, 114030);
	ck_assert(!vmc_lease_watch_expired(&w, &t));
	watch_read(&w, &b, 127003, 127010); /* started 13999 ms after 113004 */
	ck_assert(!vmc_lease_watch_expired(&w, &t));
	watch_read(&w, &b, 127004, 127012);
	ck_assert(vmc_lease_watch_expired(&w, &t));
	ck_assert_uint_eq(w.changes, 2);
}
END_TEST

START_TEST(test_watch_corrupt_and_empty_slots_are_values_too)
{
	struct vmc_timeouts t;
	struct vmc_lease_watch w;
	static uint8_t block[VMC_LEASE_BLOCK];
	struct vmc_lease_slot a = slot_make(2, 5);

	vmc_timeouts_derive(&t, 1000, 60, 30, 1);
	/* a node that never wrote its slot: an empty slot expires like any other */
	vmc_lease_watch_begin(&w, 0);
	watch_read(&w, NULL, 1, 2);
	watch_read(&w, NULL, 14002, 14003);
	ck_assert(vmc_lease_watch_expired(&w, &t));
	/* a slot that changes while corrupt is still being written: no expiry */
	vmc_lease_watch_begin(&w, 0);
	vmc_lease_slot_encode(&a, block);
	block[20] ^= 1;
	vmc_lease_watch_read(&w, block, 1, 2);
	block[21] ^= 1;
	vmc_lease_watch_read(&w, block, 14002, 14003);
	ck_assert(!vmc_lease_watch_expired(&w, &t));
	/* ... and a valid value after it begins again */
	watch_read(&w, &a, 14010, 14011);
	ck_assert_uint_eq(w.seen_ms, 14011);
	ck_assert_uint_eq(w.changes, 3);
}
END_TEST

START_TEST(test_renewal_health)
{
	struct vmc_timeouts t;
	struct vmc_lease_renewal r = { 0 };

	vmc_timeouts_derive(&t, 1000, 60, 30, 1);
	ck_assert_int_eq(vmc_lease_renewal_health(&r, &t, 0), VMC_VOLUME_UNKNOWN);
	vmc_lease_renewal_started(&r, 1000);
	vmc_lease_renewal_done(&r, 1000, 0, NULL);
	ck_assert_int_eq(vmc_lease_renewal_health(&r, &t, 1100), VMC_VOLUME_OK);
	ck_assert_uint_eq(r.ok_ms, 1000);
	vmc_lease_renewal_started(&r, 3000);
	ck_assert_int_eq(vmc_lease_renewal_health(&r, &t, 3900), VMC_VOLUME_OK);  /* out, within T */
	ck_assert_int_eq(vmc_lease_renewal_health(&r, &t, 4001), VMC_VOLUME_HUNG);
	vmc_lease_renewal_done(&r, 3000, EIO, "write: Input/output error");
	ck_assert_int_eq(vmc_lease_renewal_health(&r, &t, 4100), VMC_VOLUME_FAILING);
	ck_assert_uint_eq(r.ok_ms, 1000); /* the kill deadline still runs from the last success */
	ck_assert_str_eq(r.last_why, "write: Input/output error");
	vmc_lease_renewal_started(&r, 5000);
	vmc_lease_renewal_done(&r, 5000, 0, NULL);
	ck_assert_int_eq(vmc_lease_renewal_health(&r, &t, 5100), VMC_VOLUME_OK);
	ck_assert_uint_eq(r.ok_ms, 5000);
}
END_TEST

static struct vmc_volume volume_make(uint32_t coordinator, uint32_t preferred)
{
	struct vmc_volume v = { .coordinator = coordinator, .preferred = preferred };

	snprintf(v.name, sizeof(v.name), "csv1");
	snprintf(v.path, sizeof(v.path), "/srv/csv1");
	return v;
}

static void seen(struct vmc_volume *v, uint32_t node, enum vmc_volume_health h)
{
	struct vmc_volume_seen e = { .node = node, .health = h };

	ck_assert_int_eq(vmc_state_volume_seen_set(v, &e), 0);
}

START_TEST(test_coordinator_choice)
{
	struct vmc_volume v = volume_make(2, 0);

	/* nothing reported yet: the present one stays */
	ck_assert_uint_eq(vmc_volume_coordinator_choose(&v, three, 3), 2);
	seen(&v, 1, VMC_VOLUME_OK);
	seen(&v, 2, VMC_VOLUME_OK);
	seen(&v, 3, VMC_VOLUME_OK);
	ck_assert_uint_eq(vmc_volume_coordinator_choose(&v, three, 3), 2); /* stable */
	/* it fails there: the lowest healthy member takes it */
	seen(&v, 2, VMC_VOLUME_FAILING);
	ck_assert_uint_eq(vmc_volume_coordinator_choose(&v, three, 3), 1);
	v.coordinator = 1;
	/* the coordinator left the view */
	ck_assert_uint_eq(vmc_volume_coordinator_choose(&v, (const uint32_t[]){ 2, 3 }, 2), 3);
	/* an operator's choice wins while it is healthy and a member */
	v.preferred = 3;
	ck_assert_uint_eq(vmc_volume_coordinator_choose(&v, three, 3), 3);
	seen(&v, 3, VMC_VOLUME_HUNG);
	ck_assert_uint_eq(vmc_volume_coordinator_choose(&v, three, 3), 1);
	/* healthy nowhere: none */
	seen(&v, 1, VMC_VOLUME_HUNG);
	v.coordinator = 1;
	ck_assert_uint_eq(vmc_volume_coordinator_choose(&v, three, 3), 0);
}
END_TEST

START_TEST(test_volume_paths)
{
	char why[160];

	ck_assert(vmc_volume_path_valid("/srv/csv1", why, sizeof(why)));
	ck_assert(!vmc_volume_path_valid("srv/csv1", why, sizeof(why)));
	ck_assert(!vmc_volume_path_valid("/", why, sizeof(why)));
	ck_assert(!vmc_volume_path_valid("/srv/csv1/", why, sizeof(why)));
	ck_assert(!vmc_volume_path_valid("/srv//csv1", why, sizeof(why)));
	ck_assert(!vmc_volume_path_valid("/srv/../etc", why, sizeof(why)));
	ck_assert(!vmc_volume_path_valid("/srv/csv1/..", why, sizeof(why)));
	ck_assert(!vmc_volume_path_valid("/srv/./csv1", why, sizeof(why)));
	ck_assert(!vmc_volume_path_valid("/srv/csv\n1", why, sizeof(why)));
	ck_assert(vmc_path_inside("/srv/csv1/a.img", "/srv/csv1"));
	ck_assert(!vmc_path_inside("/srv/csv10/a.img", "/srv/csv1"));
	ck_assert(!vmc_path_inside("/srv/csv1", "/srv/csv1"));
}
END_TEST

/* ---- volumes and locks in the apply path ---- */

static void cluster_with_nodes(struct cluster *c)
{
	cluster_init(c);
	for (uint32_t id = 1; id <= 3; id++) {
		char body[96];
		snprintf(body, sizeof(body), "{\"name\":\"node%u\",\"mem_mib\":4096}", id);
		OK(c, id, VMC_MSG_NODE_FACTS, body);
	}
	OK(c, 1, VMC_MSG_VOLUME_ADD, "{\"name\":\"csv1\",\"path\":\"/srv/csv1\"}");
}

#define VM_ON_CSV1(name, image)                                                                       \
	"{\"definition\":{\"name\":\"" name "\",\"memory_mib\":256,\"boot\":{\"kernel\":\"/k\"},"     \
	"\"preferred_owners\":[\"node2\"],\"disks\":[{\"path\":\"/srv/csv1/" image "\"}]}}"

START_TEST(test_volume_add_refusals)
{
	struct cluster c;

	cluster_with_nodes(&c);
	ck_assert_uint_eq(c.s->volumes[0].coordinator, 1);
	ck_assert_int_eq(send(&c, 2, VMC_MSG_VOLUME_ADD, "{\"name\":\"csv1\",\"path\":\"/srv/other\"}"),
			 -VMC_E_EXISTS);
	ck_assert_int_eq(send(&c, 2, VMC_MSG_VOLUME_ADD, "{\"name\":\"inner\",\"path\":\"/srv/csv1/x\"}"),
			 -VMC_E_EXISTS);
	ck_assert_ptr_nonnull(strstr(c.detail, "overlaps volume csv1"));
	ck_assert_int_eq(send(&c, 2, VMC_MSG_VOLUME_ADD, "{\"name\":\"outer\",\"path\":\"/srv\"}"), -VMC_E_EXISTS);
	ck_assert_int_eq(send(&c, 2, VMC_MSG_VOLUME_ADD, "{\"name\":\"rel\",\"path\":\"srv/x\"}"), -VMC_E_INVALID);
	ck_assert_int_eq(send(&c, 2, VMC_MSG_VOLUME_ADD, "{\"name\":\"bad name\",\"path\":\"/x\"}"),
			 -VMC_E_INVALID);
	ck_assert_int_eq(send(&c, 2, VMC_MSG_VOLUME_ADD, "{\"name\":\"x\"}"), -VMC_E_PROTOCOL);
	ck_assert_int_eq(send(&c, 2, VMC_MSG_VOLUME_REMOVE, "{\"name\":\"nope\"}"), -VMC_E_NOT_FOUND);
	ck_assert_int_eq(send(&c, 2, VMC_MSG_VOLUME_MOVE, "{\"name\":\"csv1\",\"node\":\"node9\"}"),
			 -VMC_E_NOT_FOUND);
	/* node2 has not reported the volume healthy: it cannot coordinate it */
	ck_assert_int_eq(send(&c, 2, VMC_MSG_VOLUME_MOVE, "{\"name\":\"csv1\",\"node\":\"node2\"}"), -VMC_E_BUSY);
	ck_assert_uint_eq(c.s->n_volumes, 1);
	/* a view with an older member takes no volume change */
	c.version = 3;
	ck_assert_int_eq(send(&c, 2, VMC_MSG_VOLUME_ADD, "{\"name\":\"csv2\",\"path\":\"/srv/csv2\"}"),
			 -VMC_E_VERSION);
	vmc_state_free(c.s);
}
END_TEST

START_TEST(test_disks_must_lie_on_a_volume)
{
	struct cluster c;

	cluster_with_nodes(&c);
	ck_assert_int_eq(send(&c, 1, VMC_MSG_GROUP_ADD,
			      "{\"definition\":{\"name\":\"db1\",\"memory_mib\":256,"
			      "\"disks\":[{\"path\":\"/srv/csv2/db1.img\"}]}}"),
			 -VMC_E_INVALID);
	ck_assert_ptr_nonnull(strstr(c.detail, "is on no volume"));
	ck_assert_ptr_nonnull(strstr(c.detail, "\"local\": true"));
	/* lexically inside but escaping it: refused too */
	ck_assert_int_eq(send(&c, 1, VMC_MSG_GROUP_ADD,
			      "{\"definition\":{\"name\":\"db1\",\"memory_mib\":256,"
			      "\"disks\":[{\"path\":\"/srv/csv1/../etc/shadow\"}]}}"),
			 -VMC_E_INVALID);
	OK(&c, 1, VMC_MSG_GROUP_ADD,
	   "{\"definition\":{\"name\":\"db1\",\"memory_mib\":256,"
	   "\"disks\":[{\"path\":\"/var/lib/local/db1.img\",\"local\":true}]}}");
	OK(&c, 1, VMC_MSG_GROUP_ADD, VM_ON_CSV1("web1", "web1.img"));
	ck_assert_uint_eq(c.s->n_groups, 2);
	/* a volume a VM uses cannot go */
	ck_assert_int_eq(send(&c, 1, VMC_MSG_VOLUME_REMOVE, "{\"name\":\"csv1\"}"), -VMC_E_BUSY);
	ck_assert_ptr_nonnull(strstr(c.detail, "used by vm web1"));
	OK(&c, 1, VMC_MSG_GROUP_REMOVE, "{\"name\":\"web1\"}");
	OK(&c, 1, VMC_MSG_VOLUME_REMOVE, "{\"name\":\"csv1\"}");
	ck_assert_uint_eq(c.s->n_volumes, 0);
	vmc_state_free(c.s);
}
END_TEST

START_TEST(test_locks_follow_the_group)
{
	struct cluster c;
	const struct vmc_image_lock *l;
	struct vmc_state *copy;
	char body[256];

	cluster_with_nodes(&c);
	c.s->epoch = 7;
	OK(&c, 1, VMC_MSG_GROUP_ADD, VM_ON_CSV1("web1", "shared.img"));
	OK(&c, 1, VMC_MSG_GROUP_ADD, VM_ON_CSV1("web2", "shared.img"));
	ck_assert_ptr_null(lock_of(&c, "/srv/csv1/shared.img")); /* offline: no lock */
	OK(&c, 1, VMC_MSG_GROUP_START, "{\"name\":\"web1\"}");
	l = lock_of(&c, "/srv/csv1/shared.img");
	ck_assert_ptr_nonnull(l);
	ck_assert_str_eq(l->group, "web1");
	ck_assert_uint_eq(l->node, 2);
	ck_assert_uint_eq(l->epoch, 7);
	ck_assert(vmc_locks_held_by(c.s, vmc_state_group_find(c.s, "web1"), 2));
	ck_assert(!vmc_locks_held_by(c.s, vmc_state_group_find(c.s, "web1"), 3));
	/* another group's start is refused, naming the holder */
	ck_assert_int_eq(send(&c, 1, VMC_MSG_GROUP_START, "{\"name\":\"web2\"}"), -VMC_E_BUSY);
	ck_assert_ptr_nonnull(strstr(c.detail, "locked by vm web1 on node2"));
	ck_assert_int_eq(vmc_state_group_find(c.s, "web2")->state, VMC_GROUP_OFFLINE);
	/* the locks survive a snapshot round trip (a full cluster restart reads one) */
	copy = vmc_state_copy(c.s);
	ck_assert_ptr_nonnull(copy);
	ck_assert_uint_eq(copy->volumes[0].n_locks, 1);
	ck_assert_str_eq(copy->volumes[0].locks[0].group, "web1");
	vmc_state_free(copy);
	/* its node is lost: the lock stays with it until it is proven dead */
	c.members[0] = 1;
	c.members[1] = 3;
	c.n_members = 2;
	OK(&c, 1, VMC_MSG_VOLUME_HEALTH, "{\"name\":\"csv1\",\"health\":\"ok\",\"errno\":0,\"at_s\":1}");
	ck_assert_uint_eq(lock_of(&c, "/srv/csv1/shared.img")->node, 2);
	c.s->epoch = 8;
	snprintf(body, sizeof(body),
		 "{\"node\":2,\"method\":\"agent\",\"epoch\":8,\"reports\":[[1,[]],[3,[]]]}");
	OK(&c, 1, VMC_MSG_NODE_FENCED, body);
	l = lock_of(&c, "/srv/csv1/shared.img");
	ck_assert_ptr_nonnull(l);
	ck_assert_str_eq(l->group, "web1");
	ck_assert_uint_eq(l->node, vmc_state_group_find(c.s, "web1")->owner);
	ck_assert_uint_ne(l->node, 2);
	ck_assert_uint_eq(l->epoch, 8);
	/* it stops: released, and the other group may start */
	snprintf(body, sizeof(body), "{\"name\":\"web1\",\"event\":\"stopped\",\"at_s\":5,\"attempt\":%u}",
		 vmc_state_group_find(c.s, "web1")->attempt);
	OK(&c, l->node, VMC_MSG_GROUP_REPORT, body);
	ck_assert_ptr_null(lock_of(&c, "/srv/csv1/shared.img"));
	OK(&c, 1, VMC_MSG_GROUP_START, "{\"name\":\"web2\"}");
	ck_assert_str_eq(lock_of(&c, "/srv/csv1/shared.img")->group, "web2");
	vmc_state_free(c.s);
}
END_TEST

START_TEST(test_running_group_cannot_take_a_held_image)
{
	struct cluster c;

	cluster_with_nodes(&c);
	OK(&c, 1, VMC_MSG_GROUP_ADD, VM_ON_CSV1("web1", "a.img"));
	OK(&c, 1, VMC_MSG_GROUP_ADD, VM_ON_CSV1("web2", "b.img"));
	OK(&c, 1, VMC_MSG_GROUP_START, "{\"name\":\"web1\"}");
	OK(&c, 1, VMC_MSG_GROUP_START, "{\"name\":\"web2\"}");
	ck_assert_int_eq(send(&c, 1, VMC_MSG_GROUP_SET,
			      "{\"name\":\"web2\",\"set\":[\"disks=[{\\\"path\\\":\\\"/srv/csv1/a.img\\\"}]\"]}"),
			 -VMC_E_BUSY);
	ck_assert_ptr_nonnull(strstr(c.detail, "locked by vm web1"));
	ck_assert_str_eq(lock_of(&c, "/srv/csv1/b.img")->group, "web2");
	vmc_state_free(c.s);
}
END_TEST

START_TEST(test_volume_health_moves_coordinator_and_vms)
{
	struct cluster c;
	struct vmc_group *g;
	char body[160];

	cluster_with_nodes(&c);
	for (uint32_t id = 1; id <= 3; id++) {
		OK(&c, id, VMC_MSG_VOLUME_HEALTH, "{\"name\":\"csv1\",\"health\":\"ok\",\"errno\":0,\"at_s\":1}");
	}
	OK(&c, 1, VMC_MSG_VOLUME_MOVE, "{\"name\":\"csv1\",\"node\":\"node2\"}");
	ck_assert_uint_eq(c.s->volumes[0].coordinator, 2);
	OK(&c, 1, VMC_MSG_GROUP_ADD, VM_ON_CSV1("db1", "db1.img"));
	OK(&c, 1, VMC_MSG_GROUP_START, "{\"name\":\"db1\"}");
	g = vmc_state_group_find(c.s, "db1");
	ck_assert_uint_eq(g->owner, 2);
	/* it fails on node2: the coordinator moves at once */
	OK(&c, 2, VMC_MSG_VOLUME_HEALTH,
	   "{\"name\":\"csv1\",\"health\":\"failing\",\"errno\":5,\"detail\":\"EIO\",\"at_s\":2}");
	ck_assert_uint_eq(c.s->volumes[0].coordinator, 1);
	ck_assert_ptr_nonnull(strstr(c.detail, "coordinator moves to node1"));
	/* node2 kills db1 and says why: it restarts elsewhere, no failure counted */
	snprintf(body, sizeof(body),
		 "{\"name\":\"db1\",\"event\":\"volume_lost\",\"reason\":\"volume csv1 failing\",\"at_s\":3,"
		 "\"attempt\":%u}", g->attempt);
	OK(&c, 2, VMC_MSG_GROUP_REPORT, body);
	ck_assert_int_eq(g->state, VMC_GROUP_STARTING);
	ck_assert_uint_ne(g->owner, 2);
	ck_assert_uint_eq(g->n_failures, 0);
	ck_assert_uint_eq(lock_of(&c, "/srv/csv1/db1.img")->node, g->owner);
	/* the operator's choice comes back once node2 is healthy again */
	OK(&c, 2, VMC_MSG_VOLUME_HEALTH, "{\"name\":\"csv1\",\"health\":\"ok\",\"errno\":0,\"at_s\":4}");
	ck_assert_uint_eq(c.s->volumes[0].coordinator, 2);
	ck_assert_int_eq(send(&c, 2, VMC_MSG_VOLUME_HEALTH, "{\"name\":\"csv1\",\"health\":\"maybe\",\"errno\":0,"
							  "\"at_s\":4}"),
			 -VMC_E_PROTOCOL);
	vmc_state_free(c.s);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("volumes");
	TCase *codec = tcase_create("lease slot");
	TCase *time = tcase_create("lease time");
	TCase *vol = tcase_create("volumes");

	tcase_add_test(codec, test_slot_round_trip);
	tcase_add_test(codec, test_slot_empty_and_corrupt_refused);
	tcase_add_test(codec, test_header_round_trip);
	tcase_add_test(time, test_lease_timeline);
	tcase_add_test(time, test_lease_arithmetic);
	tcase_add_test(time, test_watch_expires_only_unchanged_after_begin);
	tcase_add_test(time, test_watch_corrupt_and_empty_slots_are_values_too);
	tcase_add_test(time, test_renewal_health);
	tcase_add_test(vol, test_coordinator_choice);
	tcase_add_test(vol, test_volume_paths);
	tcase_add_test(vol, test_volume_add_refusals);
	tcase_add_test(vol, test_disks_must_lie_on_a_volume);
	tcase_add_test(vol, test_locks_follow_the_group);
	tcase_add_test(vol, test_running_group_cannot_take_a_held_image);
	tcase_add_test(vol, test_volume_health_moves_coordinator_and_vms);
	suite_add_tcase(s, codec);
	suite_add_tcase(s, time);
	suite_add_tcase(s, vol);
	return check_suite_run(s);
}
