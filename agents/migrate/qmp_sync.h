/*
 * A blocking QMP client for the migration agent, on the I/O-free engine
 * (lib/qmp.h): one command at a time, each with a deadline. The agent
 * drives one migration per thread, so blocking is what it wants; the
 * daemon's own QMP stays on its loop (daemon/vm_qmp.c).
 */
#ifndef VMCM_QMP_SYNC_H
#define VMCM_QMP_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

struct qmp_sync;

/* Connects to a QMP socket and negotiates within timeout_ms. NULL with one line in err. */
struct qmp_sync *qmp_sync_open(const char *path, int timeout_ms, char *err, size_t errlen);
void qmp_sync_close(struct qmp_sync *q);

/*
 * Runs command with args (an object or NULL, consumed) and, when fd >= 0,
 * that fd passed along (getfd). 0 with *ret (a reference the caller puts;
 * ret may be NULL) or -1 with QEMU's error or why no reply came in err.
 */
int qmp_sync_call(struct qmp_sync *q, const char *command, json_object *args, int fd, int timeout_ms,
		  json_object **ret, char *err, size_t errlen);

/* The same, for the commands whose reply only says "done". */
int qmp_sync_run(struct qmp_sync *q, const char *command, json_object *args, int timeout_ms, char *err,
		 size_t errlen);

/* Waits up to timeout_ms for an event (MIGRATION, say): true when one came. */
bool qmp_sync_wait_event(struct qmp_sync *q, int timeout_ms);

/* QEMU's version as "7.2.0" (after open). */
const char *qmp_sync_version(const struct qmp_sync *q);

#endif
