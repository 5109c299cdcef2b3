/*
 * One QMP connection to one VM's QEMU, on the daemon's libqb loop (for the
 * driver, vm_qemu.c). It wires the I/O-free engine (lib/qmp.h) to a
 * non-blocking socket: connecting (retried while QEMU has not created its
 * socket yet), writing with POLLOUT when the socket is full, reading,
 * and reading the last words after the process is gone. It knows nothing
 * of a VM's life: its owner registers callbacks and decides when to
 * connect, what to send and when to let go.
 *
 *   IDLE --connect--> RETRYING --socket accepts--> CONNECTED --EOF, error--> CLOSED
 *                        ^  |                          |                       ^
 *                        +--+ ENOENT, ECONNREFUSED      +--------drain----------+
 *
 * Guarantees:
 * - callbacks run from the loop (a poll or timer dispatch of the link),
 *   never from inside a call into the link, except the events that
 *   vmcd_qmp_link_drain() reads; none runs after the link was freed, and
 *   after a drain none at all;
 * - lost is called at most once, when the connection is gone, as the very
 *   last thing the link does: it has closed its socket, and may be freed
 *   from inside the callback;
 * - any callback may call any function here, vmcd_qmp_link_free included
 *   (from ready, event and done the free is finished when the dispatch
 *   that ran the callback returns);
 * - every function but vmcd_qmp_link_new takes a NULL link (the owner's
 *   "lost already") and does nothing, or returns -ENOTCONN.
 */
#ifndef VMCD_VM_QMP_H
#define VMCD_VM_QMP_H

#include <stdbool.h>
#include <qb/qbloop.h>

#include "qmp.h"

struct vmcd_qmp_link;

/* How patiently connect retries: how soon QEMU is expected to listen. */
enum vmcd_qmp_retry {
	VMCD_QMP_RETRY_START,  /* QEMU just started: every 5 ms at first, then up to 500 ms */
	VMCD_QMP_RETRY_ATTACH, /* QEMU runs already: backing off from 5 ms to 1 s */
};

/* reply is valid during the call only (take a reference to keep reply->ret). */
typedef void (*vmcd_qmp_link_done_fn)(void *opaque, const struct vmc_qmp_reply *reply);

/* Every member is optional. */
struct vmcd_qmp_link_ops {
	/* Negotiation done: commands may be sent. */
	void (*ready)(void *ctx);
	void (*event)(void *ctx, const struct vmc_qmp_event *ev);
	/* The connection ended (EOF, I/O or protocol error); reason in one line. */
	void (*lost)(void *ctx, const char *reason);
};

/*
 * An idle link to the QMP socket at path; vm names it in the log.
 * NULL only when out of memory.
 */
struct vmcd_qmp_link *vmcd_qmp_link_new(qb_loop_t *loop, const char *vm, const char *path,
					const struct vmcd_qmp_link_ops *ops, void *ctx);
/* Closes the socket if open; pending commands are dropped without their done. */
void vmcd_qmp_link_free(struct vmcd_qmp_link *l);

/*
 * Tries to connect (from the loop, at once), and again as retry says
 * while the socket is not there or refuses; nothing for NULL, when
 * connected or trying already, or once closed.
 */
void vmcd_qmp_link_connect(struct vmcd_qmp_link *l, enum vmcd_qmp_retry retry);
/* No more tries (a connection already made stays); nothing for NULL. */
void vmcd_qmp_link_connect_cancel(struct vmcd_qmp_link *l);

/* Connected and negotiated; false for NULL. */
bool vmcd_qmp_link_ready(const struct vmcd_qmp_link *l);

/*
 * Sends command (no arguments). done (may be NULL) is called once with
 * QEMU's reply, or never when the connection ends, the link is drained or
 * freed first. 0, -ENOTCONN (not ready), -ENOMEM.
 */
int vmcd_qmp_link_send(struct vmcd_qmp_link *l, const char *command, vmcd_qmp_link_done_fn done,
		       void *opaque);

/* The same with arguments (an object, consumed). */
int vmcd_qmp_link_send_args(struct vmcd_qmp_link *l, const char *command, json_object *args,
			    vmcd_qmp_link_done_fn done, void *opaque);

/*
 * The process is gone: reads what QEMU wrote before it went (its last
 * events explain the exit, and the pidfd may be seen first) and closes.
 * Events are delivered; ready, done and lost are not, now or later.
 */
void vmcd_qmp_link_drain(struct vmcd_qmp_link *l);

#endif
