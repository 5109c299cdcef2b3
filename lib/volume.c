/*
 * Volume paths and the coordinator choice (volume.h).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "volume.h"

bool vmc_volume_path_valid(const char *path, char *why, size_t len)
{
	size_t n = strlen(path);

	if (path[0] != '/') {
		snprintf(why, len, "'%s' is not an absolute path", path);
		return false;
	}
	if (n >= VMC_VOLUME_PATH_MAX) {
		snprintf(why, len, "a path longer than %d characters", VMC_VOLUME_PATH_MAX - 1);
		return false;
	}
	if (n == 1) {
		snprintf(why, len, "'/' cannot be a volume");
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)path[i] < 0x20 || path[i] == 0x7f) {
			snprintf(why, len, "the path contains control characters");
			return false;
		}
	}
	if (path[n - 1] == '/' || strstr(path, "//") != NULL || strstr(path, "/./") != NULL ||
	    strstr(path, "/../") != NULL || (n >= 2 && strcmp(path + n - 2, "/.") == 0) ||
	    (n >= 3 && strcmp(path + n - 3, "/..") == 0)) {
		snprintf(why, len, "'%s' is not in canonical form (resolve it first)", path);
		return false;
	}
	return true;
}

bool vmc_path_inside(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return strncmp(path, dir, n) == 0 && path[n] == '/' && path[n + 1] != '\0';
}

const struct vmc_volume_seen *vmc_volume_seen_by(const struct vmc_volume *v, uint32_t node)
{
	for (size_t i = 0; i < v->n_seen; i++) {
		if (v->seen[i].node == node) {
			return &v->seen[i];
		}
	}
	return NULL;
}

static bool is_member(const uint32_t *members, size_t n, uint32_t node)
{
	for (size_t i = 0; i < n; i++) {
		if (members[i] == node) {
			return true;
		}
	}
	return false;
}

static enum vmc_volume_health health_of(const struct vmc_volume *v, uint32_t node)
{
	const struct vmc_volume_seen *s = vmc_volume_seen_by(v, node);

	return s != NULL ? s->health : VMC_VOLUME_UNKNOWN;
}

static bool bad(enum vmc_volume_health h)
{
	return h == VMC_VOLUME_FAILING || h == VMC_VOLUME_HUNG;
}

/* The lowest member whose health passes want (ok only, or anything but bad). */
static uint32_t lowest_member(const struct vmc_volume *v, const uint32_t *members, size_t n, bool ok_only)
{
	uint32_t best = 0;

	for (size_t i = 0; i < n; i++) {
		enum vmc_volume_health h = health_of(v, members[i]);
		bool fits = ok_only ? h == VMC_VOLUME_OK : !bad(h);
		if (fits && (best == 0 || members[i] < best)) {
			best = members[i];
		}
	}
	return best;
}

uint32_t vmc_volume_coordinator_choose(const struct vmc_volume *v, const uint32_t *members, size_t n)
{
	uint32_t best;

	if (v->preferred != 0 && is_member(members, n, v->preferred) &&
	    health_of(v, v->preferred) == VMC_VOLUME_OK) {
		return v->preferred;
	}
	if (v->coordinator != 0 && is_member(members, n, v->coordinator) && !bad(health_of(v, v->coordinator))) {
		return v->coordinator;
	}
	best = lowest_member(v, members, n, true);
	return best != 0 ? best : lowest_member(v, members, n, false);
}
