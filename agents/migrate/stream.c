/*
 * The fd a QEMU migrates through (stream.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "json_util.h"
#include "stream.h"

#define QMP_STEP_MS 5000

int stream_open(struct stream *st, int net_fd, const struct vmc_migp *data, bool encrypt, char *err,
		size_t errlen)
{
	struct vmc_migp_stream_keys k;
	struct vmc_relay_config rc = { 0 };
	int sp[2];
	int ret;

	*st = (struct stream){ .qemu_fd = net_fd, .relay = NULL, .net_fd = -1, .plain_fd = -1 };
	if (!encrypt) {
		return 0;
	}
	if (vmc_migp_stream_keys(data, &k) != 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
		snprintf(err, errlen, "cannot set up the encrypted stream: %s", strerror(errno));
		return -1;
	}
	memcpy(rc.tx.key, k.tx_key, sizeof(rc.tx.key));
	memcpy(rc.tx.salt, k.tx_salt, sizeof(rc.tx.salt));
	memcpy(rc.rx.key, k.rx_key, sizeof(rc.rx.key));
	memcpy(rc.rx.salt, k.rx_salt, sizeof(rc.rx.salt));
	rc.plain_fd = sp[0];
	rc.net_fd = net_fd;
	ret = vmc_relay_start(&rc, &st->relay);
	memset(&rc, 0, sizeof(rc));
	memset(&k, 0, sizeof(k));
	if (ret != 0) {
		snprintf(err, errlen, "cannot start the encrypted relay: %s", strerror(-ret));
		close(sp[0]);
		close(sp[1]);
		return -1;
	}
	st->net_fd = net_fd;
	st->plain_fd = sp[0];
	st->qemu_fd = sp[1];
	return 0;
}

int stream_give_to_qemu(struct stream *st, struct qmp_sync *q, char *err, size_t errlen)
{
	json_object *args = json_object_new_object();
	int rc;

	json_object_object_add(args, "fdname", json_object_new_string("vmcmigrate"));
	rc = qmp_sync_call(q, "getfd", args, st->qemu_fd, QMP_STEP_MS, NULL, err, errlen);
	/* QEMU has its own copy now (or none): ours must go, so only QEMU holds that end. */
	close(st->qemu_fd);
	st->qemu_fd = -1;
	return rc;
}

void stream_close(struct stream *st)
{
	vmc_relay_free(st->relay);
	st->relay = NULL;
	if (st->qemu_fd >= 0) {
		close(st->qemu_fd);
	}
	if (st->plain_fd >= 0) {
		close(st->plain_fd);
	}
	if (st->net_fd >= 0) {
		close(st->net_fd);
	}
	st->qemu_fd = st->plain_fd = st->net_fd = -1;
}

int migrate_capabilities(struct qmp_sync *q, const struct capability *caps, size_t n, char *err, size_t errlen)
{
	json_object *args = json_object_new_object(), *list = json_object_new_array();

	for (size_t i = 0; i < n; i++) {
		json_object *c = json_object_new_object();
		json_object_object_add(c, "capability", json_object_new_string(caps[i].name));
		json_object_object_add(c, "state", json_object_new_boolean(caps[i].on));
		json_object_array_add(list, c);
	}
	json_object_object_add(args, "capabilities", list);
	return qmp_sync_run(q, "migrate-set-capabilities", args, QMP_STEP_MS, err, errlen);
}

int migrate_query(struct qmp_sync *q, char *status, size_t len, json_object **info, char *err, size_t errlen)
{
	json_object *ret = NULL;

	if (qmp_sync_call(q, "query-migrate", NULL, -1, QMP_STEP_MS, &ret, err, errlen) != 0) {
		return -1;
	}
	snprintf(status, len, "%s", vmc_json_str(ret, "status") ? vmc_json_str(ret, "status") : "none");
	if (info != NULL) {
		*info = ret;
	} else {
		json_object_put(ret);
	}
	return 0;
}
