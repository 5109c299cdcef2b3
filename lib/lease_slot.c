/*
 * The lease slot and header codec (lease_slot.h).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "lease_slot.h"
#include "msg.h"

#define SLOT_MAGIC "VMCSLOT1"
#define HEAD_MAGIC "VMCHEAD1"
#define SLOT_CRC_AT 124
#define HEAD_CRC_AT 116

/*
 * CRC-32C (Castagnoli), reflected, as iSCSI and ext4 use it. Bit by bit:
 * a record is 128 bytes, and no table means nothing shared between the
 * lease I/O threads.
 */
uint32_t vmc_crc32c(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t crc = 0xffffffffu;

	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++) {
			crc = (crc & 1) ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
		}
	}
	return crc ^ 0xffffffffu;
}

int64_t vmc_lease_slot_offset(uint32_t node)
{
	if (node == 0 || node > VMC_LEASE_SLOTS_MAX) {
		return -1;
	}
	return (int64_t)node * VMC_LEASE_BLOCK;
}

/* A NUL-padded field from a string, cut to fit and always terminated. */
static void put_text(uint8_t *p, size_t size, const char *text)
{
	size_t n = strnlen(text, size - 1);

	memset(p, 0, size);
	memcpy(p, text, n);
}

/* A NUL-padded field into a string: -1 when it is not terminated or not printable. */
static int get_text(const uint8_t *p, size_t size, char *out)
{
	size_t n = strnlen((const char *)p, size);

	if (n == size) {
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (p[i] < 0x20 || p[i] > 0x7e) {
			return -1;
		}
	}
	for (size_t i = n; i < size; i++) {
		if (p[i] != 0) {
			return -1;
		}
	}
	memcpy(out, p, n + 1);
	return 0;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i] != 0) {
			return false;
		}
	}
	return true;
}

void vmc_lease_slot_encode(const struct vmc_lease_slot *s, uint8_t *block)
{
	memset(block, 0, VMC_LEASE_BLOCK);
	memcpy(block, SLOT_MAGIC, 8);
	vmc_put_le32(block + 8, s->node);
	vmc_put_le32(block + 12, s->flags);
	vmc_put_le64(block + 16, s->counter);
	vmc_put_le64(block + 24, s->incarnation);
	vmc_put_le64(block + 32, s->written_unix_ms);
	put_text(block + 40, 32, s->cluster);
	put_text(block + 72, 48, s->node_name);
	vmc_put_le32(block + SLOT_CRC_AT, vmc_crc32c(block, SLOT_CRC_AT));
}

/* The checks both records share: length, emptiness, magic, checksum. */
static enum vmc_lease_decode block_check(const uint8_t *block, size_t len, const char *magic, size_t crc_at,
					 const char *what, char *why, size_t why_len)
{
	if (len < VMC_LEASE_BLOCK) {
		snprintf(why, why_len, "%s: %zu bytes, a block is %d", what, len, VMC_LEASE_BLOCK);
		return VMC_LEASE_CORRUPT;
	}
	if (all_zero(block, VMC_LEASE_BLOCK)) {
		snprintf(why, why_len, "%s: never written", what);
		return VMC_LEASE_EMPTY;
	}
	if (memcmp(block, magic, 8) != 0) {
		snprintf(why, why_len, "%s: no %s magic (not a vmcluster lease file, or overwritten)", what,
			 magic);
		return VMC_LEASE_CORRUPT;
	}
	if (vmc_get_le32(block + crc_at) != vmc_crc32c(block, crc_at)) {
		snprintf(why, why_len, "%s: checksum mismatch (a torn or damaged write)", what);
		return VMC_LEASE_CORRUPT;
	}
	if (!all_zero(block + crc_at + 4, VMC_LEASE_BLOCK - crc_at - 4)) {
		snprintf(why, why_len, "%s: data after the record (damaged)", what);
		return VMC_LEASE_CORRUPT;
	}
	return VMC_LEASE_VALID;
}

enum vmc_lease_decode vmc_lease_slot_decode(const uint8_t *block, size_t len, struct vmc_lease_slot *out,
					    char *why, size_t why_len)
{
	struct vmc_lease_slot s = { 0 };
	enum vmc_lease_decode d = block_check(block, len, SLOT_MAGIC, SLOT_CRC_AT, "lease slot", why, why_len);

	if (d != VMC_LEASE_VALID) {
		return d;
	}
	s.node = vmc_get_le32(block + 8);
	s.flags = vmc_get_le32(block + 12);
	s.counter = vmc_get_le64(block + 16);
	s.incarnation = vmc_get_le64(block + 24);
	s.written_unix_ms = vmc_get_le64(block + 32);
	if (get_text(block + 40, 32, s.cluster) != 0 || get_text(block + 72, 48, s.node_name) != 0 ||
	    vmc_get_le32(block + 120) != 0) {
		snprintf(why, why_len, "lease slot: malformed names or reserved bytes");
		return VMC_LEASE_CORRUPT;
	}
	if (s.node == 0 || s.node > VMC_LEASE_SLOTS_MAX) {
		snprintf(why, why_len, "lease slot: node id %u out of range", s.node);
		return VMC_LEASE_CORRUPT;
	}
	*out = s;
	return VMC_LEASE_VALID;
}

void vmc_lease_header_encode(const struct vmc_lease_header *h, uint8_t *block)
{
	memset(block, 0, VMC_LEASE_BLOCK);
	memcpy(block, HEAD_MAGIC, 8);
	vmc_put_le32(block + 8, h->block_size);
	vmc_put_le32(block + 12, h->slots);
	put_text(block + 16, 32, h->cluster);
	put_text(block + 48, 64, h->volume);
	vmc_put_le32(block + HEAD_CRC_AT, vmc_crc32c(block, HEAD_CRC_AT));
}

enum vmc_lease_decode vmc_lease_header_decode(const uint8_t *block, size_t len, struct vmc_lease_header *out,
					      char *why, size_t why_len)
{
	struct vmc_lease_header h = { 0 };
	enum vmc_lease_decode d = block_check(block, len, HEAD_MAGIC, HEAD_CRC_AT, "lease header", why, why_len);

	if (d != VMC_LEASE_VALID) {
		return d;
	}
	h.block_size = vmc_get_le32(block + 8);
	h.slots = vmc_get_le32(block + 12);
	if (get_text(block + 16, 32, h.cluster) != 0 || get_text(block + 48, 64, h.volume) != 0 ||
	    vmc_get_le32(block + 112) != 0) {
		snprintf(why, why_len, "lease header: malformed names or reserved bytes");
		return VMC_LEASE_CORRUPT;
	}
	if (h.block_size != VMC_LEASE_BLOCK || h.slots != VMC_LEASE_SLOTS_MAX) {
		snprintf(why, why_len, "lease header: %u blocks of %u bytes, this build writes %d of %d",
			 h.slots, h.block_size, VMC_LEASE_SLOTS_MAX, VMC_LEASE_BLOCK);
		return VMC_LEASE_CORRUPT;
	}
	*out = h;
	return VMC_LEASE_VALID;
}

bool vmc_lease_slot_same(const struct vmc_lease_slot *a, const struct vmc_lease_slot *b)
{
	return a->node == b->node && a->counter == b->counter && a->incarnation == b->incarnation &&
	       a->flags == b->flags && a->written_unix_ms == b->written_unix_ms;
}
