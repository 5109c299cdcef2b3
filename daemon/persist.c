/*
 * Persistence of the applied state: STATE_DIR/state.json, a snapshot
 * replaced atomically (write a temporary file, fsync it, rename it over the
 * old one, fsync the directory), plus STATE_DIR/journal.log, the changes
 * applied since (lib/journal.h), appended and fdatasync()ed once per batch
 * of deliveries before any client hears of them. A cold-started cluster continues from the highest
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

#include "journal.h"
#include "log.h"
#include "persist.h"

#define STATE_FILE "state.json"
#define JOURNAL_FILE "journal.log"
/* Past this many journal lines the next commit writes a snapshot instead. */
#define JOURNAL_LINES_MAX 4096

static int journal_fd = -1;
static size_t journal_lines; /* lines in the journal file since the last snapshot */

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

static int snapshot_save(const char *state_dir, const struct vmc_state *s)
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
	if (rc == 0) {
		rc = write_all(fd, "\n", 1);
	}
	if (rc == 0 && fsync(fd) != 0) {
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

static char *file_read(const char *path, size_t *len_out, int *rc)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0;

	if (f == NULL) {
		*rc = -errno;
		return NULL;
	}
	for (;;) {
		size_t n;
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
		n = fread(buf + len, 1, cap - len - 1, f);
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
	*len_out = len;
	return buf;
}

static int snapshot_load(const char *state_dir, struct vmc_state **out)
{
	char path[PATH_MAX];
	char err[512];
	size_t len;
	char *text;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", state_dir, STATE_FILE);
	text = file_read(path, &len, &rc);
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
		log_err("%s is unusable (%s): move it and %s aside to start this node empty; it will "
			"then receive the state from the other nodes", path, err, JOURNAL_FILE);
	}
	return rc;
}

/*
 * Replays the journal on top of the snapshot. A last line without its
 * newline was torn by a crash: it is cut off so later appends start clean.
 */
static int journal_load(const char *state_dir, struct vmc_state *s)
{
	char path[PATH_MAX];
	char err[512];
	size_t len, applied = 0;
	char *text, *last_nl;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", state_dir, JOURNAL_FILE);
	text = file_read(path, &len, &rc);
	if (text == NULL && rc != -ENOENT) {
		log_err("cannot read %s: %s", path, strerror(-rc));
	}
	if (text == NULL) {
		return rc == -ENOENT ? 0 : rc;
	}
	last_nl = strrchr(text, '\n');
	if ((last_nl ? (size_t)(last_nl - text) + 1 : 0) != len) {
		size_t keep = last_nl ? (size_t)(last_nl - text) + 1 : 0;
		log_warn("%s ends with a torn line (%zu bytes) from a crash: cutting it off", path, len - keep);
		if (truncate(path, (off_t)keep) != 0) {
			rc = -errno;
			free(text);
			log_err("cannot truncate %s: %s", path, strerror(-rc));
			return rc;
		}
	}
	rc = vmc_journal_replay(s, text, &applied, err, sizeof(err));
	free(text);
	if (rc != 0) {
		log_err("%s does not replay on top of %s (%s): move both aside to start this node empty; "
			"it will then receive the state from the other nodes", path, STATE_FILE, err);
		return rc;
	}
	journal_lines = applied;
	return 0;
}

int vmcd_persist_load(const char *state_dir, struct vmc_state **out)
{
	int rc = snapshot_load(state_dir, out);

	if (rc == 0) {
		rc = journal_load(state_dir, *out);
		if (rc != 0) {
			vmc_state_free(*out);
			*out = NULL;
		}
	}
	if (rc == 0) {
		log_notice("loaded persisted state from %s: epoch %llu, config_version %llu, %zu vms "
			   "(%zu journal entries replayed)",
			   state_dir, (unsigned long long)(*out)->epoch,
			   (unsigned long long)(*out)->config_version, (*out)->n_groups, journal_lines);
	}
	return rc;
}

static int journal_open(const char *state_dir, bool truncate_it)
{
	char path[PATH_MAX];
	int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate_it ? O_TRUNC : 0);

	if (journal_fd >= 0) {
		close(journal_fd);
	}
	snprintf(path, sizeof(path), "%s/%s", state_dir, JOURNAL_FILE);
	journal_fd = open(path, flags, 0600);
	return journal_fd < 0 ? -errno : 0;
}

/* A whole snapshot, then an empty journal: the snapshot holds everything. */
static int persist_snapshot(const char *state_dir, const struct vmc_state *s)
{
	int rc = snapshot_save(state_dir, s);

	if (rc == 0) {
		rc = journal_open(state_dir, true);
	}
	if (rc == 0 && fsync(journal_fd) != 0) {
		rc = -errno;
	}
	journal_lines = 0;
	return rc;
}

static int persist_journal(const char *state_dir, const struct vmc_replica *r)
{
	int rc = 0;

	if (journal_fd < 0) {
		rc = journal_open(state_dir, false);
	}
	for (size_t i = 0; rc == 0 && i < r->n_journal; i++) {
		rc = write_all(journal_fd, r->journal[i], strlen(r->journal[i]));
	}
	if (rc == 0 && fdatasync(journal_fd) != 0) {
		rc = -errno;
	}
	journal_lines += r->n_journal;
	return rc;
}

int vmcd_persist_commit(struct vmcd *d)
{
	struct vmc_replica *r = &d->replica;
	int rc;

	if (!vmc_replica_has_changes(r)) {
		return 0;
	}
	if (r->snapshot_needed || journal_lines + r->n_journal > JOURNAL_LINES_MAX) {
		rc = persist_snapshot(d->opt.state_dir, r->state);
	} else {
		rc = persist_journal(d->opt.state_dir, r);
	}
	if (rc != 0) {
		log_err("cannot persist state to %s: %s", d->opt.state_dir, strerror(-rc));
		return rc;
	}
	vmc_replica_persisted(r);
	return 0;
}

/* On the way out: one snapshot, so the next start replays nothing. */
void vmcd_persist_fini(struct vmcd *d)
{
	if (d->replica.state != NULL && persist_snapshot(d->opt.state_dir, d->replica.state) != 0) {
		log_err("could not persist the state to %s on the way out", d->opt.state_dir);
	}
	if (journal_fd >= 0) {
		close(journal_fd);
		journal_fd = -1;
	}
}
