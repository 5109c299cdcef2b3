/*
 * Sealing and opening migration records (migrate_record.h).
 *
 * The cipher context is set up once with the key; each record only sets
 * the nonce, so the AES key schedule and the GHASH tables are computed
 * once per migration, not once per record.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "migrate_record.h"

#define COUNTER_AT VMC_MIG_SALT_LEN
/* The last counter value is never used, so "spent" is one comparison. */
#define COUNTER_SPENT UINT64_MAX

_Static_assert(VMC_MIG_RECORD_MAX <= INT_MAX - VMC_MIG_OVERHEAD, "EVP lengths are int");
_Static_assert(VMC_MIG_RECORD_MAX <= UINT32_MAX, "the header holds 32 bits");

static void put_be32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

/* A context holding the key, for encrypt (1) or decrypt (0). */
static int cipher_new(const struct vmc_mig_key *k, int encrypt, EVP_CIPHER_CTX **out)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

	if (ctx == NULL) {
		return -ENOMEM;
	}
	if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, k->key, NULL, encrypt) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, VMC_MIG_NONCE_LEN, NULL) != 1) {
		EVP_CIPHER_CTX_free(ctx);
		return -EIO;
	}
	*out = ctx;
	return 0;
}

/* The nonce of record number counter: the salt stays, the counter follows it. */
static void nonce_set(uint8_t *nonce, uint64_t counter)
{
	put_be64(nonce + COUNTER_AT, counter);
}

int vmc_mig_sealer_init(struct vmc_mig_sealer *s, const struct vmc_mig_key *k)
{
	memset(s, 0, sizeof(*s));
	memcpy(s->nonce, k->salt, VMC_MIG_SALT_LEN);
	return cipher_new(k, 1, &s->ctx);
}

void vmc_mig_sealer_fini(struct vmc_mig_sealer *s)
{
	EVP_CIPHER_CTX_free(s->ctx);
	OPENSSL_cleanse(s, sizeof(*s));
	s->state = VMC_MIG_FAILED;
	s->error = -EBADF;
}

int vmc_mig_opener_init(struct vmc_mig_opener *o, const struct vmc_mig_key *k)
{
	memset(o, 0, sizeof(*o));
	memcpy(o->nonce, k->salt, VMC_MIG_SALT_LEN);
	return cipher_new(k, 0, &o->ctx);
}

void vmc_mig_opener_fini(struct vmc_mig_opener *o)
{
	EVP_CIPHER_CTX_free(o->ctx);
	OPENSSL_cleanse(o, sizeof(*o));
	o->state = VMC_MIG_FAILED;
	o->error = -EBADF;
}

static int sealer_fail(struct vmc_mig_sealer *s, int rc)
{
	s->state = VMC_MIG_FAILED;
	s->error = rc;
	return rc;
}

/* Header, ciphertext and tag of len bytes (0: the close) into out. */
static int seal_record(struct vmc_mig_sealer *s, const void *plain, size_t len, uint8_t *out)
{
	uint8_t *body = out + VMC_MIG_HEADER_LEN;
	int n;

	put_be32(out, (uint32_t)len);
	if (EVP_EncryptInit_ex(s->ctx, NULL, NULL, NULL, s->nonce) != 1 ||
	    EVP_EncryptUpdate(s->ctx, NULL, &n, out, VMC_MIG_HEADER_LEN) != 1) {
		return -EIO;
	}
	if (len > 0 && EVP_EncryptUpdate(s->ctx, body, &n, plain, (int)len) != 1) {
		return -EIO;
	}
	if (EVP_EncryptFinal_ex(s->ctx, body + len, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_GCM_GET_TAG, VMC_MIG_TAG_LEN, body + len) != 1) {
		return -EIO;
	}
	return 0;
}

static int seal(struct vmc_mig_sealer *s, const void *plain, size_t len, void *out, size_t *out_len)
{
	int rc;

	if (s->state == VMC_MIG_FAILED) {
		return s->error;
	}
	if (s->state == VMC_MIG_CLOSED) {
		return sealer_fail(s, -EPIPE);
	}
	if (s->counter == COUNTER_SPENT) {
		return sealer_fail(s, -EOVERFLOW);
	}
	nonce_set(s->nonce, s->counter);
	rc = seal_record(s, plain, len, out);
	if (rc != 0) {
		return sealer_fail(s, rc);
	}
	s->counter++;
	*out_len = len + VMC_MIG_OVERHEAD;
	return 0;
}

int vmc_mig_seal(struct vmc_mig_sealer *s, const void *plain, size_t len, void *out, size_t *out_len)
{
	if (len == 0 || len > VMC_MIG_RECORD_MAX) {
		return -EINVAL;
	}
	return seal(s, plain, len, out, out_len);
}

int vmc_mig_seal_close(struct vmc_mig_sealer *s, void *out, size_t *out_len)
{
	int rc = seal(s, NULL, 0, out, out_len);

	if (rc == 0) {
		s->state = VMC_MIG_CLOSED;
	}
	return rc;
}

static int opener_fail(struct vmc_mig_opener *o, int rc)
{
	o->state = VMC_MIG_FAILED;
	o->error = rc;
	return rc;
}

/* The first call that does not fit the opener's state, or 0 when it fits. */
static int opener_refusal(const struct vmc_mig_opener *o, enum vmc_mig_record_state expected)
{
	if (o->state == VMC_MIG_FAILED) {
		return o->error;
	}
	if (o->state == VMC_MIG_CLOSED) {
		return -EPIPE;
	}
	return o->state == expected ? 0 : -EINVAL;
}

int vmc_mig_open_header(struct vmc_mig_opener *o, const uint8_t *header, size_t *body_len)
{
	int rc = opener_refusal(o, VMC_MIG_READY);
	uint32_t len;

	if (rc != 0) {
		return opener_fail(o, rc);
	}
	len = get_be32(header);
	if (len > VMC_MIG_RECORD_MAX) {
		return opener_fail(o, -EMSGSIZE);
	}
	memcpy(o->header, header, VMC_MIG_HEADER_LEN);
	o->body_len = (size_t)len + VMC_MIG_TAG_LEN;
	o->state = VMC_MIG_AWAIT_BODY;
	*body_len = o->body_len;
	return 0;
}

/* 0 when the tag matches; the plaintext is in plain either way. */
static int open_record(struct vmc_mig_opener *o, const uint8_t *body, size_t len, uint8_t *plain)
{
	uint8_t tag[VMC_MIG_TAG_LEN];
	int n;

	/* GCM_SET_TAG takes a non-const pointer: copy rather than cast away const. */
	memcpy(tag, body + len, VMC_MIG_TAG_LEN);
	if (EVP_DecryptInit_ex(o->ctx, NULL, NULL, NULL, o->nonce) != 1 ||
	    EVP_DecryptUpdate(o->ctx, NULL, &n, o->header, VMC_MIG_HEADER_LEN) != 1) {
		return -EIO;
	}
	if (len > 0 && EVP_DecryptUpdate(o->ctx, plain, &n, body, (int)len) != 1) {
		return -EIO;
	}
	if (EVP_CIPHER_CTX_ctrl(o->ctx, EVP_CTRL_GCM_SET_TAG, VMC_MIG_TAG_LEN, tag) != 1) {
		return -EIO;
	}
	return EVP_DecryptFinal_ex(o->ctx, plain + len, &n) == 1 ? 0 : -EBADMSG;
}

/* Refusals that leave plain untouched: the record's place, its length, the counter. */
static int body_refusal(const struct vmc_mig_opener *o, size_t body_len)
{
	int rc = opener_refusal(o, VMC_MIG_AWAIT_BODY);

	if (rc == 0 && body_len != o->body_len) {
		rc = -EINVAL;
	}
	if (rc == 0 && o->counter == COUNTER_SPENT) {
		rc = -EOVERFLOW;
	}
	return rc;
}

int vmc_mig_open_body(struct vmc_mig_opener *o, const void *body, size_t body_len, void *plain,
		      size_t *plain_len)
{
	int rc = body_refusal(o, body_len);
	size_t len = body_len - VMC_MIG_TAG_LEN;

	if (rc != 0) {
		return opener_fail(o, rc);
	}
	nonce_set(o->nonce, o->counter);
	rc = open_record(o, body, len, plain);
	if (rc != 0) {
		OPENSSL_cleanse(plain, len);
		return opener_fail(o, rc);
	}
	o->counter++;
	o->state = len == 0 ? VMC_MIG_CLOSED : VMC_MIG_READY;
	*plain_len = len;
	return 0;
}

const char *vmc_mig_record_state_to_str(enum vmc_mig_record_state state)
{
	switch (state) {
	case VMC_MIG_READY:
		return "ready";
	case VMC_MIG_AWAIT_BODY:
		return "await-body";
	case VMC_MIG_CLOSED:
		return "closed";
	case VMC_MIG_FAILED:
		return "failed";
	}
	return "?";
}
