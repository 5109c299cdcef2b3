/*
 * Joins the vmclusterd CPG group from a node and multicasts malformed
 * messages — truncated, bad magic, unknown version and type, lying about
 * the sender, payloads that are not JSON objects, valid frames with
 * nonsense bodies — then waits until corosync has delivered them all back
 * to it (so every daemon has seen them too) and leaves. The test around it
 * checks that the daemons dropped them and that nothing changed.
 */
#include "config.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <corosync/cpg.h>

#include "msg.h"

static unsigned int delivered;

/* Counts our own messages coming back (the daemons' hellos come too). */
static void on_deliver(cpg_handle_t h, const struct cpg_name *g, uint32_t nodeid, uint32_t pid,
		       void *msg, size_t len)
{
	if (pid == (uint32_t)getpid()) {
		delivered++;
	}
}

static void on_confchg(cpg_handle_t h, const struct cpg_name *g, const struct cpg_address *m,
		       size_t nm, const struct cpg_address *l, size_t nl, const struct cpg_address *j,
		       size_t nj)
{
}

/* A frame with the given header fields and payload (payload_len may lie). */
static size_t frame(uint8_t *buf, uint32_t magic, uint16_t version, uint16_t type, uint32_t sender,
		    const char *payload, size_t payload_bytes, uint32_t payload_len)
{
	vmc_put_le32(buf, magic);
	vmc_put_le16(buf + 4, version);
	vmc_put_le16(buf + 6, type);
	vmc_put_le32(buf + 8, sender);
	vmc_put_le32(buf + 12, payload_len);
	vmc_put_le64(buf + 16, 4242);
	memcpy(buf + VMC_MSG_HEADER_LEN, payload, payload_bytes);
	return VMC_MSG_HEADER_LEN + payload_bytes;
}

static int send_all(cpg_handle_t h, uint32_t me)
{
	static const char add[] =
		"{\"definition\":{\"name\":\"evil\",\"memory_mib\":64,\"boot\":{\"kernel\":\"/k\"}}}";
	uint8_t buf[1024];
	struct iovec iov = { buf, 0 };
	unsigned int sent = 0;

#define SEND(expr)                                                                  \
	do {                                                                        \
		iov.iov_len = (expr);                                               \
		while (cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1) == CS_ERR_TRY_AGAIN) { \
		}                                                                   \
		sent++;                                                             \
	} while (0)

	SEND(7);                                                                    /* shorter than a header */
	SEND(frame(buf, 0xdeadbeef, 1, VMC_MSG_GROUP_ADD, me, add, sizeof(add), sizeof(add)));
	SEND(frame(buf, VMC_MSG_MAGIC, 99, VMC_MSG_GROUP_ADD, me, add, sizeof(add), sizeof(add)));
	SEND(frame(buf, VMC_MSG_MAGIC, 1, 777, me, add, sizeof(add), sizeof(add)));
	SEND(frame(buf, VMC_MSG_MAGIC, 1, VMC_MSG_GROUP_ADD, me + 1, add, sizeof(add), sizeof(add)));
	SEND(frame(buf, VMC_MSG_MAGIC, 1, VMC_MSG_GROUP_ADD, me, add, sizeof(add), sizeof(add) + 9));
	SEND(frame(buf, VMC_MSG_MAGIC, 1, VMC_MSG_GROUP_ADD, me, add, sizeof(add) - 1, sizeof(add) - 1));
	SEND(frame(buf, VMC_MSG_MAGIC, 1, VMC_MSG_GROUP_ADD, me, "[1,2]", 6, 6));
	SEND(frame(buf, VMC_MSG_MAGIC, 1, VMC_MSG_GROUP_ADD, me, "{\"a\":1}x", 9, 9));
	SEND(frame(buf, VMC_MSG_MAGIC, 1, VMC_MSG_GROUP_SET, me, "{\"name\":\"existing\",\"set\":[null]}", 33, 33));
	SEND(frame(buf, VMC_MSG_MAGIC, 1, VMC_MSG_GROUP_ADD, me, "{\"definition\":7}", 17, 17));
	SEND(frame(buf, VMC_MSG_MAGIC, 1, VMC_MSG_STATE_CHUNK, me, "{\"index\":0}", 12, 12));
	SEND(frame(buf, VMC_MSG_MAGIC, 1, VMC_MSG_HELLO, me, "{\"config_version\":\"x\"}", 23, 23));
	return (int)sent;
}

int main(void)
{
	cpg_callbacks_t cb = { .cpg_deliver_fn = on_deliver, .cpg_confchg_fn = on_confchg };
	struct cpg_name name = { .length = 9, .value = "vmcluster" };
	time_t deadline = time(NULL) + 20;
	cpg_handle_t h;
	unsigned int me;
	int fd, sent;

	if (cpg_initialize(&h, &cb) != CS_OK || cpg_local_get(h, &me) != CS_OK ||
	    cpg_join(h, &name) != CS_OK) {
		fprintf(stderr, "vmc-cpg-garbage: cannot join CPG group vmcluster\n");
		return 1;
	}
	cpg_fd_get(h, &fd);
	sent = send_all(h, me);
	while ((int)delivered < sent && time(NULL) < deadline) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 1000) > 0) {
			cpg_dispatch(h, CS_DISPATCH_ALL);
		}
	}
	cpg_leave(h, &name);
	cpg_finalize(h);
	printf("vmc-cpg-garbage: %d malformed messages sent, %u delivered\n", sent, delivered);
	return (int)delivered == sent ? 0 : 1;
}
