/*
 * Persistence of the applied state: STATE_DIR/state.json, replaced
 * atomically (write a temporary file, fsync it, rename it over the old one,
 * fsync the directory), so a crash leaves either the old or the new state,
 * never a torn one. A cold-started cluster continues from the highest
 * config_version among the members (the sync in lib/replica.c does that).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "vmclusterd.h"

#define STATE_FILE "state.json"

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0) {
		return -errno;
	}
	if (fsync(fd) != 0) {
		rc = -errno;
	}
	close(fd);
	return rc;
}

int vmcd_persist_save(const char *state_dir, const struct vmc_state *s)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	char *text = vmc_state_to_string(s);
	int fd, rc;

	if (text == NULL) {
		return -ENOMEM;
	}
	snprintf(path, sizeof(path), "%s/%s", state_dir, STATE_FILE);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", state_dir, STATE_FILE);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		free(text);
		return rc;
	}
	rc = write_all(fd, text, strlen(text));
	if (rc == 0 && write_all(fd, "\n", 1) == 0 && fsync(fd) != 0) {
		rc = -errno;
	}
	free(text);
	if (close(fd) != 0 && rc == 0) {
		rc = -errno;
	}
	if (rc == 0 && rename(tmp, path) != 0) {
		rc = -errno;
	}
	if (rc == 0) {
		rc = fsync_dir(state_dir);
	} else {
		unlink(tmp);
	}
	return rc;
}

static char *file_read(const char *path, int *rc)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0;

	if (f == NULL) {
		*rc = -errno;
		return NULL;
	}
	for (;;) {
		if (cap - len < 65536) {
			char *grown = realloc(buf, cap + 262144);
			if (grown == NULL) {
				free(buf);
				fclose(f);
				*rc = -ENOMEM;
				return NULL;
			}
			buf = grown;
			cap += 262144;
		}
		size_t n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0) {
			break;
		}
	}
	buf[len] = '\0';
	*rc = ferror(f) ? -EIO : 0;
	fclose(f);
	if (*rc != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

int vmcd_persist_load(const char *state_dir, struct vmc_state **out)
{
	char path[PATH_MAX];
	char err[512];
	char *text;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", state_dir, STATE_FILE);
	text = file_read(path, &rc);
	if (text == NULL && rc == -ENOENT) {
		log_notice("no persisted state at %s: starting empty (config_version 0)", path);
		*out = vmc_state_new();
		return *out ? 0 : -ENOMEM;
	}
	if (text == NULL) {
		log_err("cannot read %s: %s", path, strerror(-rc));
		return rc;
	}
	rc = vmc_state_from_string(text, out, err, sizeof(err));
	free(text);
	if (rc != 0) {
		log_err("%s is unusable (%s): move it aside to start this node empty; it will then "
			"receive the state from the other nodes", path, err);
		return rc;
	}
	log_notice("loaded persisted state from %s: config_version %llu, %zu vms", path,
		   (unsigned long long)(*out)->config_version, (*out)->n_groups);
	return 0;
}

void vmcd_commit(struct vmcd *d)
{
	int rc;

	if (d->replica.dirty) {
		rc = vmcd_persist_save(d->opt.state_dir, d->replica.state);
		if (rc != 0) {
			/* Acknowledging changes we could not make durable would be a lie. */
			log_err("cannot persist state to %s: %s; stopping", d->opt.state_dir, strerror(-rc));
			vmcd_shutdown(d, VMCD_EXIT_PERSIST);
			return;
		}
		d->replica.dirty = false;
	}
	vmcd_ipc_flush(d);
}
