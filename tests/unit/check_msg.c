/*
 * Unit tests for the CPG wire codec (lib/msg.c): round trips, one refusal
 * per check that vmc_msg_decode() makes, and a garbage loop of random
 * buffers and single-byte mutations of valid messages that must never
 * crash the decoder (run it under --enable-sanitizers too).
 *
 * VMC_MSG_SEED=N replays the garbage loop with another seed.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"
#include "msg_types.h"
#include "vmc_errors.h"
#include "check_run.h"

#define TEST_TIMEOUT_S 60
#define ERR_LEN 256
#define GARBAGE_SEED_DEFAULT 20240601u
#define GARBAGE_RANDOM_BUFFERS 10000
#define GARBAGE_MUTATIONS 10000
#define GARBAGE_LEN_MAX 300

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* A sender id and request id whose every byte differs. */
#define TEST_SENDER 0x0a0b0c0du
#define TEST_REQUEST_ID 0x1122334455667788ull

/* One body per message type, as the daemon would send them. */
static const char *const type_bodies[VMC_MSG_TYPE_COUNT] = {
	[VMC_MSG_HELLO] = "{\"node_id\":3,\"config_version\":17,"
			  "\"digest\":\"00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff\","
			  "\"prev_primary\":true,\"expected_votes\":3,\"proto_max\":1,\"round\":2}",
	[VMC_MSG_STATE_CHUNK] = "{\"index\":0,\"last\":true,"
				"\"data\":\"{\\\"format\\\":1,\\\"groups\\\":[]}\"}",
	[VMC_MSG_GROUP_ADD] = "{\"definition\":{\"name\":\"web1\",\"memory_mib\":512,"
			      "\"boot\":{\"kernel\":\"/var/lib/vmcluster/guest/vmlinuz\"}}}",
	[VMC_MSG_GROUP_REMOVE] = "{\"name\":\"web1\"}",
	[VMC_MSG_GROUP_SET] = "{\"name\":\"web1\",\"set\":[\"vcpus=2\",\"priority=high\"]}",
	[VMC_MSG_SETTINGS_SET] = "{\"set\":[\"fence_method=none\"]}",
	[VMC_MSG_NODE_FACTS] = "{\"name\":\"node1\",\"mem_mib\":2048}",
	[VMC_MSG_GROUP_START] = "{\"name\":\"web1\"}",
	[VMC_MSG_GROUP_STOP] = "{\"name\":\"web1\"}",
	[VMC_MSG_GROUP_REPORT] = "{\"name\":\"web1\",\"event\":\"running\",\"at_s\":1700000000}",
	[VMC_MSG_NODE_FENCED] = "{\"node\":2,\"method\":\"agent\"}",
	[VMC_MSG_FENCE_FAILED] = "{\"node\":2,\"attempt\":0,\"method\":\"agent\",\"error\":\"exit 1\"}",
	[VMC_MSG_SYNC_EXCLUDE] = "{\"members\":[1,2,3],\"sync_seq\":0}",
	[VMC_MSG_SYNC_RESTART] = "{\"members\":[1,2,3],\"sync_seq\":0}",
	[VMC_MSG_COMMIT_CONFIRM] = "{\"members\":[1,2,3],\"sync_seq\":0,\"epoch\":4294967297,\"v\":12}",
	[VMC_MSG_VOLUME_ADD] = "{\"name\":\"csv1\",\"path\":\"/srv/csv1\"}",
	[VMC_MSG_VOLUME_REMOVE] = "{\"name\":\"csv1\"}",
	[VMC_MSG_VOLUME_MOVE] = "{\"name\":\"csv1\",\"node\":\"node2\"}",
	[VMC_MSG_VOLUME_HEALTH] = "{\"name\":\"csv1\",\"health\":\"failing\",\"errno\":5,"
				  "\"detail\":\"EIO\",\"at_s\":1700000000}",
	[VMC_MSG_MIGRATE_REQUEST] = "{\"name\":\"web1\",\"id\":\"0123456789abcdef0123456789abcdef\","
				    "\"target\":2,\"mode\":\"live\",\"at_s\":1700000000}",
	[VMC_MSG_MIGRATE_SWITCHOVER] = "{\"name\":\"web1\",\"id\":\"0123456789abcdef0123456789abcdef\"}",
	[VMC_MSG_MIGRATE_DONE] = "{\"name\":\"web1\",\"id\":\"0123456789abcdef0123456789abcdef\"}",
	[VMC_MSG_MIGRATE_ABORT] = "{\"name\":\"web1\",\"id\":\"0123456789abcdef0123456789abcdef\","
				  "\"reason\":\"destination QEMU exited\"}",
	[VMC_MSG_NODE_DRAIN] = "{\"node\":1,\"force\":true,\"target\":2,\"at_s\":1700000000}",
	[VMC_MSG_NODE_RESUME] = "{\"node\":1,\"failback\":\"immediate\",\"at_s\":1700000000}",
	[VMC_MSG_MIGRATE_WINDOW] = "{\"window\":3}",
};

static unsigned int garbage_seed(void)
{
	const char *env = getenv("VMC_MSG_SEED");

	return env != NULL ? (unsigned int)strtoul(env, NULL, 10) : GARBAGE_SEED_DEFAULT;
}

static json_object *json_parse(const char *text)
{
	json_object *j = json_tokener_parse(text);

	ck_assert_msg(j != NULL, "test body is not JSON: %s", text);
	return j;
}

static struct vmc_msg msg_make(uint16_t type, const char *body)
{
	struct vmc_msg m = {
		.version = VMC_PROTO_VERSION_MAX,
		.type = type,
		.sender = TEST_SENDER,
		.request_id = TEST_REQUEST_ID,
		.body = json_parse(body),
	};

	return m;
}

/* Encode a message of this type with its usual body. */
static uint8_t *msg_encode_type(uint16_t type, size_t *len)
{
	struct vmc_msg m = msg_make(type, type_bodies[type]);
	void *buf = NULL;
	int rc = vmc_msg_encode(&m, &buf, len);

	ck_assert_msg(rc == 0, "encode %s: rc %d", vmc_msg_type_to_str(type), rc);
	vmc_msg_clear(&m);
	return buf;
}

/*
 * A hand-built message: header fields as given, payload bytes copied as
 * they are (payload_len_field need not match payload_len).
 */
static uint8_t *msg_raw(uint16_t version, uint16_t type, uint32_t payload_len_field,
			const void *payload, size_t payload_len, size_t *len)
{
	uint8_t *p = calloc(1, VMC_MSG_HEADER_LEN + payload_len + 1);

	ck_assert_ptr_nonnull(p);
	vmc_put_le32(p, VMC_MSG_MAGIC);
	vmc_put_le16(p + 4, version);
	vmc_put_le16(p + 6, type);
	vmc_put_le32(p + 8, TEST_SENDER);
	vmc_put_le32(p + 12, payload_len_field);
	vmc_put_le64(p + 16, TEST_REQUEST_ID);
	memcpy(p + VMC_MSG_HEADER_LEN, payload, payload_len);
	*len = VMC_MSG_HEADER_LEN + payload_len;
	return p;
}

/* A well-formed header around payload (which must include its NUL). */
static uint8_t *msg_with_payload(const void *payload, size_t payload_len, size_t *len)
{
	return msg_raw(VMC_PROTO_VERSION_MAX, VMC_MSG_GROUP_ADD, (uint32_t)payload_len, payload,
		       payload_len, len);
}

/*
 * Decode a buffer that must be refused with rc: the error string is set
 * and no body is left behind. The buffer is copied to an exact-size
 * allocation so that the sanitizers see any read past its end.
 */
static void assert_decode_refused(const void *buf, size_t len, int want_rc, const char *what)
{
	struct vmc_msg m;
	char err[ERR_LEN] = "";
	void *exact = malloc(len ? len : 1);
	int rc;

	ck_assert_ptr_nonnull(exact);
	memcpy(exact, buf, len);
	rc = vmc_msg_decode(exact, len, &m, err, sizeof(err));
	free(exact);
	ck_assert_msg(rc == want_rc, "%s: decode returned %d, expected %d (%s)", what, rc, want_rc,
		      err);
	ck_assert_msg(err[0] != '\0', "%s: refused with an empty error string", what);
	ck_assert_msg(m.body == NULL, "%s: refused but a body was left", what);
}

/* ---- little-endian helpers ---- */

START_TEST(test_put_le_writes_little_endian_bytes)
{
	static const uint8_t le16[] = { 0x34, 0x12, 0xee };
	static const uint8_t le32[] = { 0x78, 0x56, 0x34, 0x12, 0xee };
	static const uint8_t le64[] = { 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0xee };
	uint8_t buf[9];

	/* 0xee marks the byte after the field: it must stay */
	memset(buf, 0xee, sizeof(buf));
	vmc_put_le16(buf, 0x1234);
	ck_assert_mem_eq(buf, le16, sizeof(le16));

	memset(buf, 0xee, sizeof(buf));
	vmc_put_le32(buf, 0x12345678u);
	ck_assert_mem_eq(buf, le32, sizeof(le32));

	memset(buf, 0xee, sizeof(buf));
	vmc_put_le64(buf, 0x0102030405060708ull);
	ck_assert_mem_eq(buf, le64, sizeof(le64));
}
END_TEST

START_TEST(test_get_le_reads_little_endian_bytes)
{
	static const uint8_t b16[] = { 0x34, 0x12 };
	static const uint8_t b32[] = { 0x78, 0x56, 0x34, 0x12 };
	static const uint8_t b64[] = { 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01 };

	ck_assert_uint_eq(vmc_get_le16(b16), 0x1234);
	ck_assert_uint_eq(vmc_get_le32(b32), 0x12345678u);
	ck_assert_uint_eq(vmc_get_le64(b64), 0x0102030405060708ull);
}
END_TEST

START_TEST(test_get_le_high_bits_do_not_sign_extend)
{
	static const uint8_t ones[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	static const uint8_t top16[] = { 0x00, 0x80 };
	static const uint8_t top32[] = { 0x00, 0x00, 0x00, 0x80 };
	static const uint8_t top64[] = { 0, 0, 0, 0, 0, 0, 0, 0x80 };
	static const uint8_t low[] = { 0x80, 0, 0, 0, 0, 0, 0, 0 };

	ck_assert_uint_eq(vmc_get_le16(ones), 0xffff);
	ck_assert_uint_eq(vmc_get_le32(ones), 0xffffffffu);
	ck_assert_uint_eq(vmc_get_le64(ones), UINT64_MAX);
	ck_assert_uint_eq(vmc_get_le16(top16), 0x8000);
	ck_assert_uint_eq(vmc_get_le32(top32), 0x80000000u);
	ck_assert_uint_eq(vmc_get_le64(top64), 0x8000000000000000ull);
	ck_assert_uint_eq(vmc_get_le16(low), 0x80);
	ck_assert_uint_eq(vmc_get_le32(low), 0x80);
	ck_assert_uint_eq(vmc_get_le64(low), 0x80);
}
END_TEST

START_TEST(test_le_put_get_round_trip)
{
	static const uint64_t values[] = { 0, 1, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000,
					   0x7fffffff, 0x80000000u, 0xffffffffu, 0x100000000ull,
					   0x8000000000000000ull, UINT64_MAX };
	uint8_t buf[8];

	for (size_t i = 0; i < ARRAY_LEN(values); i++) {
		vmc_put_le16(buf, (uint16_t)values[i]);
		ck_assert_uint_eq(vmc_get_le16(buf), (uint16_t)values[i]);
		vmc_put_le32(buf, (uint32_t)values[i]);
		ck_assert_uint_eq(vmc_get_le32(buf), (uint32_t)values[i]);
		vmc_put_le64(buf, values[i]);
		ck_assert_uint_eq(vmc_get_le64(buf), values[i]);
	}
}
END_TEST

/* ---- encode and round trip ---- */

START_TEST(test_encode_writes_the_documented_header)
{
	static const uint8_t want[] = {
		'V', 'M', 'C', 'L',                             /* magic */
		0x01, 0x00,                                     /* version 1 */
		0x04, 0x00,                                     /* type GROUP_REMOVE */
		0x0d, 0x0c, 0x0b, 0x0a,                         /* sender */
		0x10, 0x00, 0x00, 0x00,                         /* payload_len 16 */
		0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* request_id */
		'{', '"', 'n', 'a', 'm', 'e', '"', ':', '"', 'w', 'e', 'b', '1', '"', '}', '\0',
	};
	struct vmc_msg m = msg_make(VMC_MSG_GROUP_REMOVE, "{ \"name\" : \"web1\" }");
	void *buf = NULL;
	size_t len = 0;

	m.version = 1;
	ck_assert_int_eq(vmc_msg_encode(&m, &buf, &len), 0);
	ck_assert_uint_eq(len, VMC_MSG_HEADER_LEN + 16);
	ck_assert_uint_eq(len - VMC_MSG_HEADER_LEN, strlen("{\"name\":\"web1\"}") + 1);
	ck_assert_mem_eq(buf, want, 24);
	ck_assert_mem_eq(buf, want, len);
	free(buf);
	vmc_msg_clear(&m);
}
END_TEST

START_TEST(test_encode_refuses_invalid_types)
{
	static const uint16_t bad[] = { VMC_MSG_INVALID, VMC_MSG_TYPE_COUNT, 0xffff };

	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		struct vmc_msg m = msg_make(bad[i], "{}");
		void *buf = NULL;
		size_t len = 0;

		ck_assert_int_eq(vmc_msg_encode(&m, &buf, &len), -EINVAL);
		ck_assert_ptr_null(buf);
		vmc_msg_clear(&m);
	}
}
END_TEST

START_TEST(test_round_trip_every_type)
{
	uint16_t type = (uint16_t)_i;
	struct vmc_msg in = msg_make(type, type_bodies[type]);
	struct vmc_msg out;
	char err[ERR_LEN] = "";
	void *buf = NULL;
	size_t len = 0;
	int rc;

	ck_assert_int_eq(vmc_msg_encode(&in, &buf, &len), 0);
	ck_assert_uint_gt(len, VMC_MSG_HEADER_LEN);
	rc = vmc_msg_decode(buf, len, &out, err, sizeof(err));
	ck_assert_msg(rc == 0, "%s: decode rc %d: %s", vmc_msg_type_to_str(type), rc, err);
	ck_assert_uint_eq(out.version, VMC_PROTO_VERSION_MAX);
	ck_assert_uint_eq(out.type, type);
	ck_assert_uint_eq(out.sender, TEST_SENDER);
	ck_assert_uint_eq(out.request_id, TEST_REQUEST_ID);
	ck_assert_ptr_nonnull(out.body);
	ck_assert_ptr_ne(out.body, in.body);
	ck_assert_msg(json_object_equal(out.body, in.body), "%s: body changed: %s",
		      vmc_msg_type_to_str(type), json_object_to_json_string(out.body));
	vmc_msg_clear(&out);
	ck_assert_ptr_null(out.body);
	vmc_msg_clear(&in);
	free(buf);
}
END_TEST

START_TEST(test_round_trip_extreme_header_values)
{
	static const uint32_t senders[] = { 0, 1, 0x80000000u, UINT32_MAX };
	static const uint64_t request_ids[] = { 0, 1, 0x8000000000000000ull, UINT64_MAX };

	for (size_t i = 0; i < ARRAY_LEN(senders); i++) {
		struct vmc_msg in = msg_make(VMC_MSG_HELLO, "{\"\":[{},[],null,\"\\u00e9\"]}");
		struct vmc_msg out;
		char err[ERR_LEN] = "";
		void *buf = NULL;
		size_t len = 0;

		in.version = VMC_PROTO_VERSION_MIN;
		in.sender = senders[i];
		in.request_id = request_ids[i];
		ck_assert_int_eq(vmc_msg_encode(&in, &buf, &len), 0);
		ck_assert_int_eq(vmc_msg_decode(buf, len, &out, err, sizeof(err)), 0);
		ck_assert_uint_eq(out.version, VMC_PROTO_VERSION_MIN);
		ck_assert_uint_eq(out.sender, senders[i]);
		ck_assert_uint_eq(out.request_id, request_ids[i]);
		ck_assert(json_object_equal(out.body, in.body));
		vmc_msg_clear(&out);
		vmc_msg_clear(&in);
		free(buf);
	}
}
END_TEST

START_TEST(test_type_names_are_distinct)
{
	for (uint16_t a = 1; a < VMC_MSG_TYPE_COUNT; a++) {
		ck_assert_str_ne(vmc_msg_type_to_str(a), "invalid");
		for (uint16_t b = 1; b < a; b++) {
			ck_assert_str_ne(vmc_msg_type_to_str(a), vmc_msg_type_to_str(b));
		}
	}
	ck_assert_str_eq(vmc_msg_type_to_str(VMC_MSG_INVALID), "invalid");
	ck_assert_str_eq(vmc_msg_type_to_str(VMC_MSG_TYPE_COUNT), "invalid");
}
END_TEST

/* ---- refusals ---- */

START_TEST(test_decode_refuses_shorter_than_header)
{
	uint8_t header[VMC_MSG_HEADER_LEN];
	size_t full;
	uint8_t *valid = msg_encode_type(VMC_MSG_GROUP_REMOVE, &full);

	memcpy(header, valid, sizeof(header));
	for (size_t len = 0; len < VMC_MSG_HEADER_LEN; len++) {
		char what[32];

		snprintf(what, sizeof(what), "%zu-byte message", len);
		assert_decode_refused(header, len, -VMC_E_PROTOCOL, what);
	}
	free(valid);
}
END_TEST

START_TEST(test_decode_refuses_every_truncation)
{
	uint16_t type = (uint16_t)_i;
	size_t full;
	uint8_t *valid = msg_encode_type(type, &full);

	for (size_t len = 0; len < full; len++) {
		char what[64];

		snprintf(what, sizeof(what), "%s cut to %zu of %zu bytes", vmc_msg_type_to_str(type),
			 len, full);
		assert_decode_refused(valid, len, -VMC_E_PROTOCOL, what);
	}
	free(valid);
}
END_TEST

START_TEST(test_decode_refuses_bad_magic)
{
	static const uint8_t big_endian_magic[] = { 'L', 'C', 'M', 'V' };
	size_t len;
	uint8_t *p = msg_encode_type(VMC_MSG_GROUP_ADD, &len);

	for (size_t i = 0; i < 4; i++) {
		p[i] ^= 0x20;
		assert_decode_refused(p, len, -VMC_E_PROTOCOL, "magic with one byte changed");
		p[i] ^= 0x20;
	}
	memcpy(p, big_endian_magic, sizeof(big_endian_magic));
	assert_decode_refused(p, len, -VMC_E_PROTOCOL, "big-endian magic");
	memset(p, 0, 4);
	assert_decode_refused(p, len, -VMC_E_PROTOCOL, "zero magic");
	free(p);
}
END_TEST

START_TEST(test_decode_refuses_unknown_versions)
{
	static const uint16_t bad[] = { 0, VMC_PROTO_VERSION_MAX + 1, 0x0100, 0xffff };
	size_t len;
	uint8_t *p = msg_encode_type(VMC_MSG_HELLO, &len);

	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		char what[32];

		snprintf(what, sizeof(what), "version %u", bad[i]);
		vmc_put_le16(p + 4, bad[i]);
		assert_decode_refused(p, len, -VMC_E_VERSION, what);
	}
	free(p);
}
END_TEST

START_TEST(test_decode_refuses_unknown_types)
{
	static const uint16_t bad[] = { VMC_MSG_INVALID, VMC_MSG_TYPE_COUNT, 0x0100, 0xffff };
	size_t len;
	uint8_t *p = msg_encode_type(VMC_MSG_HELLO, &len);

	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		char what[32];

		snprintf(what, sizeof(what), "type %u", bad[i]);
		vmc_put_le16(p + 6, bad[i]);
		assert_decode_refused(p, len, -VMC_E_PROTOCOL, what);
	}
	free(p);
}
END_TEST

START_TEST(test_decode_refuses_payload_len_mismatch)
{
	size_t len;
	uint8_t *p = msg_encode_type(VMC_MSG_GROUP_SET, &len);
	uint8_t *longer;
	uint32_t payload_len = vmc_get_le32(p + 12);
	const uint32_t bad[] = { 0, 1, payload_len - 1, payload_len + 1, payload_len * 2,
				 0x80000000u, UINT32_MAX };

	ck_assert_uint_eq(payload_len, len - VMC_MSG_HEADER_LEN);
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		char what[48];

		snprintf(what, sizeof(what), "payload_len %u of %u", bad[i], payload_len);
		vmc_put_le32(p + 12, bad[i]);
		assert_decode_refused(p, len, -VMC_E_PROTOCOL, what);
	}
	vmc_put_le32(p + 12, payload_len);

	/* a byte more than the header announces */
	longer = calloc(1, len + 1);
	ck_assert_ptr_nonnull(longer);
	memcpy(longer, p, len);
	assert_decode_refused(longer, len + 1, -VMC_E_PROTOCOL, "one trailing byte");
	free(longer);
	free(p);
}
END_TEST

START_TEST(test_decode_refuses_payload_without_nul)
{
	static const char json[] = "{\"name\":\"web1\"}";
	size_t len;
	uint8_t *p = msg_with_payload(json, strlen(json), &len);

	assert_decode_refused(p, len, -VMC_E_PROTOCOL, "payload without NUL");
	free(p);
}
END_TEST

START_TEST(test_decode_refuses_nul_inside_payload)
{
	static const char json[] = "{\"name\":\"web1\"}\0{\"name\":\"web2\"}";
	static const char early[] = "{\"na\0me\":\"web1\"}";
	size_t len;
	uint8_t *p = msg_with_payload(json, sizeof(json), &len);

	assert_decode_refused(p, len, -VMC_E_PROTOCOL, "two strings in the payload");
	free(p);
	p = msg_with_payload(early, sizeof(early), &len);
	assert_decode_refused(p, len, -VMC_E_PROTOCOL, "NUL inside a key");
	free(p);
}
END_TEST

static const char *const not_json_payloads[] = {
	"",
	"hello",
	"{\"name\":",
	"{\"name\" \"web1\"}",
	"}",
	/* one JSON object, then more: refused, not cut short */
	"{\"name\":\"web1\"}garbage",
	"{\"name\":\"web1\"} {\"name\":\"web2\"}",
	"{\"name\":\"web1\"}}",
	"{} x",
};

START_TEST(test_decode_refuses_payload_not_json)
{
	const char *payload = not_json_payloads[_i];
	size_t len;
	uint8_t *p = msg_with_payload(payload, strlen(payload) + 1, &len);

	assert_decode_refused(p, len, -VMC_E_PROTOCOL, payload);
	free(p);
}
END_TEST

static const char *const not_object_payloads[] = {
	"[]",
	"[{\"name\":\"web1\"}]",
	"\"web1\"",
	"42",
	"true",
	"null",
};

START_TEST(test_decode_refuses_payload_not_object)
{
	const char *payload = not_object_payloads[_i];
	size_t len;
	uint8_t *p = msg_with_payload(payload, strlen(payload) + 1, &len);

	assert_decode_refused(p, len, -VMC_E_PROTOCOL, payload);
	free(p);
}
END_TEST

START_TEST(test_decode_accepts_white_space_after_the_object)
{
	static const char payload[] = "{\"name\":\"web1\"} \n\t";
	struct vmc_msg m;
	char err[ERR_LEN] = "";
	size_t len;
	uint8_t *p = msg_with_payload(payload, sizeof(payload), &len);
	int rc = vmc_msg_decode(p, len, &m, err, sizeof(err));

	ck_assert_msg(rc == 0, "decode rc %d: %s", rc, err);
	ck_assert(json_object_is_type(m.body, json_type_object));
	ck_assert_int_eq(json_object_object_length(m.body), 1);
	vmc_msg_clear(&m);
	free(p);
}
END_TEST

START_TEST(test_decode_refusal_of_trailing_text_says_why)
{
	static const char payload[] = "{\"name\":\"web1\"}garbage";
	struct vmc_msg m;
	char err[ERR_LEN] = "";
	size_t len;
	uint8_t *p = msg_with_payload(payload, sizeof(payload), &len);

	ck_assert_int_eq(vmc_msg_decode(p, len, &m, err, sizeof(err)), -VMC_E_PROTOCOL);
	ck_assert_msg(strstr(err, "JSON object") != NULL, "reason '%s'", err);
	ck_assert_msg(strstr(err, vmc_msg_type_to_str(VMC_MSG_GROUP_ADD)) != NULL,
		      "reason '%s' does not name the type", err);
	ck_assert_ptr_null(m.body);
	free(p);
}
END_TEST

/* ---- garbage ---- */

struct garbage_stats {
	unsigned long accepted;
	unsigned long refused;
};

/*
 * Decode one untrusted buffer: whatever it holds, the decoder returns 0
 * with an object body or refuses with one of its two codes and a reason.
 */
static int decode_untrusted(const uint8_t *buf, size_t len, struct garbage_stats *st,
			    const char *what, unsigned long iteration)
{
	struct vmc_msg m;
	char err[ERR_LEN] = "";
	void *exact = malloc(len ? len : 1);
	int rc;

	ck_assert_ptr_nonnull(exact);
	memcpy(exact, buf, len);
	rc = vmc_msg_decode(exact, len, &m, err, sizeof(err));
	free(exact);
	if (rc == 0) {
		ck_assert_msg(m.body != NULL && json_object_is_type(m.body, json_type_object),
			      "%s %lu: accepted without an object body", what, iteration);
		ck_assert_msg(m.type > VMC_MSG_INVALID && m.type < VMC_MSG_TYPE_COUNT,
			      "%s %lu: accepted type %u", what, iteration, m.type);
		ck_assert_msg(m.version >= VMC_PROTO_VERSION_MIN && m.version <= VMC_PROTO_VERSION_MAX,
			      "%s %lu: accepted version %u", what, iteration, m.version);
		vmc_msg_clear(&m);
		st->accepted++;
	} else {
		ck_assert_msg(rc == -VMC_E_PROTOCOL || rc == -VMC_E_VERSION,
			      "%s %lu: unexpected rc %d", what, iteration, rc);
		ck_assert_msg(err[0] != '\0', "%s %lu: refused without a reason", what, iteration);
		ck_assert_msg(m.body == NULL, "%s %lu: refused but a body was left", what, iteration);
		st->refused++;
	}
	return rc;
}

static uint8_t random_byte(void)
{
	return (uint8_t)(rand() & 0xff);
}

/* Bytes that JSON is made of, so the parser gets past its first byte. */
static uint8_t random_json_byte(void)
{
	static const char alphabet[] = "{}[]\":,.-+0123456789eEtrufalsn \\u\t\n";

	return (uint8_t)alphabet[rand() % (int)(sizeof(alphabet) - 1)];
}

/*
 * Four kinds, in turn: pure noise; the right magic then noise; a valid
 * header with a consistent length around a noisy payload; the same with
 * JSON-ish bytes and a final NUL.
 */
static size_t garbage_make(uint8_t *buf, unsigned long i)
{
	size_t len = (size_t)(rand() % GARBAGE_LEN_MAX);
	unsigned int kind = (unsigned int)(i % 4);
	size_t payload_len;

	for (size_t k = 0; k < len; k++) {
		buf[k] = kind == 3 ? random_json_byte() : random_byte();
	}
	if (kind == 0 || len < VMC_MSG_HEADER_LEN + 1) {
		return len;
	}
	vmc_put_le32(buf, VMC_MSG_MAGIC);
	if (kind == 1) {
		return len;
	}
	payload_len = len - VMC_MSG_HEADER_LEN;
	vmc_put_le16(buf + 4, VMC_PROTO_VERSION_MAX);
	vmc_put_le16(buf + 6, (uint16_t)(1 + rand() % (VMC_MSG_TYPE_COUNT - 1)));
	vmc_put_le32(buf + 12, (uint32_t)payload_len);
	if (kind == 3) {
		buf[len - 1] = '\0';
	}
	return len;
}

START_TEST(test_garbage_random_buffers_never_crash)
{
	unsigned int seed = garbage_seed();
	struct garbage_stats st = { 0, 0 };
	uint8_t buf[GARBAGE_LEN_MAX];

	printf("check_msg: random buffers, seed %u (VMC_MSG_SEED to replay)\n", seed);
	fflush(stdout);
	srand(seed);
	for (unsigned long i = 0; i < GARBAGE_RANDOM_BUFFERS; i++) {
		size_t len = garbage_make(buf, i);

		decode_untrusted(buf, len, &st, "random buffer", i);
	}
	ck_assert_uint_eq(st.accepted + st.refused, GARBAGE_RANDOM_BUFFERS);
	/* the noise must have been refused; the loop is no use if nothing reached the parser */
	ck_assert_uint_gt(st.refused, GARBAGE_RANDOM_BUFFERS / 2);
}
END_TEST

/*
 * What decode must say about a valid message with byte pos changed: the
 * header fields are checked one by one, the payload only as a whole.
 */
static void mutation_check(const uint8_t *buf, size_t len, size_t pos, int rc, unsigned long i)
{
	uint16_t version = vmc_get_le16(buf + 4);
	uint16_t type = vmc_get_le16(buf + 6);

	if (pos < 4) {
		ck_assert_msg(rc == -VMC_E_PROTOCOL, "mutation %lu of magic byte %zu: rc %d", i, pos, rc);
	} else if (pos < 6) {
		bool spoken = version >= VMC_PROTO_VERSION_MIN && version <= VMC_PROTO_VERSION_MAX;
		const struct vmc_msg_type_info *info = vmc_msg_type_info(type);

		/* A version older than the type itself is refused as a malformed message. */
		if (spoken && info != NULL && version < info->since) {
			ck_assert_msg(rc == -VMC_E_PROTOCOL, "mutation %lu to version %u below type %u's: rc %d", i,
				      version, type, rc);
			return;
		}
		ck_assert_msg(rc == (spoken ? 0 : -VMC_E_VERSION), "mutation %lu to version %u: rc %d",
			      i, version, rc);
	} else if (pos < 8) {
		bool known = type > VMC_MSG_INVALID && type < VMC_MSG_TYPE_COUNT;

		ck_assert_msg(rc == (known ? 0 : -VMC_E_PROTOCOL), "mutation %lu to type %u: rc %d", i,
			      type, rc);
	} else if (pos >= 12 && pos < 16) {
		ck_assert_msg(rc == -VMC_E_PROTOCOL, "mutation %lu of length byte %zu: rc %d", i, pos, rc);
	} else if (pos < VMC_MSG_HEADER_LEN) {
		/* sender and request_id are opaque: any value is fine */
		ck_assert_msg(rc == 0, "mutation %lu of opaque byte %zu: rc %d", i, pos, rc);
	} else if (pos == len - 1 || buf[pos] == '\0') {
		ck_assert_msg(rc == -VMC_E_PROTOCOL, "mutation %lu: NUL moved to byte %zu: rc %d", i,
			      pos, rc);
	}
}

START_TEST(test_garbage_single_byte_mutations_never_crash)
{
	unsigned int seed = garbage_seed() + 1;
	struct garbage_stats st = { 0, 0 };
	uint8_t *valid[VMC_MSG_TYPE_COUNT];
	size_t valid_len[VMC_MSG_TYPE_COUNT];

	printf("check_msg: single-byte mutations, seed %u (VMC_MSG_SEED to replay)\n", seed - 1);
	fflush(stdout);
	for (uint16_t t = 1; t < VMC_MSG_TYPE_COUNT; t++) {
		valid[t] = msg_encode_type(t, &valid_len[t]);
	}
	srand(seed);
	for (unsigned long i = 0; i < GARBAGE_MUTATIONS; i++) {
		uint16_t t = (uint16_t)(1 + rand() % (VMC_MSG_TYPE_COUNT - 1));
		size_t len = valid_len[t];
		uint8_t buf[1024];
		size_t pos;
		int rc;

		ck_assert_uint_le(len, sizeof(buf));
		memcpy(buf, valid[t], len);
		/* a third of the mutations hit the header, the rest the payload */
		pos = (size_t)rand() % (i % 3 == 0 ? VMC_MSG_HEADER_LEN : len);
		buf[pos] ^= (uint8_t)(1 + rand() % 255);
		rc = decode_untrusted(buf, len, &st, "mutation", i);
		mutation_check(buf, len, pos, rc, i);
	}
	for (uint16_t t = 1; t < VMC_MSG_TYPE_COUNT; t++) {
		free(valid[t]);
	}
	ck_assert_uint_eq(st.accepted + st.refused, GARBAGE_MUTATIONS);
	ck_assert_uint_gt(st.accepted, 0);
	ck_assert_uint_gt(st.refused, 0);
}
END_TEST

static TCase *tcase_make(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	suite_add_tcase(s, tc);
	return tc;
}

static Suite *msg_suite(void)
{
	Suite *s = suite_create("msg");
	TCase *tc;

	tc = tcase_make(s, "le");
	tcase_add_test(tc, test_put_le_writes_little_endian_bytes);
	tcase_add_test(tc, test_get_le_reads_little_endian_bytes);
	tcase_add_test(tc, test_get_le_high_bits_do_not_sign_extend);
	tcase_add_test(tc, test_le_put_get_round_trip);

	tc = tcase_make(s, "round_trip");
	tcase_add_test(tc, test_encode_writes_the_documented_header);
	tcase_add_test(tc, test_encode_refuses_invalid_types);
	tcase_add_loop_test(tc, test_round_trip_every_type, VMC_MSG_HELLO, VMC_MSG_TYPE_COUNT);
	tcase_add_test(tc, test_round_trip_extreme_header_values);
	tcase_add_test(tc, test_type_names_are_distinct);

	tc = tcase_make(s, "refusals");
	tcase_add_test(tc, test_decode_refuses_shorter_than_header);
	tcase_add_loop_test(tc, test_decode_refuses_every_truncation, VMC_MSG_HELLO,
			    VMC_MSG_TYPE_COUNT);
	tcase_add_test(tc, test_decode_refuses_bad_magic);
	tcase_add_test(tc, test_decode_refuses_unknown_versions);
	tcase_add_test(tc, test_decode_refuses_unknown_types);
	tcase_add_test(tc, test_decode_refuses_payload_len_mismatch);
	tcase_add_test(tc, test_decode_refuses_payload_without_nul);
	tcase_add_test(tc, test_decode_refuses_nul_inside_payload);
	tcase_add_loop_test(tc, test_decode_refuses_payload_not_json, 0,
			    (int)ARRAY_LEN(not_json_payloads));
	tcase_add_loop_test(tc, test_decode_refuses_payload_not_object, 0,
			    (int)ARRAY_LEN(not_object_payloads));
	tcase_add_test(tc, test_decode_accepts_white_space_after_the_object);
	tcase_add_test(tc, test_decode_refusal_of_trailing_text_says_why);

	tc = tcase_make(s, "garbage");
	tcase_add_test(tc, test_garbage_random_buffers_never_crash);
	tcase_add_test(tc, test_garbage_single_byte_mutations_never_crash);
	return s;
}

int main(void)
{
	return check_suite_run(msg_suite());
}
