/*
 * Quick migration (agent.h): the source VM is paused and its whole state
 * saved to a file on one of its shared volumes; once the cluster has
 * handed the image locks over, the destination's QEMU (waiting with
 * -incoming defer) loads it. The downtime is the save plus the load.
 *
 * QEMU 7.2 has no file: URI; fd: to a regular file works with the VM
 * stopped first. QEMU writes unaligned, so no O_DIRECT: buffered writes,
 * then fdatasync on our own descriptor before the save counts as done.
 * The file holds the VM's memory: it is created 0600 in a directory 0700.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "clock.h"
#include "conn.h"
#include "json_util.h"
#include "qmp_sync.h"
#include "stream.h"

#define QMP_MS 5000
#define POLL_MS 50

/* Waits for QEMU's migration to end: 0 completed, -1 failed (err). */
static int migration_wait(struct qmp_sync *q, int64_t deadline_ms, json_object **info, char *err, size_t len)
{
	char status[32];

	for (;;) {
		json_object *r = NULL;
		if (migrate_query(q, status, sizeof(status), &r, err, len) != 0) {
			return -1;
		}
		if (strcmp(status, "completed") == 0) {
			*info = r;
			return 0;
		}
		if (strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0) {
			snprintf(err, len, "QEMU's migration %s: %s", status,
				 vmc_json_str(r, "error-desc") ? vmc_json_str(r, "error-desc") : "no reason given");
			json_object_put(r);
			return -1;
		}
		json_object_put(r);
		if (vmc_now_ms() > deadline_ms) {
			snprintf(err, len, "QEMU's migration did not end in time");
			return -1;
		}
		qmp_sync_wait_event(q, POLL_MS);
	}
}

static int fd_to_qemu(struct qmp_sync *q, int fd, char *err, size_t len)
{
	json_object *args = json_object_new_object();

	json_object_object_add(args, "fdname", json_object_new_string("vmcmigrate"));
	return qmp_sync_call(q, "getfd", args, fd, QMP_MS, NULL, err, len);
}

static int migrate_fd(struct qmp_sync *q, const char *command, char *err, size_t len)
{
	json_object *args = json_object_new_object();

	json_object_object_add(args, "uri", json_object_new_string("fd:vmcmigrate"));
	return qmp_sync_run(q, command, args, QMP_MS, err, len);
}

static int save_dir_make(const char *file, char *err, size_t len)
{
	char copy[4096];
	const char *dir;

	snprintf(copy, sizeof(copy), "%s", file);
	dir = dirname(copy);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, len, "cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

static void quick_failed(const char *id, const char *err)
{
	json_object *o = report_new("failed", id);

	json_object_object_add(o, "reason", json_object_new_string(err));
	report(o);
	agent_log("%s", err);
}

/*
 * A live migration of this QEMU that failed before left its settings:
 * a pause before the switchover that nobody would continue, a bandwidth
 * cap meant for a link. A save to a file wants neither.
 */
static int save_parameters(struct qmp_sync *q, char *err, size_t len)
{
	static const struct capability caps[] = {
		{ "events", true }, { "pause-before-switchover", false }, { "auto-converge", false } };
	json_object *args;

	if (migrate_capabilities(q, caps, sizeof(caps) / sizeof(caps[0]), err, len) != 0) {
		return -1;
	}
	args = json_object_new_object();
	json_object_object_add(args, "max-bandwidth", json_object_new_int64((int64_t)1 << 40));
	return qmp_sync_run(q, "migrate-set-parameters", args, QMP_MS, err, len);
}

int save_run(const struct quick_opts *o)
{
	char err[384];
	int64_t t0 = vmc_now_ms(), deadline = t0 + (int64_t)o->timeout_s * 1000;
	struct qmp_sync *q = NULL;
	json_object *info = NULL, *r;
	int fd = -1, rc = 1;

	if (save_dir_make(o->file, err, sizeof(err)) != 0) {
		goto out;
	}
	fd = open(o->file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, sizeof(err), "cannot create the state file %s: %s", o->file, strerror(errno));
		goto out;
	}
	q = qmp_sync_open(o->qmp, QMP_MS, err, sizeof(err));
	if (q == NULL || save_parameters(q, err, sizeof(err)) != 0 ||
	    qmp_sync_run(q, "stop", NULL, QMP_MS, err, sizeof(err)) != 0) {
		goto out;
	}
	report(report_new("paused", o->id));
	if (fd_to_qemu(q, fd, err, sizeof(err)) != 0 || migrate_fd(q, "migrate", err, sizeof(err)) != 0 ||
	    migration_wait(q, deadline, &info, err, sizeof(err)) != 0) {
		goto out;
	}
	if (fdatasync(fd) != 0) {
		snprintf(err, sizeof(err), "cannot flush the state file %s: %s", o->file, strerror(errno));
		goto out;
	}
	r = report_new("saved", o->id);
	json_object_object_add(r, "bytes", json_object_new_int64(lseek(fd, 0, SEEK_END)));
	json_object_object_add(r, "save_ms", json_object_new_int64(vmc_now_ms() - t0));
	report(r);
	rc = 0;
out:
	json_object_put(info);
	if (rc != 0) {
		quick_failed(o->id, err);
		if (fd >= 0) {
			unlink(o->file);
		}
	}
	if (fd >= 0) {
		close(fd);
	}
	qmp_sync_close(q);
	return rc;
}

int restore_run(const struct quick_opts *o)
{
	char err[384];
	int64_t t0 = vmc_now_ms(), deadline = t0 + (int64_t)o->timeout_s * 1000;
	static const struct capability caps[] = { { "events", true } };
	struct qmp_sync *q = NULL;
	json_object *info = NULL, *r;
	int fd = open(o->file, O_RDONLY | O_CLOEXEC), rc = 1;

	if (fd < 0) {
		snprintf(err, sizeof(err), "cannot open the state file %s: %s", o->file, strerror(errno));
		goto out;
	}
	q = qmp_sync_open(o->qmp, QMP_MS, err, sizeof(err));
	if (q == NULL || migrate_capabilities(q, caps, 1, err, sizeof(err)) != 0 ||
	    fd_to_qemu(q, fd, err, sizeof(err)) != 0 || migrate_fd(q, "migrate-incoming", err, sizeof(err)) != 0 ||
	    migration_wait(q, deadline, &info, err, sizeof(err)) != 0) {
		goto out;
	}
	r = report_new("restored", o->id);
	json_object_object_add(r, "restore_ms", json_object_new_int64(vmc_now_ms() - t0));
	report(r);
	rc = 0;
out:
	json_object_put(info);
	if (rc != 0) {
		quick_failed(o->id, err);
	}
	/* Loaded or not, the file is no use any more: the VM runs from memory on one side. */
	if (fd >= 0) {
		close(fd);
		unlink(o->file);
	}
	qmp_sync_close(q);
	return rc;
}

int remove_run(const char *file)
{
	if (unlink(file) != 0 && errno != ENOENT) {
		agent_log("cannot remove %s: %s", file, strerror(errno));
		return 1;
	}
	return 0;
}
