/*
 * The on-disk format of host leases (delta leases, as sanlock's).
 *
 * Each volume holds one lease file, VOLUME/.vmcluster-leases: blocks of
 * VMC_LEASE_BLOCK bytes, read and written with O_DIRECT, so that a read
 * sees the storage and not a page cache, and each write is one aligned
 * block. Block 0 is the header, written by the volume's coordinator;
 * block N is the slot of corosync node id N (1 to VMC_LEASE_SLOTS_MAX),
 * written only by that node. A slot's value changes on every renewal;
 * another node proves the owner dead by watching it stay unchanged for
 * the lease timeout on its own clock (timeouts.h). Nothing in a slot is a
 * time another node compares.
 *
 * Both records are little-endian, at the start of their block; the rest
 * of the block is zero. The checksum is CRC-32C of the bytes before it.
 *
 *   slot (node N)                       header (block 0)
 *   off size field                      off size field
 *    0   8  magic "VMCSLOT1"             0   8  magic "VMCHEAD1"
 *    8   4  node id (= N)                8   4  block size (4096)
 *   12   4  flags (zero; reserved)      12   4  slots (255)
 *   16   8  counter (+1 per renewal)    16  32  cluster name
 *   24   8  incarnation (per daemon     48  64  volume name
 *           start, random)             112   4  reserved, zero
 *   32   8  written, Unix ms (for       116   4  CRC-32C of bytes 0-115
 *           operators only)
 *   40  32  cluster name
 *   72  48  node name
 *  120   4  reserved, zero
 *  124   4  CRC-32C of bytes 0-123
 *
 * A block that is all zero was never written (a new node, a sparse
 * file). Anything else that does not decode — a torn write, a bit flip,
 * another program's data — is refused with the reason; a watcher counts
 * such a slot as not renewed, and its owner, reading back its own write,
 * as a failed renewal.
 */
#ifndef VMC_LEASE_SLOT_H
#define VMC_LEASE_SLOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VMC_LEASE_BLOCK 4096
#define VMC_LEASE_SLOTS_MAX 255
#define VMC_LEASE_FILE_NAME ".vmcluster-leases"
#define VMC_LEASE_FILE_SIZE ((size_t)(VMC_LEASE_SLOTS_MAX + 1) * VMC_LEASE_BLOCK)

struct vmc_lease_slot {
	uint32_t node;
	uint32_t flags;
	uint64_t counter;
	uint64_t incarnation;
	uint64_t written_unix_ms;
	char cluster[32];
	char node_name[48];
};

struct vmc_lease_header {
	uint32_t block_size;
	uint32_t slots;
	char cluster[32];
	char volume[64];
};

enum vmc_lease_decode {
	VMC_LEASE_VALID = 0,
	VMC_LEASE_EMPTY,     /* all zero: never written */
	VMC_LEASE_CORRUPT,   /* anything else: why says what */
};

/* The block's offset in the lease file of node's slot; -1 when node has none. */
int64_t vmc_lease_slot_offset(uint32_t node);

/* Into a block of VMC_LEASE_BLOCK bytes (strings are cut to fit). */
void vmc_lease_slot_encode(const struct vmc_lease_slot *s, uint8_t *block);
enum vmc_lease_decode vmc_lease_slot_decode(const uint8_t *block, size_t len, struct vmc_lease_slot *out,
					    char *why, size_t why_len);
void vmc_lease_header_encode(const struct vmc_lease_header *h, uint8_t *block);
enum vmc_lease_decode vmc_lease_header_decode(const uint8_t *block, size_t len, struct vmc_lease_header *out,
					      char *why, size_t why_len);

/* Do two decoded slots hold the same value? (what a watcher compares) */
bool vmc_lease_slot_same(const struct vmc_lease_slot *a, const struct vmc_lease_slot *b);

uint32_t vmc_crc32c(const void *data, size_t len);

#endif
