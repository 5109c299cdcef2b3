/*
 * Unit tests for the QMP client (lib/qmp.c, lib/qmp_fd.c): a session from
 * the greeting to results and events, the stream cut at every size,
 * replies matched by id, every way the engine fails (each pending command
 * completed exactly once), what callbacks may do, the fd-carrying output,
 * and the socket helpers over a socketpair. The transcripts are what QEMU
 * 7.2 sends; tests/unit/qmp-qemu-smoke.c runs the same against a real one.
 *
 * VMC_QMP_SEED=N replays the garbage loops with another seed.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "qmp.h"
#include "check_run.h"

#define TEST_TIMEOUT_S 60
#define LOG_LEN 16384
#define TEXT_LEN 512
#define PROBES_MAX 8
#define SENT_MAX 16
#define NESTING_TOO_DEEP (VMC_QMP_JSON_DEPTH_MAX + 10)
#define GARBAGE_SEED_DEFAULT 20240611u
#define GARBAGE_RANDOM_BUFFERS 2000
#define GARBAGE_MUTATIONS 2000
#define GARBAGE_LEN_MAX 300

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define GREETING                                                                     \
	"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, " \
	"\"package\": \"Debian 1:7.2+dfsg-7+deb12u18+b3\"}, \"capabilities\": [\"oob\"]}}\r\n"

/*
 * QEMU's side of a session in which closefd, query-version and
 * query-status (ids 1-3) were submitted before the greeting, so the
 * engine's qmp_capabilities is id 4: replies out of order, events
 * between them, a reply nobody asked for, a pretty-printed event and a
 * string full of JSON punctuation.
 */
static const char transcript[] =
	GREETING
	"{\"return\": {}, \"id\": 4}\r\n"
	"{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 250}, \"event\": \"RESUME\"}\r\n"
	"{\"return\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, \"package\": \"\"}, "
	"\"id\": 2}\r\n"
	"{\"timestamp\": {\"seconds\": 1700000001, \"microseconds\": 0}, \"event\": \"SHUTDOWN\", "
	"\"data\": {\"guest\": false, \"reason\": \"host-qmp-quit\"}}\r\n"
	"{\"id\": 1, \"error\": {\"class\": \"GenericError\", "
	"\"desc\": \"File descriptor named 'x' not found\"}}\r\n"
	"{\"return\": {}, \"id\": 99}\r\n"
	"{\n    \"event\": \"MIGRATION\",\n    \"data\": {\n        \"status\": \"completed\"\n"
	"    },\n    \"timestamp\": {\n        \"seconds\": 1,\n        \"microseconds\": 2\n"
	"    }\n}\r\n"
	"{\"return\": {\"s\": \"}{\\\"[\\\\\"}, \"id\": 3}\r\n";

static const char transcript_log[] =
	"greeting 7.2.22 package=Debian 1:7.2+dfsg-7+deb12u18+b3 caps=oob\n"
	"ready\n"
	"event RESUME data=null ts=1700000000.250\n"
	"reply 2 query-version ok {\"qemu\":{\"micro\":22,\"minor\":2,\"major\":7},\"package\":\"\"}\n"
	"event SHUTDOWN data={\"guest\":false,\"reason\":\"host-qmp-quit\"} ts=1700000001.0\n"
	"reply 1 closefd error GenericError: File descriptor named 'x' not found\n"
	"warn qmp: dropped a \"return\" reply with unknown id 99\n"
	"event MIGRATION data={\"status\":\"completed\"} ts=1.2\n"
	"reply 3 query-status ok {\"s\":\"}{\\\"[\\\\\"}\n";

/* ---- the recorder: every callback, in order, as one line of text ---- */

enum hook_point { HOOK_NONE, HOOK_GREETING, HOOK_READY, HOOK_EVENT, HOOK_REPLY, HOOK_FAILED };
enum hook_action { ACTION_FREE, ACTION_FEED, ACTION_SUBMIT, ACTION_FAIL };

struct recorder;

/* What one command's done callback saw, and how often it ran. */
struct probe {
	struct recorder *r;
	int calls;
	uint64_t id;
	enum vmc_qmp_reply_status status;
	char command[64];
	char ret[TEXT_LEN];
	char error_class[64];
	char error_desc[TEXT_LEN];
};

struct recorder {
	struct vmc_qmp *q;
	bool freed;
	char log[LOG_LEN];
	size_t log_len;
	int greetings, readies, events, failures, warnings;
	char reason[TEXT_LEN];
	struct probe probes[PROBES_MAX];
	/* Something to do once from inside a callback. */
	enum hook_point hook_at;
	enum hook_action hook_action;
	int hook_rc;
};

static void log_append(struct recorder *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_append(struct recorder *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(r->log + r->log_len, sizeof(r->log) - r->log_len, fmt, ap);
	va_end(ap);
	if (n > 0) {
		r->log_len += (size_t)n;
	}
	if (r->log_len >= sizeof(r->log)) {
		r->log_len = sizeof(r->log) - 1; /* the garbage loops only count */
	}
}

static void probe_done(struct vmc_qmp *q, void *opaque, const struct vmc_qmp_reply *reply);

static void hook_run(struct recorder *r, enum hook_point at)
{
	if (r->hook_at != at) {
		return;
	}
	r->hook_at = HOOK_NONE;
	switch (r->hook_action) {
	case ACTION_FREE:
		vmc_qmp_free(r->q);
		r->freed = true;
		break;
	case ACTION_FEED:
		r->hook_rc = vmc_qmp_feed(r->q, "{}", 2);
		break;
	case ACTION_SUBMIT:
		r->hook_rc = vmc_qmp_command(r->q, "query-status", NULL, probe_done,
					     &r->probes[PROBES_MAX - 1], NULL);
		break;
	case ACTION_FAIL:
		vmc_qmp_fail(r->q, "failed from a callback");
		break;
	}
}

static void on_greeting(void *ctx, const struct vmc_qmp_greeting *g)
{
	struct recorder *r = ctx;

	r->greetings++;
	log_append(r, "greeting %d.%d.%d package=%s caps=", g->major, g->minor, g->micro, g->package);
	for (size_t i = 0; i < g->capability_count; i++) {
		log_append(r, "%s%s", i > 0 ? "," : "", g->capabilities[i]);
	}
	log_append(r, "\n");
	hook_run(r, HOOK_GREETING);
}

static void on_ready(void *ctx)
{
	struct recorder *r = ctx;

	r->readies++;
	log_append(r, "ready\n");
	hook_run(r, HOOK_READY);
}

static void on_event(void *ctx, const struct vmc_qmp_event *ev)
{
	struct recorder *r = ctx;

	r->events++;
	log_append(r, "event %s data=%s ts=%" PRId64 ".%" PRId64 "\n", ev->name,
		   ev->data != NULL ? json_object_to_json_string_ext(ev->data, JSON_C_TO_STRING_PLAIN)
				    : "null",
		   ev->seconds, ev->microseconds);
	hook_run(r, HOOK_EVENT);
}

static void on_failed(void *ctx, const char *reason)
{
	struct recorder *r = ctx;

	r->failures++;
	snprintf(r->reason, sizeof(r->reason), "%s", reason);
	log_append(r, "failed %s\n", reason);
	hook_run(r, HOOK_FAILED);
}

static void on_warn(void *ctx, const char *what)
{
	struct recorder *r = ctx;

	r->warnings++;
	log_append(r, "warn %s\n", what);
}

static const struct vmc_qmp_ops recorder_ops = {
	.greeting = on_greeting,
	.ready = on_ready,
	.event = on_event,
	.failed = on_failed,
	.warn = on_warn,
};

static void probe_done(struct vmc_qmp *q, void *opaque, const struct vmc_qmp_reply *reply)
{
	struct probe *p = opaque;
	struct recorder *r = p->r;

	ck_assert_ptr_eq(q, r->q);
	p->calls++;
	p->id = reply->id;
	p->status = reply->status;
	snprintf(p->command, sizeof(p->command), "%s", reply->command);
	snprintf(p->ret, sizeof(p->ret), "%s",
		 reply->ret != NULL ? json_object_to_json_string_ext(reply->ret, JSON_C_TO_STRING_PLAIN)
				    : "");
	snprintf(p->error_class, sizeof(p->error_class), "%s",
		 reply->error_class != NULL ? reply->error_class : "");
	snprintf(p->error_desc, sizeof(p->error_desc), "%s",
		 reply->error_desc != NULL ? reply->error_desc : "");
	if (reply->status == VMC_QMP_OK) {
		log_append(r, "reply %" PRIu64 " %s ok %s\n", p->id, p->command, p->ret);
	} else {
		log_append(r, "reply %" PRIu64 " %s %s %s: %s\n", p->id, p->command,
			   vmc_qmp_reply_status_to_str(reply->status), p->error_class, p->error_desc);
	}
	hook_run(r, HOOK_REPLY);
}

static void recorder_init(struct recorder *r)
{
	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < PROBES_MAX; i++) {
		r->probes[i].r = r;
	}
	r->hook_at = HOOK_NONE;
	r->q = vmc_qmp_new(&recorder_ops, r);
	ck_assert_ptr_nonnull(r->q);
}

static void recorder_free(struct recorder *r)
{
	if (!r->freed) {
		vmc_qmp_free(r->q);
		r->freed = true;
	}
}

/* ---- driving the engine ---- */

static void feed_ok(struct recorder *r, const char *text)
{
	int rc = vmc_qmp_feed(r->q, text, strlen(text));

	ck_assert_msg(rc == 0, "feed of %.60s returned %d (%s)", text, rc,
		      vmc_qmp_failure_reason(r->q));
}

/* Feeds text in pieces of piece bytes (0: all at once) up to the first error. */
static int feed_in_pieces(struct recorder *r, const char *text, size_t len, size_t piece)
{
	size_t off = 0;
	int rc = 0;

	if (piece == 0) {
		piece = len;
	}
	while (off < len && !r->freed) {
		size_t n = len - off < piece ? len - off : piece;

		rc = vmc_qmp_feed(r->q, text + off, n);
		if (rc < 0) {
			break;
		}
		off += n;
	}
	return rc;
}

static uint64_t submit(struct recorder *r, size_t probe, const char *name, const char *args_json)
{
	json_object *args = args_json != NULL ? json_tokener_parse(args_json) : NULL;
	uint64_t id = 0;
	int rc;

	ck_assert_msg(args_json == NULL || args != NULL, "test args are not JSON: %s", args_json);
	rc = vmc_qmp_command(r->q, name, args, probe_done, &r->probes[probe], &id);
	ck_assert_msg(rc == 0, "submit %s: rc %d", name, rc);
	ck_assert_msg(id > 0, "submit %s: id 0", name);
	return id;
}

/* One command as the engine wrote it. */
struct sent {
	char execute[64];
	uint64_t id;
	char args[TEXT_LEN]; /* "" when it has none */
	int fd;
};

static void sent_parse(const char *data, size_t len, struct sent *s)
{
	char text[TEXT_LEN];
	json_object *o, *v;

	ck_assert_msg(len >= 2 && len < sizeof(text), "chunk of %zu bytes", len);
	memcpy(text, data, len);
	text[len] = '\0';
	ck_assert_msg(text[0] == '{' && text[len - 1] == '}', "chunk is not one object: %s", text);
	ck_assert_msg(strchr(text, '\n') == NULL, "chunk spans lines: %s", text);
	o = json_tokener_parse(text);
	ck_assert_msg(o != NULL, "engine wrote invalid JSON: %s", text);
	ck_assert(json_object_object_get_ex(o, "execute", &v));
	snprintf(s->execute, sizeof(s->execute), "%s", json_object_get_string(v));
	ck_assert(json_object_object_get_ex(o, "id", &v));
	ck_assert(json_object_is_type(v, json_type_int));
	s->id = (uint64_t)json_object_get_int64(v);
	s->args[0] = '\0';
	if (json_object_object_get_ex(o, "arguments", &v)) {
		snprintf(s->args, sizeof(s->args), "%s",
			 json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
	}
	json_object_put(o);
}

/* Writes out everything queued, one chunk at a time, as a socket would. */
static size_t drain(struct vmc_qmp *q, struct sent *out, size_t max)
{
	struct vmc_qmp_output o;
	size_t n = 0;

	while (vmc_qmp_output_peek(q, &o)) {
		ck_assert_msg(n < max, "more than %zu commands queued", max);
		sent_parse(o.data, o.len, &out[n]);
		out[n].fd = o.fd;
		ck_assert_uint_eq(o.id, out[n].id);
		ck_assert_int_eq(vmc_qmp_output_consume(q, o.len), 0);
		n++;
	}
	ck_assert(!vmc_qmp_output_pending(q));
	return n;
}

/* Greeting in, qmp_capabilities out, its success in: READY. */
static void session_ready(struct recorder *r)
{
	struct sent s[SENT_MAX];
	char reply[64];

	feed_ok(r, GREETING);
	ck_assert_uint_eq(drain(r->q, s, SENT_MAX), 1);
	ck_assert_str_eq(s[0].execute, "qmp_capabilities");
	ck_assert_str_eq(s[0].args, "");
	snprintf(reply, sizeof(reply), "{\"return\": {}, \"id\": %" PRIu64 "}\r\n", s[0].id);
	feed_ok(r, reply);
	ck_assert_int_eq(vmc_qmp_state_get(r->q), VMC_QMP_READY);
}

/* The three commands the transcript answers, submitted before the greeting. */
static void transcript_submit(struct recorder *r)
{
	ck_assert_uint_eq(submit(r, 0, "closefd", "{\"fdname\": \"x\"}"), 1);
	ck_assert_uint_eq(submit(r, 1, "query-version", NULL), 2);
	ck_assert_uint_eq(submit(r, 2, "query-status", NULL), 3);
}

/* After a failure: each probe in [0, n) completed once with the reason. */
static void assert_failed_once(struct recorder *r, size_t n)
{
	const char *reason = vmc_qmp_failure_reason(r->q);

	ck_assert_int_eq(vmc_qmp_state_get(r->q), VMC_QMP_FAILED);
	ck_assert_int_eq(r->failures, 1);
	ck_assert_str_eq(r->reason, reason);
	ck_assert_msg(reason[0] != '\0', "failed without a reason");
	ck_assert_msg(strpbrk(reason, "\r\n") == NULL, "reason is not one line: %s", reason);
	ck_assert_uint_eq(vmc_qmp_pending_count(r->q), 0);
	ck_assert(!vmc_qmp_output_pending(r->q));
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(r->probes[i].calls == 1, "probe %zu completed %d times", i,
			      r->probes[i].calls);
		ck_assert_int_eq(r->probes[i].status, VMC_QMP_DISCONNECTED);
		ck_assert_str_eq(r->probes[i].error_class, VMC_QMP_CLASS_DISCONNECTED);
		ck_assert_str_eq(r->probes[i].error_desc, reason);
	}
}

/* ---- a session ---- */

START_TEST(test_greeting_then_capabilities_then_ready)
{
	struct recorder r;
	struct sent s[SENT_MAX];
	const struct vmc_qmp_greeting *g;

	recorder_init(&r);
	ck_assert_int_eq(vmc_qmp_state_get(r.q), VMC_QMP_AWAIT_GREETING);
	ck_assert_ptr_null(vmc_qmp_greeting_get(r.q));
	ck_assert(!vmc_qmp_output_pending(r.q));
	feed_ok(&r, GREETING);
	ck_assert_int_eq(vmc_qmp_state_get(r.q), VMC_QMP_NEGOTIATING);
	ck_assert_str_eq(r.log, "greeting 7.2.22 package=Debian 1:7.2+dfsg-7+deb12u18+b3 caps=oob\n");
	g = vmc_qmp_greeting_get(r.q);
	ck_assert_ptr_nonnull(g);
	ck_assert_int_eq(g->major, 7);
	ck_assert_int_eq(g->minor, 2);
	ck_assert_int_eq(g->micro, 22);
	ck_assert_uint_eq(g->capability_count, 1);
	ck_assert_str_eq(g->capabilities[0], "oob");
	ck_assert_uint_eq(drain(r.q, s, SENT_MAX), 1);
	ck_assert_str_eq(s[0].execute, "qmp_capabilities");
	ck_assert_uint_eq(s[0].id, 1);
	ck_assert_int_eq(s[0].fd, -1);
	feed_ok(&r, "{\"return\": {}, \"id\": 1}\r\n");
	ck_assert_int_eq(vmc_qmp_state_get(r.q), VMC_QMP_READY);
	ck_assert_int_eq(r.readies, 1);
	ck_assert_int_eq(r.failures, 0);
	recorder_free(&r);
}
END_TEST

START_TEST(test_greeting_without_package_or_capabilities)
{
	struct recorder r;

	recorder_init(&r);
	feed_ok(&r, "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 0, \"major\": 9}}, "
		    "\"capabilities\": []}, \"future-member\": 1}\r\n");
	ck_assert_str_eq(r.log, "greeting 9.0.0 package= caps=\n");
	ck_assert_uint_eq(vmc_qmp_greeting_get(r.q)->capability_count, 0);
	recorder_free(&r);
}
END_TEST

START_TEST(test_command_result_reaches_its_callback)
{
	struct recorder r;
	struct sent s[SENT_MAX];
	uint64_t id;

	recorder_init(&r);
	session_ready(&r);
	id = submit(&r, 0, "query-status", NULL);
	ck_assert_uint_eq(vmc_qmp_pending_count(r.q), 1);
	ck_assert_uint_eq(drain(r.q, s, SENT_MAX), 1);
	ck_assert_str_eq(s[0].execute, "query-status");
	ck_assert_uint_eq(s[0].id, id);
	ck_assert_str_eq(s[0].args, "");
	feed_ok(&r, "{\"return\": {\"status\": \"running\", \"singlestep\": false, \"running\": true}, "
		    "\"id\": 2}\r\n");
	ck_assert_int_eq(r.probes[0].calls, 1);
	ck_assert_int_eq(r.probes[0].status, VMC_QMP_OK);
	ck_assert_uint_eq(r.probes[0].id, id);
	ck_assert_str_eq(r.probes[0].command, "query-status");
	ck_assert_str_eq(r.probes[0].ret, "{\"status\":\"running\",\"singlestep\":false,\"running\":true}");
	ck_assert_uint_eq(vmc_qmp_pending_count(r.q), 0);
	recorder_free(&r);
	ck_assert_int_eq(r.probes[0].calls, 1);
}
END_TEST

START_TEST(test_command_arguments_are_serialized)
{
	static const char path[] = "\"/var/lib/vmcluster/csv1/web1 \\\"a\\\".qcow2\"";
	struct recorder r;
	struct sent s[SENT_MAX];
	struct vmc_qmp_output out;

	recorder_init(&r);
	session_ready(&r);
	submit(&r, 0, "blockdev-add",
	       "{\"node-name\": \"disk0\", \"driver\": \"file\", "
	       "\"filename\": \"/var/lib/vmcluster/csv1/web1 \\\"a\\\".qcow2\"}");
	submit(&r, 1, "cont", "{}");
	ck_assert(vmc_qmp_output_peek(r.q, &out));
	ck_assert_msg(memmem(out.data, out.len, path, sizeof(path) - 1) != NULL,
		      "paths are written as they are: %.*s", (int)out.len, out.data);
	ck_assert_uint_eq(drain(r.q, s, SENT_MAX), 2);
	ck_assert_str_eq(s[0].execute, "blockdev-add");
	ck_assert_str_eq(s[0].args, "{\"node-name\":\"disk0\",\"driver\":\"file\","
				    "\"filename\":\"\\/var\\/lib\\/vmcluster\\/csv1\\/web1 \\\"a\\\".qcow2\"}");
	ck_assert_str_eq(s[1].execute, "cont");
	ck_assert_str_eq(s[1].args, "{}");
	recorder_free(&r);
}
END_TEST

START_TEST(test_events_interleave_with_results)
{
	struct recorder r;

	recorder_init(&r);
	session_ready(&r);
	r.log_len = 0;
	r.log[0] = '\0';
	submit(&r, 0, "stop", NULL);     /* id 2 */
	submit(&r, 1, "cont", NULL);     /* id 3 */
	feed_ok(&r, "{\"timestamp\": {\"seconds\": 10, \"microseconds\": 1}, \"event\": \"STOP\"}\r\n"
		    "{\"return\": {}, \"id\": 3}\r\n"
		    "{\"timestamp\": {\"seconds\": 11, \"microseconds\": 2}, \"event\": \"RESUME\"}\r\n"
		    "{\"return\": {}, \"id\": 2}\r\n"
		    "{\"event\": \"BLOCK_IO_ERROR\", \"data\": {\"device\": \"d0\", \"operation\": \"write\","
		    " \"action\": \"stop\"}, \"timestamp\": {\"seconds\": 12, \"microseconds\": 3}}\r\n");
	ck_assert_str_eq(r.log, "event STOP data=null ts=10.1\n"
				"reply 3 cont ok {}\n"
				"event RESUME data=null ts=11.2\n"
				"reply 2 stop ok {}\n"
				"event BLOCK_IO_ERROR data={\"device\":\"d0\",\"operation\":\"write\","
				"\"action\":\"stop\"} ts=12.3\n");
	/* Neither data nor a usable timestamp: NULL and -1, as for a clockless QEMU. */
	r.log_len = 0;
	feed_ok(&r, "{\"event\": \"POWERDOWN\"}\r\n"
		    "{\"event\": \"X\", \"data\": null, \"timestamp\": {\"seconds\": \"soon\"}}\r\n");
	ck_assert_str_eq(r.log, "event POWERDOWN data=null ts=-1.-1\nevent X data=null ts=-1.-1\n");
	recorder_free(&r);
}
END_TEST

START_TEST(test_error_reply_passes_class_and_desc)
{
	struct recorder r;

	recorder_init(&r);
	session_ready(&r);
	submit(&r, 0, "device_del", "{\"id\": \"nic9\"}");
	feed_ok(&r, "{\"id\": 2, \"error\": {\"class\": \"DeviceNotFound\", "
		    "\"desc\": \"Device 'nic9' not found\"}}\r\n");
	ck_assert_int_eq(r.probes[0].calls, 1);
	ck_assert_int_eq(r.probes[0].status, VMC_QMP_ERROR);
	ck_assert_str_eq(r.probes[0].error_class, "DeviceNotFound");
	ck_assert_str_eq(r.probes[0].error_desc, "Device 'nic9' not found");
	ck_assert_str_eq(r.probes[0].ret, "");
	ck_assert_int_eq(vmc_qmp_state_get(r.q), VMC_QMP_READY);
	recorder_free(&r);
}
END_TEST

START_TEST(test_commands_held_before_greeting_go_out_in_order)
{
	struct recorder r;
	struct sent s[SENT_MAX];
	char reply[64];

	recorder_init(&r);
	transcript_submit(&r);
	ck_assert(!vmc_qmp_output_pending(r.q));
	ck_assert_uint_eq(vmc_qmp_pending_count(r.q), 3);
	feed_ok(&r, GREETING);
	ck_assert_uint_eq(drain(r.q, s, SENT_MAX), 1);
	ck_assert_str_eq(s[0].execute, "qmp_capabilities");
	ck_assert_uint_eq(s[0].id, 4);
	snprintf(reply, sizeof(reply), "{\"return\": {}, \"id\": %" PRIu64 "}\r\n", s[0].id);
	feed_ok(&r, reply);
	ck_assert_uint_eq(drain(r.q, s, SENT_MAX), 3);
	ck_assert_str_eq(s[0].execute, "closefd");
	ck_assert_str_eq(s[0].args, "{\"fdname\":\"x\"}");
	ck_assert_str_eq(s[1].execute, "query-version");
	ck_assert_str_eq(s[2].execute, "query-status");
	for (size_t i = 0; i < 3; i++) {
		ck_assert_uint_eq(s[i].id, i + 1);
		ck_assert_int_eq(r.probes[i].calls, 0);
	}
	recorder_free(&r);
}
END_TEST

START_TEST(test_ids_count_up_and_match_the_wire)
{
	struct recorder r;
	struct sent s[SENT_MAX];
	struct vmc_qmp_stats st;
	uint64_t a, b, c;

	recorder_init(&r);
	a = submit(&r, 0, "query-name", NULL);
	b = submit(&r, 1, "query-uuid", NULL);
	ck_assert_uint_eq(a, 1);
	ck_assert_uint_eq(b, 2);
	feed_ok(&r, GREETING);
	ck_assert_uint_eq(drain(r.q, s, SENT_MAX), 1);
	ck_assert_uint_eq(s[0].id, 3); /* qmp_capabilities takes the next one */
	feed_ok(&r, "{\"return\": {}, \"id\": 3}\r\n");
	c = submit(&r, 2, "query-kvm", NULL);
	ck_assert_uint_eq(c, 4);
	ck_assert_uint_eq(drain(r.q, s, SENT_MAX), 3);
	ck_assert_uint_eq(s[0].id, a);
	ck_assert_uint_eq(s[1].id, b);
	ck_assert_uint_eq(s[2].id, c);
	/* An id is never reused: a second reply to it is unknown. */
	feed_ok(&r, "{\"return\": {}, \"id\": 4}\r\n{\"return\": {}, \"id\": 4}\r\n");
	ck_assert_int_eq(r.probes[2].calls, 1);
	vmc_qmp_stats_get(r.q, &st);
	ck_assert_uint_eq(st.unknown_replies_dropped, 1);
	ck_assert_uint_eq(submit(&r, 3, "query-kvm", NULL), 5);
	recorder_free(&r);
}
END_TEST

START_TEST(test_commands_from_callbacks_go_out)
{
	struct recorder r;
	struct sent s[SENT_MAX];

	recorder_init(&r);
	r.hook_at = HOOK_READY;
	r.hook_action = ACTION_SUBMIT;
	submit(&r, 0, "query-name", NULL);
	session_ready(&r);
	ck_assert_int_eq(r.hook_rc, 0);
	ck_assert_uint_eq(drain(r.q, s, SENT_MAX), 2);
	ck_assert_str_eq(s[0].execute, "query-name");  /* held: before the ready callback's */
	ck_assert_str_eq(s[1].execute, "query-status");
	recorder_free(&r);
	ck_assert_int_eq(r.probes[PROBES_MAX - 1].calls, 1);
}
END_TEST

/* ---- the stream ---- */

static const size_t piece_sizes[] = { 0, 1, 2, 3, 5, 7, 13, 64, 4096 };

static void transcript_run(struct recorder *r, size_t piece)
{
	recorder_init(r);
	transcript_submit(r);
	ck_assert_int_eq(feed_in_pieces(r, transcript, sizeof(transcript) - 1, piece), 0);
}

START_TEST(test_transcript_fed_in_pieces_of_any_size)
{
	struct recorder r;
	struct vmc_qmp_stats st;

	transcript_run(&r, piece_sizes[_i]);
	ck_assert_msg(strcmp(r.log, transcript_log) == 0, "pieces of %zu:\n%s\nexpected:\n%s",
		      piece_sizes[_i], r.log, transcript_log);
	ck_assert_uint_eq(vmc_qmp_pending_count(r.q), 0);
	vmc_qmp_stats_get(r.q, &st);
	ck_assert_uint_eq(st.bytes_received, sizeof(transcript) - 1);
	ck_assert_uint_eq(st.messages_received, 9);
	ck_assert_uint_eq(st.events, 3);
	ck_assert_uint_eq(st.replies, 4);
	ck_assert_uint_eq(st.unknown_replies_dropped, 1);
	ck_assert_uint_eq(st.unknown_messages_dropped, 0);
	recorder_free(&r);
}
END_TEST

START_TEST(test_transcript_fed_at_random_cuts)
{
	unsigned int seed = GARBAGE_SEED_DEFAULT + (unsigned int)_i;
	size_t len = sizeof(transcript) - 1;
	struct recorder r;
	size_t off = 0;

	recorder_init(&r);
	transcript_submit(&r);
	while (off < len) {
		size_t n = 1 + (size_t)rand_r(&seed) % 200;

		n = n < len - off ? n : len - off;
		ck_assert_int_eq(vmc_qmp_feed(r.q, transcript + off, n), 0);
		off += n;
	}
	ck_assert_str_eq(r.log, transcript_log);
	recorder_free(&r);
}
END_TEST

START_TEST(test_several_messages_in_one_feed)
{
	struct recorder r;

	recorder_init(&r);
	submit(&r, 0, "query-name", NULL);
	/* Greeting, capabilities reply, result and event in one read, no CRLF at all. */
	feed_ok(&r, GREETING "{\"return\": {}, \"id\": 2}{\"return\": {\"name\": \"web1\"}, \"id\": 1}"
			     "{\"event\": \"RESUME\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 0}}");
	ck_assert_int_eq(r.greetings, 1);
	ck_assert_int_eq(r.readies, 1);
	ck_assert_int_eq(r.probes[0].calls, 1);
	ck_assert_str_eq(r.probes[0].ret, "{\"name\":\"web1\"}");
	ck_assert_int_eq(r.events, 1);
	recorder_free(&r);
}
END_TEST

/* A message of exactly the cap passes, one byte more fails; whole or byte by byte. */
START_TEST(test_message_cap_is_exact)
{
	static const char reply[] = "{\"return\": {}, \"id\": 2}";
	size_t piece = (size_t)_i % 2;
	size_t over = (size_t)_i / 2;
	struct recorder r;

	recorder_init(&r);
	session_ready(&r);
	ck_assert_int_eq(vmc_qmp_set_message_max(r.q, sizeof(reply) - 1 - over), 0);
	submit(&r, 0, "stop", NULL);
	ck_assert_int_eq(feed_in_pieces(&r, reply, sizeof(reply) - 1, piece), over ? -EPROTO : 0);
	if (over) {
		assert_failed_once(&r, 1);
		ck_assert_str_eq(r.reason, "QMP message longer than 22 bytes");
	} else {
		ck_assert_int_eq(r.probes[0].calls, 1);
		ck_assert_int_eq(r.probes[0].status, VMC_QMP_OK);
	}
	recorder_free(&r);
}
END_TEST

START_TEST(test_oversized_message_at_the_default_cap_fails)
{
	const size_t piece = 1024 * 1024;
	char *filler = malloc(piece);
	struct recorder r;
	int rc = 0;
	size_t fed;

	ck_assert_ptr_nonnull(filler);
	memset(filler, 'a', piece);
	recorder_init(&r);
	session_ready(&r);
	submit(&r, 0, "query-qmp-schema", NULL);
	feed_ok(&r, "{\"return\": \"");
	for (fed = 0; fed <= VMC_QMP_MESSAGE_MAX_DEFAULT && rc == 0; fed += piece) {
		rc = vmc_qmp_feed(r.q, filler, piece);
	}
	ck_assert_int_eq(rc, -EPROTO);
	ck_assert_uint_le(fed, VMC_QMP_MESSAGE_MAX_DEFAULT + piece);
	assert_failed_once(&r, 1);
	ck_assert_str_eq(r.reason, "QMP message longer than 16777216 bytes");
	recorder_free(&r);
	free(filler);
}
END_TEST

START_TEST(test_cap_cannot_change_mid_message)
{
	struct recorder r;

	recorder_init(&r);
	ck_assert_int_eq(vmc_qmp_set_message_max(r.q, 0), -EINVAL);
	feed_ok(&r, "{\"QMP\": ");
	ck_assert_int_eq(vmc_qmp_set_message_max(r.q, 100), -EINVAL);
	recorder_free(&r);
}
END_TEST

/* ---- dropped, not failed ---- */

START_TEST(test_unknown_ids_are_reported_and_dropped)
{
	static const char *const replies[] = {
		"{\"return\": {}, \"id\": 99}\r\n",
		"{\"return\": {}, \"id\": \"2\"}\r\n",
		"{\"return\": {}, \"id\": 0}\r\n",
		"{\"return\": {}, \"id\": -2}\r\n",
		"{\"return\": {}, \"id\": 2.0}\r\n",
		"{\"return\": {}, \"id\": null}\r\n",
		"{\"return\": {}}\r\n",
		"{\"error\": {\"class\": \"GenericError\", \"desc\": \"x\"}, \"id\": 77}\r\n",
		"{\"return\": {}, \"id\": 1}\r\n", /* qmp_capabilities', already answered */
	};
	struct recorder r;
	struct vmc_qmp_stats st;

	recorder_init(&r);
	session_ready(&r);
	submit(&r, 0, "query-status", NULL); /* id 2 */
	for (size_t i = 0; i < ARRAY_LEN(replies); i++) {
		feed_ok(&r, replies[i]);
	}
	ck_assert_int_eq(r.warnings, (int)ARRAY_LEN(replies));
	ck_assert_ptr_nonnull(strstr(r.log, "warn qmp: dropped a \"return\" reply with unknown id \"2\"\n"));
	ck_assert_ptr_nonnull(strstr(r.log, "warn qmp: dropped a \"return\" reply with unknown id (none)\n"));
	ck_assert_ptr_nonnull(strstr(r.log, "warn qmp: dropped a \"error\" reply with unknown id 77\n"));
	vmc_qmp_stats_get(r.q, &st);
	ck_assert_uint_eq(st.unknown_replies_dropped, ARRAY_LEN(replies));
	ck_assert_int_eq(vmc_qmp_state_get(r.q), VMC_QMP_READY);
	ck_assert_int_eq(r.probes[0].calls, 0);
	feed_ok(&r, "{\"return\": {\"running\": true}, \"id\": 2}\r\n");
	ck_assert_int_eq(r.probes[0].calls, 1);
	recorder_free(&r);
}
END_TEST

START_TEST(test_message_of_unknown_kind_is_dropped)
{
	struct recorder r;
	struct vmc_qmp_stats st;

	recorder_init(&r);
	session_ready(&r);
	feed_ok(&r, "{\"__org.example_note\": {\"x\": 1}}\r\n{}\r\n");
	ck_assert_int_eq(r.warnings, 2);
	ck_assert_ptr_nonnull(strstr(r.log, "warn qmp: dropped a message of no known kind: "
					    "{\"__org.example_note\":{\"x\":1}}\n"));
	vmc_qmp_stats_get(r.q, &st);
	ck_assert_uint_eq(st.unknown_messages_dropped, 2);
	ck_assert_int_eq(vmc_qmp_state_get(r.q), VMC_QMP_READY);
	recorder_free(&r);
}
END_TEST

/* ---- failures ---- */

/* Bytes that fail the engine in any state, and the reason they give when ready. */
static const struct garbage {
	const char *p;
	size_t len;
	const char *reason;
} garbage[] = {
#define GARBAGE(s, reason) { (s), sizeof(s) - 1, (reason) }
	GARBAGE("hello\r\n", "garbage at byte"),
	GARBAGE("[1, 2, 3]\r\n", "garbage at byte"),
	GARBAGE("\"a string\"\r\n", "garbage at byte"),
	GARBAGE("42\r\n", "garbage at byte"),
	GARBAGE("null\r\n", "garbage at byte"),
	GARBAGE("}\r\n", "garbage at byte"),
	GARBAGE("\xff\xfe{}\r\n", "garbage at byte"),
	GARBAGE("\0{}\r\n", "garbage at byte"),
	GARBAGE("{\"return\": {}} trailing\r\n", "garbage at byte"),
	GARBAGE("{\"return\": \"a\0b\"}\r\n", "NUL byte in a QMP message"),
	GARBAGE("{\"return\": {}, \"id\": 2\r\n{\"event\": \"STOP\"}\r\n", "malformed JSON"),
	GARBAGE("{\"return\": {}, \"id\": }\r\n", "malformed JSON"),
	GARBAGE("{\"return\": [1, 2,]}\r\n", "malformed JSON"),
	GARBAGE("{\"return\": tru}\r\n", "malformed JSON"),
	GARBAGE("{\"a\" \"b\"}\r\n", "malformed JSON"),
	GARBAGE("{\"event\": 42}\r\n", "malformed event: the name is not a string"),
	GARBAGE("{\"event\": \"X\", \"data\": [1]}\r\n", "malformed event X: data is not an object"),
	GARBAGE("{\"error\": \"not an object\", \"id\": 2}\r\n", "malformed error reply"),
	GARBAGE("{\"error\": {\"class\": \"GenericError\"}, \"id\": 2}\r\n", "malformed error reply"),
	/* QEMU could not parse our command far enough to find its id. */
	GARBAGE("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error\"}}\r\n",
		"QEMU could not read a command: GenericError: JSON parse error"),
#undef GARBAGE
};

/* Index i < N: garbage[i] when ready; else garbage[i - N] before the greeting. */
START_TEST(test_garbage_fails_and_completes_pending_once)
{
	size_t i = (size_t)_i % ARRAY_LEN(garbage);
	bool ready = (size_t)_i < ARRAY_LEN(garbage);
	struct recorder r;
	int rc;

	recorder_init(&r);
	if (ready) {
		session_ready(&r);
	}
	submit(&r, 0, "stop", NULL);
	submit(&r, 1, "cont", NULL);
	rc = feed_in_pieces(&r, garbage[i].p, garbage[i].len, 0);
	ck_assert_msg(rc == -EPROTO, "garbage %zu: feed returned %d, log:\n%s", i, rc, r.log);
	assert_failed_once(&r, 2);
	ck_assert_msg(!ready || strncmp(r.reason, garbage[i].reason, strlen(garbage[i].reason)) == 0,
		      "garbage %zu: reason \"%s\", expected \"%s...\"", i, r.reason, garbage[i].reason);
	ck_assert_int_eq(vmc_qmp_feed(r.q, GREETING, strlen(GREETING)), -ENOTCONN);
	ck_assert_int_eq(vmc_qmp_command(r.q, "stop", json_object_new_object(), NULL, NULL, NULL),
			 -ENOTCONN);
	recorder_free(&r);
	ck_assert_int_eq(r.failures, 1);
	ck_assert_int_eq(r.probes[0].calls, 1);
	ck_assert_int_eq(r.probes[1].calls, 1);
	ck_assert_int_eq(r.greetings, ready ? 1 : 0);
}
END_TEST

START_TEST(test_garbage_reason_names_the_byte)
{
	static const char junk[] = "\r\n  hello\x01world\r\n";
	struct recorder r;
	struct vmc_qmp_stats st;
	char want[TEXT_LEN];

	recorder_init(&r);
	session_ready(&r);
	vmc_qmp_stats_get(r.q, &st);
	snprintf(want, sizeof(want), "garbage at byte %" PRIu64 " of the QMP stream, expected a JSON "
		 "object: \"hello\\x01world\\x0d\\x0a\"", st.bytes_received + 4);
	ck_assert_int_eq(feed_in_pieces(&r, junk, sizeof(junk) - 1, 0), -EPROTO);
	ck_assert_str_eq(r.reason, want);
	recorder_free(&r);
}
END_TEST

START_TEST(test_truncated_message_then_eof)
{
	struct recorder r;

	recorder_init(&r);
	session_ready(&r);
	submit(&r, 0, "query-status", NULL);
	submit(&r, 1, "query-name", NULL);
	feed_ok(&r, "{\"return\": {\"status\": \"runn");
	ck_assert_int_eq(vmc_qmp_state_get(r.q), VMC_QMP_READY);
	ck_assert_int_eq(r.probes[0].calls, 0);
	vmc_qmp_fail(r.q, "QEMU closed the QMP socket");
	assert_failed_once(&r, 2);
	ck_assert_str_eq(r.reason,
			 "QEMU closed the QMP socket (27 bytes of an unfinished message discarded)");
	recorder_free(&r);
}
END_TEST

START_TEST(test_nesting_too_deep_fails)
{
	char text[2 * NESTING_TOO_DEEP + 64];
	size_t n = 0;
	struct recorder r;

	n += (size_t)sprintf(text + n, "{\"return\": ");
	for (int i = 0; i < NESTING_TOO_DEEP; i++) {
		text[n++] = '[';
	}
	for (int i = 0; i < NESTING_TOO_DEEP; i++) {
		text[n++] = ']';
	}
	n += (size_t)sprintf(text + n, ", \"id\": 2}\r\n");
	recorder_init(&r);
	session_ready(&r);
	submit(&r, 0, "query-block", NULL);
	submit(&r, 1, "query-name", NULL);
	ck_assert_int_eq(feed_in_pieces(&r, text, n, 0), -EPROTO);
	assert_failed_once(&r, 2);
	ck_assert_ptr_nonnull(strstr(r.reason, "malformed JSON"));
	recorder_free(&r);
}
END_TEST

static const char *const bad_greetings[] = {
	"{\"QMP\": {}}",
	"{\"QMP\": []}",
	"{\"QMP\": {\"version\": {\"qemu\": {\"major\": 7, \"minor\": 2}}, \"capabilities\": []}}",
	"{\"QMP\": {\"version\": {\"qemu\": {\"major\": \"7\", \"minor\": 2, \"micro\": 0}}, "
	"\"capabilities\": []}}",
	"{\"QMP\": {\"version\": {\"qemu\": {\"major\": -7, \"minor\": 2, \"micro\": 0}}, "
	"\"capabilities\": []}}",
	"{\"QMP\": {\"version\": {\"qemu\": {\"major\": 7, \"minor\": 2, \"micro\": 0}}}}",
	"{\"QMP\": {\"version\": {\"qemu\": {\"major\": 7, \"minor\": 2, \"micro\": 0}}, "
	"\"capabilities\": {}}}",
	"{\"QMP\": {\"version\": {\"qemu\": {\"major\": 7, \"minor\": 2, \"micro\": 0}}, "
	"\"capabilities\": [\"oob\", 1]}}",
};

START_TEST(test_malformed_greeting_fails)
{
	struct recorder r;

	recorder_init(&r);
	submit(&r, 0, "stop", NULL);
	submit(&r, 1, "cont", NULL);
	ck_assert_int_eq(vmc_qmp_feed(r.q, bad_greetings[_i], strlen(bad_greetings[_i])), -EPROTO);
	assert_failed_once(&r, 2);
	ck_assert_msg(strncmp(r.reason, "malformed greeting: ", 20) == 0, "%s", r.reason);
	ck_assert_int_eq(r.greetings, 0);
	ck_assert_ptr_null(vmc_qmp_greeting_get(r.q));
	recorder_free(&r);
}
END_TEST

START_TEST(test_capabilities_refused_fails)
{
	const char *reply;
	struct recorder r;

	recorder_init(&r);
	submit(&r, 0, "stop", NULL);
	submit(&r, 1, "cont", NULL);
	feed_ok(&r, GREETING);
	reply = "{\"id\": 3, \"error\": {\"class\": \"GenericError\", \"desc\": \"no\\nway\"}}\r\n";
	ck_assert_int_eq(vmc_qmp_feed(r.q, reply, strlen(reply)), -EPROTO);
	assert_failed_once(&r, 2);
	ck_assert_str_eq(r.reason, "qmp_capabilities refused: GenericError: no?way");
	ck_assert_int_eq(r.readies, 0);
	recorder_free(&r);
}
END_TEST

/* A reply before the greeting, a greeting once ready: the peer is confused. */
START_TEST(test_message_in_the_wrong_state_fails)
{
	static const char *const messages[] = { "{\"return\": {}, \"id\": 1}", GREETING };
	static const char *const reasons[] = {
		"unexpected \"return\" message in state await-greeting",
		"unexpected \"QMP\" message in state ready",
	};
	struct recorder r;

	recorder_init(&r);
	if (_i == 1) {
		session_ready(&r);
	}
	submit(&r, 0, "stop", NULL);
	submit(&r, 1, "cont", NULL);
	ck_assert_int_eq(vmc_qmp_feed(r.q, messages[_i], strlen(messages[_i])), -EPROTO);
	assert_failed_once(&r, 2);
	ck_assert_str_eq(r.reason, reasons[_i]);
	recorder_free(&r);
}
END_TEST

/* An event before the greeting (queued for a monitor's previous client) is dropped, not a failure. */
START_TEST(test_event_before_the_greeting_is_dropped)
{
	static const char event[] = "{\"event\": \"MIGRATION\", \"data\": {\"status\": \"cancelled\"}, "
				    "\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}";
	struct recorder r;

	recorder_init(&r);
	ck_assert_int_eq(vmc_qmp_feed(r.q, event, strlen(event)), 0);
	ck_assert_int_eq(vmc_qmp_state_get(r.q), VMC_QMP_AWAIT_GREETING);
	session_ready(&r);
	ck_assert_int_eq(vmc_qmp_state_get(r.q), VMC_QMP_READY);
	recorder_free(&r);
}
END_TEST

START_TEST(test_fail_is_final_and_keeps_the_first_reason)
{
	struct recorder r;
	struct vmc_qmp_output out;

	recorder_init(&r);
	session_ready(&r);
	submit(&r, 0, "stop", NULL);
	submit(&r, 1, "cont", NULL);
	ck_assert(vmc_qmp_output_pending(r.q));
	vmc_qmp_fail(r.q, "query-status: no reply after 5000 ms");
	vmc_qmp_fail(r.q, "second");
	assert_failed_once(&r, 2);
	ck_assert_str_eq(r.reason, "query-status: no reply after 5000 ms");
	ck_assert(!vmc_qmp_output_peek(r.q, &out));
	ck_assert_str_eq(r.probes[0].command, "stop");
	recorder_free(&r);
}
END_TEST

/* ---- lifecycle ---- */

START_TEST(test_free_completes_held_with_disconnected)
{
	struct recorder r;

	recorder_init(&r);
	submit(&r, 0, "stop", NULL);
	recorder_free(&r);
	ck_assert_int_eq(r.probes[0].calls, 1);
	ck_assert_int_eq(r.probes[0].status, VMC_QMP_DISCONNECTED);
	ck_assert_str_eq(r.probes[0].error_class, "Disconnected");
	ck_assert_str_eq(r.probes[0].error_desc, "disconnected");
	ck_assert_int_eq(r.failures, 0);
	vmc_qmp_free(NULL);
}
END_TEST

START_TEST(test_free_completes_in_flight_in_submission_order)
{
	struct recorder r;

	recorder_init(&r);
	submit(&r, 0, "stop", NULL);             /* 1, held then sent */
	session_ready(&r);                       /* capabilities: 2 */
	submit(&r, 1, "cont", NULL);             /* 3 */
	submit(&r, 2, "query-status", NULL);     /* 4 */
	r.log_len = 0;
	recorder_free(&r);
	ck_assert_str_eq(r.log, "reply 1 stop disconnected Disconnected: disconnected\n"
				"reply 3 cont disconnected Disconnected: disconnected\n"
				"reply 4 query-status disconnected Disconnected: disconnected\n");
}
END_TEST

static const enum hook_point free_points[] = {
	HOOK_GREETING, HOOK_READY, HOOK_EVENT, HOOK_REPLY, HOOK_FAILED,
};

/* vmc_qmp_free() from any callback: deferred, and nothing completes twice. */
START_TEST(test_free_from_a_callback_is_deferred)
{
	static const char tail[] = "junk\r\n";
	struct recorder r;

	recorder_init(&r);
	r.hook_at = free_points[_i];
	r.hook_action = ACTION_FREE;
	transcript_submit(&r);
	feed_in_pieces(&r, transcript, sizeof(transcript) - 1, 0);
	if (!r.freed) {
		feed_in_pieces(&r, tail, sizeof(tail) - 1, 0);
	}
	ck_assert_msg(r.freed, "the hook never ran");
	for (size_t i = 0; i < 3; i++) {
		ck_assert_msg(r.probes[i].calls == 1, "probe %zu: %d calls", i, r.probes[i].calls);
	}
	ck_assert_int_le(r.failures, 1);
}
END_TEST

START_TEST(test_feed_from_a_callback_is_refused)
{
	struct recorder r;

	recorder_init(&r);
	r.hook_at = HOOK_EVENT;
	r.hook_action = ACTION_FEED;
	transcript_submit(&r);
	feed_in_pieces(&r, transcript, sizeof(transcript) - 1, 0);
	ck_assert_int_eq(r.hook_rc, -EBUSY);
	ck_assert_str_eq(r.log, transcript_log);
	recorder_free(&r);
}
END_TEST

START_TEST(test_fail_from_a_callback)
{
	struct recorder r;

	recorder_init(&r);
	r.hook_at = HOOK_REPLY;
	r.hook_action = ACTION_FAIL;
	transcript_submit(&r);
	ck_assert_int_eq(feed_in_pieces(&r, transcript, sizeof(transcript) - 1, 0), -EPROTO);
	ck_assert_str_eq(r.reason, "failed from a callback");
	ck_assert_int_eq(r.failures, 1);
	for (size_t i = 0; i < 3; i++) {
		ck_assert_int_eq(r.probes[i].calls, 1);
	}
	ck_assert_int_eq(r.probes[1].status, VMC_QMP_OK); /* the reply whose callback failed it */
	ck_assert_int_eq(r.probes[2].status, VMC_QMP_DISCONNECTED);
	recorder_free(&r);
}
END_TEST

START_TEST(test_submit_from_failed_callback_is_refused)
{
	struct recorder r;

	recorder_init(&r);
	r.hook_at = HOOK_FAILED;
	r.hook_action = ACTION_SUBMIT;
	vmc_qmp_fail(r.q, "gone");
	ck_assert_int_eq(r.hook_rc, -ENOTCONN);
	recorder_free(&r);
	ck_assert_int_eq(r.probes[PROBES_MAX - 1].calls, 0);
}
END_TEST

START_TEST(test_command_refusals)
{
	struct recorder r;

	recorder_init(&r);
	ck_assert_int_eq(vmc_qmp_command(r.q, "", NULL, NULL, NULL, NULL), -EINVAL);
	ck_assert_int_eq(vmc_qmp_command(r.q, NULL, NULL, NULL, NULL, NULL), -EINVAL);
	ck_assert_int_eq(vmc_qmp_command(r.q, "qmp_capabilities", json_object_new_object(), NULL,
					 NULL, NULL), -EINVAL);
	ck_assert_int_eq(vmc_qmp_command(r.q, "stop", json_object_new_array(), NULL, NULL, NULL),
			 -EINVAL);
	ck_assert_int_eq(vmc_qmp_command(r.q, "stop", json_object_new_string("x"), NULL, NULL, NULL),
			 -EINVAL);
	ck_assert_int_eq(vmc_qmp_command_with_fd(r.q, "getfd", json_object_new_object(), -1, NULL,
						 NULL, NULL), -EBADF);
	ck_assert_uint_eq(vmc_qmp_pending_count(r.q), 0);
	/* A command with no callback is fine. */
	ck_assert_int_eq(vmc_qmp_command(r.q, "stop", NULL, NULL, NULL, NULL), 0);
	ck_assert_uint_eq(vmc_qmp_pending_count(r.q), 1);
	recorder_free(&r);
}
END_TEST

START_TEST(test_state_and_status_names)
{
	ck_assert_str_eq(vmc_qmp_state_to_str(VMC_QMP_AWAIT_GREETING), "await-greeting");
	ck_assert_str_eq(vmc_qmp_state_to_str(VMC_QMP_NEGOTIATING), "negotiating");
	ck_assert_str_eq(vmc_qmp_state_to_str(VMC_QMP_READY), "ready");
	ck_assert_str_eq(vmc_qmp_state_to_str(VMC_QMP_FAILED), "failed");
	ck_assert_str_eq(vmc_qmp_state_to_str(VMC_QMP_STATE_COUNT), "invalid");
	ck_assert_str_eq(vmc_qmp_reply_status_to_str(VMC_QMP_OK), "ok");
	ck_assert_str_eq(vmc_qmp_reply_status_to_str(VMC_QMP_ERROR), "error");
	ck_assert_str_eq(vmc_qmp_reply_status_to_str(VMC_QMP_DISCONNECTED), "disconnected");
}
END_TEST

/* ---- output with fds ---- */

START_TEST(test_fd_command_marks_its_chunk)
{
	struct recorder r;
	struct vmc_qmp_output out;
	struct sent s;
	uint64_t id;

	recorder_init(&r);
	session_ready(&r);
	submit(&r, 0, "stop", NULL);
	ck_assert_int_eq(vmc_qmp_command_with_fd(r.q, "getfd", json_tokener_parse("{\"fdname\": \"mig\"}"),
						 42, probe_done, &r.probes[1], &id), 0);
	submit(&r, 2, "cont", NULL);

	ck_assert(vmc_qmp_output_peek(r.q, &out));
	ck_assert_int_eq(out.fd, -1);
	ck_assert_int_eq(vmc_qmp_output_consume(r.q, out.len), 0);

	ck_assert(vmc_qmp_output_peek(r.q, &out));
	ck_assert_int_eq(out.fd, 42);
	ck_assert_uint_eq(out.id, id);
	sent_parse(out.data, out.len, &s);
	ck_assert_str_eq(s.execute, "getfd");
	ck_assert_str_eq(s.args, "{\"fdname\":\"mig\"}");
	/* A short write took the fd with it: the rest goes without. */
	ck_assert_int_eq(vmc_qmp_output_consume(r.q, 5), 0);
	ck_assert(vmc_qmp_output_peek(r.q, &out));
	ck_assert_int_eq(out.fd, -1);
	ck_assert_uint_eq(out.id, id);
	ck_assert_int_eq(strncmp(out.data, "cute\":\"getfd\"", 13), 0);
	ck_assert_int_eq(vmc_qmp_output_consume(r.q, out.len), 0);

	ck_assert(vmc_qmp_output_peek(r.q, &out));
	ck_assert_int_eq(out.fd, -1);
	sent_parse(out.data, out.len, &s);
	ck_assert_str_eq(s.execute, "cont");
	ck_assert_int_eq(vmc_qmp_output_consume(r.q, out.len), 0);
	ck_assert(!vmc_qmp_output_peek(r.q, &out));
	recorder_free(&r);
}
END_TEST

START_TEST(test_fd_command_held_until_ready_keeps_its_fd)
{
	struct recorder r;
	struct sent s[SENT_MAX];

	recorder_init(&r);
	ck_assert_int_eq(vmc_qmp_command_with_fd(r.q, "add-fd", NULL, 7, probe_done, &r.probes[0], NULL),
			 0);
	session_ready(&r);
	ck_assert_uint_eq(drain(r.q, s, SENT_MAX), 1);
	ck_assert_str_eq(s[0].execute, "add-fd");
	ck_assert_int_eq(s[0].fd, 7);
	recorder_free(&r);
	ck_assert_int_eq(r.probes[0].calls, 1);
}
END_TEST

START_TEST(test_consume_refuses_more_than_peeked)
{
	struct recorder r;
	struct vmc_qmp_output out;

	recorder_init(&r);
	ck_assert_int_eq(vmc_qmp_output_consume(r.q, 0), 0);
	ck_assert_int_eq(vmc_qmp_output_consume(r.q, 1), -EINVAL);
	feed_ok(&r, GREETING);
	ck_assert(vmc_qmp_output_peek(r.q, &out));
	ck_assert_int_eq(vmc_qmp_output_consume(r.q, out.len + 1), -EINVAL);
	ck_assert_int_eq(vmc_qmp_output_consume(r.q, out.len), 0);
	recorder_free(&r);
}
END_TEST

/* ---- garbage loops ---- */

static unsigned int garbage_seed(void)
{
	const char *env = getenv("VMC_QMP_SEED");

	return env != NULL ? (unsigned int)strtoul(env, NULL, 10) : GARBAGE_SEED_DEFAULT;
}

/* Feeds buf in random pieces to a fresh engine with three commands held. */
static void garbage_feed(const char *buf, size_t len, unsigned int *seed)
{
	struct recorder r;
	size_t off = 0;

	recorder_init(&r);
	transcript_submit(&r);
	while (off < len && vmc_qmp_state_get(r.q) != VMC_QMP_FAILED) {
		size_t n = 1 + (size_t)rand_r(seed) % 64;

		n = n < len - off ? n : len - off;
		vmc_qmp_feed(r.q, buf + off, n);
		off += n;
	}
	recorder_free(&r);
	ck_assert_int_le(r.failures, 1);
	for (size_t i = 0; i < 3; i++) {
		ck_assert_msg(r.probes[i].calls == 1, "probe %zu completed %d times (seed %u)", i,
			      r.probes[i].calls, garbage_seed());
	}
}

START_TEST(test_garbage_random_bytes_never_crash)
{
	unsigned int seed = garbage_seed();
	char buf[GARBAGE_LEN_MAX];

	for (int i = 0; i < GARBAGE_RANDOM_BUFFERS; i++) {
		size_t len = (size_t)rand_r(&seed) % sizeof(buf);

		for (size_t j = 0; j < len; j++) {
			/* Mostly JSON punctuation, so the tokenizer gets deep. */
			static const char alphabet[] = "{}[]\":, \r\n0123456789-.eEtrufalsn\\u";
			unsigned int pick = (unsigned int)rand_r(&seed);

			buf[j] = (pick & 1) ? alphabet[(pick >> 1) % (sizeof(alphabet) - 1)]
					    : (char)(pick >> 8);
		}
		if (len > 0 && i % 2 == 0) {
			buf[0] = '{';
		}
		garbage_feed(buf, len, &seed);
	}
}
END_TEST

START_TEST(test_garbage_mutated_transcripts_never_crash)
{
	unsigned int seed = garbage_seed();
	size_t len = sizeof(transcript) - 1;
	char *buf = malloc(len);

	ck_assert_ptr_nonnull(buf);
	for (int i = 0; i < GARBAGE_MUTATIONS; i++) {
		int changes = 1 + rand_r(&seed) % 3;

		memcpy(buf, transcript, len);
		for (int c = 0; c < changes; c++) {
			buf[(size_t)rand_r(&seed) % len] = (char)rand_r(&seed);
		}
		garbage_feed(buf, len, &seed);
	}
	free(buf);
}
END_TEST

/* ---- sockets (qmp_fd.c) ---- */

static void socket_pair(int sv[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
}

/* Reads what the engine wrote, as QEMU would, with the fd if one came along. */
static size_t peer_read(int sock, char *buf, size_t len, int *fd_received)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = buf, .iov_len = len - 1 };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control.buf,
		.msg_controllen = sizeof(control.buf),
	};
	struct cmsghdr *cmsg;
	ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);

	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	*fd_received = -1;
	cmsg = CMSG_FIRSTHDR(&msg);
	if (cmsg != NULL && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS) {
		memcpy(fd_received, CMSG_DATA(cmsg), sizeof(int));
	}
	return (size_t)n;
}

static void peer_write(int sock, const char *text)
{
	ck_assert_int_eq(write(sock, text, strlen(text)), (ssize_t)strlen(text));
}

START_TEST(test_session_over_a_socketpair)
{
	struct recorder r;
	int sv[2], pipefd[2], got;
	char buf[512];

	socket_pair(sv);
	ck_assert_int_eq(pipe(pipefd), 0);
	recorder_init(&r);
	ck_assert_int_eq(vmc_qmp_command_with_fd(r.q, "getfd", json_tokener_parse("{\"fdname\": \"m\"}"),
						 pipefd[1], probe_done, &r.probes[0], NULL), 0);
	ck_assert_int_eq(vmc_qmp_fd_receive(r.q, sv[0]), -EAGAIN);
	peer_write(sv[1], GREETING);
	ck_assert_int_eq(vmc_qmp_fd_receive(r.q, sv[0]), (ssize_t)strlen(GREETING));
	ck_assert_int_eq(vmc_qmp_fd_flush(r.q, sv[0]), 0);
	peer_read(sv[1], buf, sizeof(buf), &got);
	ck_assert_str_eq(buf, "{\"execute\":\"qmp_capabilities\",\"id\":2}");
	ck_assert_int_eq(got, -1);
	peer_write(sv[1], "{\"return\": {}, \"id\": 2}\r\n");
	ck_assert_int_gt(vmc_qmp_fd_receive(r.q, sv[0]), 0);
	ck_assert_int_eq(vmc_qmp_fd_flush(r.q, sv[0]), 0);
	peer_read(sv[1], buf, sizeof(buf), &got);
	ck_assert_str_eq(buf, "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"m\"},\"id\":1}");
	ck_assert_int_ge(got, 0);
	ck_assert_int_eq(write(got, "x", 1), 1); /* what arrived is the pipe's write end */
	ck_assert_int_eq(read(pipefd[0], buf, 1), 1);
	ck_assert_int_eq(buf[0], 'x');
	close(got);
	peer_write(sv[1], "{\"return\": {}, \"id\": 1}\r\n");
	ck_assert_int_gt(vmc_qmp_fd_receive(r.q, sv[0]), 0);
	ck_assert_int_eq(r.probes[0].calls, 1);
	ck_assert_int_eq(r.probes[0].status, VMC_QMP_OK);
	/* QEMU goes away with a command outstanding. */
	submit(&r, 1, "query-status", NULL);
	ck_assert_int_eq(vmc_qmp_fd_flush(r.q, sv[0]), 0);
	peer_read(sv[1], buf, sizeof(buf), &got);
	close(sv[1]);
	ck_assert_int_eq(vmc_qmp_fd_receive(r.q, sv[0]), 0);
	assert_failed_once(&r, 0);
	ck_assert_str_eq(r.reason, "QEMU closed the QMP socket");
	ck_assert_int_eq(r.probes[1].calls, 1);
	ck_assert_int_eq(r.probes[1].status, VMC_QMP_DISCONNECTED);
	recorder_free(&r);
	close(sv[0]);
	close(pipefd[0]);
	close(pipefd[1]);
}
END_TEST

/* QEMU exiting with our bytes unread: ECONNRESET, which is a close too. */
START_TEST(test_receive_after_reset_is_a_close)
{
	struct recorder r;
	int sv[2];

	socket_pair(sv);
	recorder_init(&r);
	submit(&r, 0, "stop", NULL);
	peer_write(sv[1], GREETING);
	ck_assert_int_gt(vmc_qmp_fd_receive(r.q, sv[0]), 0);
	ck_assert_int_eq(vmc_qmp_fd_flush(r.q, sv[0]), 0); /* qmp_capabilities, never read */
	close(sv[1]);
	ck_assert_int_eq(vmc_qmp_fd_receive(r.q, sv[0]), 0);
	assert_failed_once(&r, 1);
	ck_assert_str_eq(r.reason, "QEMU closed the QMP socket");
	recorder_free(&r);
	close(sv[0]);
}
END_TEST

START_TEST(test_flush_to_a_closed_peer_fails_the_engine)
{
	struct recorder r;
	int sv[2];

	socket_pair(sv);
	recorder_init(&r);
	peer_write(sv[1], GREETING);
	ck_assert_int_gt(vmc_qmp_fd_receive(r.q, sv[0]), 0);
	close(sv[1]);
	ck_assert_int_eq(vmc_qmp_fd_flush(r.q, sv[0]), -EPIPE);
	ck_assert_int_eq(vmc_qmp_state_get(r.q), VMC_QMP_FAILED);
	ck_assert_str_eq(r.reason, "writing to the QMP socket: Broken pipe");
	recorder_free(&r);
	close(sv[0]);
}
END_TEST

START_TEST(test_connect)
{
	char dir[] = "/tmp/check_qmp.XXXXXX";
	char path[sizeof(dir) + 16];
	char long_path[200];
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int listener, sock = -1;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/qmp.sock", dir);
	ck_assert_int_eq(vmc_qmp_fd_connect(path, &sock), -ENOENT);
	listener = socket(AF_UNIX, SOCK_STREAM, 0);
	memcpy(addr.sun_path, path, strlen(path) + 1);
	ck_assert_int_eq(bind(listener, (struct sockaddr *)&addr, sizeof(addr)), 0);
	ck_assert_int_eq(listen(listener, 1), 0);
	ck_assert_int_eq(vmc_qmp_fd_connect(path, &sock), 0);
	ck_assert_int_ge(sock, 0);
	ck_assert((fcntl(sock, F_GETFL) & O_NONBLOCK) != 0);
	ck_assert((fcntl(sock, F_GETFD) & FD_CLOEXEC) != 0);
	memset(long_path, 'a', sizeof(long_path) - 1);
	long_path[0] = '/';
	long_path[sizeof(long_path) - 1] = '\0';
	ck_assert_int_eq(vmc_qmp_fd_connect(long_path, &sock), -ENAMETOOLONG);
	close(sock);
	close(listener);
	unlink(path);
	rmdir(dir);
}
END_TEST

static TCase *tcase_make(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	suite_add_tcase(s, tc);
	return tc;
}

static Suite *qmp_suite(void)
{
	Suite *s = suite_create("qmp");
	TCase *tc;

	tc = tcase_make(s, "session");
	tcase_add_test(tc, test_greeting_then_capabilities_then_ready);
	tcase_add_test(tc, test_greeting_without_package_or_capabilities);
	tcase_add_test(tc, test_command_result_reaches_its_callback);
	tcase_add_test(tc, test_command_arguments_are_serialized);
	tcase_add_test(tc, test_events_interleave_with_results);
	tcase_add_test(tc, test_error_reply_passes_class_and_desc);
	tcase_add_test(tc, test_commands_held_before_greeting_go_out_in_order);
	tcase_add_test(tc, test_ids_count_up_and_match_the_wire);
	tcase_add_test(tc, test_commands_from_callbacks_go_out);

	tc = tcase_make(s, "stream");
	tcase_add_test(tc, test_event_before_the_greeting_is_dropped);
	tcase_add_loop_test(tc, test_transcript_fed_in_pieces_of_any_size, 0,
			    (int)ARRAY_LEN(piece_sizes));
	tcase_add_loop_test(tc, test_transcript_fed_at_random_cuts, 0, 20);
	tcase_add_test(tc, test_several_messages_in_one_feed);
	tcase_add_loop_test(tc, test_message_cap_is_exact, 0, 4);
	tcase_add_test(tc, test_oversized_message_at_the_default_cap_fails);
	tcase_add_test(tc, test_cap_cannot_change_mid_message);

	tc = tcase_make(s, "dropped");
	tcase_add_test(tc, test_unknown_ids_are_reported_and_dropped);
	tcase_add_test(tc, test_message_of_unknown_kind_is_dropped);

	tc = tcase_make(s, "failures");
	tcase_add_loop_test(tc, test_garbage_fails_and_completes_pending_once, 0,
			    2 * (int)ARRAY_LEN(garbage));
	tcase_add_test(tc, test_garbage_reason_names_the_byte);
	tcase_add_test(tc, test_truncated_message_then_eof);
	tcase_add_test(tc, test_nesting_too_deep_fails);
	tcase_add_loop_test(tc, test_malformed_greeting_fails, 0, (int)ARRAY_LEN(bad_greetings));
	tcase_add_test(tc, test_capabilities_refused_fails);
	tcase_add_loop_test(tc, test_message_in_the_wrong_state_fails, 0, 2);
	tcase_add_test(tc, test_fail_is_final_and_keeps_the_first_reason);

	tc = tcase_make(s, "lifecycle");
	tcase_add_test(tc, test_free_completes_held_with_disconnected);
	tcase_add_test(tc, test_free_completes_in_flight_in_submission_order);
	tcase_add_loop_test(tc, test_free_from_a_callback_is_deferred, 0, (int)ARRAY_LEN(free_points));
	tcase_add_test(tc, test_feed_from_a_callback_is_refused);
	tcase_add_test(tc, test_fail_from_a_callback);
	tcase_add_test(tc, test_submit_from_failed_callback_is_refused);
	tcase_add_test(tc, test_command_refusals);
	tcase_add_test(tc, test_state_and_status_names);

	tc = tcase_make(s, "output");
	tcase_add_test(tc, test_fd_command_marks_its_chunk);
	tcase_add_test(tc, test_fd_command_held_until_ready_keeps_its_fd);
	tcase_add_test(tc, test_consume_refuses_more_than_peeked);

	tc = tcase_make(s, "garbage");
	tcase_add_test(tc, test_garbage_random_bytes_never_crash);
	tcase_add_test(tc, test_garbage_mutated_transcripts_never_crash);

	tc = tcase_make(s, "sockets");
	tcase_add_test(tc, test_session_over_a_socketpair);
	tcase_add_test(tc, test_receive_after_reset_is_a_close);
	tcase_add_test(tc, test_flush_to_a_closed_peer_fails_the_engine);
	tcase_add_test(tc, test_connect);
	return s;
}

int main(void)
{
	return check_suite_run(qmp_suite());
}
