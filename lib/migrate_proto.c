/*
 * The migration agents' protocol engine: bytes in, frames and events out,
 * no I/O. migrate_proto.h has the sequence diagram, the frame format and
 * the states.
 *
 * A frame is read in two steps, each checked before the next is taken:
 * the 12 header bytes (magic, version, type, reserved, length, and
 * whether this role in this state takes that type at all, so a frame
 * that cannot be right is refused before its payload is read); then
 * exactly length payload bytes, which must be one JSON object as RFC 8259
 * has it and nothing else (no NUL, no \u0000, no NaN, no byte after the
 * closing brace, valid UTF-8, nesting within VMC_MIGP_JSON_DEPTH_MAX);
 * then the body's fields are checked against the type's field table, and
 * only then does the row's handler see the body. vmc_migp_wanted() never
 * asks for a byte past the frame, so after a data channel's WELCOME the
 * QEMU stream is left on the socket untouched.
 *
 * Output is a queue of encoded frames, one malloc()ed buffer each.
 * Entering FAILED drops every frame not yet begun and queues at most one
 * ERROR behind the rest of a frame already half written, so the peer
 * reads whole frames up to the ERROR.
 *
 * What the HMACs cover. Each input is a label (its ASCII bytes, no NUL)
 * followed by T or by nothing, and T has a fixed size, so an input made
 * for one purpose cannot be read as one for another; T is what the
 * handshake exchanged, 101 bytes:
 *
 *   T = id       32 bytes, the ASCII lowercase hex digits (no NUL)
 *     | channel   1 byte, 0 control, 1 data
 *     | index     4 bytes, big-endian
 *     | Nc       32 bytes, the client's nonce, raw
 *     | Ns       32 bytes, the server's nonce, raw
 *
 *   K       = HMAC-SHA256(cluster key, "vmcluster-migrate auth v1")
 *   proof S = HMAC-SHA256(K, "vmcm1 server" | T)
 *   proof C = HMAC-SHA256(K, "vmcm1 client" | T)
 *   D       = HMAC-SHA256(K, "vmcluster-migrate data v1")
 *   key c2s = HMAC-SHA256(D, "c2s key" | T)
 *   salt c2s = the first 4 bytes of HMAC-SHA256(D, "c2s salt" | T)
 *   key s2c, salt s2c: the same with "s2c key" and "s2c salt"
 *
 * The client sends with c2s and receives with s2c, the server the other
 * way round. D is not K, so
 * a key that seals a stream is never one that made a proof. On the wire,
 * nonces and proofs are 64 lowercase hex digits: uppercase is refused, so
 * a value has one spelling only.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "json_util.h"
#include "migrate_proto.h"

#define MIGP_MAGIC "VMCM"
#define MIGP_FRAME_VERSION 1
#define MIGP_PAYLOAD_MIN 2 /* "{}" */
#define MIGP_HASH_LEN 32
#define MIGP_HEX_LEN (2 * MIGP_HASH_LEN)
#define MIGP_ID_BYTES (VMC_MIGP_ID_LEN / 2)
#define MIGP_T_LEN (VMC_MIGP_ID_LEN + 1 + 4 + 2 * VMC_MIGP_NONCE_LEN)
#define MIGP_LABEL_MAX 32
#define MIGP_ERR_LEN 160
#define MIGP_REASON_LEN sizeof(((struct vmc_migp_event *)0)->reason)
#define MIGP_CODE_LEN sizeof(((struct vmc_migp_event *)0)->code)
/* Each state is entered once at most and gives one event at most. */
#define MIGP_EVENTS_MAX VMC_MIGP_STATE_COUNT

#define MIGP_LABEL_AUTH "vmcluster-migrate auth v1"
#define MIGP_LABEL_DATA "vmcluster-migrate data v1"
#define MIGP_LABEL_SERVER "vmcm1 server"
#define MIGP_LABEL_CLIENT "vmcm1 client"

#define STATE_BIT(s) (1u << (s))
#define CH(x) (1u << (x))
#define CH_CONTROL CH(VMC_MIGP_CONTROL)
#define CH_DATA CH(VMC_MIGP_DATA)
#define CH_ANY (CH_CONTROL | CH_DATA)

struct migp_frame {
	uint8_t *data;
	size_t len;
	size_t sent;
	struct migp_frame *next;
};

struct vmc_migp {
	enum vmc_migp_role role;
	enum vmc_migp_state state;
	uint8_t key[VMC_MIGP_KEY_LEN]; /* K */

	/* What the handshake settles; the server learns the first three from HELLO. */
	char id[VMC_MIGP_ID_LEN + 1];
	enum vmc_migp_channel channel;
	uint32_t index;
	uint8_t nonce_client[VMC_MIGP_NONCE_LEN];
	uint8_t nonce_server[VMC_MIGP_NONCE_LEN];
	int version;        /* agreed; 0 before CHALLENGE */
	int version_chosen; /* server: what its CHALLENGE will say */
	bool authed;

	/* The frame being read. */
	uint8_t header[VMC_MIGP_HEADER_LEN];
	size_t header_have;
	const struct migp_transition *row; /* the row its header matched */
	uint32_t length;
	uint8_t *payload;
	size_t payload_have;

	json_object *offer; /* server: the OFFER's body, until freed */

	struct migp_frame *out_head;
	struct migp_frame **out_tail;

	enum vmc_migp_event_kind events[MIGP_EVENTS_MAX];
	size_t events_read;
	size_t events_written;

	/* FAILED: why. */
	char code[MIGP_CODE_LEN];
	char reason[MIGP_REASON_LEN];
	bool from_peer;
};

/* How a failure reaches the peer. */
enum migp_fail_how {
	MIGP_TELL_PEER, /* an ERROR frame with code and reason is queued */
	MIGP_QUIET,     /* nothing more is sent: EOF, timeout, a broken ERROR */
	MIGP_FROM_PEER, /* the peer's ERROR: nothing is sent back */
};

static enum vmc_migp_state migp_fail(struct vmc_migp *c, enum migp_fail_how how, const char *code,
				     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- names ---- */

const char *vmc_migp_state_to_str(enum vmc_migp_state s)
{
	switch (s) {
	case VMC_MIGP_START:
		return "start";
	case VMC_MIGP_HELLO_SENT:
		return "hello-sent";
	case VMC_MIGP_HELLO_RECEIVED:
		return "hello-received";
	case VMC_MIGP_CHALLENGED:
		return "challenged";
	case VMC_MIGP_PROOF_SENT:
		return "proof-sent";
	case VMC_MIGP_AUTHED:
		return "authed";
	case VMC_MIGP_OFFERED:
		return "offered";
	case VMC_MIGP_STREAMING:
		return "streaming";
	case VMC_MIGP_DONE:
		return "done";
	case VMC_MIGP_FAILED:
		return "failed";
	case VMC_MIGP_STATE_COUNT:
		break;
	}
	return "invalid";
}

/* ---- the bodies: which fields each type needs, with which type ---- */

enum migp_field_kind {
	F_VERSION,  /* an integer in 1..INT32_MAX */
	F_ID,       /* a migration id: 32 lowercase hex digits */
	F_CHANNEL,  /* "control" or "data" */
	F_INDEX,    /* an integer in 0..VMC_MIGP_CHANNELS_MAX-1 */
	F_HEX32,    /* 32 bytes as 64 lowercase hex digits */
	F_OBJECT,
	F_MODE,     /* "live" or "quick" */
	F_BOOL,
	F_CHANNELS, /* an integer in 1..VMC_MIGP_CHANNELS_MAX */
	F_STRING,
};

struct migp_field {
	const char *key;
	enum migp_field_kind kind;
};

static const struct migp_field hello_fields[] = {
	{ "proto_min", F_VERSION }, { "proto_max", F_VERSION }, { "id", F_ID },
	{ "channel", F_CHANNEL },   { "index", F_INDEX },       { "nonce", F_HEX32 },
	{ NULL, 0 },
};
static const struct migp_field challenge_fields[] = {
	{ "proto", F_VERSION }, { "nonce", F_HEX32 }, { "proof", F_HEX32 }, { NULL, 0 },
};
static const struct migp_field proof_fields[] = {
	{ "proof", F_HEX32 },
	{ NULL, 0 },
};
static const struct migp_field offer_fields[] = {
	{ "definition", F_OBJECT }, { "mode", F_MODE },     { "encrypt", F_BOOL },
	{ "channels", F_CHANNELS }, { "source", F_STRING }, { NULL, 0 },
};
static const struct migp_field error_fields[] = {
	{ "code", F_STRING },
	{ "reason", F_STRING },
	{ NULL, 0 },
};
static const struct migp_field no_fields[] = {
	{ NULL, 0 },
};

static const struct migp_type_info {
	const char *name;
	const struct migp_field *fields;
} migp_types[VMC_MIGP_TYPE_COUNT] = {
	[VMC_MIGP_HELLO] = { "HELLO", hello_fields },
	[VMC_MIGP_CHALLENGE] = { "CHALLENGE", challenge_fields },
	[VMC_MIGP_PROOF] = { "PROOF", proof_fields },
	[VMC_MIGP_WELCOME] = { "WELCOME", no_fields },
	[VMC_MIGP_OFFER] = { "OFFER", offer_fields },
	[VMC_MIGP_ACCEPT] = { "ACCEPT", no_fields },
	[VMC_MIGP_RECEIVED] = { "RECEIVED", no_fields },
	[VMC_MIGP_ERROR] = { "ERROR", error_fields },
};

static bool migp_type_known(unsigned int type)
{
	return type > VMC_MIGP_INVALID && type < VMC_MIGP_TYPE_COUNT;
}

const char *vmc_migp_type_to_str(uint8_t type)
{
	return migp_type_known(type) ? migp_types[type].name : "invalid";
}

/* ---- the state machines ---- */

typedef enum vmc_migp_state (*migp_receive_fn)(struct vmc_migp *c, json_object *body);

static enum vmc_migp_state receive_hello(struct vmc_migp *c, json_object *body);
static enum vmc_migp_state receive_challenge(struct vmc_migp *c, json_object *body);
static enum vmc_migp_state receive_proof(struct vmc_migp *c, json_object *body);
static enum vmc_migp_state receive_welcome(struct vmc_migp *c, json_object *body);
static enum vmc_migp_state receive_offer(struct vmc_migp *c, json_object *body);
static enum vmc_migp_state receive_accept(struct vmc_migp *c, json_object *body);
static enum vmc_migp_state receive_received(struct vmc_migp *c, json_object *body);
static enum vmc_migp_state receive_error(struct vmc_migp *c, json_object *body);

/* Short names for the tables: M(x) is VMC_MIGP_x, S(x) its state bit. */
#define CLIENT VMC_MIGP_CLIENT
#define SERVER VMC_MIGP_SERVER
#define M(x) VMC_MIGP_##x
#define S(x) (1u << VMC_MIGP_##x)

/*
 * {role, state, channels, frame received} -> handler and the states it
 * may return. A frame with no row here is refused from its header
 * ("protocol"); a state with no row reads nothing (vmc_migp_wanted() 0).
 * Any handler may also return FAILED: out of memory can strike anywhere.
 */
static const struct migp_transition {
	enum vmc_migp_role role;
	enum vmc_migp_state state;
	unsigned int channels;
	uint8_t type;
	migp_receive_fn receive;
	unsigned int next;
} migp_fsm[] = {
	{ CLIENT, M(HELLO_SENT), CH_ANY, M(CHALLENGE), receive_challenge,
	  S(PROOF_SENT) | S(FAILED) },
	{ CLIENT, M(HELLO_SENT), CH_ANY, M(ERROR), receive_error, S(FAILED) },
	{ CLIENT, M(PROOF_SENT), CH_ANY, M(WELCOME), receive_welcome, S(AUTHED) },
	{ CLIENT, M(PROOF_SENT), CH_ANY, M(ERROR), receive_error, S(FAILED) },
	{ CLIENT, M(OFFERED), CH_CONTROL, M(ACCEPT), receive_accept, S(STREAMING) },
	{ CLIENT, M(OFFERED), CH_CONTROL, M(ERROR), receive_error, S(FAILED) },
	{ CLIENT, M(STREAMING), CH_CONTROL, M(RECEIVED), receive_received, S(DONE) },
	{ CLIENT, M(STREAMING), CH_CONTROL, M(ERROR), receive_error, S(FAILED) },

	{ SERVER, M(START), CH_ANY, M(HELLO), receive_hello, S(HELLO_RECEIVED) | S(FAILED) },
	{ SERVER, M(START), CH_ANY, M(ERROR), receive_error, S(FAILED) },
	{ SERVER, M(CHALLENGED), CH_ANY, M(PROOF), receive_proof, S(AUTHED) | S(FAILED) },
	{ SERVER, M(CHALLENGED), CH_ANY, M(ERROR), receive_error, S(FAILED) },
	{ SERVER, M(AUTHED), CH_CONTROL, M(OFFER), receive_offer, S(OFFERED) },
	{ SERVER, M(AUTHED), CH_CONTROL, M(ERROR), receive_error, S(FAILED) },
	{ SERVER, M(STREAMING), CH_CONTROL, M(ERROR), receive_error, S(FAILED) },
};

/* What the caller may do, and what it leads to (any of them may also fail the connection). */
enum migp_action {
	ACT_HELLO,        /* client: vmc_migp_client_new() queues the HELLO */
	ACT_CHALLENGE,    /* server: vmc_migp_server_hello(known) */
	ACT_HELLO_REFUSE, /* server: vmc_migp_server_hello(not known) */
	ACT_OFFER,        /* client: vmc_migp_client_offer() */
	ACT_ACCEPT,       /* server: vmc_migp_server_accept() */
	ACT_REFUSE,       /* server: vmc_migp_server_refuse() */
	ACT_RECEIVED,     /* server: vmc_migp_server_received() */
};

/* vmc_migp_abort() is the one action not here: it is taken in every state but DONE and FAILED. */
static const struct migp_action_row {
	enum vmc_migp_role role;
	enum vmc_migp_state state;
	unsigned int channels;
	enum migp_action action;
	enum vmc_migp_state next;
} migp_actions[] = {
	{ CLIENT, M(START), CH_ANY, ACT_HELLO, M(HELLO_SENT) },
	{ SERVER, M(HELLO_RECEIVED), CH_ANY, ACT_CHALLENGE, M(CHALLENGED) },
	{ SERVER, M(HELLO_RECEIVED), CH_ANY, ACT_HELLO_REFUSE, M(FAILED) },
	{ CLIENT, M(AUTHED), CH_CONTROL, ACT_OFFER, M(OFFERED) },
	{ SERVER, M(OFFERED), CH_CONTROL, ACT_ACCEPT, M(STREAMING) },
	{ SERVER, M(OFFERED), CH_CONTROL, ACT_REFUSE, M(FAILED) },
	{ SERVER, M(STREAMING), CH_CONTROL, ACT_RECEIVED, M(DONE) },
};

#undef CLIENT
#undef SERVER
#undef M
#undef S

#define MIGP_FSM_ROWS (sizeof(migp_fsm) / sizeof(migp_fsm[0]))
#define MIGP_ACTION_ROWS (sizeof(migp_actions) / sizeof(migp_actions[0]))

static bool migp_terminal(const struct vmc_migp *c)
{
	return c->state == VMC_MIGP_FAILED || c->state == VMC_MIGP_DONE;
}

static const struct migp_transition *migp_row_find(const struct vmc_migp *c, unsigned int type)
{
	for (size_t i = 0; i < MIGP_FSM_ROWS; i++) {
		const struct migp_transition *t = &migp_fsm[i];

		if (t->role == c->role && t->state == c->state && (t->channels & CH(c->channel)) &&
		    t->type == type) {
			return t;
		}
	}
	return NULL;
}

static bool migp_reads(const struct vmc_migp *c)
{
	for (size_t i = 0; i < MIGP_FSM_ROWS; i++) {
		const struct migp_transition *t = &migp_fsm[i];

		if (t->role == c->role && t->state == c->state && (t->channels & CH(c->channel))) {
			return true;
		}
	}
	return false;
}

static const struct migp_action_row *migp_action_find(const struct vmc_migp *c,
						      enum migp_action action)
{
	for (size_t i = 0; i < MIGP_ACTION_ROWS; i++) {
		const struct migp_action_row *a = &migp_actions[i];

		if (a->role == c->role && a->state == c->state && (a->channels & CH(c->channel)) &&
		    a->action == action) {
			return a;
		}
	}
	return NULL;
}

/* Why an action has no row: -ENOTCONN when the connection is over, else -EINVAL. */
static int migp_action_refusal(const struct vmc_migp *c)
{
	return migp_terminal(c) ? -ENOTCONN : -EINVAL;
}

static void migp_event_push(struct vmc_migp *c, enum vmc_migp_event_kind kind)
{
	/* Cannot overflow (MIGP_EVENTS_MAX); if it ever did, dropping beats overwriting. */
	if (c->events_written < MIGP_EVENTS_MAX) {
		c->events[c->events_written++] = kind;
	}
}

static void migp_state_enter(struct vmc_migp *c, enum vmc_migp_state next)
{
	c->state = next;
	if (next == VMC_MIGP_AUTHED) {
		c->authed = true;
	}
}

/* ---- small helpers ---- */

static void migp_put_be32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++) {
		p[i] = (uint8_t)(v >> (24 - 8 * i));
	}
}

static uint32_t migp_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void migp_hex_encode(const uint8_t *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 0xf];
	}
	out[2 * n] = '\0';
}

static int migp_hex_digit(char ch)
{
	if (ch >= '0' && ch <= '9') {
		return ch - '0';
	}
	if (ch >= 'a' && ch <= 'f') {
		return ch - 'a' + 10;
	}
	return -1;
}

/* s is exactly n lowercase hex digits. */
static bool migp_hex_valid(const char *s, size_t n)
{
	if (s == NULL || strlen(s) != n) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (migp_hex_digit(s[i]) < 0) {
			return false;
		}
	}
	return true;
}

/* s has passed migp_hex_valid(s, 2 * n). */
static void migp_hex_decode(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		out[i] = (uint8_t)(migp_hex_digit(s[2 * i]) << 4 | migp_hex_digit(s[2 * i + 1]));
	}
}

/* Untrusted or caller text into a log line: printable ASCII only, truncated to fit. */
static void migp_line_copy(char *dst, size_t size, const char *src)
{
	size_t i = 0;

	for (; src != NULL && src[i] != '\0' && i + 1 < size; i++) {
		unsigned char ch = (unsigned char)src[i];

		dst[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	dst[i] = '\0';
}

static void migp_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void migp_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- HMAC ---- */

/* out = HMAC-SHA256(key, label | data); 0 or -EIO. */
static int migp_hmac(const uint8_t *key, size_t key_len, const char *label, const uint8_t *data,
		     size_t data_len, uint8_t out[MIGP_HASH_LEN])
{
	uint8_t in[MIGP_LABEL_MAX + MIGP_T_LEN];
	size_t label_len = strlen(label);
	unsigned int out_len = 0;
	const unsigned char *md;
	int rc = 0;

	if (label_len > MIGP_LABEL_MAX || data_len > MIGP_T_LEN) {
		return -EIO;
	}
	memcpy(in, label, label_len);
	if (data_len > 0) {
		memcpy(in + label_len, data, data_len);
	}
	md = HMAC(EVP_sha256(), key, (int)key_len, in, label_len + data_len, out, &out_len);
	if (md == NULL || out_len != MIGP_HASH_LEN) {
		rc = -EIO;
	}
	OPENSSL_cleanse(in, sizeof(in));
	return rc;
}

/* T: id | channel | index | Nc | Ns, as the top of this file has it. */
static void migp_transcript(const struct vmc_migp *c, uint8_t t[MIGP_T_LEN])
{
	memcpy(t, c->id, VMC_MIGP_ID_LEN);
	t[VMC_MIGP_ID_LEN] = c->channel == VMC_MIGP_DATA ? 1 : 0;
	migp_put_be32(t + VMC_MIGP_ID_LEN + 1, c->index);
	memcpy(t + VMC_MIGP_ID_LEN + 5, c->nonce_client, VMC_MIGP_NONCE_LEN);
	memcpy(t + VMC_MIGP_ID_LEN + 5 + VMC_MIGP_NONCE_LEN, c->nonce_server, VMC_MIGP_NONCE_LEN);
}

static int migp_proof(const struct vmc_migp *c, const char *label, uint8_t out[MIGP_HASH_LEN])
{
	uint8_t t[MIGP_T_LEN];

	migp_transcript(c, t);
	return migp_hmac(c->key, sizeof(c->key), label, t, sizeof(t), out);
}

/* The proof in hex matches HMAC(K, label | T), compared in constant time. */
static int migp_proof_check(const struct vmc_migp *c, const char *label, const char *hex,
			    bool *ok)
{
	uint8_t want[MIGP_HASH_LEN], got[MIGP_HASH_LEN];
	int rc = migp_proof(c, label, want);

	if (rc < 0) {
		return rc;
	}
	migp_hex_decode(hex, got, sizeof(got));
	*ok = CRYPTO_memcmp(want, got, sizeof(want)) == 0;
	OPENSSL_cleanse(want, sizeof(want));
	return 0;
}

int vmc_migp_auth_key(const void *cluster_key, size_t len, uint8_t key[VMC_MIGP_KEY_LEN])
{
	unsigned int out_len = 0;

	if (cluster_key == NULL || len == 0 || len > INT_MAX) {
		return -EINVAL;
	}
	if (HMAC(EVP_sha256(), cluster_key, (int)len, (const uint8_t *)MIGP_LABEL_AUTH,
		 strlen(MIGP_LABEL_AUTH), key, &out_len) == NULL ||
	    out_len != VMC_MIGP_KEY_LEN) {
		OPENSSL_cleanse(key, VMC_MIGP_KEY_LEN);
		return -EIO;
	}
	return 0;
}

/* One direction's key and salt from D. */
static int migp_direction_keys(const uint8_t d[MIGP_HASH_LEN], const uint8_t t[MIGP_T_LEN],
			       const char *key_label, const char *salt_label, uint8_t key[32],
			       uint8_t salt[4])
{
	uint8_t salt_full[MIGP_HASH_LEN];

	if (migp_hmac(d, MIGP_HASH_LEN, key_label, t, MIGP_T_LEN, key) < 0 ||
	    migp_hmac(d, MIGP_HASH_LEN, salt_label, t, MIGP_T_LEN, salt_full) < 0) {
		return -EIO;
	}
	memcpy(salt, salt_full, 4);
	OPENSSL_cleanse(salt_full, sizeof(salt_full));
	return 0;
}

int vmc_migp_stream_keys(const struct vmc_migp *c, struct vmc_migp_stream_keys *out)
{
	uint8_t d[MIGP_HASH_LEN], t[MIGP_T_LEN];
	struct vmc_migp_stream_keys k;
	bool client = c->role == VMC_MIGP_CLIENT;
	int rc;

	if (!c->authed || c->state == VMC_MIGP_FAILED) {
		return -EINVAL;
	}
	migp_transcript(c, t);
	rc = migp_hmac(c->key, sizeof(c->key), MIGP_LABEL_DATA, NULL, 0, d);
	if (rc == 0) {
		rc = migp_direction_keys(d, t, "c2s key", "c2s salt", client ? k.tx_key : k.rx_key,
					 client ? k.tx_salt : k.rx_salt);
	}
	if (rc == 0) {
		rc = migp_direction_keys(d, t, "s2c key", "s2c salt", client ? k.rx_key : k.tx_key,
					 client ? k.rx_salt : k.tx_salt);
	}
	OPENSSL_cleanse(d, sizeof(d));
	if (rc == 0) {
		*out = k;
	}
	OPENSSL_cleanse(&k, sizeof(k));
	return rc;
}

/* ---- ids ---- */

bool vmc_migp_id_valid(const char *id)
{
	return migp_hex_valid(id, VMC_MIGP_ID_LEN);
}

int vmc_migp_new_id(char id[VMC_MIGP_ID_LEN + 1])
{
	uint8_t b[MIGP_ID_BYTES];

	if (RAND_bytes(b, sizeof(b)) != 1) {
		return -EIO;
	}
	migp_hex_encode(b, sizeof(b), id);
	return 0;
}

/* ---- the frame codec ---- */

/* The bytes JSON has outside strings (true, false, null and numbers included). */
#define MIGP_JSON_OUTSIDE_STRINGS "{}[]:, \t\r\n0123456789+-.eEtrufalsn"

/*
 * What json-c lets through even when strict, found by a scan that only
 * follows strings: NaN, Infinity and single quotes (any byte outside a
 * string that JSON has not there), a raw control character inside a
 * string (RFC 8259 wants those escaped), a \u0000 escape (json-c would
 * cut a key or a C string short there). NULL when there is none.
 */
static const char *migp_json_lex_problem(const char *p, size_t n)
{
	bool in_string = false;

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (!in_string) {
			if (ch == '"') {
				in_string = true;
			} else if (ch == '\0' || strchr(MIGP_JSON_OUTSIDE_STRINGS, ch) == NULL) {
				return "a word or quote that is not JSON (NaN, Infinity, 'x')";
			}
			continue;
		}
		if (ch == '"') {
			in_string = false;
		} else if (ch < 0x20) {
			return "a control character in a string";
		} else if (ch == '\\') {
			if (i + 5 < n && p[i + 1] == 'u' && memcmp(p + i + 2, "0000", 4) == 0) {
				return "a string holds a \\u0000";
			}
			i++; /* the escaped character: "\\" starts no other escape */
		}
	}
	return NULL;
}

/*
 * Exactly one JSON object, nothing before it or after it. NULL with a
 * reason in err; *nomem when that reason is lack of memory.
 */
static json_object *migp_payload_parse(const uint8_t *payload, size_t n, char *err, size_t errlen,
				       bool *nomem)
{
	const char *p = (const char *)payload;
	const void *nul = memchr(p, '\0', n);
	const char *problem;
	enum json_tokener_error jerr;
	struct json_tokener *tok;
	json_object *o;
	size_t end;

	*nomem = false;
	if (n < MIGP_PAYLOAD_MIN || n > VMC_MIGP_PAYLOAD_MAX || p[0] != '{') {
		migp_err(err, errlen, "not a JSON object");
		return NULL;
	}
	if (nul != NULL) {
		migp_err(err, errlen, "a NUL byte at payload byte %zu",
			 (size_t)((const char *)nul - p));
		return NULL;
	}
	problem = migp_json_lex_problem(p, n);
	if (problem != NULL) {
		migp_err(err, errlen, "%s", problem);
		return NULL;
	}
	tok = json_tokener_new_ex(VMC_MIGP_JSON_DEPTH_MAX);
	if (tok == NULL) {
		*nomem = true;
		migp_err(err, errlen, "out of memory");
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS |
					    JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, p, (int)n);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (o == NULL) {
		migp_err(err, errlen, "not valid JSON: %s",
			 jerr == json_tokener_continue ? "the object ends early"
						       : json_tokener_error_desc(jerr));
		return NULL;
	}
	/* json-c takes white space after the object: the closing brace must be the last byte. */
	if (end != n || p[n - 1] != '}' || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		migp_err(err, errlen, "bytes after the JSON object");
		return NULL;
	}
	return o;
}

static bool migp_int_in(json_object *v, int64_t lo, int64_t hi)
{
	int64_t x;

	if (!json_object_is_type(v, json_type_int)) {
		return false;
	}
	x = json_object_get_int64(v);
	return x >= lo && x <= hi;
}

static bool migp_string_is(json_object *v, const char *a, const char *b)
{
	const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;

	return s != NULL && (strcmp(s, a) == 0 || strcmp(s, b) == 0);
}

/* NULL when the field is there with its kind's type and range, else what is wrong. */
static const char *migp_field_problem(json_object *body, const struct migp_field *f)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(body, f->key, &v) || v == NULL) {
		return "missing";
	}
	switch (f->kind) {
	case F_VERSION:
		return migp_int_in(v, 1, INT32_MAX) ? NULL : "not an integer in 1..2147483647";
	case F_INDEX:
		return migp_int_in(v, 0, VMC_MIGP_CHANNELS_MAX - 1) ? NULL : "not a channel index";
	case F_CHANNELS:
		return migp_int_in(v, 1, VMC_MIGP_CHANNELS_MAX) ? NULL : "not a channel count";
	case F_ID:
		return json_object_is_type(v, json_type_string) &&
				       vmc_migp_id_valid(json_object_get_string(v))
			       ? NULL
			       : "not 32 lowercase hex digits";
	case F_HEX32:
		return json_object_is_type(v, json_type_string) &&
				       migp_hex_valid(json_object_get_string(v), MIGP_HEX_LEN)
			       ? NULL
			       : "not 64 lowercase hex digits";
	case F_CHANNEL:
		return migp_string_is(v, "control", "data") ? NULL : "not \"control\" or \"data\"";
	case F_MODE:
		return migp_string_is(v, "live", "quick") ? NULL : "not \"live\" or \"quick\"";
	case F_BOOL:
		return json_object_is_type(v, json_type_boolean) ? NULL : "not a boolean";
	case F_OBJECT:
		return json_object_is_type(v, json_type_object) ? NULL : "not an object";
	case F_STRING:
		return json_object_is_type(v, json_type_string) ? NULL : "not a string";
	}
	return "of no known kind";
}

/* The body has every field its type needs; 0 or -EPROTO with err set. */
static int migp_body_check(uint8_t type, json_object *body, char *err, size_t errlen)
{
	for (const struct migp_field *f = migp_types[type].fields; f->key != NULL; f++) {
		const char *problem = migp_field_problem(body, f);

		if (problem != NULL) {
			migp_err(err, errlen, "%s field \"%s\" %s", migp_types[type].name, f->key,
				 problem);
			return -EPROTO;
		}
	}
	return 0;
}

int vmc_migp_header_decode(const uint8_t hdr[VMC_MIGP_HEADER_LEN], uint8_t *type, uint32_t *length,
			   char *err, size_t errlen)
{
	uint32_t len = migp_get_be32(hdr + 8);

	if (memcmp(hdr, MIGP_MAGIC, 4) != 0) {
		migp_err(err, errlen, "bad magic %02x %02x %02x %02x", hdr[0], hdr[1], hdr[2],
			 hdr[3]);
		return -EPROTO;
	}
	if (hdr[4] != MIGP_FRAME_VERSION) {
		migp_err(err, errlen, "frame format %u, this side reads %d", hdr[4],
			 MIGP_FRAME_VERSION);
		return -EPROTO;
	}
	if (!migp_type_known(hdr[5])) {
		migp_err(err, errlen, "unknown frame type %u", hdr[5]);
		return -EPROTO;
	}
	if (hdr[6] != 0 || hdr[7] != 0) {
		migp_err(err, errlen, "reserved header bytes are not zero");
		return -EPROTO;
	}
	if (len < MIGP_PAYLOAD_MIN || len > VMC_MIGP_PAYLOAD_MAX) {
		migp_err(err, errlen, "%s payload length %u outside %d..%d",
			 migp_types[hdr[5]].name, len, MIGP_PAYLOAD_MIN, VMC_MIGP_PAYLOAD_MAX);
		return -EPROTO;
	}
	*type = hdr[5];
	*length = len;
	return 0;
}

int vmc_migp_frame_encode(uint8_t type, json_object *body, uint8_t **buf, size_t *len)
{
	const char *json;
	size_t n;
	uint8_t *p;

	if (!migp_type_known(type) || !json_object_is_type(body, json_type_object)) {
		return -EINVAL;
	}
	json = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
	if (json == NULL) {
		return -ENOMEM;
	}
	n = strlen(json);
	if (migp_json_lex_problem(json, n) != NULL) {
		return -EINVAL;
	}
	if (n > VMC_MIGP_PAYLOAD_MAX) {
		return -EMSGSIZE;
	}
	p = malloc(VMC_MIGP_HEADER_LEN + n);
	if (p == NULL) {
		return -ENOMEM;
	}
	memcpy(p, MIGP_MAGIC, 4);
	p[4] = MIGP_FRAME_VERSION;
	p[5] = type;
	p[6] = 0;
	p[7] = 0;
	migp_put_be32(p + 8, (uint32_t)n);
	memcpy(p + VMC_MIGP_HEADER_LEN, json, n);
	*buf = p;
	*len = VMC_MIGP_HEADER_LEN + n;
	return 0;
}

/* ---- output ---- */

/* Queues a frame of type with body (consumed). 0, -ENOMEM, -EMSGSIZE, -EINVAL. */
static int migp_send(struct vmc_migp *c, uint8_t type, json_object *body)
{
	struct migp_frame *f;
	int rc;

	if (body == NULL) {
		return -ENOMEM;
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL) {
		json_object_put(body);
		return -ENOMEM;
	}
	rc = vmc_migp_frame_encode(type, body, &f->data, &f->len);
	json_object_put(body);
	if (rc < 0) {
		free(f);
		return rc;
	}
	*c->out_tail = f;
	c->out_tail = &f->next;
	return 0;
}

/* Drops what is queued, but the frame being written when keep_started. */
static void migp_output_drop(struct vmc_migp *c, bool keep_started)
{
	struct migp_frame *f = c->out_head;

	c->out_head = NULL;
	c->out_tail = &c->out_head;
	if (f != NULL && keep_started && f->sent > 0) {
		struct migp_frame *started = f;

		f = f->next;
		started->next = NULL;
		c->out_head = started;
		c->out_tail = &started->next;
	}
	while (f != NULL) {
		struct migp_frame *next = f->next;

		free(f->data);
		free(f);
		f = next;
	}
}

size_t vmc_migp_output(const struct vmc_migp *c, const void **data)
{
	const struct migp_frame *f = c->out_head;

	if (f == NULL) {
		*data = NULL;
		return 0;
	}
	*data = f->data + f->sent;
	return f->len - f->sent;
}

void vmc_migp_output_consume(struct vmc_migp *c, size_t n)
{
	struct migp_frame *f = c->out_head;

	if (f == NULL) {
		return;
	}
	f->sent += n < f->len - f->sent ? n : f->len - f->sent;
	if (f->sent == f->len) {
		c->out_head = f->next;
		if (c->out_head == NULL) {
			c->out_tail = &c->out_head;
		}
		free(f->data);
		free(f);
	}
}

/* Adds key: v to body; v NULL (its allocation failed) is -ENOMEM. */
static int migp_body_put(json_object *body, const char *key, json_object *v)
{
	if (v == NULL) {
		return -ENOMEM;
	}
	if (json_object_object_add(body, key, v) != 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static json_object *migp_hex_string(const uint8_t b[MIGP_HASH_LEN])
{
	char hex[MIGP_HEX_LEN + 1];

	migp_hex_encode(b, MIGP_HASH_LEN, hex);
	return json_object_new_string(hex);
}

/* A frame whose body is empty. */
static int send_empty(struct vmc_migp *c, uint8_t type)
{
	return migp_send(c, type, json_object_new_object());
}

static int send_error(struct vmc_migp *c, const char *code, const char *reason)
{
	json_object *b = json_object_new_object();

	if (b == NULL || migp_body_put(b, "code", json_object_new_string(code)) < 0 ||
	    migp_body_put(b, "reason", json_object_new_string(reason)) < 0) {
		json_object_put(b);
		return -ENOMEM;
	}
	return migp_send(c, VMC_MIGP_ERROR, b);
}

static int send_hello(struct vmc_migp *c)
{
	json_object *b = json_object_new_object();
	const char *channel = c->channel == VMC_MIGP_DATA ? "data" : "control";

	if (b == NULL ||
	    migp_body_put(b, "proto_min", json_object_new_int(VMC_MIGP_PROTO_MIN)) < 0 ||
	    migp_body_put(b, "proto_max", json_object_new_int(VMC_MIGP_PROTO_MAX)) < 0 ||
	    migp_body_put(b, "id", json_object_new_string(c->id)) < 0 ||
	    migp_body_put(b, "channel", json_object_new_string(channel)) < 0 ||
	    migp_body_put(b, "index", json_object_new_int64(c->index)) < 0 ||
	    migp_body_put(b, "nonce", migp_hex_string(c->nonce_client)) < 0) {
		json_object_put(b);
		return -ENOMEM;
	}
	return migp_send(c, VMC_MIGP_HELLO, b);
}

static int send_challenge(struct vmc_migp *c)
{
	json_object *b = json_object_new_object();
	uint8_t proof[MIGP_HASH_LEN];

	if (b == NULL || migp_proof(c, MIGP_LABEL_SERVER, proof) < 0 ||
	    migp_body_put(b, "proto", json_object_new_int(c->version_chosen)) < 0 ||
	    migp_body_put(b, "nonce", migp_hex_string(c->nonce_server)) < 0 ||
	    migp_body_put(b, "proof", migp_hex_string(proof)) < 0) {
		json_object_put(b);
		return -ENOMEM;
	}
	return migp_send(c, VMC_MIGP_CHALLENGE, b);
}

static int send_proof(struct vmc_migp *c)
{
	json_object *b = json_object_new_object();
	uint8_t proof[MIGP_HASH_LEN];

	if (b == NULL || migp_proof(c, MIGP_LABEL_CLIENT, proof) < 0 ||
	    migp_body_put(b, "proof", migp_hex_string(proof)) < 0) {
		json_object_put(b);
		return -ENOMEM;
	}
	return migp_send(c, VMC_MIGP_PROOF, b);
}

/* ---- failure ---- */

static void migp_input_reset(struct vmc_migp *c)
{
	free(c->payload);
	c->payload = NULL;
	c->payload_have = 0;
	c->header_have = 0;
	c->row = NULL;
}

/*
 * Enters FAILED (once: later failures change nothing) with code and a
 * reason; tells the peer when how says so. Returns FAILED, for handlers.
 */
static enum vmc_migp_state migp_fail(struct vmc_migp *c, enum migp_fail_how how, const char *code,
				     const char *fmt, ...)
{
	char reason[MIGP_REASON_LEN];
	va_list ap;

	if (migp_terminal(c)) {
		return c->state;
	}
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	migp_line_copy(c->reason, sizeof(c->reason), reason);
	migp_line_copy(c->code, sizeof(c->code), code);
	c->from_peer = how == MIGP_FROM_PEER;
	c->state = VMC_MIGP_FAILED;
	migp_input_reset(c);
	migp_output_drop(c, how == MIGP_TELL_PEER);
	if (how == MIGP_TELL_PEER) {
		/* Best effort: out of memory here leaves the peer to see the connection close. */
		(void)send_error(c, c->code, c->reason);
	}
	migp_event_push(c, VMC_MIGP_EV_FAILED);
	return VMC_MIGP_FAILED;
}

/* Not strerror(): the agent runs engines on several threads. */
static enum vmc_migp_state migp_fail_internal(struct vmc_migp *c, int rc, const char *what)
{
	const char *why = rc == -ENOMEM ? "out of memory"
			  : rc == -EIO  ? "the crypto library failed"
					: "unexpected error";

	return migp_fail(c, MIGP_TELL_PEER, VMC_MIGP_E_INTERNAL, "%s: %s (%d)", what, why, rc);
}

void vmc_migp_fail(struct vmc_migp *c, const char *code, const char *reason)
{
	migp_fail(c, MIGP_QUIET, code != NULL ? code : VMC_MIGP_E_ABORTED, "%s",
		  reason != NULL ? reason : "");
}

int vmc_migp_abort(struct vmc_migp *c, const char *code, const char *reason)
{
	if (migp_terminal(c)) {
		return -ENOTCONN;
	}
	migp_fail(c, MIGP_TELL_PEER, code != NULL ? code : VMC_MIGP_E_ABORTED, "%s",
		  reason != NULL ? reason : "");
	return 0;
}

/* ---- the frames received ---- */

static enum vmc_migp_state receive_hello(struct vmc_migp *c, json_object *body)
{
	int64_t min = 0, max = 0, index = 0;
	bool data = strcmp(vmc_json_str(body, "channel"), "data") == 0;
	int64_t lo, hi;

	vmc_json_int64(body, "proto_min", &min);
	vmc_json_int64(body, "proto_max", &max);
	vmc_json_int64(body, "index", &index);
	if (min > max) {
		return migp_fail(c, MIGP_TELL_PEER, VMC_MIGP_E_PROTOCOL,
				 "HELLO offers no version: proto_min %lld > proto_max %lld",
				 (long long)min, (long long)max);
	}
	if (!data && index != 0) {
		return migp_fail(c, MIGP_TELL_PEER, VMC_MIGP_E_PROTOCOL,
				 "HELLO for the control channel with index %lld", (long long)index);
	}
	lo = min > VMC_MIGP_PROTO_MIN ? min : VMC_MIGP_PROTO_MIN;
	hi = max < VMC_MIGP_PROTO_MAX ? max : VMC_MIGP_PROTO_MAX;
	if (lo > hi) {
		return migp_fail(c, MIGP_TELL_PEER, VMC_MIGP_E_VERSION,
				 "no protocol version in common: the source speaks %lld..%lld, "
				 "this destination %d..%d",
				 (long long)min, (long long)max, VMC_MIGP_PROTO_MIN,
				 VMC_MIGP_PROTO_MAX);
	}
	memcpy(c->id, vmc_json_str(body, "id"), VMC_MIGP_ID_LEN + 1);
	c->channel = data ? VMC_MIGP_DATA : VMC_MIGP_CONTROL;
	c->index = (uint32_t)index;
	migp_hex_decode(vmc_json_str(body, "nonce"), c->nonce_client, VMC_MIGP_NONCE_LEN);
	c->version_chosen = (int)hi;
	migp_event_push(c, VMC_MIGP_EV_HELLO);
	return VMC_MIGP_HELLO_RECEIVED;
}

static enum vmc_migp_state receive_challenge(struct vmc_migp *c, json_object *body)
{
	int64_t proto = 0;
	bool ok = false;
	int rc;

	vmc_json_int64(body, "proto", &proto);
	if (proto < VMC_MIGP_PROTO_MIN || proto > VMC_MIGP_PROTO_MAX) {
		return migp_fail(c, MIGP_TELL_PEER, VMC_MIGP_E_VERSION,
				 "the destination chose protocol version %lld, this source offered "
				 "%d..%d",
				 (long long)proto, VMC_MIGP_PROTO_MIN, VMC_MIGP_PROTO_MAX);
	}
	migp_hex_decode(vmc_json_str(body, "nonce"), c->nonce_server, VMC_MIGP_NONCE_LEN);
	rc = migp_proof_check(c, MIGP_LABEL_SERVER, vmc_json_str(body, "proof"), &ok);
	if (rc < 0) {
		return migp_fail_internal(c, rc, "checking the destination's proof");
	}
	if (!ok) {
		/* Before our own proof: a destination without the key learns nothing from us. */
		return migp_fail(c, MIGP_TELL_PEER, VMC_MIGP_E_AUTH,
				 "the destination's proof does not check: "
				 "it has another cluster key");
	}
	c->version = (int)proto;
	rc = send_proof(c);
	if (rc < 0) {
		return migp_fail_internal(c, rc, "sending PROOF");
	}
	return VMC_MIGP_PROOF_SENT;
}

static enum vmc_migp_state receive_proof(struct vmc_migp *c, json_object *body)
{
	bool ok = false;
	int rc = migp_proof_check(c, MIGP_LABEL_CLIENT, vmc_json_str(body, "proof"), &ok);

	if (rc < 0) {
		return migp_fail_internal(c, rc, "checking the source's proof");
	}
	if (!ok) {
		return migp_fail(c, MIGP_TELL_PEER, VMC_MIGP_E_AUTH,
				 "the source's proof does not check: another cluster key, or a "
				 "handshake replayed from another connection");
	}
	rc = send_empty(c, VMC_MIGP_WELCOME);
	if (rc < 0) {
		return migp_fail_internal(c, rc, "sending WELCOME");
	}
	migp_event_push(c, VMC_MIGP_EV_AUTHED);
	return VMC_MIGP_AUTHED;
}

static enum vmc_migp_state receive_welcome(struct vmc_migp *c, json_object *body)
{
	migp_event_push(c, VMC_MIGP_EV_AUTHED);
	return VMC_MIGP_AUTHED;
}

static enum vmc_migp_state receive_offer(struct vmc_migp *c, json_object *body)
{
	c->offer = json_object_get(body);
	migp_event_push(c, VMC_MIGP_EV_OFFER);
	return VMC_MIGP_OFFERED;
}

static enum vmc_migp_state receive_accept(struct vmc_migp *c, json_object *body)
{
	migp_event_push(c, VMC_MIGP_EV_ACCEPTED);
	return VMC_MIGP_STREAMING;
}

static enum vmc_migp_state receive_received(struct vmc_migp *c, json_object *body)
{
	migp_event_push(c, VMC_MIGP_EV_RECEIVED);
	return VMC_MIGP_DONE;
}

static enum vmc_migp_state receive_error(struct vmc_migp *c, json_object *body)
{
	return migp_fail(c, MIGP_FROM_PEER, vmc_json_str(body, "code"), "%s",
			 vmc_json_str(body, "reason"));
}

/* ---- input ---- */

/* A broken frame: the peer hears of it, unless the frame was its ERROR. */
static enum migp_fail_how migp_refusal_how(uint8_t type)
{
	return type == VMC_MIGP_ERROR ? MIGP_QUIET : MIGP_TELL_PEER;
}

static void migp_header_receive(struct vmc_migp *c)
{
	char err[MIGP_ERR_LEN];
	const struct migp_transition *row;
	uint8_t type;
	uint32_t length;

	if (vmc_migp_header_decode(c->header, &type, &length, err, sizeof(err)) < 0) {
		migp_fail(c, MIGP_TELL_PEER, VMC_MIGP_E_PROTOCOL, "%s", err);
		return;
	}
	row = migp_row_find(c, type);
	if (row == NULL) {
		migp_fail(c, migp_refusal_how(type), VMC_MIGP_E_PROTOCOL,
			  "unexpected %s in state %s", vmc_migp_type_to_str(type),
			  vmc_migp_state_to_str(c->state));
		return;
	}
	c->payload = malloc(length);
	if (c->payload == NULL) {
		migp_fail_internal(c, -ENOMEM, "reading a frame");
		return;
	}
	c->row = row;
	c->length = length;
	c->payload_have = 0;
}

static void migp_payload_receive(struct vmc_migp *c)
{
	const struct migp_transition *row = c->row;
	char err[MIGP_ERR_LEN];
	enum vmc_migp_state next;
	json_object *body;
	bool nomem;

	body = migp_payload_parse(c->payload, c->length, err, sizeof(err), &nomem);
	migp_input_reset(c);
	if (body == NULL && nomem) {
		migp_fail_internal(c, -ENOMEM, "parsing a frame");
		return;
	}
	if (body == NULL || migp_body_check(row->type, body, err, sizeof(err)) < 0) {
		json_object_put(body);
		migp_fail(c, migp_refusal_how(row->type), VMC_MIGP_E_PROTOCOL, "%s: %s",
			  vmc_migp_type_to_str(row->type), err);
		return;
	}
	next = row->receive(c, body);
	json_object_put(body);
	if (next == VMC_MIGP_FAILED) {
		return; /* the handler failed the connection */
	}
	if ((row->next & STATE_BIT(next)) == 0) {
		migp_fail(c, MIGP_TELL_PEER, VMC_MIGP_E_INTERNAL, "%s in state %s led to %s",
			  vmc_migp_type_to_str(row->type), vmc_migp_state_to_str(c->state),
			  vmc_migp_state_to_str(next));
		return;
	}
	migp_state_enter(c, next);
}

size_t vmc_migp_wanted(const struct vmc_migp *c)
{
	if (!migp_reads(c)) {
		return 0;
	}
	if (c->header_have < VMC_MIGP_HEADER_LEN) {
		return VMC_MIGP_HEADER_LEN - c->header_have;
	}
	return c->length - c->payload_have;
}

int vmc_migp_feed(struct vmc_migp *c, const void *buf, size_t len)
{
	if (migp_terminal(c)) {
		return -ENOTCONN;
	}
	if (len > vmc_migp_wanted(c)) {
		return -EINVAL;
	}
	if (len == 0) {
		return 0;
	}
	/* wanted() keeps len within the header's rest or the payload's rest. */
	if (c->header_have < VMC_MIGP_HEADER_LEN) {
		memcpy(c->header + c->header_have, buf, len);
		c->header_have += len;
		if (c->header_have == VMC_MIGP_HEADER_LEN) {
			migp_header_receive(c);
		}
	} else {
		memcpy(c->payload + c->payload_have, buf, len);
		c->payload_have += len;
		if (c->payload_have == c->length) {
			migp_payload_receive(c);
		}
	}
	return c->state == VMC_MIGP_FAILED ? -EPROTO : 0;
}

/* ---- connections ---- */

static struct vmc_migp *migp_new(enum vmc_migp_role role, const uint8_t key[VMC_MIGP_KEY_LEN])
{
	struct vmc_migp *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	c->role = role;
	c->state = VMC_MIGP_START;
	memcpy(c->key, key, VMC_MIGP_KEY_LEN);
	c->channel = VMC_MIGP_CONTROL;
	c->out_tail = &c->out_head;
	return c;
}

struct vmc_migp *vmc_migp_client_new(const uint8_t key[VMC_MIGP_KEY_LEN], const char *id,
				     enum vmc_migp_channel channel, uint32_t index)
{
	struct vmc_migp *c;
	const struct migp_action_row *row;
	int rc;

	if (!vmc_migp_id_valid(id) || (channel != VMC_MIGP_CONTROL && channel != VMC_MIGP_DATA) ||
	    (channel == VMC_MIGP_CONTROL && index != 0) || index >= VMC_MIGP_CHANNELS_MAX) {
		errno = EINVAL;
		return NULL;
	}
	c = migp_new(VMC_MIGP_CLIENT, key);
	if (c == NULL) {
		return NULL;
	}
	memcpy(c->id, id, VMC_MIGP_ID_LEN + 1);
	c->channel = channel;
	c->index = index;
	row = migp_action_find(c, ACT_HELLO);
	rc = RAND_bytes(c->nonce_client, sizeof(c->nonce_client)) == 1 ? 0 : -EIO;
	if (rc == 0) {
		rc = send_hello(c);
	}
	if (rc < 0) {
		vmc_migp_free(c);
		errno = -rc;
		return NULL;
	}
	migp_state_enter(c, row->next);
	return c;
}

struct vmc_migp *vmc_migp_server_new(const uint8_t key[VMC_MIGP_KEY_LEN])
{
	return migp_new(VMC_MIGP_SERVER, key);
}

void vmc_migp_free(struct vmc_migp *c)
{
	if (c == NULL) {
		return;
	}
	migp_input_reset(c);
	migp_output_drop(c, false);
	json_object_put(c->offer);
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
}

/* ---- the caller's answers ---- */

int vmc_migp_server_hello(struct vmc_migp *c, bool known, const char *code, const char *reason)
{
	const struct migp_action_row *row =
		migp_action_find(c, known ? ACT_CHALLENGE : ACT_HELLO_REFUSE);
	int rc;

	if (row == NULL) {
		return migp_action_refusal(c);
	}
	if (!known) {
		migp_fail(c, MIGP_TELL_PEER, code != NULL ? code : VMC_MIGP_E_UNKNOWN_ID, "%s",
			  reason != NULL ? reason : "");
		return 0;
	}
	if (RAND_bytes(c->nonce_server, sizeof(c->nonce_server)) != 1) {
		migp_fail_internal(c, -EIO, "no random bytes for a nonce");
		return -EIO;
	}
	rc = send_challenge(c);
	if (rc < 0) {
		migp_fail_internal(c, rc, "sending CHALLENGE");
		return rc;
	}
	c->version = c->version_chosen;
	migp_state_enter(c, row->next);
	return 0;
}

/* The OFFER frame, checked as the server will check it (codec, parser, fields). */
static int migp_offer_encode(json_object *offer, uint8_t **buf, size_t *len)
{
	char err[MIGP_ERR_LEN];
	json_object *again;
	bool nomem;
	int rc;

	if (!json_object_is_type(offer, json_type_object) ||
	    migp_body_check(VMC_MIGP_OFFER, offer, err, sizeof(err)) < 0) {
		return -EINVAL;
	}
	rc = vmc_migp_frame_encode(VMC_MIGP_OFFER, offer, buf, len);
	if (rc < 0) {
		return rc;
	}
	again = migp_payload_parse(*buf + VMC_MIGP_HEADER_LEN, *len - VMC_MIGP_HEADER_LEN, err,
				   sizeof(err), &nomem);
	if (again == NULL) {
		free(*buf);
		*buf = NULL;
		return nomem ? -ENOMEM : -EINVAL;
	}
	json_object_put(again);
	return 0;
}

int vmc_migp_client_offer(struct vmc_migp *c, json_object *offer)
{
	const struct migp_action_row *row = migp_action_find(c, ACT_OFFER);
	struct migp_frame *f;
	int rc;

	if (row == NULL) {
		json_object_put(offer);
		return migp_action_refusal(c);
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL) {
		json_object_put(offer);
		migp_fail_internal(c, -ENOMEM, "sending OFFER");
		return -ENOMEM;
	}
	rc = migp_offer_encode(offer, &f->data, &f->len);
	json_object_put(offer);
	if (rc < 0) {
		free(f);
		if (rc != -EINVAL) {
			migp_fail_internal(c, rc, "sending OFFER");
		}
		return rc;
	}
	*c->out_tail = f;
	c->out_tail = &f->next;
	migp_state_enter(c, row->next);
	return 0;
}

int vmc_migp_server_accept(struct vmc_migp *c)
{
	const struct migp_action_row *row = migp_action_find(c, ACT_ACCEPT);
	int rc;

	if (row == NULL) {
		return migp_action_refusal(c);
	}
	rc = send_empty(c, VMC_MIGP_ACCEPT);
	if (rc < 0) {
		migp_fail_internal(c, rc, "sending ACCEPT");
		return rc;
	}
	migp_state_enter(c, row->next);
	return 0;
}

int vmc_migp_server_refuse(struct vmc_migp *c, const char *code, const char *reason)
{
	if (migp_action_find(c, ACT_REFUSE) == NULL) {
		return migp_action_refusal(c);
	}
	migp_fail(c, MIGP_TELL_PEER, code != NULL ? code : VMC_MIGP_E_REFUSED, "%s",
		  reason != NULL ? reason : "");
	return 0;
}

int vmc_migp_server_received(struct vmc_migp *c)
{
	const struct migp_action_row *row = migp_action_find(c, ACT_RECEIVED);
	int rc;

	if (row == NULL) {
		return migp_action_refusal(c);
	}
	rc = send_empty(c, VMC_MIGP_RECEIVED);
	if (rc < 0) {
		migp_fail_internal(c, rc, "sending RECEIVED");
		return rc;
	}
	migp_state_enter(c, row->next);
	return 0;
}

/* ---- events and state ---- */

void vmc_migp_event_next(struct vmc_migp *c, struct vmc_migp_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	if (c->events_read == c->events_written) {
		ev->kind = VMC_MIGP_EV_NONE;
		return;
	}
	ev->kind = c->events[c->events_read++];
	memcpy(ev->id, c->id, sizeof(ev->id));
	ev->channel = c->channel;
	ev->index = c->index;
	if (ev->kind == VMC_MIGP_EV_OFFER) {
		ev->offer = c->offer;
	}
	if (ev->kind == VMC_MIGP_EV_FAILED) {
		memcpy(ev->code, c->code, sizeof(ev->code));
		memcpy(ev->reason, c->reason, sizeof(ev->reason));
		ev->from_peer = c->from_peer;
	}
}

enum vmc_migp_state vmc_migp_state_get(const struct vmc_migp *c)
{
	return c->state;
}

int vmc_migp_version(const struct vmc_migp *c)
{
	return c->version;
}
