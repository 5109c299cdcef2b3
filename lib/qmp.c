/*
 * The QMP protocol engine: bytes in, bytes and callbacks out, no I/O.
 * qmp.h has the protocol, the state diagram and the guarantees.
 *
 * The incoming stream is cut into messages by json-c's incremental
 * tokenizer, fed at most message_max bytes per message: between messages
 * only white space may appear and a message must open with '{', so junk
 * and non-object JSON fail at their first byte instead of after 16 MiB.
 *
 * A command lives on one of two lists until it completes: held (accepted
 * before negotiation finished; not yet serialized) or in_flight
 * (serialized into the output queue; waiting for its reply). Each command
 * becomes one output chunk, so a chunk can carry the command's fd.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmp.h"

#define QMP_REASON_LEN 256
#define QMP_WARN_LEN 256
#define QMP_EXCERPT_LEN 40
#define QMP_STATE_BIT(s) (1u << (s))
#define QMP_IN_SESSION (QMP_STATE_BIT(VMC_QMP_NEGOTIATING) | QMP_STATE_BIT(VMC_QMP_READY))
#define QMP_CAPABILITIES "qmp_capabilities"
#define QMP_DESC_FREED "disconnected"

struct qmp_command {
	uint64_t id;
	char *name;
	json_object *args;      /* until serialized */
	int fd;                 /* -1: none */
	bool internal;          /* the engine's own qmp_capabilities */
	vmc_qmp_done_fn done;
	void *opaque;
	struct qmp_command *next;
};

struct qmp_command_list {
	struct qmp_command *head;
	struct qmp_command **tail;
};

struct qmp_chunk {
	char *data;
	size_t len;
	size_t sent;
	int fd;                 /* -1 once the first byte went out */
	uint64_t id;
	struct qmp_chunk *next;
};

struct vmc_qmp {
	const struct vmc_qmp_ops *ops;
	void *ctx;
	enum vmc_qmp_state state;
	char reason[QMP_REASON_LEN];

	struct json_tokener *tok;
	size_t message_max;
	size_t message_len;     /* bytes of the unfinished message given to tok */

	uint64_t next_id;
	size_t user_pending;
	struct qmp_command_list held;
	struct qmp_command_list in_flight;
	struct qmp_chunk *out_head;
	struct qmp_chunk **out_tail;

	bool have_greeting;
	struct vmc_qmp_greeting greeting;
	char *package;
	char **capabilities;

	struct vmc_qmp_stats stats;
	unsigned int depth;     /* public calls under way; callbacks nest */
	bool feeding;
	bool free_requested;    /* vmc_qmp_free() from a callback */
	bool destroying;
};

static const struct vmc_qmp_ops qmp_no_ops;

/* {state} -> the states it may move to; anything else is refused and logged. */
static const unsigned int qmp_next_allowed[VMC_QMP_STATE_COUNT] = {
	[VMC_QMP_AWAIT_GREETING] = QMP_STATE_BIT(VMC_QMP_NEGOTIATING) | QMP_STATE_BIT(VMC_QMP_FAILED),
	[VMC_QMP_NEGOTIATING] = QMP_STATE_BIT(VMC_QMP_READY) | QMP_STATE_BIT(VMC_QMP_FAILED),
	[VMC_QMP_READY] = QMP_STATE_BIT(VMC_QMP_FAILED),
	[VMC_QMP_FAILED] = 0,
};

static void qmp_greeting_dispatch(struct vmc_qmp *q, json_object *msg, json_object *value);
static void qmp_return_dispatch(struct vmc_qmp *q, json_object *msg, json_object *value);
static void qmp_error_dispatch(struct vmc_qmp *q, json_object *msg, json_object *value);
static void qmp_event_dispatch(struct vmc_qmp *q, json_object *msg, json_object *value);

/* A message's kind is the first of these members it has. */
static const struct qmp_message_kind {
	const char *member;
	unsigned int allowed_states;
	void (*dispatch)(struct vmc_qmp *q, json_object *msg, json_object *value);
} qmp_message_kinds[] = {
	{ "QMP", QMP_STATE_BIT(VMC_QMP_AWAIT_GREETING), qmp_greeting_dispatch },
	{ "return", QMP_IN_SESSION, qmp_return_dispatch },
	{ "error", QMP_IN_SESSION, qmp_error_dispatch },
	/* before the greeting too: see qmp_event_dispatch */
	{ "event", QMP_IN_SESSION | QMP_STATE_BIT(VMC_QMP_AWAIT_GREETING), qmp_event_dispatch },
};

#define QMP_MESSAGE_KIND_COUNT (sizeof(qmp_message_kinds) / sizeof(qmp_message_kinds[0]))

const char *vmc_qmp_state_to_str(enum vmc_qmp_state s)
{
	switch (s) {
	case VMC_QMP_AWAIT_GREETING:
		return "await-greeting";
	case VMC_QMP_NEGOTIATING:
		return "negotiating";
	case VMC_QMP_READY:
		return "ready";
	case VMC_QMP_FAILED:
		return "failed";
	case VMC_QMP_STATE_COUNT:
		break;
	}
	return "invalid";
}

const char *vmc_qmp_reply_status_to_str(enum vmc_qmp_reply_status s)
{
	switch (s) {
	case VMC_QMP_OK:
		return "ok";
	case VMC_QMP_ERROR:
		return "error";
	case VMC_QMP_DISCONNECTED:
		return "disconnected";
	}
	return "invalid";
}

/* ---- small helpers ---- */

/* Control characters would split a log line: replace them. */
static void qmp_line_sanitize(char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f) {
			*s = '?';
		}
	}
}

/* A quoted, escaped, bounded excerpt of untrusted bytes for a message. */
static void qmp_excerpt(const char *p, size_t n, char *out, size_t outlen)
{
	size_t o = 0;

	o += (size_t)snprintf(out, outlen, "\"");
	for (size_t i = 0; i < n && i < QMP_EXCERPT_LEN && o + 6 < outlen; i++) {
		unsigned char c = (unsigned char)p[i];

		if (isprint(c) && c != '"' && c != '\\') {
			out[o++] = (char)c;
		} else {
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
		}
	}
	snprintf(out + o, outlen - o, n > QMP_EXCERPT_LEN ? "\"..." : "\"");
}

static void qmp_warn(struct vmc_qmp *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void qmp_warn(struct vmc_qmp *q, const char *fmt, ...)
{
	char what[QMP_WARN_LEN];
	va_list ap;

	if (q->ops->warn == NULL) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	qmp_line_sanitize(what);
	q->ops->warn(q->ctx, what);
}

static bool qmp_state_enter(struct vmc_qmp *q, enum vmc_qmp_state next)
{
	if ((qmp_next_allowed[q->state] & QMP_STATE_BIT(next)) == 0) {
		qmp_warn(q, "qmp: illegal transition %s -> %s refused", vmc_qmp_state_to_str(q->state),
			 vmc_qmp_state_to_str(next));
		return false;
	}
	q->state = next;
	return true;
}

/* Callbacks may free the engine: the free waits for the outermost call. */
static void qmp_destroy(struct vmc_qmp *q);

static void qmp_call_begin(struct vmc_qmp *q)
{
	q->depth++;
}

static void qmp_call_end(struct vmc_qmp *q)
{
	q->depth--;
	if (q->depth == 0 && q->free_requested) {
		qmp_destroy(q);
	}
}

/* ---- commands ---- */

static void qmp_list_init(struct qmp_command_list *l)
{
	l->head = NULL;
	l->tail = &l->head;
}

static void qmp_list_append(struct qmp_command_list *l, struct qmp_command *c)
{
	c->next = NULL;
	*l->tail = c;
	l->tail = &c->next;
}

static struct qmp_command *qmp_list_pop(struct qmp_command_list *l)
{
	struct qmp_command *c = l->head;

	if (c != NULL) {
		l->head = c->next;
		if (l->head == NULL) {
			l->tail = &l->head;
		}
		c->next = NULL;
	}
	return c;
}

static struct qmp_command *qmp_list_unlink_id(struct qmp_command_list *l, uint64_t id)
{
	for (struct qmp_command **pp = &l->head; *pp != NULL; pp = &(*pp)->next) {
		struct qmp_command *c = *pp;

		if (c->id == id) {
			*pp = c->next;
			if (*pp == NULL) {
				l->tail = pp;
			}
			c->next = NULL;
			return c;
		}
	}
	return NULL;
}

static struct qmp_command *qmp_command_new(struct vmc_qmp *q, const char *name, json_object *args,
					   int fd, vmc_qmp_done_fn done, void *opaque)
{
	struct qmp_command *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		return NULL;
	}
	c->name = strdup(name);
	if (c->name == NULL) {
		free(c);
		return NULL;
	}
	c->id = q->next_id++;
	c->args = args;
	c->fd = fd;
	c->done = done;
	c->opaque = opaque;
	return c;
}

static void qmp_command_free(struct qmp_command *c)
{
	json_object_put(c->args);
	free(c->name);
	free(c);
}

/* The one place a command's done callback runs; the command is gone after. */
static void qmp_command_complete(struct vmc_qmp *q, struct qmp_command *c,
				 const struct vmc_qmp_reply *reply)
{
	if (!c->internal) {
		q->user_pending--;
	}
	if (c->done != NULL) {
		c->done(q, c->opaque, reply);
	}
	qmp_command_free(c);
}

static void qmp_command_complete_disconnected(struct vmc_qmp *q, struct qmp_command *c,
					      const char *desc)
{
	struct vmc_qmp_reply reply = {
		.id = c->id,
		.command = c->name,
		.status = VMC_QMP_DISCONNECTED,
		.error_class = VMC_QMP_CLASS_DISCONNECTED,
		.error_desc = desc,
	};

	qmp_command_complete(q, c, &reply);
}

/* Takes every pending command off the engine, merged back into id order. */
static struct qmp_command *qmp_pending_detach(struct vmc_qmp *q)
{
	struct qmp_command *a = q->in_flight.head;
	struct qmp_command *b = q->held.head;
	struct qmp_command *head = NULL;
	struct qmp_command **tail = &head;

	while (a != NULL || b != NULL) {
		struct qmp_command **from = (b == NULL || (a != NULL && a->id < b->id)) ? &a : &b;

		*tail = *from;
		tail = &(*from)->next;
		*from = (*from)->next;
	}
	*tail = NULL;
	qmp_list_init(&q->in_flight);
	qmp_list_init(&q->held);
	return head;
}

static void qmp_pending_complete_all(struct vmc_qmp *q, const char *desc)
{
	struct qmp_command *c = qmp_pending_detach(q);

	while (c != NULL) {
		struct qmp_command *next = c->next;

		qmp_command_complete_disconnected(q, c, desc);
		c = next;
	}
}

/* ---- output ---- */

static void qmp_output_drop_all(struct vmc_qmp *q)
{
	struct qmp_chunk *k = q->out_head;

	while (k != NULL) {
		struct qmp_chunk *next = k->next;

		free(k->data);
		free(k);
		k = next;
	}
	q->out_head = NULL;
	q->out_tail = &q->out_head;
}

/*
 * {"execute": name, "arguments": args, "id": id} in a new buffer, with no
 * line end: QEMU runs a command as soon as its closing brace arrives and
 * may exit on "quit" without reading further, and bytes left unread make
 * the kernel report our next read as ECONNRESET instead of EOF.
 */
static char *qmp_command_serialize(const struct qmp_command *c, size_t *len)
{
	json_object *msg = json_object_new_object();
	const char *text;
	size_t text_len;
	char *buf = NULL;

	if (msg == NULL) {
		return NULL;
	}
	json_object_object_add(msg, "execute", json_object_new_string(c->name));
	if (c->args != NULL) {
		json_object_object_add(msg, "arguments", json_object_get(c->args));
	}
	json_object_object_add(msg, "id", json_object_new_int64((int64_t)c->id));
	text = json_object_to_json_string_length(
		msg, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &text_len);
	if (text != NULL) {
		buf = malloc(text_len + 1);
	}
	if (buf != NULL) {
		memcpy(buf, text, text_len + 1);
		*len = text_len;
	}
	json_object_put(msg);
	return buf;
}

/* Serializes c into the output queue and moves it in flight; 0 or -ENOMEM. */
static int qmp_command_send(struct vmc_qmp *q, struct qmp_command *c)
{
	struct qmp_chunk *k = calloc(1, sizeof(*k));

	if (k == NULL) {
		return -ENOMEM;
	}
	k->data = qmp_command_serialize(c, &k->len);
	if (k->data == NULL) {
		free(k);
		return -ENOMEM;
	}
	k->fd = c->fd;
	k->id = c->id;
	*q->out_tail = k;
	q->out_tail = &k->next;
	json_object_put(c->args);
	c->args = NULL;
	qmp_list_append(&q->in_flight, c);
	return 0;
}

bool vmc_qmp_output_peek(const struct vmc_qmp *q, struct vmc_qmp_output *out)
{
	const struct qmp_chunk *k = q->out_head;

	if (k == NULL || q->state == VMC_QMP_FAILED) {
		return false;
	}
	out->data = k->data + k->sent;
	out->len = k->len - k->sent;
	out->fd = k->fd;
	out->id = k->id;
	return true;
}

int vmc_qmp_output_consume(struct vmc_qmp *q, size_t n)
{
	struct qmp_chunk *k = q->out_head;

	if (n == 0) {
		return 0;
	}
	if (k == NULL || n > k->len - k->sent) {
		return -EINVAL;
	}
	k->fd = -1;
	k->sent += n;
	if (k->sent == k->len) {
		q->out_head = k->next;
		if (q->out_head == NULL) {
			q->out_tail = &q->out_head;
		}
		free(k->data);
		free(k);
	}
	return 0;
}

bool vmc_qmp_output_pending(const struct vmc_qmp *q)
{
	return q->out_head != NULL && q->state != VMC_QMP_FAILED;
}

/* ---- failure ---- */

static void qmp_fail(struct vmc_qmp *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void qmp_fail(struct vmc_qmp *q, const char *fmt, ...)
{
	va_list ap;

	if (q->state == VMC_QMP_FAILED || q->destroying) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(q->reason, sizeof(q->reason), fmt, ap);
	va_end(ap);
	qmp_line_sanitize(q->reason);
	qmp_state_enter(q, VMC_QMP_FAILED);
	qmp_output_drop_all(q);
	json_tokener_reset(q->tok);
	q->message_len = 0;
	qmp_pending_complete_all(q, q->reason);
	if (q->ops->failed != NULL) {
		q->ops->failed(q->ctx, q->reason);
	}
}

void vmc_qmp_fail(struct vmc_qmp *q, const char *reason)
{
	qmp_call_begin(q);
	if (q->message_len > 0) {
		qmp_fail(q, "%s (%zu bytes of an unfinished message discarded)", reason, q->message_len);
	} else {
		qmp_fail(q, "%s", reason);
	}
	qmp_call_end(q);
}

/* ---- negotiation ---- */

static void qmp_negotiation_complete(struct vmc_qmp *q)
{
	if (!qmp_state_enter(q, VMC_QMP_READY)) {
		return;
	}
	while (q->held.head != NULL) {
		struct qmp_command *c = qmp_list_pop(&q->held);

		if (qmp_command_send(q, c) < 0) {
			qmp_command_complete_disconnected(q, c, "out of memory");
			qmp_fail(q, "out of memory while sending held commands");
			return;
		}
	}
	if (q->ops->ready != NULL) {
		q->ops->ready(q->ctx);
	}
}

static void qmp_capabilities_done(struct vmc_qmp *q, void *opaque, const struct vmc_qmp_reply *reply)
{
	switch (reply->status) {
	case VMC_QMP_OK:
		qmp_negotiation_complete(q);
		break;
	case VMC_QMP_ERROR:
		qmp_fail(q, "qmp_capabilities refused: %s: %s", reply->error_class, reply->error_desc);
		break;
	case VMC_QMP_DISCONNECTED:
		break;
	}
}

static int qmp_capabilities_send(struct vmc_qmp *q)
{
	struct qmp_command *c = qmp_command_new(q, QMP_CAPABILITIES, NULL, -1, qmp_capabilities_done, NULL);

	if (c == NULL) {
		return -ENOMEM;
	}
	c->internal = true;
	if (qmp_command_send(q, c) < 0) {
		qmp_command_free(c);
		return -ENOMEM;
	}
	return 0;
}

/* ---- incoming messages ---- */

static bool qmp_member_int64(json_object *o, const char *key, int64_t *out)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int)) {
		return false;
	}
	*out = json_object_get_int64(v);
	return true;
}

static bool qmp_member_int(json_object *o, const char *key, int *out)
{
	int64_t v;

	if (!qmp_member_int64(o, key, &v) || v < 0 || v > INT_MAX) {
		return false;
	}
	*out = (int)v;
	return true;
}

static const char *qmp_member_string(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string)) {
		return NULL;
	}
	return json_object_get_string(v);
}

/* {"version": {"qemu": {major, minor, micro}, "package"}, "capabilities": [...]} */
static const char *qmp_greeting_parse(struct vmc_qmp *q, json_object *qmp)
{
	json_object *version, *qemu, *caps;
	const char *package;
	size_t n;

	if (!json_object_object_get_ex(qmp, "version", &version) ||
	    !json_object_object_get_ex(version, "qemu", &qemu) ||
	    !qmp_member_int(qemu, "major", &q->greeting.major) ||
	    !qmp_member_int(qemu, "minor", &q->greeting.minor) ||
	    !qmp_member_int(qemu, "micro", &q->greeting.micro)) {
		return "no version.qemu.{major,minor,micro}";
	}
	if (!json_object_object_get_ex(qmp, "capabilities", &caps) ||
	    !json_object_is_type(caps, json_type_array)) {
		return "no capabilities array";
	}
	package = qmp_member_string(version, "package");
	n = json_object_array_length(caps);
	q->package = strdup(package != NULL ? package : "");
	q->capabilities = calloc(n + 1, sizeof(*q->capabilities));
	if (q->package == NULL || q->capabilities == NULL) {
		return "out of memory";
	}
	for (size_t i = 0; i < n; i++) {
		json_object *cap = json_object_array_get_idx(caps, i);

		if (!json_object_is_type(cap, json_type_string)) {
			return "a capability is not a string";
		}
		q->capabilities[i] = strdup(json_object_get_string(cap));
		if (q->capabilities[i] == NULL) {
			return "out of memory";
		}
	}
	q->greeting.package = q->package;
	q->greeting.capabilities = (const char *const *)q->capabilities;
	q->greeting.capability_count = n;
	return NULL;
}

static void qmp_greeting_dispatch(struct vmc_qmp *q, json_object *msg, json_object *value)
{
	const char *problem = qmp_greeting_parse(q, value);

	if (problem != NULL) {
		qmp_fail(q, "malformed greeting: %s", problem);
		return;
	}
	q->have_greeting = true;
	qmp_state_enter(q, VMC_QMP_NEGOTIATING);
	if (qmp_capabilities_send(q) < 0) {
		qmp_fail(q, "out of memory while sending qmp_capabilities");
		return;
	}
	if (q->ops->greeting != NULL) {
		q->ops->greeting(q->ctx, &q->greeting);
	}
}

/* The in-flight command this reply answers, unlinked; NULL: reported and dropped. */
static struct qmp_command *qmp_reply_match(struct vmc_qmp *q, json_object *msg, const char *kind)
{
	json_object *id = NULL;
	struct qmp_command *c = NULL;

	if (json_object_object_get_ex(msg, "id", &id) && json_object_is_type(id, json_type_int) &&
	    json_object_get_int64(id) > 0) {
		c = qmp_list_unlink_id(&q->in_flight, (uint64_t)json_object_get_int64(id));
	}
	if (c == NULL) {
		q->stats.unknown_replies_dropped++;
		qmp_warn(q, "qmp: dropped a \"%s\" reply with unknown id %s", kind,
			 id != NULL ? json_object_to_json_string_ext(id, JSON_C_TO_STRING_PLAIN) : "(none)");
		return NULL;
	}
	q->stats.replies++;
	return c;
}

static void qmp_return_dispatch(struct vmc_qmp *q, json_object *msg, json_object *value)
{
	struct qmp_command *c = qmp_reply_match(q, msg, "return");
	struct vmc_qmp_reply reply;

	if (c == NULL) {
		return;
	}
	reply = (struct vmc_qmp_reply){
		.id = c->id,
		.command = c->name,
		.status = VMC_QMP_OK,
		.ret = value,
	};
	qmp_command_complete(q, c, &reply);
}

static void qmp_error_dispatch(struct vmc_qmp *q, json_object *msg, json_object *value)
{
	const char *error_class = qmp_member_string(value, "class");
	const char *desc = qmp_member_string(value, "desc");
	struct vmc_qmp_reply reply;
	struct qmp_command *c;

	if (error_class == NULL || desc == NULL) {
		qmp_fail(q, "malformed error reply: no class or desc string");
		return;
	}
	if (!json_object_object_get_ex(msg, "id", NULL)) {
		/* QEMU could not read our command up to its id: the streams are out of step. */
		qmp_fail(q, "QEMU could not read a command: %s: %s", error_class, desc);
		return;
	}
	c = qmp_reply_match(q, msg, "error");
	if (c == NULL) {
		return;
	}
	reply = (struct vmc_qmp_reply){
		.id = c->id,
		.command = c->name,
		.status = VMC_QMP_ERROR,
		.error_class = error_class,
		.error_desc = desc,
	};
	qmp_command_complete(q, c, &reply);
}

static void qmp_event_dispatch(struct vmc_qmp *q, json_object *msg, json_object *value)
{
	struct vmc_qmp_event ev = { .seconds = -1, .microseconds = -1 };
	json_object *ts;

	if (!json_object_is_type(value, json_type_string)) {
		qmp_fail(q, "malformed event: the name is not a string");
		return;
	}
	ev.name = json_object_get_string(value);
	if (json_object_object_get_ex(msg, "data", &ev.data) && ev.data != NULL &&
	    !json_object_is_type(ev.data, json_type_object)) {
		qmp_fail(q, "malformed event %s: data is not an object", ev.name);
		return;
	}
	/* The spec says -1/-1 when QEMU had no clock; treat a missing one alike. */
	if (json_object_object_get_ex(msg, "timestamp", &ts) &&
	    (!qmp_member_int64(ts, "seconds", &ev.seconds) ||
	     !qmp_member_int64(ts, "microseconds", &ev.microseconds))) {
		ev.seconds = -1;
		ev.microseconds = -1;
	}
	/* QEMU may flush an event it queued for the monitor's previous client
	 * (a migration agent killed mid-move) before it greets the next one:
	 * old news, dropped, not a confused peer. */
	if (q->state == VMC_QMP_AWAIT_GREETING) {
		q->stats.unknown_messages_dropped++;
		qmp_warn(q, "qmp: dropped the event %s, sent before the greeting", ev.name);
		return;
	}
	q->stats.events++;
	if (q->ops->event != NULL) {
		q->ops->event(q->ctx, &ev);
	}
}

static void qmp_message_dispatch(struct vmc_qmp *q, json_object *msg)
{
	q->stats.messages_received++;
	for (size_t i = 0; i < QMP_MESSAGE_KIND_COUNT; i++) {
		const struct qmp_message_kind *kind = &qmp_message_kinds[i];
		json_object *value;

		if (!json_object_object_get_ex(msg, kind->member, &value)) {
			continue;
		}
		if ((kind->allowed_states & QMP_STATE_BIT(q->state)) == 0) {
			qmp_fail(q, "unexpected \"%s\" message in state %s", kind->member,
				 vmc_qmp_state_to_str(q->state));
			return;
		}
		kind->dispatch(q, msg, value);
		return;
	}
	q->stats.unknown_messages_dropped++;
	qmp_warn(q, "qmp: dropped a message of no known kind: %.80s",
		 json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN));
}

/* ---- the byte stream ---- */

static size_t qmp_whitespace_len(const char *p, size_t n)
{
	size_t i = 0;

	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n')) {
		i++;
	}
	return i;
}

/* Fails the engine over bytes that cannot start a message. */
static void qmp_stream_refuse(struct vmc_qmp *q, const char *p, size_t n)
{
	char excerpt[QMP_EXCERPT_LEN * 4 + 8];

	qmp_excerpt(p, n, excerpt, sizeof(excerpt));
	qmp_fail(q, "garbage at byte %" PRIu64 " of the QMP stream, expected a JSON object: %s",
		 q->stats.bytes_received, excerpt);
}

/* Gives tok the next piece of the current message; returns the bytes used. */
static size_t qmp_stream_tokenize(struct vmc_qmp *q, const char *p, size_t n)
{
	size_t chunk = n < q->message_max - q->message_len ? n : q->message_max - q->message_len;
	enum json_tokener_error jerr;
	json_object *msg;
	size_t used;

	if (chunk == 0) {
		qmp_fail(q, "QMP message longer than %zu bytes", q->message_max);
		return n;
	}
	if (memchr(p, '\0', chunk) != NULL) {
		qmp_fail(q, "NUL byte in a QMP message near byte %" PRIu64, q->stats.bytes_received);
		return n;
	}
	msg = json_tokener_parse_ex(q->tok, p, (int)chunk);
	jerr = json_tokener_get_error(q->tok);
	if (msg == NULL && jerr == json_tokener_continue) {
		q->message_len += chunk;
		q->stats.bytes_received += chunk;
		return chunk;
	}
	used = json_tokener_get_parse_end(q->tok);
	if (jerr != json_tokener_success || !json_object_is_type(msg, json_type_object) || used == 0) {
		qmp_fail(q, "malformed JSON at byte %" PRIu64 " of the QMP stream: %s",
			 q->stats.bytes_received + used, json_tokener_error_desc(jerr));
		json_object_put(msg);
		return n;
	}
	json_tokener_reset(q->tok);
	q->message_len = 0;
	q->stats.bytes_received += used;
	qmp_message_dispatch(q, msg);
	json_object_put(msg);
	return used;
}

/* Consumes some of p (at least one byte): white space, or message bytes. */
static size_t qmp_stream_consume(struct vmc_qmp *q, const char *p, size_t n)
{
	size_t skip = 0;

	if (q->message_len == 0) {
		skip = qmp_whitespace_len(p, n);
		q->stats.bytes_received += skip;
		if (skip == n) {
			return n;
		}
		if (p[skip] != '{') {
			qmp_stream_refuse(q, p + skip, n - skip);
			return n;
		}
	}
	return skip + qmp_stream_tokenize(q, p + skip, n - skip);
}

int vmc_qmp_feed(struct vmc_qmp *q, const void *buf, size_t len)
{
	const char *p = buf;
	size_t off = 0;
	int rc;

	if (q->feeding) {
		return -EBUSY;
	}
	if (q->state == VMC_QMP_FAILED || q->destroying || q->free_requested) {
		return -ENOTCONN;
	}
	qmp_call_begin(q);
	q->feeding = true;
	while (off < len && q->state != VMC_QMP_FAILED && !q->free_requested) {
		off += qmp_stream_consume(q, p + off, len - off);
	}
	q->feeding = false;
	rc = q->state == VMC_QMP_FAILED ? -EPROTO : 0;
	qmp_call_end(q);
	return rc;
}

/* ---- the public API ---- */

struct vmc_qmp *vmc_qmp_new(const struct vmc_qmp_ops *ops, void *ctx)
{
	struct vmc_qmp *q = calloc(1, sizeof(*q));

	if (q == NULL) {
		return NULL;
	}
	q->tok = json_tokener_new_ex(VMC_QMP_JSON_DEPTH_MAX);
	if (q->tok == NULL) {
		free(q);
		return NULL;
	}
	json_tokener_set_flags(q->tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
	q->ops = ops != NULL ? ops : &qmp_no_ops;
	q->ctx = ctx;
	q->state = VMC_QMP_AWAIT_GREETING;
	q->message_max = VMC_QMP_MESSAGE_MAX_DEFAULT;
	q->next_id = 1;
	qmp_list_init(&q->held);
	qmp_list_init(&q->in_flight);
	q->out_tail = &q->out_head;
	return q;
}

static void qmp_destroy(struct vmc_qmp *q)
{
	q->destroying = true;
	q->depth++; /* a done callback calling vmc_qmp_free() again must not recurse */
	qmp_pending_complete_all(q, QMP_DESC_FREED);
	qmp_output_drop_all(q);
	if (q->capabilities != NULL) {
		for (size_t i = 0; q->capabilities[i] != NULL; i++) {
			free(q->capabilities[i]);
		}
	}
	free(q->capabilities);
	free(q->package);
	json_tokener_free(q->tok);
	free(q);
}

void vmc_qmp_free(struct vmc_qmp *q)
{
	if (q == NULL || q->destroying) {
		return;
	}
	if (q->depth > 0) {
		q->free_requested = true;
		return;
	}
	qmp_destroy(q);
}

int vmc_qmp_set_message_max(struct vmc_qmp *q, size_t bytes)
{
	if (bytes == 0 || bytes > INT_MAX || q->message_len > 0) {
		return -EINVAL;
	}
	q->message_max = bytes;
	return 0;
}

static int qmp_command_check(const struct vmc_qmp *q, const char *name, const json_object *args)
{
	if (q->state == VMC_QMP_FAILED || q->destroying || q->free_requested) {
		return -ENOTCONN;
	}
	if (name == NULL || name[0] == '\0' || strcmp(name, QMP_CAPABILITIES) == 0) {
		return -EINVAL;
	}
	if (args != NULL && !json_object_is_type(args, json_type_object)) {
		return -EINVAL;
	}
	return 0;
}

static int qmp_command_submit(struct vmc_qmp *q, const char *name, json_object *args, int fd,
			      vmc_qmp_done_fn done, void *opaque, uint64_t *id)
{
	int rc = qmp_command_check(q, name, args);
	struct qmp_command *c;

	if (rc < 0) {
		json_object_put(args);
		return rc;
	}
	c = qmp_command_new(q, name, args, fd, done, opaque);
	if (c == NULL) {
		json_object_put(args);
		return -ENOMEM;
	}
	if (q->state != VMC_QMP_READY) {
		qmp_list_append(&q->held, c);
	} else if (qmp_command_send(q, c) < 0) {
		qmp_command_free(c);
		return -ENOMEM;
	}
	q->user_pending++;
	if (id != NULL) {
		*id = c->id;
	}
	return 0;
}

int vmc_qmp_command(struct vmc_qmp *q, const char *name, json_object *args,
		    vmc_qmp_done_fn done, void *opaque, uint64_t *id)
{
	return qmp_command_submit(q, name, args, -1, done, opaque, id);
}

int vmc_qmp_command_with_fd(struct vmc_qmp *q, const char *name, json_object *args, int fd,
			    vmc_qmp_done_fn done, void *opaque, uint64_t *id)
{
	if (fd < 0) {
		json_object_put(args);
		return -EBADF;
	}
	return qmp_command_submit(q, name, args, fd, done, opaque, id);
}

enum vmc_qmp_state vmc_qmp_state_get(const struct vmc_qmp *q)
{
	return q->state;
}

const char *vmc_qmp_failure_reason(const struct vmc_qmp *q)
{
	return q->state == VMC_QMP_FAILED ? q->reason : "";
}

const struct vmc_qmp_greeting *vmc_qmp_greeting_get(const struct vmc_qmp *q)
{
	return q->have_greeting ? &q->greeting : NULL;
}

size_t vmc_qmp_pending_count(const struct vmc_qmp *q)
{
	return q->user_pending;
}

void vmc_qmp_stats_get(const struct vmc_qmp *q, struct vmc_qmp_stats *stats)
{
	*stats = q->stats;
}
