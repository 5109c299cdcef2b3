/*
 * The check of paths root uses (privilege.h). It reads file metadata:
 * callers run it where a hung file system cannot stall the daemon (in a
 * child, or on files that live on local disks, such as fence agents).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "privilege.h"

/* dir: the directory checked, NULL for the file itself. */
static int owner_check(const char *what, const char *path, const char *dir, const struct stat *st,
		       char *why, size_t len)
{
	const char *it = dir ? dir : "it";

	if (st->st_uid != 0) {
		snprintf(why, len, "%s %s: %s is owned by uid %u, not root", what, path, it,
			 (unsigned int)st->st_uid);
		return -EPERM;
	}
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) != 0 && !(dir && (st->st_mode & S_ISVTX) != 0)) {
		snprintf(why, len, "%s %s: %s is writable by %s", what, path, it,
			 (st->st_mode & S_IWOTH) ? "others" : "its group");
		return -EPERM;
	}
	return 0;
}

int vmcd_path_root_safe(const char *what, const char *path, bool block_ok, char *why, size_t len)
{
	char real[PATH_MAX];
	struct stat st;
	int rc;

	if (path == NULL || path[0] != '/') {
		snprintf(why, len, "%s %s: not an absolute path", what, path ? path : "(none)");
		return -EINVAL;
	}
	if (realpath(path, real) == NULL || stat(real, &st) != 0) {
		rc = -errno;
		snprintf(why, len, "%s %s: %s", what, path, strerror(errno));
		return rc;
	}
	if (!S_ISREG(st.st_mode) && !(block_ok && S_ISBLK(st.st_mode))) {
		snprintf(why, len, "%s %s: not a regular file%s", what, path, block_ok ? " or block device" : "");
		return -EINVAL;
	}
	rc = owner_check(what, path, NULL, &st, why, len);
	/* Every directory above it: whoever may write one may swap the file. */
	for (char *slash = strrchr(real, '/'); rc == 0 && slash != NULL; slash = strrchr(real, '/')) {
		*slash = '\0';
		if (stat(real[0] ? real : "/", &st) != 0) {
			rc = -errno;
			snprintf(why, len, "%s %s: %s: %s", what, path, real[0] ? real : "/", strerror(errno));
			break;
		}
		rc = owner_check(what, path, real[0] ? real : "/", &st, why, len);
		if (real[0] == '\0') {
			break;
		}
	}
	return rc;
}
