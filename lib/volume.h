/*
 * Cluster shared volumes in the replicated state: a directory every node
 * mounts (NFS, GFS2/OCFS2, a shared LVM; in tests a directory on the
 * host), the health each node reported for it, its coordinator, and the
 * image locks on it.
 *
 * The coordinator writes the lease file's header and is the volume's
 * one writer of shared metadata; it is chosen in the apply path, from
 * replicated facts only (coordinator_choose below), so every node names
 * the same one.
 *
 * An image lock says which group, on which node, may open a disk image:
 * taken when the group enters `starting` (exclusive: a start is refused
 * while another group holds one of its images), moved with the group
 * when it is recovered, failed over or migrated (one CPG message each),
 * released when it stops, and broken only when its node is proven dead
 * — the group's ownership changes only then (lifecycle.h).
 */
#ifndef VMC_VOLUME_H
#define VMC_VOLUME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lease_watch.h"

#define VMC_VOLUMES_MAX 32 /* placement keeps them in a 32-bit mask */
#define VMC_VOLUME_PATH_MAX 512
#define VMC_VOLUME_SEEN_MAX 64 /* one per node: VMC_STATE_NODES_MAX */

/* What one node last reported about a volume (VOLUME_HEALTH). */
struct vmc_volume_seen {
	uint32_t node;
	enum vmc_volume_health health;
	int32_t err;        /* the errno, when failing */
	uint64_t since_s;   /* the reporter's wall clock, for operators only */
	char detail[96];
};

struct vmc_image_lock {
	char image[VMC_VOLUME_PATH_MAX];
	char group[64];
	uint32_t node;
	uint64_t epoch;     /* the epoch it was granted or moved in */
	uint32_t attempt;   /* the group's start attempt that took it */
};

struct vmc_volume {
	char name[64];
	char path[VMC_VOLUME_PATH_MAX];
	uint32_t coordinator;  /* 0 while no node can be */
	uint32_t preferred;    /* `volume move`; 0: none */
	struct vmc_volume_seen seen[VMC_VOLUME_SEEN_MAX]; /* sorted by node */
	size_t n_seen;
	struct vmc_image_lock *locks; /* sorted by image */
	size_t n_locks;
	size_t cap_locks;
};

/*
 * An absolute path in canonical form: no "." or ".." component, no
 * doubled or trailing slash, not "/", printable, shorter than
 * VMC_VOLUME_PATH_MAX. The daemon resolves what an operator typed
 * (realpath) before it gets here; replicas only check the form.
 */
bool vmc_volume_path_valid(const char *path, char *why, size_t len);
/* Is path inside dir (both canonical)? dir itself is not inside. */
bool vmc_path_inside(const char *path, const char *dir);

const struct vmc_volume_seen *vmc_volume_seen_by(const struct vmc_volume *v, uint32_t node);

/*
 * The coordinator, from what the nodes reported and who is in the view:
 * the preferred node while it is a member and reports the volume ok; else
 * the present coordinator while it is a member and does not report it
 * failing or hung; else the member with the lowest id that reports it
 * ok; else, while none has, the lowest member not reporting it failing or
 * hung; else 0.
 */
uint32_t vmc_volume_coordinator_choose(const struct vmc_volume *v, const uint32_t *members, size_t n);

#endif
