/*
 * The fd a QEMU migrates through, on an authenticated data channel:
 * plaintext, the TCP socket itself (QEMU's own tcp: costs the same);
 * encrypted, one end of a socketpair whose other end the relay seals
 * onto the socket (relay.h). And the QMP steps both sides share.
 */
#ifndef VMCM_STREAM_H
#define VMCM_STREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "migrate_proto.h"
#include "qmp_sync.h"
#include "relay.h"

struct stream {
	int qemu_fd;            /* what getfd passes to QEMU; -1 once passed */
	struct vmc_relay *relay; /* NULL in plaintext */
	int net_fd;             /* the data channel; kept by the relay's owner */
	int plain_fd;           /* the relay's end of the socketpair */
};

/* From the data channel's socket (taken over) and handshake. 0, or -1 with err. */
int stream_open(struct stream *st, int net_fd, const struct vmc_migp *data, bool encrypt, char *err,
		size_t errlen);
/*
 * Passes the stream's fd to QEMU as "vmcmigrate" (getfd; QEMU closes it
 * when the migration ends, whatever the outcome) and closes ours. 0 or -1.
 */
int stream_give_to_qemu(struct stream *st, struct qmp_sync *q, char *err, size_t errlen);
/* Ends the relay (if any) and closes what is left. */
void stream_close(struct stream *st);

/* migrate-set-capabilities with these {name, on} pairs. 0 or -1 with err. */
struct capability {
	const char *name;
	bool on;
};
int migrate_capabilities(struct qmp_sync *q, const struct capability *caps, size_t n, char *err, size_t errlen);

/*
 * query-migrate's status ("active", "pre-switchover", "completed",
 * "failed", ...) into status, and the reply in *info (a reference) when
 * info is not NULL. 0 or -1 with err.
 */
int migrate_query(struct qmp_sync *q, char *status, size_t len, json_object **info, char *err, size_t errlen);

#endif
