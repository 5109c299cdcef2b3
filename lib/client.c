/*
 * libqb IPC client for vmclusterd.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <qb/qbipcc.h>

#include "client.h"
#include "vmc_errors.h"

struct vmc_client {
	qb_ipcc_connection_t *conn;
	char *buf;
	size_t buf_len;
};

int vmc_client_connect(struct vmc_client **out, size_t max_msg)
{
	struct vmc_client *c = calloc(1, sizeof(*c));
	int saved;

	if (c == NULL) {
		return -ENOMEM;
	}
	c->buf_len = max_msg;
	c->buf = malloc(max_msg);
	if (c->buf == NULL) {
		free(c);
		return -ENOMEM;
	}
	errno = 0;
	c->conn = qb_ipcc_connect(VMC_IPC_NAME, max_msg);
	if (c->conn == NULL) {
		saved = errno;
		free(c->buf);
		free(c);
		if (saved == EACCES || saved == EPERM) {
			return -EACCES;
		}
		return -ENOTCONN;
	}
	*out = c;
	return 0;
}

void vmc_client_close(struct vmc_client *c)
{
	if (c == NULL) {
		return;
	}
	qb_ipcc_disconnect(c->conn);
	free(c->buf);
	free(c);
}

int vmc_client_send(struct vmc_client *c, enum vmc_ipc_cmd cmd, json_object *args)
{
	struct qb_ipc_request_header hdr;
	const char *json = args ? json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN) : "{}";
	size_t len = strlen(json) + 1;
	struct iovec iov[2];
	ssize_t rc;

	if (sizeof(hdr) + len > c->buf_len) {
		return -EMSGSIZE;
	}
	hdr.id = cmd;
	hdr.size = (int32_t)(sizeof(hdr) + len);
	iov[0].iov_base = &hdr;
	iov[0].iov_len = sizeof(hdr);
	iov[1].iov_base = (void *)json;
	iov[1].iov_len = len;
	/* The request ring is full only while the daemon is busy: retry a bounded while. */
	for (int tries = 0; tries < 1000; tries++) {
		rc = qb_ipcc_sendv(c->conn, iov, 2);
		if (rc != -EAGAIN) {
			break;
		}
		struct timespec pause = { 0, 5 * 1000 * 1000 };
		nanosleep(&pause, NULL);
	}
	return rc == -EAGAIN ? -ETIMEDOUT : rc < 0 ? (int)rc : 0;
}

int vmc_client_recv(struct vmc_client *c, int timeout_ms, json_object **result, int *verdict)
{
	struct qb_ipc_response_header *hdr = (void *)c->buf;
	ssize_t n = qb_ipcc_recv(c->conn, c->buf, c->buf_len, timeout_ms);
	const char *payload;

	if (n < 0) {
		return (int)n;
	}
	if ((size_t)n <= sizeof(*hdr) || c->buf[n - 1] != '\0') {
		return -EPROTO;
	}
	payload = c->buf + sizeof(*hdr);
	*result = json_tokener_parse(payload);
	if (*result == NULL) {
		return -EPROTO;
	}
	*verdict = hdr->error;
	return 0;
}

int vmc_client_call(struct vmc_client *c, enum vmc_ipc_cmd cmd, json_object *args,
		    int timeout_ms, json_object **result, char *err, size_t errlen)
{
	json_object *res = NULL;
	json_object *msg;
	int verdict = 0;
	int rc;

	err[0] = '\0';
	rc = vmc_client_send(c, cmd, args);
	if (rc == 0) {
		rc = vmc_client_recv(c, timeout_ms, &res, &verdict);
	}
	if (rc == -ETIMEDOUT || rc == -EAGAIN) {
		snprintf(err, errlen, "vmclusterd did not answer within %d ms", timeout_ms);
		return -ETIMEDOUT;
	}
	if (rc != 0) {
		snprintf(err, errlen, "lost the connection to vmclusterd: %s", strerror(-rc));
		return rc;
	}
	if (verdict != 0) {
		if (json_object_object_get_ex(res, "error", &msg)) {
			snprintf(err, errlen, "%s", json_object_get_string(msg));
		} else {
			snprintf(err, errlen, "%s", vmc_strerror(verdict));
		}
	}
	*result = res;
	return verdict;
}
