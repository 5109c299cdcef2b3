/*
 * The migration agents' wire protocol (vmcluster-migrate, agents/migrate/):
 * how a source agent and a destination agent authenticate each other and
 * agree on a migration before any byte reaches a QEMU.
 *
 * The engine does no I/O, like lib/qmp.c: the caller feeds it the bytes
 * it read (never more than vmc_migp_wanted() asks for, so not one byte of
 * the migration stream that follows a data channel's handshake is taken),
 * writes what it queued, and takes its events. Both roles are tables of
 * {state, message received, next state} (migrate_proto.c); a message the
 * table does not have for the state fails the connection.
 *
 * One migration uses one control connection and one or more data
 * connections, each opened by the source and each authenticated on its
 * own (so nothing unauthenticated ever reaches QEMU):
 *
 *   source (client)                              destination (server)
 *     | HELLO {proto_min, proto_max, id, channel, index, nonce Nc}
 *     |------------------------------------------->| id known here and unused?
 *     |      CHALLENGE {proto, nonce Ns, proof S}  |   else ERROR unknown-id / id-used
 *     |<-------------------------------------------|
 *     | S checked; PROOF {proof C}                 |
 *     |------------------------------------------->| C checked, else ERROR auth
 *     |                   WELCOME {}               |
 *     |<-------------------------------------------|
 *   control channel:                               |
 *     | OFFER {definition, mode, encrypt, channels, source}
 *     |------------------------------------------->| checks; QEMU -incoming defer
 *     |        ACCEPT {} | ERROR {code, reason}    |
 *     |<-------------------------------------------|
 *   data channel(s): after WELCOME the connection carries QEMU's stream
 *     (handed to QEMU, or sealed records: migrate_record.h)
 *   control channel, at the end:                   |
 *     |   RECEIVED {} (destination QEMU complete)  |
 *     |<-------------------------------------------|
 *   either side, at any point: ERROR {code, reason}, then it closes.
 *
 *   proof S = HMAC-SHA256(K, "vmcm1 server" | id | channel | index | Nc | Ns)
 *   proof C = HMAC-SHA256(K, "vmcm1 client" | id | channel | index | Nc | Ns)
 *   K       = HMAC-SHA256(cluster key, "vmcluster-migrate auth v1")
 *
 * Both nonces are fresh per connection, so a recorded handshake replayed
 * fails at proof C (Ns differs), and the two labels keep a proof of one
 * side from ever passing for the other's. The destination learns which
 * ids to expect from its daemon and takes each control id once.
 *
 * A frame: a fixed 12-byte header, then a JSON object (UTF-8, no NUL):
 *
 *   offset size field
 *    0     4   magic    "VMCM"
 *    4     1   version  frame format, 1
 *    5     1   type     enum vmc_migp_type; 0 is invalid
 *    6     2   reserved 0
 *    8     4   length   payload bytes, big-endian, 2..VMC_MIGP_PAYLOAD_MAX
 *
 * Protocol history (add, never change; a type number is never reused):
 *   1  HELLO, CHALLENGE, PROOF, WELCOME, OFFER, ACCEPT, RECEIVED, ERROR
 * The client offers [proto_min, proto_max]; the server answers with the
 * highest version both speak (ERROR version when none). Fields added to a
 * body later are optional to a reader; unknown fields are ignored.
 */
#ifndef VMC_MIGRATE_PROTO_H
#define VMC_MIGRATE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#define VMC_MIGP_PROTO_MIN 1
#define VMC_MIGP_PROTO_MAX 1
#define VMC_MIGP_HEADER_LEN 12
#define VMC_MIGP_PAYLOAD_MAX (1024 * 1024)
#define VMC_MIGP_NONCE_LEN 32
#define VMC_MIGP_KEY_LEN 32
/* A migration id: 32 lowercase hex digits (128 random bits). */
#define VMC_MIGP_ID_LEN 32
/* Data channels per migration, at most. */
#define VMC_MIGP_CHANNELS_MAX 16
/* JSON nesting a reader accepts in a payload (the OFFER's definition included). */
#define VMC_MIGP_JSON_DEPTH_MAX 64

enum vmc_migp_type {
	VMC_MIGP_INVALID = 0,
	VMC_MIGP_HELLO = 1,
	VMC_MIGP_CHALLENGE = 2,
	VMC_MIGP_PROOF = 3,
	VMC_MIGP_WELCOME = 4,
	VMC_MIGP_OFFER = 5,
	VMC_MIGP_ACCEPT = 6,
	VMC_MIGP_RECEIVED = 7,
	VMC_MIGP_ERROR = 8,
	VMC_MIGP_TYPE_COUNT,
};

enum vmc_migp_role {
	VMC_MIGP_CLIENT, /* the source: connects, offers */
	VMC_MIGP_SERVER, /* the destination: listens, checks */
};

enum vmc_migp_channel {
	VMC_MIGP_CONTROL,
	VMC_MIGP_DATA,
};

/* Error codes an ERROR frame carries (and this engine's own failures). */
#define VMC_MIGP_E_VERSION "version"        /* no protocol version in common */
#define VMC_MIGP_E_AUTH "auth"              /* a proof did not check: wrong key */
#define VMC_MIGP_E_UNKNOWN_ID "unknown-id"  /* no such migration expected here */
#define VMC_MIGP_E_ID_USED "id-used"        /* that migration's control channel came already */
#define VMC_MIGP_E_PROTOCOL "protocol"      /* malformed or unexpected frame */
#define VMC_MIGP_E_REFUSED "refused"        /* a check refused the migration */
#define VMC_MIGP_E_TIMEOUT "timeout"
#define VMC_MIGP_E_ABORTED "aborted"        /* the other side gave up (its reason follows) */
#define VMC_MIGP_E_INTERNAL "internal"

/*
 * The states, for both roles (a row of the table names the role):
 *
 *   client: START -hello sent-> HELLO_SENT -CHALLENGE-> PROOF_SENT -WELCOME-> AUTHED
 *           control: AUTHED -offer sent-> OFFERED -ACCEPT-> STREAMING -RECEIVED-> DONE
 *           data:    AUTHED is the end (the caller takes the socket)
 *   server: START -HELLO-> HELLO_RECEIVED -hello known-> CHALLENGED -PROOF-> AUTHED
 *                          HELLO_RECEIVED -hello not known-> FAILED
 *           control: AUTHED -OFFER-> OFFERED -accept-> STREAMING -received-> DONE
 *                                     OFFERED -refuse-> FAILED
 *   both:   any but DONE -ERROR, bad frame, vmc_migp_fail(), abort-> FAILED
 *
 * DONE and FAILED are terminal. HELLO_RECEIVED and the server's OFFERED
 * wait for the caller's answer; nothing is read meanwhile. The server's
 * STREAMING reads only to take an ERROR (the source gave up).
 *
 * Events: each state is entered at most once, and each entry gives at
 * most one event, so events never pile up. A connection that enters
 * FAILED gives exactly one EV_FAILED, also when the caller failed it
 * (vmc_migp_fail, abort, refuse, server_hello(false)).
 */
enum vmc_migp_state {
	VMC_MIGP_START = 0,
	VMC_MIGP_HELLO_SENT,
	VMC_MIGP_HELLO_RECEIVED, /* server: the HELLO waits for vmc_migp_server_hello() */
	VMC_MIGP_CHALLENGED,
	VMC_MIGP_PROOF_SENT,
	VMC_MIGP_AUTHED,
	VMC_MIGP_OFFERED,
	VMC_MIGP_STREAMING,
	VMC_MIGP_DONE,
	VMC_MIGP_FAILED,
	VMC_MIGP_STATE_COUNT,
};

/* What the engine tells its caller, one at a time (vmc_migp_event_next). */
enum vmc_migp_event_kind {
	VMC_MIGP_EV_NONE = 0,
	VMC_MIGP_EV_HELLO,    /* server: a HELLO arrived; answer with vmc_migp_server_hello() */
	VMC_MIGP_EV_AUTHED,   /* both: the peer is authenticated (client: WELCOME came; server: proof checked) */
	VMC_MIGP_EV_OFFER,    /* server: the OFFER arrived; answer with accept or refuse */
	VMC_MIGP_EV_ACCEPTED, /* client: the destination is ready for the stream */
	VMC_MIGP_EV_RECEIVED, /* client: the destination QEMU has it all */
	VMC_MIGP_EV_FAILED,   /* both: terminal; code and reason say why */
};

struct vmc_migp_event {
	enum vmc_migp_event_kind kind;
	/* HELLO, and every event once they are known ("" and 0 before): */
	char id[VMC_MIGP_ID_LEN + 1];
	enum vmc_migp_channel channel;
	uint32_t index;              /* data channel number, 0 for control */
	/* OFFER (valid until the next call into the engine; take a reference to keep it): */
	json_object *offer;          /* the whole OFFER body */
	/* FAILED: */
	char code[24];               /* a VMC_MIGP_E_* */
	char reason[256];            /* one line */
	bool from_peer;              /* the peer sent ERROR (else this side failed) */
};

struct vmc_migp;

/*
 * A connection in role, with key = K (vmc_migp_auth_key). NULL when out
 * of memory (errno ENOMEM), the OS gave no random bytes (EIO) or, for a
 * client, id, channel or index is invalid (EINVAL: a control channel is
 * index 0, a data channel 0..VMC_MIGP_CHANNELS_MAX-1). A client is given
 * its id, channel and index here and queues its HELLO at once (with a
 * nonce from the OS's random source).
 */
struct vmc_migp *vmc_migp_client_new(const uint8_t key[VMC_MIGP_KEY_LEN], const char *id,
				     enum vmc_migp_channel channel, uint32_t index);
struct vmc_migp *vmc_migp_server_new(const uint8_t key[VMC_MIGP_KEY_LEN]);
void vmc_migp_free(struct vmc_migp *c);

/* K from the cluster key's bytes (the corosync authkey). 0, -EINVAL (len 0 or > INT_MAX), -EIO. */
int vmc_migp_auth_key(const void *cluster_key, size_t len, uint8_t key[VMC_MIGP_KEY_LEN]);
/* A fresh migration id (32 hex digits + NUL) from the OS's random source. 0 or -errno. */
int vmc_migp_new_id(char id[VMC_MIGP_ID_LEN + 1]);
/* id is 32 lowercase hex digits. */
bool vmc_migp_id_valid(const char *id);

/*
 * Keys of one data channel's sealed stream (migrate_record.h), derived
 * from the cluster key's K and what this channel's handshake exchanged,
 * so they differ per migration, channel and direction. Valid once
 * AUTHED (on either kind of channel) and until FAILED; tx is what this
 * side sends. 0, -EINVAL before AUTHED or once FAILED, -EIO when the
 * HMAC could not be computed (out of memory).
 */
struct vmc_migp_stream_keys {
	uint8_t tx_key[32];
	uint8_t tx_salt[4];
	uint8_t rx_key[32];
	uint8_t rx_salt[4];
};
int vmc_migp_stream_keys(const struct vmc_migp *c, struct vmc_migp_stream_keys *out);

/*
 * How many bytes the engine wants next: the rest of the frame header or
 * of the payload. Read at most this many, so nothing past the handshake
 * is ever taken from the socket. 0 when it expects nothing (its turn to
 * write, or AUTHED on a data channel, DONE, FAILED).
 */
size_t vmc_migp_wanted(const struct vmc_migp *c);
/*
 * Bytes read. 0, or -EPROTO when they failed the connection (an event
 * FAILED is queued, and an ERROR frame for the peer), -EINVAL when more
 * than vmc_migp_wanted() were given, -ENOTCONN once FAILED or DONE.
 */
int vmc_migp_feed(struct vmc_migp *c, const void *buf, size_t len);
/*
 * The peer closed the connection (EOF), or a deadline passed: FAILED with
 * this code and reason (NULL: "aborted", ""). Nothing is sent (what was
 * queued is dropped). Does nothing once FAILED or DONE.
 */
void vmc_migp_fail(struct vmc_migp *c, const char *code, const char *reason);

/*
 * The bytes to write next, one frame (or the rest of one) at a time; 0
 * and *data NULL when none. Then report how many of them were written
 * (n larger than what vmc_migp_output gave counts as all of it). Once
 * FAILED, only the rest of a frame already begun and the ERROR for the
 * peer (if any) are left to write.
 */
size_t vmc_migp_output(const struct vmc_migp *c, const void **data);
void vmc_migp_output_consume(struct vmc_migp *c, size_t n);

/* The next event (kind NONE when there is none). */
void vmc_migp_event_next(struct vmc_migp *c, struct vmc_migp_event *ev);

/*
 * The caller's answers below return 0; -ENOTCONN once FAILED or DONE;
 * -EINVAL when this role, state or channel takes no such answer, or an
 * argument is invalid (the connection is unchanged); -ENOMEM or -EIO
 * when the engine could not do it (it failed the connection: "internal").
 *
 * Server, after EV_HELLO: known says whether the caller expects this id
 * (and, for a control channel, has not seen it yet). true: CHALLENGE is
 * queued; false: ERROR with code (NULL: "unknown-id") and reason is
 * queued, then FAILED.
 */
int vmc_migp_server_hello(struct vmc_migp *c, bool known, const char *code, const char *reason);

/*
 * Client, once AUTHED on the control channel: OFFER with this body
 * (consumed, also on error). -EINVAL when the body is not what a server
 * accepts (the fields and types of OFFER, no NUL in a string, nesting
 * within VMC_MIGP_JSON_DEPTH_MAX): it is checked as the server will.
 */
int vmc_migp_client_offer(struct vmc_migp *c, json_object *offer);
/* Server, after EV_OFFER: ACCEPT, or ERROR with code (NULL: "refused") and reason (then FAILED). */
int vmc_migp_server_accept(struct vmc_migp *c);
int vmc_migp_server_refuse(struct vmc_migp *c, const char *code, const char *reason);
/* Server, STREAMING: the destination QEMU completed: RECEIVED, then DONE. */
int vmc_migp_server_received(struct vmc_migp *c);
/*
 * Either side, any state but FAILED and DONE: ERROR {code (NULL:
 * "aborted"), reason} queued, then FAILED.
 */
int vmc_migp_abort(struct vmc_migp *c, const char *code, const char *reason);

enum vmc_migp_state vmc_migp_state_get(const struct vmc_migp *c);
const char *vmc_migp_state_to_str(enum vmc_migp_state s);
const char *vmc_migp_type_to_str(uint8_t type);
/* The protocol version agreed (0 before CHALLENGE). */
int vmc_migp_version(const struct vmc_migp *c);

/*
 * Frame codec, shared with the tests: a frame of type with body (a JSON
 * object, not consumed) into a new malloc()ed buffer (0, -EINVAL for an
 * unknown type, a body that is not an object or has a NUL in a string,
 * -EMSGSIZE, -ENOMEM); and the header's fields, checked (magic, version,
 * type known, reserved 0, length in range): 0 or -EPROTO with err set.
 */
int vmc_migp_frame_encode(uint8_t type, json_object *body, uint8_t **buf, size_t *len);
int vmc_migp_header_decode(const uint8_t hdr[VMC_MIGP_HEADER_LEN], uint8_t *type, uint32_t *length,
			   char *err, size_t errlen);

#endif
