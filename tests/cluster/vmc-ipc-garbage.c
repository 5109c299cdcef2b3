/*
 * Sends malformed requests to the local vmclusterd and checks that each is
 * answered with an error and that the daemon still serves a good request
 * afterwards. Exit 0 when all went as expected.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <qb/qbipcc.h>

#include "ipc_proto.h"

struct garbage {
	const char *what;
	int32_t id;
	const char *payload;
	size_t len; /* bytes of payload sent (may omit the NUL) */
};

static const struct garbage cases[] = {
	{ "a header with no payload", VMC_IPC_STATUS, "", 0 },
	{ "a payload without its NUL", VMC_IPC_STATUS, "{}", 2 },
	{ "a payload that is not JSON", VMC_IPC_VM_LIST, "{nope", 6 },
	{ "a JSON array instead of an object", VMC_IPC_STATUS, "[1,2]", 6 },
	{ "a NUL inside the payload", VMC_IPC_STATUS, "{}\0{}", 6 },
	{ "an unknown command", 999, "{}", 3 },
	{ "a negative command", -5, "{}", 3 },
	{ "vm add with a string definition", VMC_IPC_VM_ADD, "{\"definition\":\"x\"}", 19 },
	{ "vm add without a definition", VMC_IPC_VM_ADD, "{}", 3 },
	{ "vm set with set not an array", VMC_IPC_VM_SET, "{\"name\":\"existing\",\"set\":5}", 28 },
	{ "vm set with numbers as assignments", VMC_IPC_VM_SET, "{\"name\":\"existing\",\"set\":[1,2]}", 32 },
	{ "vm show with a numeric name", VMC_IPC_VM_SHOW, "{\"name\":7}", 11 },
	{ "vm remove with no name", VMC_IPC_VM_REMOVE, "{\"nome\":\"existing\"}", 20 },
};

static int exchange(qb_ipcc_connection_t *c, int32_t id, const char *payload, size_t len,
		    int32_t *error)
{
	static char buf[VMC_IPC_SMALL_MSG];
	struct qb_ipc_request_header hdr = { .id = id, .size = (int32_t)(sizeof(hdr) + len) };
	struct iovec iov[2] = { { &hdr, sizeof(hdr) }, { (void *)payload, len } };
	ssize_t n = qb_ipcc_sendv_recv(c, iov, len ? 2 : 1, buf, sizeof(buf), 5000);

	if (n < (ssize_t)sizeof(struct qb_ipc_response_header)) {
		return -1;
	}
	*error = ((struct qb_ipc_response_header *)buf)->error;
	return 0;
}

int main(void)
{
	qb_ipcc_connection_t *c = qb_ipcc_connect(VMC_IPC_NAME, VMC_IPC_SMALL_MSG);
	int failures = 0;
	int32_t error = 0;

	if (c == NULL) {
		fprintf(stderr, "vmc-ipc-garbage: cannot connect to vmclusterd\n");
		return 1;
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct garbage *g = &cases[i];
		if (exchange(c, g->id, g->payload, g->len, &error) != 0) {
			printf("FAIL: %s: no answer\n", g->what);
			failures++;
		} else if (error >= 0) {
			printf("FAIL: %s: accepted (error %d)\n", g->what, error);
			failures++;
		} else {
			printf("ok: %s: refused (error %d)\n", g->what, error);
		}
	}
	if (exchange(c, VMC_IPC_STATUS, "{}", 3, &error) != 0 || error != 0) {
		printf("FAIL: a good status request after the garbage was not answered\n");
		failures++;
	}
	qb_ipcc_disconnect(c);
	return failures == 0 ? 0 : 1;
}
