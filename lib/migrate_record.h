/*
 * The records that carry an encrypted migration stream between two
 * migration agents (agents/migrate/relay.c moves them; this file only
 * seals and opens them, with no I/O and no threads).
 *
 * QEMU's migration stream is a byte stream with no integrity of its own,
 * and the agents carry it over a TCP connection any host on the path can
 * read and write. So each direction is cut into records sealed with
 * AES-256-GCM under that direction's key, which the agents' handshake
 * derived for this migration alone (with a 4-byte nonce salt):
 *
 *   off    size  field
 *    0       4   L, the plaintext length, big-endian (0 to VMC_MIG_RECORD_MAX)
 *    4       L   ciphertext
 *    4+L    16   GCM tag, over the ciphertext and the 4 header bytes (the AAD)
 *
 *   nonce (12 bytes, never sent) = salt (4) || record counter (8, big-endian)
 *
 * Both sides count records from 0, so the nonce binds each record to its
 * place in the stream: a record dropped, repeated, reordered or taken from
 * the other direction (another key) fails its tag, and so does one whose
 * length was changed, the length being in the AAD. A length above the
 * maximum is refused from the header alone, before its body is read, so
 * a forged header cannot make the receiver buffer more than one record.
 *
 * L = 0 is the close record: the sender's authenticated "that was all".
 * TCP's own end (FIN, or a reset) is not authenticated, so a stream that
 * ends without a close record has been cut short, and the receiver must
 * treat it as an error, never as the end of the migration.
 *
 *   opener  READY --header--> AWAIT_BODY --data record--> READY
 *                                        --close record--> CLOSED
 *   sealer  READY --seal--> READY --seal_close--> CLOSED
 *   either: a refused record, a call out of turn, a failure of the cipher,
 *           anything after CLOSED --> FAILED
 *
 * Failure is terminal: after one refused record an opener refuses
 * everything (GCM gives no way to resynchronise, and nothing after a
 * forgery can be trusted); so does a sealer after a failure of the
 * cipher. A sealer refuses to run its counter past 2^64 - 2 rather than
 * reuse a nonce.
 *
 * Versions: the records carry no magic and no version: which record
 * format the agents speak is settled by the handshake that derives the
 * keys, before the first record, and any other format gets other keys.
 *   1  this layout.
 *
 * The sealer and the opener are each used by one thread at a time.
 * Neither allocates per record: sealing and opening may be done in place
 * (see vmc_mig_seal and vmc_mig_open_body), so a relay needs one buffer
 * per direction.
 */
#ifndef VMC_MIGRATE_RECORD_H
#define VMC_MIGRATE_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/types.h>

#define VMC_MIG_KEY_LEN 32
#define VMC_MIG_SALT_LEN 4
#define VMC_MIG_NONCE_LEN 12
#define VMC_MIG_HEADER_LEN 4
#define VMC_MIG_TAG_LEN 16
/*
 * Longest plaintext in one record. 256 KiB: the relay reads up to this
 * much at a time, and above 64 KiB the per-record cost (a syscall each
 * way, one GCM setup) is lost in the noise, while a record is still small
 * enough to sit in L2 between the read, the cipher and the write
 * (bench/vmc-relay-bench.c measures it). Part of the wire format: a
 * receiver refuses anything longer.
 */
#define VMC_MIG_RECORD_MAX ((size_t)256 * 1024)
#define VMC_MIG_OVERHEAD (VMC_MIG_HEADER_LEN + VMC_MIG_TAG_LEN)
/* The largest record on the wire: the buffer a relay needs per direction. */
#define VMC_MIG_SEALED_MAX (VMC_MIG_RECORD_MAX + VMC_MIG_OVERHEAD)

/* One direction's secrets, from the handshake. */
struct vmc_mig_key {
	uint8_t key[VMC_MIG_KEY_LEN];
	uint8_t salt[VMC_MIG_SALT_LEN];
};

enum vmc_mig_record_state {
	VMC_MIG_READY = 0,       /* sealer: may seal; opener: awaits a header */
	VMC_MIG_AWAIT_BODY,      /* opener: a header was accepted, its body is next */
	VMC_MIG_CLOSED,          /* the close record was sealed / opened: nothing may follow */
	VMC_MIG_FAILED,          /* terminal: every call returns the first error again */
};

struct vmc_mig_sealer {
	EVP_CIPHER_CTX *ctx;
	uint8_t nonce[VMC_MIG_NONCE_LEN];   /* the salt, then the counter of the next record */
	uint64_t counter;                   /* records sealed so far */
	enum vmc_mig_record_state state;
	int error;                          /* the first failure, once FAILED */
};

struct vmc_mig_opener {
	EVP_CIPHER_CTX *ctx;
	uint8_t nonce[VMC_MIG_NONCE_LEN];
	uint64_t counter;                   /* records opened so far */
	uint8_t header[VMC_MIG_HEADER_LEN]; /* of the record whose body is awaited */
	size_t body_len;                    /* what that header announced, tag included */
	enum vmc_mig_record_state state;
	int error;
};

/*
 * 0, or -ENOMEM / -EIO (libcrypto could not set up the cipher). The key
 * is expanded into the cipher context; the caller may wipe its copy.
 * fini wipes and frees the context; it is safe on a zeroed struct and
 * twice.
 */
int vmc_mig_sealer_init(struct vmc_mig_sealer *s, const struct vmc_mig_key *k);
void vmc_mig_sealer_fini(struct vmc_mig_sealer *s);
int vmc_mig_opener_init(struct vmc_mig_opener *o, const struct vmc_mig_key *k);
void vmc_mig_opener_fini(struct vmc_mig_opener *o);

/*
 * Seals len (1 to VMC_MIG_RECORD_MAX) bytes of plain into out, which has
 * room for len + VMC_MIG_OVERHEAD bytes; *out_len is then that sum. To
 * seal in place, put the plaintext at out + VMC_MIG_HEADER_LEN (plain may
 * be exactly there, and must not otherwise overlap out). Errors: -EINVAL
 * (len out of range: an empty record would be the close), -EPIPE (after
 * the close), -EOVERFLOW (the counter is spent), -EIO (libcrypto); all
 * but -EINVAL are then sticky.
 */
int vmc_mig_seal(struct vmc_mig_sealer *s, const void *plain, size_t len, void *out, size_t *out_len);
/* The close record (VMC_MIG_OVERHEAD bytes) into out; the sealer is then CLOSED. */
int vmc_mig_seal_close(struct vmc_mig_sealer *s, void *out, size_t *out_len);

/*
 * The next record's VMC_MIG_HEADER_LEN bytes: *body_len is how many
 * bytes to read next (the ciphertext and the tag). -EMSGSIZE when the
 * length is above VMC_MIG_RECORD_MAX; -EPIPE after the close record;
 * -EINVAL when a body was due.
 */
int vmc_mig_open_header(struct vmc_mig_opener *o, const uint8_t *header, size_t *body_len);
/*
 * The body announced by the last header (body_len bytes exactly). On 0,
 * plain holds the *plain_len bytes of plaintext; *plain_len = 0 is the
 * close record, and the opener is then CLOSED. plain has room for
 * body_len - VMC_MIG_TAG_LEN bytes and may be body itself (in place) but
 * must not otherwise overlap it. -EBADMSG when the tag does not match (a
 * damaged, forged, replayed, reordered or misdirected record): plain is
 * then wiped, since GCM decrypts before it can tell, and nothing
 * unauthenticated may reach QEMU. Every error is sticky.
 */
int vmc_mig_open_body(struct vmc_mig_opener *o, const void *body, size_t body_len, void *plain,
		      size_t *plain_len);

const char *vmc_mig_record_state_to_str(enum vmc_mig_record_state state);

#endif
