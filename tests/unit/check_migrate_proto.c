/*
 * Unit tests for the migration agents' protocol engine
 * (lib/migrate_proto.c): full conversations between a client and a
 * server engine (control and data channels, fed as they ask and byte by
 * byte), the proofs and stream keys recomputed here from the documented
 * byte layout, every way the handshake must fail (wrong key on either
 * side, a replayed handshake, unknown and used ids, versions, frames out
 * of place, malformed and oversized frames), and two exhaustive loops
 * over every frame of a valid conversation: each truncation, and each
 * single-byte mutation of the header and many of the payload, none of
 * which may take a side further than that frame legitimately can.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "migrate_proto.h"
#include "check_run.h"

#define TEST_TIMEOUT_S 60
#define TEST_LOOP_TIMEOUT_S 600
#define FRAMES_MAX 16
#define T_LEN 101
#define ERR_LEN 160
#define EVENT_KINDS (VMC_MIGP_EV_FAILED + 1)
#define SMALL_PAYLOAD 16

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const char cluster_key_a[] = "the corosync authkey of cluster A, 32+ bytes of it";
static const char cluster_key_b[] = "the corosync authkey of cluster B, 32+ bytes of it";
static const char test_id[] = "00112233445566778899aabbccddeeff";
static const char other_id[] = "ffeeddccbbaa99887766554433221100";
static uint8_t key_a[VMC_MIGP_KEY_LEN];
static uint8_t key_b[VMC_MIGP_KEY_LEN];

static const char offer_body[] =
	"{\"definition\":{\"name\":\"web1\",\"memory_mib\":512,"
	"\"disks\":[{\"path\":\"/srv/csv1/web1.qcow2\"}]},"
	"\"mode\":\"live\",\"encrypt\":true,\"channels\":2,\"source\":\"node1\"}";

/* ---- independent crypto: the byte layout as migrate_proto.c documents it ---- */

static void hmac_label(const uint8_t *key, size_t key_len, const char *label, const uint8_t *t,
		       size_t t_len, uint8_t out[32])
{
	uint8_t in[256];
	size_t l = strlen(label);
	unsigned int n = 0;

	memcpy(in, label, l);
	if (t_len > 0) {
		memcpy(in + l, t, t_len);
	}
	ck_assert_ptr_nonnull(HMAC(EVP_sha256(), key, (int)key_len, in, l + t_len, out, &n));
	ck_assert_uint_eq(n, 32);
}

static void transcript_make(uint8_t t[T_LEN], const char *id, int channel, uint32_t index,
			    const uint8_t nc[32], const uint8_t ns[32])
{
	memcpy(t, id, 32);
	t[32] = (uint8_t)channel;
	t[33] = (uint8_t)(index >> 24);
	t[34] = (uint8_t)(index >> 16);
	t[35] = (uint8_t)(index >> 8);
	t[36] = (uint8_t)index;
	memcpy(t + 37, nc, 32);
	memcpy(t + 69, ns, 32);
}

static void proof_compute(const uint8_t *k, const char *label, const char *id, int channel,
			  uint32_t index, const uint8_t nc[32], const uint8_t ns[32], uint8_t out[32])
{
	uint8_t t[T_LEN];

	transcript_make(t, id, channel, index, nc, ns);
	hmac_label(k, VMC_MIGP_KEY_LEN, label, t, sizeof(t), out);
}

static void stream_keys_compute(const uint8_t *k, const char *id, int channel, uint32_t index,
				const uint8_t nc[32], const uint8_t ns[32], bool client,
				struct vmc_migp_stream_keys *out)
{
	uint8_t d[32], t[T_LEN], c2s_key[32], c2s_salt[32], s2c_key[32], s2c_salt[32];

	hmac_label(k, VMC_MIGP_KEY_LEN, "vmcluster-migrate data v1", NULL, 0, d);
	transcript_make(t, id, channel, index, nc, ns);
	hmac_label(d, 32, "c2s key", t, sizeof(t), c2s_key);
	hmac_label(d, 32, "c2s salt", t, sizeof(t), c2s_salt);
	hmac_label(d, 32, "s2c key", t, sizeof(t), s2c_key);
	hmac_label(d, 32, "s2c salt", t, sizeof(t), s2c_salt);
	memcpy(out->tx_key, client ? c2s_key : s2c_key, 32);
	memcpy(out->tx_salt, client ? c2s_salt : s2c_salt, 4);
	memcpy(out->rx_key, client ? s2c_key : c2s_key, 32);
	memcpy(out->rx_salt, client ? s2c_salt : c2s_salt, 4);
}

static void hex_to_bytes(const char *hex, uint8_t *out, size_t n)
{
	ck_assert_ptr_nonnull(hex);
	ck_assert_uint_eq(strlen(hex), 2 * n);
	for (size_t i = 0; i < n; i++) {
		ck_assert_int_eq(sscanf(hex + 2 * i, "%2hhx", &out[i]), 1);
	}
}

static void bytes_to_hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	}
}

/* ---- frames by hand ---- */

static uint8_t *frame_raw(uint8_t type, const void *payload, size_t n, size_t *len)
{
	uint8_t *p = malloc(VMC_MIGP_HEADER_LEN + n + 1);

	ck_assert_ptr_nonnull(p);
	memcpy(p, "VMCM", 4);
	p[4] = 1;
	p[5] = type;
	p[6] = 0;
	p[7] = 0;
	p[8] = (uint8_t)(n >> 24);
	p[9] = (uint8_t)(n >> 16);
	p[10] = (uint8_t)(n >> 8);
	p[11] = (uint8_t)n;
	memcpy(p + VMC_MIGP_HEADER_LEN, payload, n);
	*len = VMC_MIGP_HEADER_LEN + n;
	return p;
}

static uint8_t *frame_text(uint8_t type, const char *json, size_t *len)
{
	return frame_raw(type, json, strlen(json), len);
}

static json_object *json_parse(const char *text)
{
	json_object *j = json_tokener_parse(text);

	ck_assert_msg(j != NULL, "test JSON does not parse: %s", text);
	return j;
}

/* The body of one whole frame (checked header, payload parsed). */
static json_object *frame_body(const uint8_t *p, size_t n, uint8_t *type)
{
	char err[ERR_LEN] = "";
	uint32_t len = 0;
	char *text;
	json_object *o;

	ck_assert_uint_ge(n, VMC_MIGP_HEADER_LEN);
	ck_assert_msg(vmc_migp_header_decode(p, type, &len, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(len + VMC_MIGP_HEADER_LEN, n);
	text = strndup((const char *)p + VMC_MIGP_HEADER_LEN, len);
	ck_assert_ptr_nonnull(text);
	o = json_parse(text);
	free(text);
	return o;
}

/* Everything queued for writing, taken out of the engine. */
static uint8_t *output_take(struct vmc_migp *m, size_t *len)
{
	uint8_t *all = NULL;
	const void *d;
	size_t n;

	*len = 0;
	while ((n = vmc_migp_output(m, &d)) > 0) {
		all = realloc(all, *len + n);
		ck_assert_ptr_nonnull(all);
		memcpy(all + *len, d, n);
		*len += n;
		vmc_migp_output_consume(m, n);
	}
	return all;
}

/* The one frame queued for writing (there must be exactly one): its type and body. */
static json_object *output_frame(struct vmc_migp *m, uint8_t *type)
{
	size_t len;
	uint8_t *p = output_take(m, &len);
	json_object *o = frame_body(p, len, type);

	free(p);
	return o;
}

/*
 * Feeds as a blocking reader would: never more than wanted (and than
 * chunk, if not 0). exact: p is one whole frame, and the engine must
 * never want a byte past it.
 */
static size_t feed_frame(struct vmc_migp *m, const uint8_t *p, size_t len, size_t chunk, bool exact)
{
	size_t off = 0;

	while (off < len) {
		size_t w = vmc_migp_wanted(m);
		int rc;

		if (w == 0) {
			break;
		}
		ck_assert_msg(!exact || w <= len - off, "wants %zu bytes, the frame has %zu more", w,
			      len - off);
		if (w > len - off) {
			w = len - off;
		}
		if (chunk > 0 && w > chunk) {
			w = chunk;
		}
		rc = vmc_migp_feed(m, p + off, w);
		ck_assert_msg(rc == 0 || rc == -EPROTO, "feed returned %d", rc);
		off += w;
		if (rc != 0) {
			break;
		}
	}
	return off;
}

static size_t feed_wanted(struct vmc_migp *m, const uint8_t *p, size_t len, size_t chunk)
{
	return feed_frame(m, p, len, chunk, false);
}

static void feed_text(struct vmc_migp *m, uint8_t type, const char *json)
{
	size_t len;
	uint8_t *f = frame_text(type, json, &len);

	feed_wanted(m, f, len, 0);
	free(f);
}

static struct vmc_migp_event event_expect(struct vmc_migp *m, enum vmc_migp_event_kind kind)
{
	struct vmc_migp_event ev;

	vmc_migp_event_next(m, &ev);
	ck_assert_msg(ev.kind == kind, "event %d, expected %d (%s: %s)", ev.kind, kind, ev.code,
		      ev.reason);
	return ev;
}

static void events_none(struct vmc_migp *m)
{
	event_expect(m, VMC_MIGP_EV_NONE);
}

/* The state is FAILED with this code, told by the peer or not; the EV_FAILED is taken. */
static struct vmc_migp_event failed_expect(struct vmc_migp *m, const char *code, bool from_peer)
{
	struct vmc_migp_event ev;

	ck_assert_int_eq(vmc_migp_state_get(m), VMC_MIGP_FAILED);
	do {
		vmc_migp_event_next(m, &ev);
	} while (ev.kind != VMC_MIGP_EV_FAILED && ev.kind != VMC_MIGP_EV_NONE);
	ck_assert_int_eq(ev.kind, VMC_MIGP_EV_FAILED);
	ck_assert_msg(strcmp(ev.code, code) == 0, "code %s (%s), expected %s", ev.code, ev.reason,
		      code);
	ck_assert_int_eq(ev.from_peer, from_peer);
	events_none(m);
	return ev;
}

/* The engine's output is one ERROR frame with this code; its reason is returned (malloc()ed). */
static char *error_sent_expect(struct vmc_migp *m, const char *code)
{
	uint8_t type;
	json_object *o = output_frame(m, &type);
	char *reason;

	ck_assert_int_eq(type, VMC_MIGP_ERROR);
	ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "code")), code);
	reason = strdup(json_object_get_string(json_object_object_get(o, "reason")));
	json_object_put(o);
	return reason;
}

static void output_none(struct vmc_migp *m)
{
	const void *d;

	ck_assert_uint_eq(vmc_migp_output(m, &d), 0);
	ck_assert_ptr_null(d);
}

/* ---- a conversation between two engines ---- */

struct rec {
	bool from_client;
	uint8_t *data;
	size_t len;
};

struct side {
	struct vmc_migp *m;
	enum vmc_migp_state max; /* the furthest state reached, FAILED aside */
	unsigned int events[EVENT_KINDS];
	struct vmc_migp_event hello;
	struct vmc_migp_event failed;
	char *offer_json;
	bool offer_ill_typed;   /* an EV_OFFER whose body lacks a field or its type */
	unsigned int sent_after_failing;
	bool sent_non_error_after_failing;
};

enum hook_kind {
	HOOK_NONE,
	HOOK_SET, /* byte hook_byte of frame hook_frame := hook_value */
	HOOK_XOR, /* byte hook_byte of frame hook_frame ^= hook_value */
	HOOK_CUT, /* only hook_byte bytes of frame hook_frame arrive, then nothing */
};

struct conv {
	struct side client, server;
	enum vmc_migp_channel channel;
	uint32_t index;
	/* the server's caller */
	bool hello_refuse;
	const char *hello_code;
	bool hello_any_id;
	/* the client's caller */
	bool no_offer;
	size_t chunk;
	enum hook_kind hook;
	size_t hook_frame;
	size_t hook_byte;
	uint8_t hook_value;
	bool mutated;                 /* the hook changed a byte */
	bool hooked_to_client;        /* the hooked frame went to the client */
	enum vmc_migp_state before;   /* its receiver's state before it */
	bool stop;
	bool leftover;                /* a receiver did not take all of a frame */
	struct rec frames[FRAMES_MAX]; /* as sent, before any hook */
	size_t nframes;
};

static void conv_init(struct conv *v, enum vmc_migp_channel channel, uint32_t index,
		      const uint8_t *client_key, const uint8_t *server_key)
{
	memset(v, 0, sizeof(*v));
	v->channel = channel;
	v->index = index;
	v->client.m = vmc_migp_client_new(client_key, test_id, channel, index);
	v->server.m = vmc_migp_server_new(server_key);
	ck_assert_ptr_nonnull(v->client.m);
	ck_assert_ptr_nonnull(v->server.m);
	v->client.max = vmc_migp_state_get(v->client.m);
	v->server.max = VMC_MIGP_START;
}

static void conv_free(struct conv *v)
{
	for (size_t i = 0; i < v->nframes; i++) {
		free(v->frames[i].data);
	}
	free(v->client.offer_json);
	free(v->server.offer_json);
	vmc_migp_free(v->client.m);
	vmc_migp_free(v->server.m);
}

static void side_observe(struct side *s)
{
	enum vmc_migp_state st = vmc_migp_state_get(s->m);

	if (st != VMC_MIGP_FAILED && st > s->max) {
		s->max = st;
	}
}

static bool offer_well_typed(json_object *o)
{
	json_object *v;
	const char *mode;
	int64_t channels;

	if (!json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "definition", &v) ||
	    !json_object_is_type(v, json_type_object) ||
	    !json_object_object_get_ex(o, "mode", &v) || !json_object_is_type(v, json_type_string)) {
		return false;
	}
	mode = json_object_get_string(v);
	if (strcmp(mode, "live") != 0 && strcmp(mode, "quick") != 0) {
		return false;
	}
	if (!json_object_object_get_ex(o, "encrypt", &v) ||
	    !json_object_is_type(v, json_type_boolean) ||
	    !json_object_object_get_ex(o, "channels", &v) || !json_object_is_type(v, json_type_int)) {
		return false;
	}
	channels = json_object_get_int64(v);
	return channels >= 1 && channels <= VMC_MIGP_CHANNELS_MAX &&
	       json_object_object_get_ex(o, "source", &v) && json_object_is_type(v, json_type_string);
}

static void server_react(struct conv *v, const struct vmc_migp_event *ev)
{
	struct side *s = &v->server;

	if (ev->kind == VMC_MIGP_EV_HELLO) {
		bool known = !v->hello_refuse && (v->hello_any_id || strcmp(ev->id, test_id) == 0);

		ck_assert_int_eq(vmc_migp_server_hello(s->m, known, v->hello_code, "no such migration"),
				 0);
	} else if (ev->kind == VMC_MIGP_EV_OFFER) {
		ck_assert_ptr_nonnull(ev->offer);
		if (!offer_well_typed(ev->offer)) {
			s->offer_ill_typed = true;
		}
		free(s->offer_json);
		s->offer_json =
			strdup(json_object_to_json_string_ext(ev->offer, JSON_C_TO_STRING_PLAIN));
		ck_assert_int_eq(vmc_migp_server_accept(s->m), 0);
		/* The destination QEMU completes at once. */
		ck_assert_int_eq(vmc_migp_server_received(s->m), 0);
	}
}

static void client_react(struct conv *v, const struct vmc_migp_event *ev)
{
	if (ev->kind == VMC_MIGP_EV_AUTHED && v->channel == VMC_MIGP_CONTROL && !v->no_offer) {
		ck_assert_int_eq(vmc_migp_client_offer(v->client.m, json_parse(offer_body)), 0);
	}
}

static bool side_drain(struct conv *v, struct side *s)
{
	struct vmc_migp_event ev;
	bool any = false;

	for (;;) {
		vmc_migp_event_next(s->m, &ev);
		if (ev.kind == VMC_MIGP_EV_NONE) {
			break;
		}
		any = true;
		s->events[ev.kind]++;
		if (ev.kind == VMC_MIGP_EV_HELLO) {
			s->hello = ev;
		}
		if (ev.kind == VMC_MIGP_EV_FAILED) {
			s->failed = ev;
		}
		if (s == &v->server) {
			server_react(v, &ev);
		} else {
			client_react(v, &ev);
		}
		side_observe(s);
	}
	return any;
}

static void hook_apply(struct conv *v, uint8_t *buf, size_t *len)
{
	uint8_t was;

	switch (v->hook) {
	case HOOK_NONE:
		break;
	case HOOK_SET:
	case HOOK_XOR:
		ck_assert_uint_lt(v->hook_byte, *len);
		was = buf[v->hook_byte];
		buf[v->hook_byte] = v->hook == HOOK_SET ? v->hook_value : was ^ v->hook_value;
		v->mutated = buf[v->hook_byte] != was;
		break;
	case HOOK_CUT:
		ck_assert_uint_lt(v->hook_byte, *len);
		*len = v->hook_byte;
		v->stop = true;
		break;
	}
}

/* Moves the next frame from one side to the other; false when there is none. */
static bool conv_move(struct conv *v, struct side *from, struct side *to)
{
	const void *d;
	size_t n = vmc_migp_output(from->m, &d);
	size_t len;
	uint8_t *buf;
	struct rec *r;

	if (n == 0) {
		return false;
	}
	if (vmc_migp_state_get(from->m) == VMC_MIGP_FAILED) {
		from->sent_after_failing++;
		if (n < VMC_MIGP_HEADER_LEN || ((const uint8_t *)d)[5] != VMC_MIGP_ERROR) {
			from->sent_non_error_after_failing = true;
		}
	}
	ck_assert_uint_lt(v->nframes, FRAMES_MAX);
	r = &v->frames[v->nframes];
	r->from_client = from == &v->client;
	r->data = malloc(n);
	buf = malloc(n);
	ck_assert_ptr_nonnull(r->data);
	ck_assert_ptr_nonnull(buf);
	memcpy(r->data, d, n);
	memcpy(buf, d, n);
	r->len = n;
	vmc_migp_output_consume(from->m, n);
	len = n;
	if (v->hook != HOOK_NONE && v->nframes == v->hook_frame) {
		v->before = vmc_migp_state_get(to->m);
		v->hooked_to_client = to == &v->client;
		hook_apply(v, buf, &len);
	}
	v->nframes++;
	if (feed_frame(to->m, buf, len, v->chunk, v->hook == HOOK_NONE) < len) {
		v->leftover = true;
	}
	free(buf);
	side_observe(to);
	return true;
}

/* Runs both engines and their callers until nothing moves any more. */
static void conv_run(struct conv *v)
{
	for (int round = 0; round < 64 && !v->stop; round++) {
		bool progress = side_drain(v, &v->client);

		progress |= side_drain(v, &v->server);
		progress |= conv_move(v, &v->client, &v->server);
		if (!v->stop) {
			progress |= conv_move(v, &v->server, &v->client);
		}
		if (!progress) {
			break;
		}
	}
}

static uint8_t rec_type(const struct rec *r)
{
	return r->len >= VMC_MIGP_HEADER_LEN ? r->data[5] : 0;
}

/* Body of recorded frame i, checked to be of type. */
static json_object *rec_body(const struct conv *v, size_t i, uint8_t type)
{
	uint8_t got;
	json_object *o;

	ck_assert_uint_lt(i, v->nframes);
	o = frame_body(v->frames[i].data, v->frames[i].len, &got);
	ck_assert_msg(got == type, "frame %zu is %s, expected %s", i, vmc_migp_type_to_str(got),
		      vmc_migp_type_to_str(type));
	return o;
}

static const char *body_str(json_object *o, const char *key)
{
	json_object *v = json_object_object_get(o, key);

	ck_assert_msg(v != NULL, "no \"%s\"", key);
	return json_object_get_string(v);
}

/* The proofs of a recorded handshake (frames 0..2) are what the documented layout gives. */
static void proofs_check(const struct conv *v, const uint8_t *k)
{
	json_object *hello = rec_body(v, 0, VMC_MIGP_HELLO);
	json_object *challenge = rec_body(v, 1, VMC_MIGP_CHALLENGE);
	json_object *proof = rec_body(v, 2, VMC_MIGP_PROOF);
	uint8_t nc[32], ns[32], want[32];
	char hex[65];

	hex_to_bytes(body_str(hello, "nonce"), nc, 32);
	hex_to_bytes(body_str(challenge, "nonce"), ns, 32);
	proof_compute(k, "vmcm1 server", test_id, (int)v->channel, v->index, nc, ns, want);
	bytes_to_hex(want, 32, hex);
	ck_assert_str_eq(body_str(challenge, "proof"), hex);
	proof_compute(k, "vmcm1 client", test_id, (int)v->channel, v->index, nc, ns, want);
	bytes_to_hex(want, 32, hex);
	ck_assert_str_eq(body_str(proof, "proof"), hex);
	json_object_put(hello);
	json_object_put(challenge);
	json_object_put(proof);
}

/* ---- names, ids, keys, the codec ---- */

START_TEST(test_state_names_are_distinct)
{
	for (int a = 0; a < VMC_MIGP_STATE_COUNT; a++) {
		ck_assert_str_ne(vmc_migp_state_to_str(a), "invalid");
		for (int b = a + 1; b < VMC_MIGP_STATE_COUNT; b++) {
			ck_assert_str_ne(vmc_migp_state_to_str(a), vmc_migp_state_to_str(b));
		}
	}
	ck_assert_str_eq(vmc_migp_state_to_str(VMC_MIGP_STATE_COUNT), "invalid");
	ck_assert_str_eq(vmc_migp_type_to_str(VMC_MIGP_INVALID), "invalid");
	ck_assert_str_eq(vmc_migp_type_to_str(VMC_MIGP_TYPE_COUNT), "invalid");
	ck_assert_str_eq(vmc_migp_type_to_str(VMC_MIGP_CHALLENGE), "CHALLENGE");
}
END_TEST

START_TEST(test_ids)
{
	char a[VMC_MIGP_ID_LEN + 1], b[VMC_MIGP_ID_LEN + 1];

	ck_assert_int_eq(vmc_migp_new_id(a), 0);
	ck_assert_int_eq(vmc_migp_new_id(b), 0);
	ck_assert(vmc_migp_id_valid(a));
	ck_assert(vmc_migp_id_valid(b));
	ck_assert_str_ne(a, b);
	ck_assert(vmc_migp_id_valid(test_id));
	ck_assert(!vmc_migp_id_valid(NULL));
	ck_assert(!vmc_migp_id_valid(""));
	ck_assert(!vmc_migp_id_valid("00112233445566778899AABBCCDDEEFF"));
	ck_assert(!vmc_migp_id_valid("00112233445566778899aabbccddeef"));
	ck_assert(!vmc_migp_id_valid("00112233445566778899aabbccddeeff0"));
	ck_assert(!vmc_migp_id_valid("00112233445566778899aabbccddeefg"));
}
END_TEST

START_TEST(test_auth_key_is_the_documented_hmac)
{
	uint8_t want[32], got[32];

	hmac_label((const uint8_t *)cluster_key_a, strlen(cluster_key_a), "vmcluster-migrate auth v1",
		   NULL, 0, want);
	ck_assert_int_eq(vmc_migp_auth_key(cluster_key_a, strlen(cluster_key_a), got), 0);
	ck_assert_mem_eq(got, want, 32);
	ck_assert_mem_eq(key_a, want, 32);
	ck_assert(memcmp(key_a, key_b, 32) != 0);
	ck_assert_int_eq(vmc_migp_auth_key(cluster_key_a, 0, got), -EINVAL);
	ck_assert_int_eq(vmc_migp_auth_key(NULL, 4, got), -EINVAL);
}
END_TEST

START_TEST(test_client_new_refuses_bad_arguments)
{
	errno = 0;
	ck_assert_ptr_null(vmc_migp_client_new(key_a, "nope", VMC_MIGP_CONTROL, 0));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(vmc_migp_client_new(key_a, test_id, VMC_MIGP_CONTROL, 1));
	ck_assert_ptr_null(vmc_migp_client_new(key_a, test_id, VMC_MIGP_DATA, VMC_MIGP_CHANNELS_MAX));
	ck_assert_ptr_null(vmc_migp_client_new(key_a, test_id, (enum vmc_migp_channel)7, 0));
}
END_TEST

START_TEST(test_encode_writes_the_documented_header)
{
	json_object *o = json_parse("{\"a\":1}");
	uint8_t *buf = NULL;
	size_t len = 0;
	uint8_t type = 0;
	uint32_t length = 0;
	char err[ERR_LEN];
	static const uint8_t want[] = { 'V', 'M', 'C', 'M', 1, VMC_MIGP_OFFER, 0, 0, 0, 0, 0, 7 };

	ck_assert_int_eq(vmc_migp_frame_encode(VMC_MIGP_OFFER, o, &buf, &len), 0);
	ck_assert_uint_eq(len, 12 + 7);
	ck_assert_mem_eq(buf, want, 12);
	ck_assert_mem_eq(buf + 12, "{\"a\":1}", 7);
	ck_assert_int_eq(vmc_migp_header_decode(buf, &type, &length, err, sizeof(err)), 0);
	ck_assert_int_eq(type, VMC_MIGP_OFFER);
	ck_assert_uint_eq(length, 7);
	free(buf);
	ck_assert_int_eq(vmc_migp_frame_encode(0, o, &buf, &len), -EINVAL);
	ck_assert_int_eq(vmc_migp_frame_encode(VMC_MIGP_TYPE_COUNT, o, &buf, &len), -EINVAL);
	json_object_put(o);
	o = json_object_new_array();
	ck_assert_int_eq(vmc_migp_frame_encode(VMC_MIGP_OFFER, o, &buf, &len), -EINVAL);
	json_object_put(o);
	o = json_parse("{\"a\":\"x\\u0000y\"}");
	ck_assert_int_eq(vmc_migp_frame_encode(VMC_MIGP_OFFER, o, &buf, &len), -EINVAL);
	json_object_put(o);
}
END_TEST

static const struct header_case {
	const char *what;
	uint8_t hdr[VMC_MIGP_HEADER_LEN];
} bad_headers[] = {
	{ "magic", { 'V', 'M', 'C', 'L', 1, 1, 0, 0, 0, 0, 0, 2 } },
	{ "magic case", { 'v', 'M', 'C', 'M', 1, 1, 0, 0, 0, 0, 0, 2 } },
	{ "version 0", { 'V', 'M', 'C', 'M', 0, 1, 0, 0, 0, 0, 0, 2 } },
	{ "version 2", { 'V', 'M', 'C', 'M', 2, 1, 0, 0, 0, 0, 0, 2 } },
	{ "type 0", { 'V', 'M', 'C', 'M', 1, 0, 0, 0, 0, 0, 0, 2 } },
	{ "type 9", { 'V', 'M', 'C', 'M', 1, 9, 0, 0, 0, 0, 0, 2 } },
	{ "type 255", { 'V', 'M', 'C', 'M', 1, 255, 0, 0, 0, 0, 0, 2 } },
	{ "reserved 6", { 'V', 'M', 'C', 'M', 1, 1, 1, 0, 0, 0, 0, 2 } },
	{ "reserved 7", { 'V', 'M', 'C', 'M', 1, 1, 0, 0x80, 0, 0, 0, 2 } },
	{ "length 0", { 'V', 'M', 'C', 'M', 1, 1, 0, 0, 0, 0, 0, 0 } },
	{ "length 1", { 'V', 'M', 'C', 'M', 1, 1, 0, 0, 0, 0, 0, 1 } },
	{ "length max + 1", { 'V', 'M', 'C', 'M', 1, 1, 0, 0, 0, 0x10, 0, 1 } },
	{ "length 2^32 - 1", { 'V', 'M', 'C', 'M', 1, 1, 0, 0, 0xff, 0xff, 0xff, 0xff } },
};

START_TEST(test_header_decode_refuses)
{
	const struct header_case *h = &bad_headers[_i];
	char err[ERR_LEN] = "";
	uint8_t type = 77;
	uint32_t length = 77;

	ck_assert_int_eq(vmc_migp_header_decode(h->hdr, &type, &length, err, sizeof(err)), -EPROTO);
	ck_assert_msg(err[0] != '\0', "%s: no reason", h->what);
	ck_assert_int_eq(type, 77);
	ck_assert_uint_eq(length, 77);
}
END_TEST

START_TEST(test_header_decode_accepts_the_limits)
{
	uint8_t lo[] = { 'V', 'M', 'C', 'M', 1, VMC_MIGP_ERROR, 0, 0, 0, 0, 0, 2 };
	uint8_t hi[] = { 'V', 'M', 'C', 'M', 1, VMC_MIGP_HELLO, 0, 0, 0, 0x10, 0, 0 };
	uint8_t type;
	uint32_t length;

	ck_assert_int_eq(vmc_migp_header_decode(lo, &type, &length, NULL, 0), 0);
	ck_assert_uint_eq(length, 2);
	ck_assert_int_eq(vmc_migp_header_decode(hi, &type, &length, NULL, 0), 0);
	ck_assert_uint_eq(length, VMC_MIGP_PAYLOAD_MAX);
}
END_TEST

/* ---- whole conversations ---- */

static void round_trip_control(size_t chunk)
{
	struct conv v;
	json_object *want = json_parse(offer_body);

	conv_init(&v, VMC_MIGP_CONTROL, 0, key_a, key_a);
	v.chunk = chunk;
	conv_run(&v);
	ck_assert_int_eq(vmc_migp_state_get(v.client.m), VMC_MIGP_DONE);
	ck_assert_int_eq(vmc_migp_state_get(v.server.m), VMC_MIGP_DONE);
	ck_assert(!v.leftover);
	ck_assert_uint_eq(v.nframes, 7);
	static const uint8_t types[] = { VMC_MIGP_HELLO,   VMC_MIGP_CHALLENGE, VMC_MIGP_PROOF,
					 VMC_MIGP_WELCOME, VMC_MIGP_OFFER,     VMC_MIGP_ACCEPT,
					 VMC_MIGP_RECEIVED };
	for (size_t i = 0; i < ARRAY_LEN(types); i++) {
		ck_assert_int_eq(rec_type(&v.frames[i]), types[i]);
		ck_assert_int_eq(v.frames[i].from_client, i == 0 || i == 2 || i == 4);
	}
	ck_assert_uint_eq(v.client.events[VMC_MIGP_EV_AUTHED], 1);
	ck_assert_uint_eq(v.client.events[VMC_MIGP_EV_ACCEPTED], 1);
	ck_assert_uint_eq(v.client.events[VMC_MIGP_EV_RECEIVED], 1);
	ck_assert_uint_eq(v.client.events[VMC_MIGP_EV_FAILED], 0);
	ck_assert_uint_eq(v.server.events[VMC_MIGP_EV_HELLO], 1);
	ck_assert_uint_eq(v.server.events[VMC_MIGP_EV_AUTHED], 1);
	ck_assert_uint_eq(v.server.events[VMC_MIGP_EV_OFFER], 1);
	ck_assert_uint_eq(v.server.events[VMC_MIGP_EV_FAILED], 0);
	ck_assert_str_eq(v.server.hello.id, test_id);
	ck_assert_int_eq(v.server.hello.channel, VMC_MIGP_CONTROL);
	ck_assert_uint_eq(v.server.hello.index, 0);
	ck_assert_str_eq(v.server.offer_json,
			 json_object_to_json_string_ext(want, JSON_C_TO_STRING_PLAIN));
	ck_assert_int_eq(vmc_migp_version(v.client.m), 1);
	ck_assert_int_eq(vmc_migp_version(v.server.m), 1);
	ck_assert_uint_eq(vmc_migp_wanted(v.client.m), 0);
	ck_assert_uint_eq(vmc_migp_wanted(v.server.m), 0);
	output_none(v.client.m);
	output_none(v.server.m);
	ck_assert_int_eq(vmc_migp_feed(v.client.m, "x", 1), -ENOTCONN);
	ck_assert_int_eq(vmc_migp_abort(v.client.m, NULL, NULL), -ENOTCONN);
	/* EOF after DONE changes nothing. */
	vmc_migp_fail(v.client.m, VMC_MIGP_E_ABORTED, "eof");
	ck_assert_int_eq(vmc_migp_state_get(v.client.m), VMC_MIGP_DONE);
	events_none(v.client.m);
	proofs_check(&v, key_a);
	json_object_put(want);
	conv_free(&v);
}

START_TEST(test_round_trip_control)
{
	round_trip_control(0);
}
END_TEST

START_TEST(test_round_trip_control_byte_by_byte)
{
	round_trip_control(1);
}
END_TEST

/* The stream keys of a data channel handshake, recomputed from its frames. */
static void keys_expected(const struct conv *v, const uint8_t *k, int channel, uint32_t index,
			  bool client, struct vmc_migp_stream_keys *out)
{
	json_object *hello = rec_body(v, 0, VMC_MIGP_HELLO);
	json_object *challenge = rec_body(v, 1, VMC_MIGP_CHALLENGE);
	uint8_t nc[32], ns[32];

	hex_to_bytes(body_str(hello, "nonce"), nc, 32);
	hex_to_bytes(body_str(challenge, "nonce"), ns, 32);
	stream_keys_compute(k, test_id, channel, index, nc, ns, client, out);
	json_object_put(hello);
	json_object_put(challenge);
}

START_TEST(test_round_trip_data_channel)
{
	struct vmc_migp_stream_keys ck, sk, want, moved;
	struct conv v, w;

	conv_init(&v, VMC_MIGP_DATA, 3, key_a, key_a);
	ck_assert_int_eq(vmc_migp_stream_keys(v.client.m, &ck), -EINVAL);
	conv_run(&v);
	ck_assert_int_eq(vmc_migp_state_get(v.client.m), VMC_MIGP_AUTHED);
	ck_assert_int_eq(vmc_migp_state_get(v.server.m), VMC_MIGP_AUTHED);
	ck_assert(!v.leftover);
	ck_assert_uint_eq(v.nframes, 4);
	ck_assert_int_eq(v.server.hello.channel, VMC_MIGP_DATA);
	ck_assert_uint_eq(v.server.hello.index, 3);
	ck_assert_uint_eq(v.client.events[VMC_MIGP_EV_AUTHED], 1);
	ck_assert_uint_eq(v.server.events[VMC_MIGP_EV_AUTHED], 1);
	ck_assert_uint_eq(vmc_migp_wanted(v.client.m), 0);
	ck_assert_uint_eq(vmc_migp_wanted(v.server.m), 0);
	ck_assert_int_eq(vmc_migp_client_offer(v.client.m, json_parse(offer_body)), -EINVAL);
	proofs_check(&v, key_a);

	ck_assert_int_eq(vmc_migp_stream_keys(v.client.m, &ck), 0);
	ck_assert_int_eq(vmc_migp_stream_keys(v.server.m, &sk), 0);
	ck_assert_mem_eq(ck.tx_key, sk.rx_key, 32);
	ck_assert_mem_eq(ck.tx_salt, sk.rx_salt, 4);
	ck_assert_mem_eq(ck.rx_key, sk.tx_key, 32);
	ck_assert_mem_eq(ck.rx_salt, sk.tx_salt, 4);
	ck_assert(memcmp(ck.tx_key, ck.rx_key, 32) != 0);
	ck_assert(memcmp(ck.tx_salt, ck.rx_salt, 4) != 0);
	ck_assert(memcmp(ck.tx_key, key_a, 32) != 0);
	keys_expected(&v, key_a, 1, 3, true, &want);
	ck_assert_mem_eq(&ck, &want, sizeof(want));
	/* The same nonces under another index or channel give other keys. */
	keys_expected(&v, key_a, 1, 4, true, &moved);
	ck_assert(memcmp(moved.tx_key, want.tx_key, 32) != 0);
	keys_expected(&v, key_a, 0, 3, true, &moved);
	ck_assert(memcmp(moved.tx_key, want.tx_key, 32) != 0);

	/* Another channel of the same migration: other keys. */
	conv_init(&w, VMC_MIGP_DATA, 4, key_a, key_a);
	conv_run(&w);
	ck_assert_int_eq(vmc_migp_stream_keys(w.client.m, &moved), 0);
	ck_assert(memcmp(moved.tx_key, ck.tx_key, 32) != 0);
	ck_assert(memcmp(moved.rx_key, ck.rx_key, 32) != 0);
	conv_free(&w);

	ck_assert_int_eq(vmc_migp_abort(v.client.m, NULL, "bye"), 0);
	ck_assert_int_eq(vmc_migp_stream_keys(v.client.m, &ck), -EINVAL);
	conv_free(&v);
}
END_TEST

START_TEST(test_control_channel_keys_are_its_own)
{
	struct vmc_migp_stream_keys ck, sk, want;
	struct conv v;

	conv_init(&v, VMC_MIGP_CONTROL, 0, key_a, key_a);
	v.no_offer = true;
	conv_run(&v);
	ck_assert_int_eq(vmc_migp_state_get(v.client.m), VMC_MIGP_AUTHED);
	ck_assert_int_eq(vmc_migp_state_get(v.server.m), VMC_MIGP_AUTHED);
	ck_assert_int_eq(vmc_migp_stream_keys(v.client.m, &ck), 0);
	ck_assert_int_eq(vmc_migp_stream_keys(v.server.m, &sk), 0);
	ck_assert_mem_eq(ck.tx_key, sk.rx_key, 32);
	ck_assert_mem_eq(ck.rx_key, sk.tx_key, 32);
	keys_expected(&v, key_a, 0, 0, false, &want);
	ck_assert_mem_eq(&sk, &want, sizeof(want));
	conv_free(&v);
}
END_TEST

/* A blocking reader takes exactly the handshake: the QEMU stream behind it stays unread. */
START_TEST(test_wanted_never_reads_past_the_handshake)
{
	static const char stream[] = "QEVM\0\0\0\3 and the rest of the stream";
	struct vmc_migp *c = vmc_migp_client_new(key_a, test_id, VMC_MIGP_DATA, 0);
	struct vmc_migp *s = vmc_migp_server_new(key_a);
	uint8_t *p, *all;
	size_t len, used;

	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_nonnull(s);
	p = output_take(c, &len);
	all = malloc(len + sizeof(stream));
	memcpy(all, p, len);
	memcpy(all + len, stream, sizeof(stream));
	ck_assert_uint_eq(feed_wanted(s, all, len + sizeof(stream), 0), len);
	free(p);
	free(all);
	event_expect(s, VMC_MIGP_EV_HELLO);
	ck_assert_int_eq(vmc_migp_server_hello(s, true, NULL, NULL), 0);
	p = output_take(s, &len);
	ck_assert_uint_eq(feed_wanted(c, p, len, 0), len);
	free(p);
	p = output_take(c, &len);
	ck_assert_uint_eq(feed_wanted(s, p, len, 0), len);
	free(p);
	/* WELCOME, then the stream: the client takes the WELCOME only. */
	p = output_take(s, &len);
	all = malloc(len + sizeof(stream));
	memcpy(all, p, len);
	memcpy(all + len, stream, sizeof(stream));
	used = feed_wanted(c, all, len + sizeof(stream), 0);
	ck_assert_uint_eq(used, len);
	ck_assert_int_eq(vmc_migp_state_get(c), VMC_MIGP_AUTHED);
	ck_assert_int_eq(vmc_migp_feed(c, all + used, 1), -EINVAL);
	free(p);
	free(all);
	vmc_migp_free(c);
	vmc_migp_free(s);
}
END_TEST

/* ---- refusals ---- */

START_TEST(test_client_detects_a_server_with_another_key)
{
	struct conv v;

	conv_init(&v, VMC_MIGP_CONTROL, 0, key_a, key_b);
	conv_run(&v);
	ck_assert_int_eq(vmc_migp_state_get(v.client.m), VMC_MIGP_FAILED);
	ck_assert_str_eq(v.client.failed.code, VMC_MIGP_E_AUTH);
	ck_assert(!v.client.failed.from_peer);
	ck_assert_int_eq(v.client.max, VMC_MIGP_HELLO_SENT);
	/* The client told the server, and never sent a proof of its own. */
	ck_assert_int_eq(vmc_migp_state_get(v.server.m), VMC_MIGP_FAILED);
	ck_assert_str_eq(v.server.failed.code, VMC_MIGP_E_AUTH);
	ck_assert(v.server.failed.from_peer);
	ck_assert_int_eq(v.server.max, VMC_MIGP_CHALLENGED);
	ck_assert_uint_eq(v.nframes, 3);
	ck_assert_int_eq(rec_type(&v.frames[2]), VMC_MIGP_ERROR);
	for (size_t i = 0; i < v.nframes; i++) {
		ck_assert_int_ne(rec_type(&v.frames[i]), VMC_MIGP_PROOF);
	}
	ck_assert_uint_eq(v.client.events[VMC_MIGP_EV_AUTHED] + v.server.events[VMC_MIGP_EV_AUTHED],
			  0);
	conv_free(&v);
}
END_TEST

/* A client of our making: a HELLO with nonce nc, then the server's CHALLENGE body. */
static json_object *rogue_hello(struct vmc_migp *s, const char *id, const uint8_t nc[32])
{
	char hex[65], json[512];
	uint8_t type;
	json_object *challenge;

	bytes_to_hex(nc, 32, hex);
	snprintf(json, sizeof(json),
		 "{\"proto_min\":1,\"proto_max\":1,\"id\":\"%s\",\"channel\":\"control\","
		 "\"index\":0,\"nonce\":\"%s\"}",
		 id, hex);
	feed_text(s, VMC_MIGP_HELLO, json);
	ck_assert_int_eq(vmc_migp_state_get(s), VMC_MIGP_HELLO_RECEIVED);
	event_expect(s, VMC_MIGP_EV_HELLO);
	ck_assert_int_eq(vmc_migp_server_hello(s, true, NULL, NULL), 0);
	ck_assert_int_eq(vmc_migp_state_get(s), VMC_MIGP_CHALLENGED);
	challenge = output_frame(s, &type);
	ck_assert_int_eq(type, VMC_MIGP_CHALLENGE);
	return challenge;
}

static void rogue_proof(struct vmc_migp *s, const uint8_t *k, const uint8_t nc[32],
			json_object *challenge)
{
	uint8_t ns[32], proof[32], want_s[32];
	char hex[65], json[128];

	hex_to_bytes(body_str(challenge, "nonce"), ns, 32);
	proof_compute(key_a, "vmcm1 server", test_id, 0, 0, nc, ns, want_s);
	bytes_to_hex(want_s, 32, hex);
	ck_assert_str_eq(body_str(challenge, "proof"), hex);
	proof_compute(k, "vmcm1 client", test_id, 0, 0, nc, ns, proof);
	bytes_to_hex(proof, 32, hex);
	snprintf(json, sizeof(json), "{\"proof\":\"%s\"}", hex);
	feed_text(s, VMC_MIGP_PROOF, json);
}

START_TEST(test_server_detects_a_client_with_another_key)
{
	struct vmc_migp *s = vmc_migp_server_new(key_a);
	uint8_t nc[32];
	json_object *challenge;
	char *reason;

	memset(nc, 0x5a, sizeof(nc));
	challenge = rogue_hello(s, test_id, nc);
	rogue_proof(s, key_b, nc, challenge);
	failed_expect(s, VMC_MIGP_E_AUTH, false);
	reason = error_sent_expect(s, VMC_MIGP_E_AUTH);
	free(reason);
	json_object_put(challenge);
	vmc_migp_free(s);
}
END_TEST

START_TEST(test_server_welcomes_a_client_computing_the_documented_proof)
{
	struct vmc_migp *s = vmc_migp_server_new(key_a);
	uint8_t nc[32], type;
	json_object *challenge, *welcome;

	memset(nc, 0xa5, sizeof(nc));
	challenge = rogue_hello(s, test_id, nc);
	rogue_proof(s, key_a, nc, challenge);
	ck_assert_int_eq(vmc_migp_state_get(s), VMC_MIGP_AUTHED);
	event_expect(s, VMC_MIGP_EV_AUTHED);
	welcome = output_frame(s, &type);
	ck_assert_int_eq(type, VMC_MIGP_WELCOME);
	ck_assert_int_eq(json_object_object_length(welcome), 0);
	json_object_put(welcome);
	json_object_put(challenge);
	vmc_migp_free(s);
}
END_TEST

START_TEST(test_replayed_handshake_is_refused)
{
	struct vmc_migp *s2 = vmc_migp_server_new(key_a);
	struct conv v;
	uint8_t type;
	json_object *challenge;
	char *reason;

	conv_init(&v, VMC_MIGP_CONTROL, 0, key_a, key_a);
	conv_run(&v);
	ck_assert_int_eq(vmc_migp_state_get(v.server.m), VMC_MIGP_DONE);
	/* The recorded HELLO and PROOF, played to a fresh server. */
	ck_assert_uint_eq(feed_wanted(s2, v.frames[0].data, v.frames[0].len, 0), v.frames[0].len);
	event_expect(s2, VMC_MIGP_EV_HELLO);
	ck_assert_int_eq(vmc_migp_server_hello(s2, true, NULL, NULL), 0);
	challenge = output_frame(s2, &type);
	ck_assert_int_eq(type, VMC_MIGP_CHALLENGE);
	ck_assert_int_eq(rec_type(&v.frames[2]), VMC_MIGP_PROOF);
	ck_assert_uint_eq(feed_wanted(s2, v.frames[2].data, v.frames[2].len, 0), v.frames[2].len);
	failed_expect(s2, VMC_MIGP_E_AUTH, false);
	reason = error_sent_expect(s2, VMC_MIGP_E_AUTH);
	free(reason);
	ck_assert_int_eq(vmc_migp_stream_keys(s2, &(struct vmc_migp_stream_keys){ 0 }), -EINVAL);
	json_object_put(challenge);
	vmc_migp_free(s2);
	conv_free(&v);
}
END_TEST

static void hello_refused(const char *code)
{
	struct conv v;

	conv_init(&v, VMC_MIGP_DATA, 2, key_a, key_a);
	v.hello_refuse = true;
	v.hello_code = code;
	conv_run(&v);
	ck_assert_str_eq(v.server.hello.id, test_id);
	ck_assert_int_eq(v.server.hello.channel, VMC_MIGP_DATA);
	ck_assert_uint_eq(v.server.hello.index, 2);
	ck_assert_int_eq(vmc_migp_state_get(v.server.m), VMC_MIGP_FAILED);
	ck_assert_str_eq(v.server.failed.code, code);
	ck_assert(!v.server.failed.from_peer);
	ck_assert_int_eq(vmc_migp_state_get(v.client.m), VMC_MIGP_FAILED);
	ck_assert_str_eq(v.client.failed.code, code);
	ck_assert_str_eq(v.client.failed.reason, "no such migration");
	ck_assert(v.client.failed.from_peer);
	ck_assert_uint_eq(v.nframes, 2);
	ck_assert_int_eq(rec_type(&v.frames[1]), VMC_MIGP_ERROR);
	conv_free(&v);
}

START_TEST(test_unknown_id_is_refused)
{
	hello_refused(VMC_MIGP_E_UNKNOWN_ID);
}
END_TEST

START_TEST(test_used_id_is_refused)
{
	hello_refused(VMC_MIGP_E_ID_USED);
}
END_TEST

START_TEST(test_server_hello_refusal_code_defaults_to_unknown_id)
{
	struct vmc_migp *s = vmc_migp_server_new(key_a);
	uint8_t nc[32] = { 0 };
	char hex[65], json[512], *reason;

	bytes_to_hex(nc, 32, hex);
	snprintf(json, sizeof(json),
		 "{\"proto_min\":1,\"proto_max\":1,\"id\":\"%s\",\"channel\":\"control\","
		 "\"index\":0,\"nonce\":\"%s\"}",
		 other_id, hex);
	ck_assert_int_eq(vmc_migp_server_hello(s, true, NULL, NULL), -EINVAL);
	feed_text(s, VMC_MIGP_HELLO, json);
	ck_assert_str_eq(event_expect(s, VMC_MIGP_EV_HELLO).id, other_id);
	ck_assert_int_eq(vmc_migp_server_hello(s, false, NULL, NULL), 0);
	failed_expect(s, VMC_MIGP_E_UNKNOWN_ID, false);
	reason = error_sent_expect(s, VMC_MIGP_E_UNKNOWN_ID);
	free(reason);
	ck_assert_int_eq(vmc_migp_server_hello(s, true, NULL, NULL), -ENOTCONN);
	vmc_migp_free(s);
}
END_TEST

static char *hello_text(int pmin, int pmax)
{
	char *json = NULL;

	ck_assert_int_ge(asprintf(&json,
				  "{\"proto_min\":%d,\"proto_max\":%d,\"id\":\"%s\",\"channel\":"
				  "\"control\",\"index\":0,\"nonce\":\"%064d\"}",
				  pmin, pmax, test_id, 0),
			 0);
	return json;
}

START_TEST(test_server_refuses_versions_it_does_not_speak)
{
	struct vmc_migp *s = vmc_migp_server_new(key_a);
	char *json = hello_text(2, 5);
	struct vmc_migp_event ev;
	char *reason;

	feed_text(s, VMC_MIGP_HELLO, json);
	ev = failed_expect(s, VMC_MIGP_E_VERSION, false);
	ck_assert_ptr_nonnull(strstr(ev.reason, "2..5"));
	ck_assert_ptr_nonnull(strstr(ev.reason, "1..1"));
	reason = error_sent_expect(s, VMC_MIGP_E_VERSION);
	ck_assert_ptr_nonnull(strstr(reason, "2..5"));
	ck_assert_ptr_nonnull(strstr(reason, "1..1"));
	ck_assert_int_eq(vmc_migp_version(s), 0);
	free(reason);
	free(json);
	vmc_migp_free(s);
}
END_TEST

START_TEST(test_server_answers_the_highest_common_version)
{
	struct vmc_migp *s = vmc_migp_server_new(key_a);
	char *json = hello_text(1, 1000);
	uint8_t type;
	json_object *challenge;

	feed_text(s, VMC_MIGP_HELLO, json);
	event_expect(s, VMC_MIGP_EV_HELLO);
	ck_assert_int_eq(vmc_migp_version(s), 0);
	ck_assert_int_eq(vmc_migp_server_hello(s, true, NULL, NULL), 0);
	ck_assert_int_eq(vmc_migp_version(s), VMC_MIGP_PROTO_MAX);
	challenge = output_frame(s, &type);
	ck_assert_int_eq(json_object_get_int(json_object_object_get(challenge, "proto")),
			 VMC_MIGP_PROTO_MAX);
	json_object_put(challenge);
	free(json);
	vmc_migp_free(s);
}
END_TEST

/* Ranges that are not ranges of versions: malformed, not a version mismatch. */
static const int bad_ranges[][2] = { { 0, 1 }, { 2, 1 }, { -1, 1 }, { 1, 0 } };

START_TEST(test_server_refuses_malformed_ranges)
{
	struct vmc_migp *s = vmc_migp_server_new(key_a);
	char *json = hello_text(bad_ranges[_i][0], bad_ranges[_i][1]);

	feed_text(s, VMC_MIGP_HELLO, json);
	failed_expect(s, VMC_MIGP_E_PROTOCOL, false);
	free(error_sent_expect(s, VMC_MIGP_E_PROTOCOL));
	free(json);
	vmc_migp_free(s);
}
END_TEST

/* A CHALLENGE to the client with this proto and, but for that, a valid proof. */
static void client_challenged(struct vmc_migp *c, int proto)
{
	uint8_t type, nc[32], ns[32], s_proof[32];
	json_object *hello = output_frame(c, &type);
	char ns_hex[65], proof_hex[65], json[256];

	hex_to_bytes(body_str(hello, "nonce"), nc, 32);
	memset(ns, 0x77, sizeof(ns));
	proof_compute(key_a, "vmcm1 server", test_id, 0, 0, nc, ns, s_proof);
	bytes_to_hex(ns, 32, ns_hex);
	bytes_to_hex(s_proof, 32, proof_hex);
	snprintf(json, sizeof(json), "{\"proto\":%d,\"nonce\":\"%s\",\"proof\":\"%s\"}", proto,
		 ns_hex, proof_hex);
	feed_text(c, VMC_MIGP_CHALLENGE, json);
	json_object_put(hello);
}

START_TEST(test_client_refuses_a_version_it_did_not_offer)
{
	static const int protos[] = { 0, 2, 1000 };
	struct vmc_migp *c = vmc_migp_client_new(key_a, test_id, VMC_MIGP_CONTROL, 0);
	struct vmc_migp_event ev;

	client_challenged(c, protos[_i]);
	ev = failed_expect(c, protos[_i] == 0 ? VMC_MIGP_E_PROTOCOL : VMC_MIGP_E_VERSION, false);
	ck_assert(ev.reason[0] != '\0');
	free(error_sent_expect(c, ev.code));
	ck_assert_int_eq(vmc_migp_version(c), 0);
	vmc_migp_free(c);
}
END_TEST

START_TEST(test_client_takes_a_valid_challenge)
{
	struct vmc_migp *c = vmc_migp_client_new(key_a, test_id, VMC_MIGP_CONTROL, 0);
	uint8_t type;
	json_object *proof;

	client_challenged(c, 1);
	ck_assert_int_eq(vmc_migp_state_get(c), VMC_MIGP_PROOF_SENT);
	ck_assert_int_eq(vmc_migp_version(c), 1);
	events_none(c);
	proof = output_frame(c, &type);
	ck_assert_int_eq(type, VMC_MIGP_PROOF);
	json_object_put(proof);
	vmc_migp_free(c);
}
END_TEST

/* Every type but the ones a state takes is refused from the header alone. */
START_TEST(test_unexpected_frame_types_are_refused_from_the_header)
{
	uint8_t type = (uint8_t)_i;
	struct vmc_migp *s = vmc_migp_server_new(key_a);
	struct vmc_migp *c = vmc_migp_client_new(key_a, test_id, VMC_MIGP_CONTROL, 0);
	uint8_t hdr[] = { 'V', 'M', 'C', 'M', 1, type, 0, 0, 0, 0, 0, 2 };
	bool server_takes = type == VMC_MIGP_HELLO || type == VMC_MIGP_ERROR;
	bool client_takes = type == VMC_MIGP_CHALLENGE || type == VMC_MIGP_ERROR;
	struct vmc_migp_event ev;
	size_t len;

	free(output_take(c, &len));
	ck_assert_int_eq(vmc_migp_feed(s, hdr, sizeof(hdr)), server_takes ? 0 : -EPROTO);
	if (!server_takes) {
		ev = failed_expect(s, VMC_MIGP_E_PROTOCOL, false);
		ck_assert_ptr_nonnull(strstr(ev.reason, vmc_migp_type_to_str(type)));
		ck_assert_ptr_nonnull(strstr(ev.reason, "start"));
		ck_assert_uint_eq(vmc_migp_wanted(s), 0);
		free(error_sent_expect(s, VMC_MIGP_E_PROTOCOL));
	} else {
		ck_assert_uint_eq(vmc_migp_wanted(s), 2);
	}
	ck_assert_int_eq(vmc_migp_feed(c, hdr, sizeof(hdr)), client_takes ? 0 : -EPROTO);
	if (!client_takes) {
		failed_expect(c, VMC_MIGP_E_PROTOCOL, false);
		free(error_sent_expect(c, VMC_MIGP_E_PROTOCOL));
	}
	vmc_migp_free(s);
	vmc_migp_free(c);
}
END_TEST

START_TEST(test_unexpected_frame_later_in_the_conversation)
{
	struct conv v;
	size_t len;
	uint8_t *f = frame_text(VMC_MIGP_HELLO, "{}", &len);

	/* A second HELLO to a server that is waiting for the PROOF. */
	conv_init(&v, VMC_MIGP_CONTROL, 0, key_a, key_a);
	v.hook = HOOK_CUT;
	v.hook_frame = 2;
	v.hook_byte = 0;
	conv_run(&v);
	ck_assert_int_eq(vmc_migp_state_get(v.server.m), VMC_MIGP_CHALLENGED);
	feed_wanted(v.server.m, f, len, 0);
	failed_expect(v.server.m, VMC_MIGP_E_PROTOCOL, false);
	free(error_sent_expect(v.server.m, VMC_MIGP_E_PROTOCOL));
	free(f);
	conv_free(&v);
}
END_TEST

START_TEST(test_oversized_length_is_refused_from_the_header)
{
	struct vmc_migp *s = vmc_migp_server_new(key_a);
	struct vmc_migp *t = vmc_migp_server_new(key_a);
	uint32_t n = VMC_MIGP_PAYLOAD_MAX + 1;
	uint8_t hdr[] = { 'V', 'M', 'C', 'M', 1, VMC_MIGP_HELLO, 0, 0,
			  (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n };

	ck_assert_int_eq(vmc_migp_feed(s, hdr, sizeof(hdr)), -EPROTO);
	failed_expect(s, VMC_MIGP_E_PROTOCOL, false);
	ck_assert_uint_eq(vmc_migp_wanted(s), 0);
	free(error_sent_expect(s, VMC_MIGP_E_PROTOCOL));
	/* The largest length is taken, and asked for exactly. */
	n = VMC_MIGP_PAYLOAD_MAX;
	hdr[8] = (uint8_t)(n >> 24);
	hdr[9] = (uint8_t)(n >> 16);
	hdr[10] = (uint8_t)(n >> 8);
	hdr[11] = (uint8_t)n;
	ck_assert_int_eq(vmc_migp_feed(t, hdr, sizeof(hdr)), 0);
	ck_assert_uint_eq(vmc_migp_wanted(t), VMC_MIGP_PAYLOAD_MAX);
	vmc_migp_fail(t, VMC_MIGP_E_TIMEOUT, "no payload");
	failed_expect(t, VMC_MIGP_E_TIMEOUT, false);
	output_none(t);
	vmc_migp_free(s);
	vmc_migp_free(t);
}
END_TEST

START_TEST(test_feeding_more_than_wanted_is_refused)
{
	struct vmc_migp *s = vmc_migp_server_new(key_a);
	char *json = hello_text(1, 1);
	size_t len;
	uint8_t *f = frame_text(VMC_MIGP_HELLO, json, &len);

	ck_assert_int_eq(vmc_migp_feed(s, f, 0), 0);
	ck_assert_int_eq(vmc_migp_feed(s, f, VMC_MIGP_HEADER_LEN + 1), -EINVAL);
	ck_assert_int_eq(vmc_migp_state_get(s), VMC_MIGP_START);
	ck_assert_uint_eq(vmc_migp_wanted(s), VMC_MIGP_HEADER_LEN);
	ck_assert_int_eq(vmc_migp_feed(s, f, 5), 0);
	ck_assert_uint_eq(vmc_migp_wanted(s), VMC_MIGP_HEADER_LEN - 5);
	ck_assert_int_eq(vmc_migp_feed(s, f + 5, VMC_MIGP_HEADER_LEN - 4), -EINVAL);
	ck_assert_int_eq(vmc_migp_feed(s, f + 5, VMC_MIGP_HEADER_LEN - 5), 0);
	ck_assert_uint_eq(vmc_migp_wanted(s), len - VMC_MIGP_HEADER_LEN);
	ck_assert_int_eq(vmc_migp_feed(s, f + VMC_MIGP_HEADER_LEN, len - VMC_MIGP_HEADER_LEN + 1),
			 -EINVAL);
	ck_assert_int_eq(vmc_migp_feed(s, f + VMC_MIGP_HEADER_LEN, len - VMC_MIGP_HEADER_LEN), 0);
	ck_assert_int_eq(vmc_migp_state_get(s), VMC_MIGP_HELLO_RECEIVED);
	/* Waiting for its caller, it takes nothing. */
	ck_assert_uint_eq(vmc_migp_wanted(s), 0);
	ck_assert_int_eq(vmc_migp_feed(s, f, 1), -EINVAL);
	ck_assert_int_eq(vmc_migp_server_hello(s, false, NULL, NULL), 0);
	ck_assert_int_eq(vmc_migp_feed(s, f, 1), -ENOTCONN);
	free(f);
	free(json);
	vmc_migp_free(s);
}
END_TEST

START_TEST(test_peer_error_carries_code_and_reason)
{
	struct vmc_migp *c = vmc_migp_client_new(key_a, test_id, VMC_MIGP_CONTROL, 0);
	struct vmc_migp_event ev;

	free(output_take(c, &(size_t){ 0 }));
	feed_text(c, VMC_MIGP_ERROR, "{\"code\":\"refused\",\"reason\":\"pool full on node2\"}");
	ev = failed_expect(c, VMC_MIGP_E_REFUSED, true);
	ck_assert_str_eq(ev.reason, "pool full on node2");
	/* Not answered. */
	output_none(c);
	vmc_migp_free(c);
}
END_TEST

START_TEST(test_peer_error_is_sanitized)
{
	struct vmc_migp *s = vmc_migp_server_new(key_a);
	struct vmc_migp_event ev;
	char json[4096], reason[2000];
	size_t n;

	memset(reason, 'r', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	memcpy(reason, "line one\\nline two\\t\\u0001\\u00e9\\\"", 34);
	snprintf(json, sizeof(json),
		 "{\"code\":\"a-code-that-is-far-longer-than-any-code\\n\",\"reason\":\"%s\"}",
		 reason);
	feed_text(s, VMC_MIGP_ERROR, json);
	ev = failed_expect(s, "a-code-that-is-far-long", true);
	n = strlen(ev.reason);
	ck_assert_uint_eq(n, sizeof(ev.reason) - 1);
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(ev.reason[i] >= 0x20 && ev.reason[i] < 0x7f, "byte %zu is %#x", i,
			      (unsigned char)ev.reason[i]);
	}
	ck_assert(strncmp(ev.reason, "line one?line two????\"rrr", 25) == 0);
	output_none(s);
	vmc_migp_free(s);
}
END_TEST

START_TEST(test_malformed_error_is_not_answered)
{
	struct vmc_migp *s = vmc_migp_server_new(key_a);

	feed_text(s, VMC_MIGP_ERROR, "{\"code\":\"auth\"}");
	failed_expect(s, VMC_MIGP_E_PROTOCOL, false);
	output_none(s);
	vmc_migp_free(s);
}
END_TEST

/* Payloads a HELLO must not get past: each fails the server with "protocol". */
#define Q(x) "\"" x "\""
#define HELLO_ID Q("00112233445566778899aabbccddeeff")
#define HELLO_NONCE Q("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
/* A HELLO with these JSON values. */
#define HELLO_OF(pmin, pmax, id, channel, index, nonce)                                       \
	"{\"proto_min\":" pmin ",\"proto_max\":" pmax ",\"id\":" id ",\"channel\":" channel \
	",\"index\":" index ",\"nonce\":" nonce "}"
#define HELLO_ID_IS(id) HELLO_OF("1", "1", id, Q("control"), "0", HELLO_NONCE)
#define HELLO_NONCE_IS(nonce) HELLO_OF("1", "1", HELLO_ID, Q("control"), "0", nonce)
#define HELLO_INDEX_IS(channel, index) HELLO_OF("1", "1", HELLO_ID, channel, index, HELLO_NONCE)
#define HELLO_PROTO_IS(pmin, pmax) HELLO_OF(pmin, pmax, HELLO_ID, Q("control"), "0", HELLO_NONCE)
#define HELLO_OK HELLO_PROTO_IS("1", "1")
/* A valid HELLO that opens with this member. */
#define HELLO_AFTER(member) \
	"{" member ",\"proto_min\":1,\"proto_max\":1,\"id\":" HELLO_ID ",\"channel\":\"control\"," \
	"\"index\":0,\"nonce\":" HELLO_NONCE "}"
#define DEEP_36 "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
#define DEEP_36_END "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"

static const struct payload_case {
	const char *what;
	const char *payload;
	size_t len; /* 0: strlen */
} bad_hello_payloads[] = {
	{ "trailing space", HELLO_OK " ", 0 },
	{ "trailing newline", HELLO_OK "\n", 0 },
	{ "trailing text", HELLO_OK "x", 0 },
	{ "two objects", HELLO_OK "{}", 0 },
	{ "leading space", " " HELLO_OK, 0 },
	{ "raw NUL in a string", HELLO_AFTER("\"x\":\"a\0b\""),
	  sizeof(HELLO_AFTER("\"x\":\"a\0b\"")) - 1 },
	{ "raw NUL at the end", HELLO_OK "\0", sizeof(HELLO_OK) },
	{ "\\u0000 in a value", HELLO_AFTER("\"x\":\"a\\u0000b\""), 0 },
	{ "\\u0000 in a key", HELLO_AFTER("\"proto_min\\u0000x\":1"), 0 },
	{ "invalid UTF-8", HELLO_AFTER("\"x\":\"\xff\xfe\""), 0 },
	{ "too deep", HELLO_AFTER("\"x\":" DEEP_36 DEEP_36 DEEP_36_END DEEP_36_END), 0 },
	{ "NaN", HELLO_AFTER("\"x\":NaN"), 0 },
	{ "Infinity", HELLO_AFTER("\"x\":[-Infinity]"), 0 },
	{ "raw tab in a string", HELLO_AFTER("\"x\":\"a\tb\""), 0 },
	{ "raw newline in a string", HELLO_AFTER("\"x\":\"a\nb\""), 0 },
	{ "single-quoted value", HELLO_AFTER("\"x\":'a'"), 0 },
	{ "single-quoted key", HELLO_AFTER("'x':1"), 0 },
	{ "comment", HELLO_AFTER("/* c */\"x\":1"), 0 },
	{ "double comma", HELLO_PROTO_IS("1", "1,"), 0 },
	{ "trailing comma", "{\"proto_min\":1,\"proto_max\":1,\"id\":" HELLO_ID ",\"channel\":"
			    "\"control\",\"index\":0,\"nonce\":" HELLO_NONCE ",}", 0 },
	{ "an array", "[1,2]", 0 },
	{ "a string", "\"hello\"", 0 },
	{ "cut short", "{\"proto_min\":1", 0 },
	{ "empty object", "{}", 0 },
	{ "no nonce", "{\"proto_min\":1,\"proto_max\":1,\"id\":" HELLO_ID ",\"channel\":\"control\","
		      "\"index\":0}", 0 },
	{ "id uppercase", HELLO_ID_IS(Q("00112233445566778899AABBCCDDEEFF")), 0 },
	{ "id short", HELLO_ID_IS(Q("00112233445566778899aabbccddeef")), 0 },
	{ "id not hex", HELLO_ID_IS(Q("00112233445566778899aabbccddeefg")), 0 },
	{ "id a number", HELLO_ID_IS("1"), 0 },
	{ "nonce short", HELLO_NONCE_IS(Q("0123456789abcdef0123456789abcdef"
					  "0123456789abcdef0123456789abcde")), 0 },
	{ "nonce long", HELLO_NONCE_IS(Q("0123456789abcdef0123456789abcdef"
					 "0123456789abcdef0123456789abcdef0")), 0 },
	{ "nonce uppercase", HELLO_NONCE_IS(Q("0123456789ABCDEF0123456789abcdef"
					      "0123456789abcdef0123456789abcdef")), 0 },
	{ "nonce an array", HELLO_NONCE_IS("[]"), 0 },
	{ "channel case", HELLO_INDEX_IS(Q("Control"), "0"), 0 },
	{ "channel a number", HELLO_INDEX_IS("0", "0"), 0 },
	{ "index 1 on control", HELLO_INDEX_IS(Q("control"), "1"), 0 },
	{ "index 16 on data", HELLO_INDEX_IS(Q("data"), "16"), 0 },
	{ "index -1", HELLO_INDEX_IS(Q("data"), "-1"), 0 },
	{ "index a double", HELLO_INDEX_IS(Q("data"), "0.0"), 0 },
	{ "index a string", HELLO_INDEX_IS(Q("data"), Q("0")), 0 },
	{ "index null", HELLO_INDEX_IS(Q("data"), "null"), 0 },
	{ "proto a double", HELLO_PROTO_IS("1.0", "1"), 0 },
	{ "proto a string", HELLO_PROTO_IS(Q("1"), "1"), 0 },
	{ "proto a bool", HELLO_PROTO_IS("true", "1"), 0 },
	{ "proto too big", HELLO_PROTO_IS("1", "2147483648"), 0 },
	{ "proto huge", HELLO_PROTO_IS("1", "99999999999999999999999"), 0 },
};

START_TEST(test_hello_payload_refused)
{
	const struct payload_case *p = &bad_hello_payloads[_i];
	struct vmc_migp *s = vmc_migp_server_new(key_a);
	size_t n = p->len != 0 ? p->len : strlen(p->payload);
	size_t len;
	uint8_t *f = frame_raw(VMC_MIGP_HELLO, p->payload, n, &len);
	struct vmc_migp_event ev;

	feed_wanted(s, f, len, 0);
	ck_assert_msg(vmc_migp_state_get(s) == VMC_MIGP_FAILED, "%s: state %s", p->what,
		      vmc_migp_state_to_str(vmc_migp_state_get(s)));
	ev = failed_expect(s, VMC_MIGP_E_PROTOCOL, false);
	ck_assert_msg(ev.reason[0] != '\0', "%s: no reason", p->what);
	free(error_sent_expect(s, VMC_MIGP_E_PROTOCOL));
	free(f);
	vmc_migp_free(s);
}
END_TEST

START_TEST(test_hello_payload_accepted)
{
	static const char *const good[] = {
		HELLO_OK,
		HELLO_AFTER("\"later\":{\"added\":[1,2,{\"x\":null}]}"),
		HELLO_INDEX_IS(Q("data"), "15"),
		HELLO_AFTER("\"x\":\"\\u00e9\\\\u0000 it's \\\"quoted\\\"\""),
		HELLO_AFTER("\"x\":" DEEP_36 DEEP_36_END),
	};
	struct vmc_migp *s = vmc_migp_server_new(key_a);

	feed_text(s, VMC_MIGP_HELLO, good[_i]);
	ck_assert_msg(vmc_migp_state_get(s) == VMC_MIGP_HELLO_RECEIVED, "%s", good[_i]);
	event_expect(s, VMC_MIGP_EV_HELLO);
	vmc_migp_free(s);
}
END_TEST

/* A control pair, both AUTHED, the client not offering yet. */
static void authed_pair(struct conv *v)
{
	conv_init(v, VMC_MIGP_CONTROL, 0, key_a, key_a);
	v->no_offer = true;
	conv_run(v);
	ck_assert_int_eq(vmc_migp_state_get(v->client.m), VMC_MIGP_AUTHED);
	ck_assert_int_eq(vmc_migp_state_get(v->server.m), VMC_MIGP_AUTHED);
	ck_assert_uint_eq(vmc_migp_wanted(v->client.m), 0);
	ck_assert_uint_eq(vmc_migp_wanted(v->server.m), VMC_MIGP_HEADER_LEN);
}

static const char *const bad_offers[] = {
	"{\"mode\":\"live\",\"encrypt\":true,\"channels\":2,\"source\":\"n1\"}",
	"{\"definition\":[],\"mode\":\"live\",\"encrypt\":true,\"channels\":2,\"source\":\"n1\"}",
	"{\"definition\":{},\"mode\":\"slow\",\"encrypt\":true,\"channels\":2,\"source\":\"n1\"}",
	"{\"definition\":{},\"mode\":\"live\",\"encrypt\":1,\"channels\":2,\"source\":\"n1\"}",
	"{\"definition\":{},\"mode\":\"live\",\"encrypt\":true,\"channels\":0,\"source\":\"n1\"}",
	"{\"definition\":{},\"mode\":\"live\",\"encrypt\":true,\"channels\":17,\"source\":\"n1\"}",
	"{\"definition\":{},\"mode\":\"live\",\"encrypt\":true,\"channels\":2,\"source\":7}",
	"{\"definition\":{},\"mode\":\"live\",\"encrypt\":true,\"channels\":2}",
	"{\"definition\":{\"name\":\"a\\u0000b\"},\"mode\":\"live\",\"encrypt\":true,"
	"\"channels\":2,\"source\":\"n1\"}",
};

START_TEST(test_offer_refused_by_the_server)
{
	struct conv v;

	authed_pair(&v);
	feed_text(v.server.m, VMC_MIGP_OFFER, bad_offers[_i]);
	failed_expect(v.server.m, VMC_MIGP_E_PROTOCOL, false);
	free(error_sent_expect(v.server.m, VMC_MIGP_E_PROTOCOL));
	conv_free(&v);
}
END_TEST

START_TEST(test_offer_refused_by_the_client)
{
	struct conv v;
	json_object *deep = json_parse(offer_body);
	json_object *def = json_object_object_get(deep, "definition");

	authed_pair(&v);
	ck_assert_int_eq(vmc_migp_client_offer(v.client.m, json_parse(bad_offers[_i])), -EINVAL);
	ck_assert_int_eq(vmc_migp_state_get(v.client.m), VMC_MIGP_AUTHED);
	output_none(v.client.m);
	ck_assert_int_eq(vmc_migp_client_offer(v.client.m, NULL), -EINVAL);
	/* Nesting the server would refuse. */
	for (int i = 0; i < VMC_MIGP_JSON_DEPTH_MAX + 4; i++) {
		json_object *inner = json_object_new_object();

		json_object_object_add(def, "n", inner);
		def = inner;
	}
	ck_assert_int_eq(vmc_migp_client_offer(v.client.m, deep), -EINVAL);
	ck_assert_int_eq(vmc_migp_state_get(v.client.m), VMC_MIGP_AUTHED);
	ck_assert_int_eq(vmc_migp_client_offer(v.client.m, json_parse(offer_body)), 0);
	ck_assert_int_eq(vmc_migp_state_get(v.client.m), VMC_MIGP_OFFERED);
	ck_assert_uint_eq(vmc_migp_wanted(v.client.m), VMC_MIGP_HEADER_LEN);
	conv_free(&v);
}
END_TEST

START_TEST(test_server_refuses_the_offer)
{
	struct conv v;
	struct vmc_migp_event ev;
	uint8_t *p;
	size_t len;

	authed_pair(&v);
	ck_assert_int_eq(vmc_migp_server_accept(v.server.m), -EINVAL);
	ck_assert_int_eq(vmc_migp_client_offer(v.client.m, json_parse(offer_body)), 0);
	p = output_take(v.client.m, &len);
	ck_assert_uint_eq(feed_wanted(v.server.m, p, len, 0), len);
	free(p);
	ev = event_expect(v.server.m, VMC_MIGP_EV_OFFER);
	ck_assert_str_eq(json_object_get_string(json_object_object_get(ev.offer, "source")), "node1");
	ck_assert_int_eq(vmc_migp_server_received(v.server.m), -EINVAL);
	ck_assert_int_eq(vmc_migp_server_refuse(v.server.m, NULL, "not enough memory"), 0);
	failed_expect(v.server.m, VMC_MIGP_E_REFUSED, false);
	p = output_take(v.server.m, &len);
	ck_assert_uint_eq(feed_wanted(v.client.m, p, len, 0), len);
	free(p);
	ev = failed_expect(v.client.m, VMC_MIGP_E_REFUSED, true);
	ck_assert_str_eq(ev.reason, "not enough memory");
	ck_assert_int_eq(vmc_migp_server_accept(v.server.m), -ENOTCONN);
	conv_free(&v);
}
END_TEST

START_TEST(test_actions_in_the_wrong_role_or_state)
{
	struct vmc_migp *c = vmc_migp_client_new(key_a, test_id, VMC_MIGP_CONTROL, 0);
	struct vmc_migp *s = vmc_migp_server_new(key_a);

	ck_assert_int_eq(vmc_migp_client_offer(c, json_parse(offer_body)), -EINVAL);
	ck_assert_int_eq(vmc_migp_client_offer(s, json_parse(offer_body)), -EINVAL);
	ck_assert_int_eq(vmc_migp_server_hello(c, true, NULL, NULL), -EINVAL);
	ck_assert_int_eq(vmc_migp_server_hello(s, true, NULL, NULL), -EINVAL);
	ck_assert_int_eq(vmc_migp_server_accept(c), -EINVAL);
	ck_assert_int_eq(vmc_migp_server_accept(s), -EINVAL);
	ck_assert_int_eq(vmc_migp_server_refuse(s, NULL, NULL), -EINVAL);
	ck_assert_int_eq(vmc_migp_server_received(s), -EINVAL);
	ck_assert_int_eq(vmc_migp_state_get(c), VMC_MIGP_HELLO_SENT);
	ck_assert_int_eq(vmc_migp_state_get(s), VMC_MIGP_START);
	events_none(c);
	events_none(s);
	vmc_migp_free(c);
	vmc_migp_free(s);
}
END_TEST

START_TEST(test_abort_tells_the_peer)
{
	struct conv v;
	struct vmc_migp_event ev;
	uint8_t *p;
	size_t len;

	authed_pair(&v);
	ck_assert_int_eq(vmc_migp_abort(v.client.m, VMC_MIGP_E_TIMEOUT, "source QEMU hung"), 0);
	ev = failed_expect(v.client.m, VMC_MIGP_E_TIMEOUT, false);
	ck_assert_str_eq(ev.reason, "source QEMU hung");
	ck_assert_int_eq(vmc_migp_abort(v.client.m, NULL, NULL), -ENOTCONN);
	vmc_migp_fail(v.client.m, NULL, NULL);
	events_none(v.client.m);
	p = output_take(v.client.m, &len);
	ck_assert_uint_eq(feed_wanted(v.server.m, p, len, 0), len);
	free(p);
	ev = failed_expect(v.server.m, VMC_MIGP_E_TIMEOUT, true);
	ck_assert_str_eq(ev.reason, "source QEMU hung");
	output_none(v.server.m);
	conv_free(&v);
}
END_TEST

/* Once FAILED, only the rest of a frame already begun and the ERROR are written. */
START_TEST(test_failing_keeps_only_the_error)
{
	static const size_t written[] = { 0, 5 };
	struct vmc_migp *c = vmc_migp_client_new(key_a, test_id, VMC_MIGP_CONTROL, 0);
	const void *d;
	uint8_t hello[512], *rest, type;
	size_t n = vmc_migp_output(c, &d), len;
	json_object *o;

	ck_assert_uint_lt(n, sizeof(hello));
	memcpy(hello, d, n);
	vmc_migp_output_consume(c, written[_i]);
	ck_assert_int_eq(vmc_migp_abort(c, NULL, "changed my mind"), 0);
	rest = output_take(c, &len);
	if (written[_i] > 0) {
		ck_assert_uint_gt(len, n - written[_i]);
		ck_assert_mem_eq(rest, hello + written[_i], n - written[_i]);
	}
	o = frame_body(rest + (written[_i] > 0 ? n - written[_i] : 0),
		       len - (written[_i] > 0 ? n - written[_i] : 0), &type);
	ck_assert_int_eq(type, VMC_MIGP_ERROR);
	ck_assert_str_eq(body_str(o, "code"), VMC_MIGP_E_ABORTED);
	json_object_put(o);
	free(rest);
	failed_expect(c, VMC_MIGP_E_ABORTED, false);
	vmc_migp_free(c);
}
END_TEST

START_TEST(test_fail_sends_nothing)
{
	struct vmc_migp *c = vmc_migp_client_new(key_a, test_id, VMC_MIGP_CONTROL, 0);

	vmc_migp_output_consume(c, 3);
	vmc_migp_fail(c, VMC_MIGP_E_ABORTED, "connection reset");
	output_none(c);
	failed_expect(c, VMC_MIGP_E_ABORTED, false);
	vmc_migp_fail(c, VMC_MIGP_E_TIMEOUT, "again");
	events_none(c);
	ck_assert_int_eq(vmc_migp_feed(c, "x", 1), -ENOTCONN);
	ck_assert_uint_eq(vmc_migp_wanted(c), 0);
	vmc_migp_free(c);
}
END_TEST

/* ---- every truncation ---- */

static void truncation_run(enum vmc_migp_channel channel, size_t frames)
{
	for (size_t k = 0; k < frames; k++) {
		size_t frame_len;
		struct conv base;

		conv_init(&base, channel, channel == VMC_MIGP_DATA ? 1 : 0, key_a, key_a);
		conv_run(&base);
		ck_assert_uint_eq(base.nframes, frames);
		frame_len = base.frames[k].len;
		conv_free(&base);
		for (size_t cut = 0; cut < frame_len; cut++) {
			struct conv v;
			struct side *to;
			struct vmc_migp_event ev;

			conv_init(&v, channel, channel == VMC_MIGP_DATA ? 1 : 0, key_a, key_a);
			v.hook = HOOK_CUT;
			v.hook_frame = k;
			v.hook_byte = cut;
			conv_run(&v);
			ck_assert(v.stop);
			to = v.hooked_to_client ? &v.client : &v.server;
			ck_assert_msg(vmc_migp_state_get(to->m) == v.before,
				      "frame %zu cut at %zu: %s, was %s", k, cut,
				      vmc_migp_state_to_str(vmc_migp_state_get(to->m)),
				      vmc_migp_state_to_str(v.before));
			events_none(to->m);
			ck_assert_uint_gt(vmc_migp_wanted(to->m), 0);
			vmc_migp_fail(to->m, VMC_MIGP_E_TIMEOUT, "the peer stopped mid-frame");
			ev = failed_expect(to->m, VMC_MIGP_E_TIMEOUT, false);
			ck_assert_str_eq(ev.reason, "the peer stopped mid-frame");
			output_none(to->m);
			conv_free(&v);
		}
	}
}

START_TEST(test_every_truncation_control)
{
	truncation_run(VMC_MIGP_CONTROL, 7);
}
END_TEST

START_TEST(test_every_truncation_data)
{
	truncation_run(VMC_MIGP_DATA, 4);
}
END_TEST

/* ---- every single-byte mutation ---- */

/*
 * How far each side may get when a frame of this type was changed. A
 * changed HELLO may still pass when what the proofs cover (id, channel,
 * index, nonce) came through, e.g. proto_max 1 -> 9; see hello_same_auth.
 * The OFFER is not covered by the handshake: a changed one may be taken,
 * but only with its fields' types right.
 */
static const struct mutation_limit {
	uint8_t type;
	enum vmc_migp_state client_max;
	enum vmc_migp_state server_max;
} mutation_limits[] = {
	{ VMC_MIGP_HELLO, VMC_MIGP_HELLO_SENT, VMC_MIGP_CHALLENGED },
	{ VMC_MIGP_CHALLENGE, VMC_MIGP_HELLO_SENT, VMC_MIGP_CHALLENGED },
	{ VMC_MIGP_PROOF, VMC_MIGP_PROOF_SENT, VMC_MIGP_CHALLENGED },
	{ VMC_MIGP_WELCOME, VMC_MIGP_PROOF_SENT, VMC_MIGP_AUTHED },
	{ VMC_MIGP_OFFER, VMC_MIGP_DONE, VMC_MIGP_DONE },
	{ VMC_MIGP_ACCEPT, VMC_MIGP_OFFERED, VMC_MIGP_DONE },
	{ VMC_MIGP_RECEIVED, VMC_MIGP_STREAMING, VMC_MIGP_DONE },
};

static const struct mutation_limit *mutation_limit_of(uint8_t type)
{
	for (size_t i = 0; i < ARRAY_LEN(mutation_limits); i++) {
		if (mutation_limits[i].type == type) {
			return &mutation_limits[i];
		}
	}
	ck_abort_msg("no limit for %s", vmc_migp_type_to_str(type));
	return NULL;
}

static bool json_member_eq(json_object *a, json_object *b, const char *key)
{
	json_object *x = json_object_object_get(a, key), *y = json_object_object_get(b, key);

	return x != NULL && y != NULL && json_object_equal(x, y);
}

/* The changed HELLO still carries what the proofs cover. */
static bool hello_same_auth(const struct rec *orig, const uint8_t *mutated, size_t len)
{
	static const char *const covered[] = { "id", "channel", "index", "nonce" };
	char *a = strndup((const char *)orig->data + VMC_MIGP_HEADER_LEN,
			  orig->len - VMC_MIGP_HEADER_LEN);
	char *b = strndup((const char *)mutated + VMC_MIGP_HEADER_LEN, len - VMC_MIGP_HEADER_LEN);
	json_object *x = json_tokener_parse(a), *y = json_tokener_parse(b);
	bool same = x != NULL && y != NULL;

	for (size_t i = 0; same && i < ARRAY_LEN(covered); i++) {
		same = json_member_eq(x, y, covered[i]);
	}
	json_object_put(x);
	json_object_put(y);
	free(a);
	free(b);
	return same;
}

static void side_consistent(const struct side *s, const char *who, const char *what)
{
	bool failed = vmc_migp_state_get(s->m) == VMC_MIGP_FAILED;

	ck_assert_msg(s->events[VMC_MIGP_EV_FAILED] == (failed ? 1u : 0u), "%s %s: %u EV_FAILED in %s",
		      who, what, s->events[VMC_MIGP_EV_FAILED],
		      vmc_migp_state_to_str(vmc_migp_state_get(s->m)));
	ck_assert_msg(s->events[VMC_MIGP_EV_AUTHED] == (s->max >= VMC_MIGP_AUTHED ? 1u : 0u),
		      "%s %s: EV_AUTHED and state disagree", who, what);
	ck_assert_msg(s->sent_after_failing <= 1 && !s->sent_non_error_after_failing,
		      "%s %s: wrote more than an ERROR once FAILED", who, what);
	ck_assert_msg(!s->offer_ill_typed, "%s %s: took an ill-typed OFFER", who, what);
}

/* One conversation with frame k's byte at off changed; returns false when nothing changed. */
static bool mutation_run(enum vmc_migp_channel channel, size_t k, size_t off, enum hook_kind how,
			 uint8_t value)
{
	struct conv v;
	const struct mutation_limit *lim;
	char what[96];
	uint8_t *mutated;
	bool limited;

	conv_init(&v, channel, channel == VMC_MIGP_DATA ? 5 : 0, key_a, key_a);
	v.hello_any_id = true; /* the proofs, not the caller, must catch a changed id */
	v.hook = how;
	v.hook_frame = k;
	v.hook_byte = off;
	v.hook_value = value;
	conv_run(&v);
	if (!v.mutated) {
		conv_free(&v);
		return false;
	}
	snprintf(what, sizeof(what), "frame %zu (%s) byte %zu %s %#x", k,
		 vmc_migp_type_to_str(rec_type(&v.frames[k])), off, how == HOOK_SET ? "=" : "^", value);
	lim = mutation_limit_of(rec_type(&v.frames[k]));
	limited = true;
	if (lim->type == VMC_MIGP_HELLO) {
		mutated = malloc(v.frames[k].len);
		memcpy(mutated, v.frames[k].data, v.frames[k].len);
		mutated[off] = how == HOOK_SET ? value : mutated[off] ^ value;
		limited = off < VMC_MIGP_HEADER_LEN ||
			  !hello_same_auth(&v.frames[k], mutated, v.frames[k].len);
		free(mutated);
	}
	if (limited) {
		ck_assert_msg(v.client.max <= lim->client_max, "%s: the client reached %s", what,
			      vmc_migp_state_to_str(v.client.max));
		ck_assert_msg(v.server.max <= lim->server_max, "%s: the server reached %s", what,
			      vmc_migp_state_to_str(v.server.max));
	}
	side_consistent(&v.client, "client", what);
	side_consistent(&v.server, "server", what);
	vmc_migp_fail(v.client.m, VMC_MIGP_E_ABORTED, "eof");
	vmc_migp_fail(v.server.m, VMC_MIGP_E_ABORTED, "eof");
	conv_free(&v);
	return true;
}

static void mutation_loop(enum vmc_migp_channel channel, size_t k)
{
	static const uint8_t xors[] = { 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff };
	static const uint8_t sets[] = { '"', '\\', '{', '}', ',', ':', ' ', '0', 0x00 };
	size_t frame_len, runs = 0;
	struct conv base;

	conv_init(&base, channel, channel == VMC_MIGP_DATA ? 5 : 0, key_a, key_a);
	conv_run(&base);
	ck_assert_uint_lt(k, base.nframes);
	frame_len = base.frames[k].len;
	conv_free(&base);
	for (size_t off = 0; off < frame_len; off++) {
		bool every_value = off < VMC_MIGP_HEADER_LEN ||
				   frame_len - VMC_MIGP_HEADER_LEN <= SMALL_PAYLOAD;

		if (every_value) {
			for (unsigned int value = 0; value < 256; value++) {
				runs += mutation_run(channel, k, off, HOOK_SET, (uint8_t)value);
			}
			continue;
		}
		for (size_t i = 0; i < ARRAY_LEN(xors); i++) {
			runs += mutation_run(channel, k, off, HOOK_XOR, xors[i]);
		}
		for (size_t i = 0; i < ARRAY_LEN(sets); i++) {
			runs += mutation_run(channel, k, off, HOOK_SET, sets[i]);
		}
	}
	ck_assert_uint_gt(runs, VMC_MIGP_HEADER_LEN * 255);
}

START_TEST(test_every_mutation_control)
{
	mutation_loop(VMC_MIGP_CONTROL, (size_t)_i);
}
END_TEST

START_TEST(test_every_mutation_data)
{
	mutation_loop(VMC_MIGP_DATA, (size_t)_i);
}
END_TEST

/* ---- the suite ---- */

static TCase *tcase_make(Suite *s, const char *name, int timeout_s)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, timeout_s);
	suite_add_tcase(s, tc);
	return tc;
}

static Suite *migrate_proto_suite(void)
{
	Suite *s = suite_create("migrate_proto");
	TCase *tc;

	tc = tcase_make(s, "basics", TEST_TIMEOUT_S);
	tcase_add_test(tc, test_state_names_are_distinct);
	tcase_add_test(tc, test_ids);
	tcase_add_test(tc, test_auth_key_is_the_documented_hmac);
	tcase_add_test(tc, test_client_new_refuses_bad_arguments);
	tcase_add_test(tc, test_encode_writes_the_documented_header);
	tcase_add_loop_test(tc, test_header_decode_refuses, 0, (int)ARRAY_LEN(bad_headers));
	tcase_add_test(tc, test_header_decode_accepts_the_limits);

	tc = tcase_make(s, "conversations", TEST_TIMEOUT_S);
	tcase_add_test(tc, test_round_trip_control);
	tcase_add_test(tc, test_round_trip_control_byte_by_byte);
	tcase_add_test(tc, test_round_trip_data_channel);
	tcase_add_test(tc, test_control_channel_keys_are_its_own);
	tcase_add_test(tc, test_wanted_never_reads_past_the_handshake);
	tcase_add_test(tc, test_server_welcomes_a_client_computing_the_documented_proof);
	tcase_add_test(tc, test_client_takes_a_valid_challenge);
	tcase_add_test(tc, test_server_answers_the_highest_common_version);

	tc = tcase_make(s, "auth", TEST_TIMEOUT_S);
	tcase_add_test(tc, test_client_detects_a_server_with_another_key);
	tcase_add_test(tc, test_server_detects_a_client_with_another_key);
	tcase_add_test(tc, test_replayed_handshake_is_refused);
	tcase_add_test(tc, test_unknown_id_is_refused);
	tcase_add_test(tc, test_used_id_is_refused);
	tcase_add_test(tc, test_server_hello_refusal_code_defaults_to_unknown_id);

	tc = tcase_make(s, "refusals", TEST_TIMEOUT_S);
	tcase_add_test(tc, test_server_refuses_versions_it_does_not_speak);
	tcase_add_loop_test(tc, test_server_refuses_malformed_ranges, 0, (int)ARRAY_LEN(bad_ranges));
	tcase_add_loop_test(tc, test_client_refuses_a_version_it_did_not_offer, 0, 3);
	tcase_add_loop_test(tc, test_unexpected_frame_types_are_refused_from_the_header,
			    VMC_MIGP_HELLO, VMC_MIGP_TYPE_COUNT);
	tcase_add_test(tc, test_unexpected_frame_later_in_the_conversation);
	tcase_add_test(tc, test_oversized_length_is_refused_from_the_header);
	tcase_add_test(tc, test_feeding_more_than_wanted_is_refused);
	tcase_add_test(tc, test_peer_error_carries_code_and_reason);
	tcase_add_test(tc, test_peer_error_is_sanitized);
	tcase_add_test(tc, test_malformed_error_is_not_answered);
	tcase_add_loop_test(tc, test_hello_payload_refused, 0, (int)ARRAY_LEN(bad_hello_payloads));
	tcase_add_loop_test(tc, test_hello_payload_accepted, 0, 5);
	tcase_add_loop_test(tc, test_offer_refused_by_the_server, 0, (int)ARRAY_LEN(bad_offers));
	tcase_add_loop_test(tc, test_offer_refused_by_the_client, 0, (int)ARRAY_LEN(bad_offers));
	tcase_add_test(tc, test_server_refuses_the_offer);
	tcase_add_test(tc, test_actions_in_the_wrong_role_or_state);
	tcase_add_test(tc, test_abort_tells_the_peer);
	tcase_add_loop_test(tc, test_failing_keeps_only_the_error, 0, 2);
	tcase_add_test(tc, test_fail_sends_nothing);

	tc = tcase_make(s, "truncations", TEST_LOOP_TIMEOUT_S);
	tcase_add_test(tc, test_every_truncation_control);
	tcase_add_test(tc, test_every_truncation_data);

	tc = tcase_make(s, "mutations", TEST_LOOP_TIMEOUT_S);
	tcase_add_loop_test(tc, test_every_mutation_control, 0, 7);
	tcase_add_loop_test(tc, test_every_mutation_data, 0, 4);
	return s;
}

int main(void)
{
	if (vmc_migp_auth_key(cluster_key_a, strlen(cluster_key_a), key_a) != 0 ||
	    vmc_migp_auth_key(cluster_key_b, strlen(cluster_key_b), key_b) != 0) {
		return EXIT_FAILURE;
	}
	return check_suite_run(migrate_proto_suite());
}
