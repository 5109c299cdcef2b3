/*
 * The QMP client: how vmclusterd talks to each QEMU over its QMP socket.
 *
 * The engine (qmp.c) does no I/O. The caller feeds it the bytes it reads
 * from the socket (vmc_qmp_feed) and writes what the engine has queued
 * (vmc_qmp_output_peek / vmc_qmp_output_consume); the engine calls back
 * for the greeting, the end of capabilities negotiation, each command's
 * reply and each event. So it runs inside a single-threaded main loop
 * without ever blocking, and the tests drive it with plain strings.
 * qmp_fd.c holds the few socket helpers (connect, send with an fd, read,
 * flush) that wire an engine to a real socket.
 *
 * The protocol (QEMU docs/interop/qmp-spec): QEMU speaks first with a
 * greeting, {"QMP": {"version": {...}, "capabilities": [...]}}; until the
 * client runs qmp_capabilities, every other command fails with
 * CommandNotFound, so the engine sends it itself and holds the caller's
 * commands until it succeeds. Commands are {"execute", "arguments", "id"};
 * replies {"return", "id"} or {"error": {"class", "desc"}, "id"}; events
 * {"event", "data" (optional), "timestamp": {"seconds", "microseconds"}}.
 * QEMU ends each message with CRLF, but nothing here relies on that: the
 * stream is split by a JSON tokenizer, so a read may hold part of a
 * message or several, and pretty-printed (multi-line) output works too.
 *
 *   AWAIT_GREETING --greeting--> NEGOTIATING --qmp_capabilities ok--> READY
 *         |                           |                                 |
 *         +---------------------------+---------------------------------+
 *                                     |
 *         garbage, non-object JSON, oversized message, a reply where none
 *         can come, qmp_capabilities refused, vmc_qmp_fail() (EOF, I/O
 *         error, timeout: the caller's reason)
 *                                     v
 *                                   FAILED  (terminal; one-line reason)
 *
 * Guarantees:
 * - every command accepted by vmc_qmp_command*() gets exactly one call of
 *   its done callback: with QEMU's reply, or with VMC_QMP_DISCONNECTED
 *   when the engine fails (desc = the failure reason) or is freed
 *   (desc "disconnected"). When the failed callback runs, nothing is
 *   pending any more.
 * - commands are written in the order they were accepted; those accepted
 *   before negotiation completes are written right after it, in order.
 * - a reply whose id matches no pending command is reported (warn) and
 *   dropped, as the spec asks; so is a message of no known kind, and a
 *   well-formed event before the greeting (what QEMU had queued for the
 *   monitor's previous client).
 * - an error reply without an id means QEMU could not parse what we sent:
 *   the stream is out of step, so the engine fails.
 *
 * Re-entrancy: callbacks may submit commands, call vmc_qmp_fail() and
 * vmc_qmp_free() (the free is deferred until the engine call that ran the
 * callback returns; do not touch q after that call). vmc_qmp_feed() from a
 * callback is refused with -EBUSY.
 */
#ifndef VMC_QMP_H
#define VMC_QMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <json-c/json.h>

/* Longest message accepted from QEMU (7.2's query-qmp-schema reply: 202 KiB). */
#define VMC_QMP_MESSAGE_MAX_DEFAULT ((size_t)16 * 1024 * 1024)
/* JSON nesting accepted (backing chains in query-block nest deeply). */
#define VMC_QMP_JSON_DEPTH_MAX 256
/* error_class of commands that never got a reply from QEMU. */
#define VMC_QMP_CLASS_DISCONNECTED "Disconnected"

enum vmc_qmp_state {
	VMC_QMP_AWAIT_GREETING = 0,
	VMC_QMP_NEGOTIATING,
	VMC_QMP_READY,
	VMC_QMP_FAILED,
	VMC_QMP_STATE_COUNT,
};

enum vmc_qmp_reply_status {
	VMC_QMP_OK = 0,           /* {"return": ...} */
	VMC_QMP_ERROR,            /* {"error": {"class", "desc"}} from QEMU */
	VMC_QMP_DISCONNECTED,     /* no reply will come: engine failed or freed */
};

struct vmc_qmp;

/* Valid during the greeting callback, and from vmc_qmp_greeting_get(). */
struct vmc_qmp_greeting {
	int major;
	int minor;
	int micro;
	const char *package;              /* "" when QEMU gives none */
	const char *const *capabilities;  /* e.g. "oob"; none are enabled */
	size_t capability_count;
};

/* Valid during the done callback only; take a reference to keep ret. */
struct vmc_qmp_reply {
	uint64_t id;
	const char *command;       /* the name it was submitted with */
	enum vmc_qmp_reply_status status;
	json_object *ret;          /* VMC_QMP_OK: the "return" value, else NULL */
	const char *error_class;   /* otherwise: QEMU's class, or "Disconnected" */
	const char *error_desc;    /* QEMU's desc, or why no reply will come */
};

/* Valid during the event callback only. */
struct vmc_qmp_event {
	const char *name;
	json_object *data;         /* NULL when the event carries none */
	int64_t seconds;           /* QEMU's clock; -1 when it had none */
	int64_t microseconds;
};

typedef void (*vmc_qmp_done_fn)(struct vmc_qmp *q, void *opaque,
				const struct vmc_qmp_reply *reply);

/* Every member is optional. */
struct vmc_qmp_ops {
	/* QEMU introduced itself; qmp_capabilities is already queued. */
	void (*greeting)(void *ctx, const struct vmc_qmp_greeting *g);
	/* Negotiation done: the held commands are queued, new ones go straight out. */
	void (*ready)(void *ctx);
	void (*event)(void *ctx, const struct vmc_qmp_event *ev);
	/* The engine failed; every pending command has been completed. */
	void (*failed)(void *ctx, const char *reason);
	/* Something dropped or refused that an operator may want to see. */
	void (*warn)(void *ctx, const char *what);
};

/* One piece of output: write it, then report with vmc_qmp_output_consume(). */
struct vmc_qmp_output {
	const char *data;
	size_t len;
	int fd;          /* >= 0: send with the first byte of data (SCM_RIGHTS) */
	uint64_t id;     /* the command this is (part of) */
};

struct vmc_qmp_stats {
	uint64_t bytes_received;
	uint64_t messages_received;
	uint64_t events;
	uint64_t replies;
	uint64_t unknown_replies_dropped;   /* no pending command has that id */
	uint64_t unknown_messages_dropped;  /* an object of no known kind */
};

/* NULL only when out of memory. */
struct vmc_qmp *vmc_qmp_new(const struct vmc_qmp_ops *ops, void *ctx);
/* Completes pending commands with VMC_QMP_DISCONNECTED, then frees (deferred in callbacks). */
void vmc_qmp_free(struct vmc_qmp *q);
/* Between messages (not mid-message); 0, or -EINVAL for 0, > INT_MAX or mid-message. */
int vmc_qmp_set_message_max(struct vmc_qmp *q, size_t bytes);

/*
 * Bytes read from the socket. Returns 0, -ENOTCONN when the engine had
 * already failed (the bytes are ignored), -EPROTO when it failed while
 * reading them (see vmc_qmp_failure_reason), -EBUSY from a callback.
 */
int vmc_qmp_feed(struct vmc_qmp *q, const void *buf, size_t len);
/*
 * The connection is gone (EOF, I/O error, a command timed out): FAILED
 * with this reason, pending commands completed. Only the first failure
 * counts; later calls do nothing.
 */
void vmc_qmp_fail(struct vmc_qmp *q, const char *reason);

/*
 * Submits a command; args (NULL or an object) is consumed even on error.
 * done may be NULL. On success *id (if id is not NULL) is the id sent.
 * Returns 0, -EINVAL (empty name, qmp_capabilities, args not an object),
 * -ENOTCONN (failed or being freed), -ENOMEM.
 */
int vmc_qmp_command(struct vmc_qmp *q, const char *name, json_object *args,
		    vmc_qmp_done_fn done, void *opaque, uint64_t *id);
/*
 * The same, with fd sent in the same sendmsg() as the command's first
 * byte (getfd, add-fd). The caller keeps fd open until done runs.
 * Returns -EBADF when fd < 0.
 */
int vmc_qmp_command_with_fd(struct vmc_qmp *q, const char *name, json_object *args, int fd,
			    vmc_qmp_done_fn done, void *opaque, uint64_t *id);

/* The next bytes to write, if any (never in FAILED). */
bool vmc_qmp_output_peek(const struct vmc_qmp *q, struct vmc_qmp_output *out);
/* n bytes of the peeked output were written; 0 or -EINVAL if more than peeked. */
int vmc_qmp_output_consume(struct vmc_qmp *q, size_t n);
bool vmc_qmp_output_pending(const struct vmc_qmp *q);

enum vmc_qmp_state vmc_qmp_state_get(const struct vmc_qmp *q);
const char *vmc_qmp_state_to_str(enum vmc_qmp_state s);
const char *vmc_qmp_reply_status_to_str(enum vmc_qmp_reply_status s);
/* "" unless FAILED. */
const char *vmc_qmp_failure_reason(const struct vmc_qmp *q);
/* NULL before the greeting. */
const struct vmc_qmp_greeting *vmc_qmp_greeting_get(const struct vmc_qmp *q);
/* Caller's commands submitted and not yet completed. */
size_t vmc_qmp_pending_count(const struct vmc_qmp *q);
void vmc_qmp_stats_get(const struct vmc_qmp *q, struct vmc_qmp_stats *stats);

/*
 * Socket helpers (qmp_fd.c). They never block: the socket is
 * non-blocking and -EAGAIN means "wait for poll()".
 */

/* Connects a non-blocking, close-on-exec AF_UNIX stream socket. 0 or -errno. */
int vmc_qmp_fd_connect(const char *path, int *fd_out);
/* One sendmsg(); fd >= 0 rides along as SCM_RIGHTS. Bytes sent or -errno. */
ssize_t vmc_qmp_fd_send(int sock, const void *buf, size_t len, int fd);
/*
 * Writes the engine's output until none is left (0) or the socket is full
 * (-EAGAIN: wait for POLLOUT). Another error fails the engine: -errno.
 */
int vmc_qmp_fd_flush(struct vmc_qmp *q, int sock);
/*
 * One read, fed to the engine: bytes read (> 0), -EAGAIN, or 0 when QEMU
 * closed the socket (EOF or ECONNRESET) and -errno on another error, both
 * of which fail the engine first. q may be freed when this returns if a
 * callback freed it.
 */
ssize_t vmc_qmp_fd_receive(struct vmc_qmp *q, int sock);

#endif
