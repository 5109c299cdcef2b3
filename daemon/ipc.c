/*
 * The local IPC server's transport (ipc.h). Only root and members of
 * group haclient may connect; every connection keeps its client's uid, so
 * a command can ask for root (fence settings choose what runs as root).
 *
 * Reads are answered at once. A change is checked by its command,
 * multicast, and answered only after this node has applied its own
 * message and persisted the result (settle.c calls vmcd_ipc_flush after
 * persisting), with the verdict every node reached.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpg.h"
#include "ipc.h"
#include "ipc_proto.h"
#include "json_util.h"
#include "log.h"
#include "vmc_errors.h"

struct vmcd_ipc_call {
	uint64_t request_id;        /* 0 until sent */
	qb_ipcs_connection_t *conn; /* NULL once the client went away */
	int32_t cmd;
	int64_t tag;
	bool has_tag;
	bool done;
	int rc;
	uint64_t config_version;    /* right after this change was applied */
	char *detail;
	struct vmcd_ipc_call *next;
};

/* What a connection remembers of its client. */
struct client {
	uid_t uid;
	pid_t pid;
};

static qb_ipcs_service_t *ipc_service;
static struct vmcd_ipc_call *calls;
static struct vmcd *ipc_ctx;
static const struct vmcd_ipc_command *ipc_commands;
static size_t n_ipc_commands;
static gid_t haclient_gid;
static bool have_haclient;

static json_object *error_body(const char *msg);

static void reply_send(qb_ipcs_connection_t *c, int32_t id, int rc, json_object *body)
{
	const char *json = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
	size_t len = strlen(json) + 1;
	struct qb_ipc_response_header hdr = { .id = id, .size = (int32_t)(sizeof(hdr) + len), .error = rc };
	struct iovec iov[2] = { { &hdr, sizeof(hdr) }, { (void *)json, len } };
	ssize_t n = qb_ipcs_response_sendv(c, iov, 2);

	if (n == -EMSGSIZE) {
		char msg[160];
		json_object *small;
		snprintf(msg, sizeof(msg), "the answer (%zu bytes) is larger than the client's buffer (%d bytes)",
			 sizeof(hdr) + len, qb_ipcs_connection_get_buffer_size(c));
		small = error_body(msg);
		reply_send(c, id, -EMSGSIZE, small);
		json_object_put(small);
		return;
	}
	if (n < 0) {
		log_warn("cannot answer a client: %s", strerror((int)-n));
	}
}

static json_object *error_body(const char *msg)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "error", json_object_new_string(msg));
	return o;
}

static void tag_copy(json_object *args, json_object *body)
{
	json_object *tag;

	if (args != NULL && json_object_object_get_ex(args, "tag", &tag)) {
		json_object_object_add(body, "tag", json_object_get(tag));
	}
}

struct vmcd_ipc_call *vmcd_ipc_defer(const struct vmcd_ipc_req *req)
{
	struct vmcd_ipc_call *call = calloc(1, sizeof(*call));
	int64_t tag;

	if (call == NULL) {
		return NULL;
	}
	call->conn = req->conn;
	call->cmd = req->cmd;
	if (vmc_json_int64(req->args, "tag", &tag)) {
		call->has_tag = true;
		call->tag = tag;
	}
	qb_ipcs_connection_ref(req->conn);
	call->next = calls;
	calls = call;
	return call;
}

uint64_t vmcd_ipc_call_take_id(struct vmcd *d, struct vmcd_ipc_call *call)
{
	call->request_id = ++d->next_request_id;
	return call->request_id;
}

int vmcd_ipc_call_send(struct vmcd *d, struct vmcd_ipc_call *call, uint16_t type, json_object *body,
		       char *err, size_t errlen)
{
	/* The id is the call's before sending: a send that fails at once must find it. */
	int64_t id = vmcd_cpg_send_request_as(d, type, body, vmcd_ipc_call_take_id(d, call));

	if (id < 0) {
		call->request_id = 0;
		snprintf(err, errlen, "cannot send the change to the cluster: %s", strerror((int)-id));
		return (int)id;
	}
	return 1;
}

void vmcd_ipc_call_cancel(struct vmcd_ipc_call *call)
{
	for (struct vmcd_ipc_call **pp = &calls; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == call) {
			*pp = call->next;
			break;
		}
	}
	if (call->conn != NULL) {
		qb_ipcs_connection_unref(call->conn);
	}
	free(call->detail);
	free(call);
}

void vmcd_ipc_call_fail(struct vmcd_ipc_call *call, int rc, const char *detail)
{
	if (call->done) {
		return;
	}
	call->done = true;
	call->rc = rc;
	free(call->detail);
	call->detail = strdup(detail ? detail : "");
}

void vmcd_ipc_request_done(struct vmcd *d, uint64_t request_id, int rc, const char *detail)
{
	for (struct vmcd_ipc_call *p = calls; p != NULL; p = p->next) {
		if (p->request_id == request_id && request_id != 0 && !p->done) {
			p->done = true;
			p->rc = rc;
			p->config_version = d->replica.state->config_version;
			free(p->detail);
			p->detail = strdup(detail ? detail : "");
			return;
		}
	}
}

static void call_answer(struct vmcd_ipc_call *p)
{
	json_object *body = p->rc == 0 ? json_object_new_object()
				       : error_body(p->detail ? p->detail : vmc_strerror(p->rc));

	if (p->has_tag) {
		json_object_object_add(body, "tag", json_object_new_int64(p->tag));
	}
	if (p->rc == 0) {
		json_object_object_add(body, "config_version", json_object_new_uint64(p->config_version));
		/* What the cluster did, as every node logged it ("vm web1 moving live to node2"). */
		if (p->detail != NULL && p->detail[0] != '\0') {
			json_object_object_add(body, "detail", json_object_new_string(p->detail));
		}
	}
	reply_send(p->conn, p->cmd, p->rc, body);
	json_object_put(body);
}

void vmcd_ipc_flush(struct vmcd *d)
{
	struct vmcd_ipc_call **pp = &calls;

	while (*pp != NULL) {
		struct vmcd_ipc_call *p = *pp;
		if (!p->done) {
			pp = &p->next;
			continue;
		}
		/* Unlinked before the unref: the last unref runs connection_destroyed. */
		*pp = p->next;
		if (p->conn != NULL) {
			qb_ipcs_connection_t *c = p->conn;
			call_answer(p);
			p->conn = NULL;
			qb_ipcs_connection_unref(c);
		}
		free(p->detail);
		free(p);
	}
}

static const struct vmcd_ipc_command *command_find(int32_t id)
{
	for (size_t i = 0; i < n_ipc_commands; i++) {
		if (ipc_commands[i].cmd == id) {
			return &ipc_commands[i];
		}
	}
	return NULL;
}

static int32_t ipc_msg_process(qb_ipcs_connection_t *c, void *data, size_t size)
{
	struct qb_ipc_request_header *hdr = data;
	const char *payload = (const char *)data + sizeof(*hdr);
	size_t payload_len = size - sizeof(*hdr);
	json_object *args = NULL, *result = NULL;
	const struct vmcd_ipc_command *cmd = NULL;
	const struct client *cl = qb_ipcs_context_get(c);
	struct vmcd_ipc_req req;
	char err[1024] = "";
	int rc;

	if (size <= sizeof(*hdr) || payload[payload_len - 1] != '\0' ||
	    strlen(payload) != payload_len - 1 ||
	    (args = vmc_json_parse(payload, err, sizeof(err))) == NULL ||
	    !json_object_is_type(args, json_type_object)) {
		log_warn("dropped a malformed IPC request (%zu bytes)", size);
		json_object_put(args);
		result = error_body("malformed request: expected a header and a JSON object");
		reply_send(c, size >= sizeof(*hdr) ? hdr->id : 0, -VMC_E_PROTOCOL, result);
		json_object_put(result);
		return 0;
	}
	cmd = command_find(hdr->id);
	req = (struct vmcd_ipc_req){ .conn = c, .cmd = hdr->id, .args = args,
				     .uid = cl ? cl->uid : (uid_t)-1, .pid = cl ? cl->pid : 0 };
	if (cmd == NULL) {
		snprintf(err, sizeof(err), "unknown command %d: is clusterctl newer than vmclusterd?", hdr->id);
		rc = -VMC_E_PROTOCOL;
	} else {
		rc = cmd->fn(ipc_ctx, &req, &result, err, sizeof(err));
	}
	if (rc == 1) {
		json_object_put(args);
		return 0;
	}
	if (rc != 0) {
		if (err[0] == '\0') {
			snprintf(err, sizeof(err), "%s", vmc_strerror(rc));
		}
		json_object_put(result);
		result = error_body(err);
		log_info("refused %s: %s", cmd ? cmd->name : "request", err);
	}
	tag_copy(args, result);
	reply_send(c, hdr->id, rc, result);
	json_object_put(result);
	json_object_put(args);
	return 0;
}

/* Root, or a process whose primary or supplementary groups include haclient. */
static bool client_in_haclient(pid_t pid, gid_t gid)
{
	char path[64], line[4096];
	bool found = false;
	FILE *f;

	if (!have_haclient) {
		return false;
	}
	if (gid == haclient_gid) {
		return true;
	}
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (f == NULL) {
		return false;
	}
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		char *save = NULL;
		if (strncmp(line, "Groups:", 7) != 0) {
			continue;
		}
		for (char *t = strtok_r(line + 7, " \t\n", &save); t; t = strtok_r(NULL, " \t\n", &save)) {
			if ((gid_t)strtoul(t, NULL, 10) == haclient_gid) {
				found = true;
			}
		}
	}
	fclose(f);
	return found;
}

static int32_t ipc_connection_accept(qb_ipcs_connection_t *c, uid_t uid, gid_t gid)
{
	struct qb_ipcs_connection_stats st = { 0 };

	qb_ipcs_connection_stats_get(c, &st, 0);
	if (uid == 0 || client_in_haclient(st.client_pid, gid)) {
		struct client *cl = calloc(1, sizeof(*cl));
		if (cl == NULL) {
			return -ENOMEM;
		}
		cl->uid = uid;
		cl->pid = st.client_pid;
		qb_ipcs_context_set(c, cl);
		if (have_haclient) {
			qb_ipcs_connection_auth_set(c, -1, haclient_gid, 0660);
		}
		return 0;
	}
	log_warn("refused IPC connection from uid %u (pid %d): not root and not in group %s",
		 (unsigned int)uid, st.client_pid, VMC_IPC_GROUP);
	return -EACCES;
}

/*
 * The client went away (its own timeout, a Ctrl-C): its calls will not be
 * answered, so they let go of the connection now; each is freed once its
 * change is decided.
 */
static int32_t ipc_connection_closed(qb_ipcs_connection_t *c)
{
	for (struct vmcd_ipc_call *p = calls; p != NULL; p = p->next) {
		if (p->conn == c) {
			p->conn = NULL;
			qb_ipcs_connection_unref(c);
		}
	}
	return 0;
}

/* Calls hold a reference, so none can point here any more; be safe anyway. */
static void ipc_connection_destroyed(qb_ipcs_connection_t *c)
{
	for (struct vmcd_ipc_call *p = calls; p != NULL; p = p->next) {
		if (p->conn == c) {
			p->conn = NULL;
		}
	}
	free(qb_ipcs_context_get(c));
	qb_ipcs_context_set(c, NULL);
}

static int32_t loop_job_add(enum qb_loop_priority p, void *data, qb_loop_job_dispatch_fn fn)
{
	return qb_loop_job_add(ipc_ctx->loop, p, data, fn);
}

static int32_t loop_dispatch_add(enum qb_loop_priority p, int32_t fd, int32_t evts, void *data,
				 qb_ipcs_dispatch_fn_t fn)
{
	return qb_loop_poll_add(ipc_ctx->loop, p, fd, evts, data, fn);
}

static int32_t loop_dispatch_mod(enum qb_loop_priority p, int32_t fd, int32_t evts, void *data,
				 qb_ipcs_dispatch_fn_t fn)
{
	return qb_loop_poll_mod(ipc_ctx->loop, p, fd, evts, data, fn);
}

static int32_t loop_dispatch_del(int32_t fd)
{
	return qb_loop_poll_del(ipc_ctx->loop, fd);
}

int vmcd_ipc_init(struct vmcd *d, const struct vmcd_ipc_command *commands, size_t n)
{
	static struct qb_ipcs_service_handlers handlers = {
		.connection_accept = ipc_connection_accept,
		.msg_process = ipc_msg_process,
		.connection_closed = ipc_connection_closed,
		.connection_destroyed = ipc_connection_destroyed,
	};
	static struct qb_ipcs_poll_handlers poll_handlers = {
		.job_add = loop_job_add,
		.dispatch_add = loop_dispatch_add,
		.dispatch_mod = loop_dispatch_mod,
		.dispatch_del = loop_dispatch_del,
	};
	struct group *gr = getgrnam(VMC_IPC_GROUP);
	int rc;

	ipc_ctx = d;
	ipc_commands = commands;
	n_ipc_commands = n;
	if (gr != NULL) {
		haclient_gid = gr->gr_gid;
		have_haclient = true;
	} else {
		log_warn("group %s does not exist: only root can use clusterctl", VMC_IPC_GROUP);
	}
	ipc_service = qb_ipcs_create(VMC_IPC_NAME, 0, QB_IPC_SHM, &handlers);
	if (ipc_service == NULL) {
		log_err("cannot create IPC service '%s'", VMC_IPC_NAME);
		return -EIO;
	}
	qb_ipcs_poll_handlers_set(ipc_service, &poll_handlers);
	rc = qb_ipcs_run(ipc_service);
	if (rc != 0) {
		log_err("cannot start IPC service '%s': %s (is another vmclusterd running?)",
			VMC_IPC_NAME, strerror(-rc));
		qb_ipcs_destroy(ipc_service);
		ipc_service = NULL;
		return rc;
	}
	return 0;
}

void vmcd_ipc_fini(struct vmcd *d)
{
	while (calls != NULL) {
		struct vmcd_ipc_call *p = calls;
		calls = p->next;
		if (p->conn != NULL) {
			qb_ipcs_connection_unref(p->conn);
		}
		free(p->detail);
		free(p);
	}
	if (ipc_service != NULL) {
		qb_ipcs_destroy(ipc_service);
		ipc_service = NULL;
	}
}
