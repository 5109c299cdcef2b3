/*
 * Unit tests of the migration record layer (lib/migrate_record.c): a
 * known answer computed elsewhere (so the nonce, the AAD and the byte
 * order are the header comment's, not just self-consistent), round trips
 * of every interesting size, and one refusal per way a stream can be
 * damaged: any single bit flipped, a record reordered, replayed, cut
 * short, sealed under another key, a length above the maximum; and the
 * opener staying failed after a refusal.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "migrate_record.h"
#include "check_run.h"

#define TEST_TIMEOUT_S 60
/* The stream was cut inside a record: what a feeder returns at the end of its bytes. */
#define CUT_SHORT 1

static uint8_t sealed[4][VMC_MIG_SEALED_MAX];
static uint8_t plain_in[VMC_MIG_RECORD_MAX];
static uint8_t plain_out[VMC_MIG_RECORD_MAX + VMC_MIG_TAG_LEN];

static struct vmc_mig_key key_make(uint8_t first)
{
	struct vmc_mig_key k;

	for (int i = 0; i < VMC_MIG_KEY_LEN; i++) {
		k.key[i] = (uint8_t)(first + i);
	}
	memcpy(k.salt, "\xa1\xb2\xc3\xd4", VMC_MIG_SALT_LEN);
	return k;
}

static void pattern_fill(uint8_t *p, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

static void sealer_start(struct vmc_mig_sealer *s, const struct vmc_mig_key *k)
{
	ck_assert_int_eq(vmc_mig_sealer_init(s, k), 0);
}

static void opener_start(struct vmc_mig_opener *o, const struct vmc_mig_key *k)
{
	ck_assert_int_eq(vmc_mig_opener_init(o, k), 0);
}

static size_t seal_ok(struct vmc_mig_sealer *s, const void *plain, size_t len, uint8_t *out)
{
	size_t out_len = 0;

	ck_assert_int_eq(vmc_mig_seal(s, plain, len, out, &out_len), 0);
	ck_assert_uint_eq(out_len, len + VMC_MIG_OVERHEAD);
	return out_len;
}

static size_t seal_close_ok(struct vmc_mig_sealer *s, uint8_t *out)
{
	size_t out_len = 0;

	ck_assert_int_eq(vmc_mig_seal_close(s, out, &out_len), 0);
	ck_assert_uint_eq(out_len, VMC_MIG_OVERHEAD);
	return out_len;
}

/*
 * Feeds a byte stream to o as a relay would: a header, then the body it
 * announces. Plaintext accepted is appended to out (*out_len). Returns 0
 * when the bytes ended on a record boundary, CUT_SHORT when they ended
 * inside one, or the opener's error.
 */
static int stream_feed(struct vmc_mig_opener *o, const uint8_t *p, size_t n, uint8_t *out, size_t *out_len)
{
	size_t at = 0, body_len, got;
	int rc;

	while (at < n) {
		if (n - at < VMC_MIG_HEADER_LEN) {
			return CUT_SHORT;
		}
		rc = vmc_mig_open_header(o, p + at, &body_len);
		if (rc != 0) {
			return rc;
		}
		at += VMC_MIG_HEADER_LEN;
		if (n - at < body_len) {
			return CUT_SHORT;
		}
		rc = vmc_mig_open_body(o, p + at, body_len, out + *out_len, &got);
		if (rc != 0) {
			return rc;
		}
		at += body_len;
		*out_len += got;
	}
	return 0;
}

/* A stream that must not release a single byte of plaintext. */
static void assert_refused(const struct vmc_mig_key *k, const uint8_t *p, size_t n)
{
	static uint8_t out[2 * VMC_MIG_SEALED_MAX];
	struct vmc_mig_opener o;
	size_t out_len = 0;

	opener_start(&o, k);
	ck_assert_int_ne(stream_feed(&o, p, n, out, &out_len), 0);
	ck_assert_uint_eq(out_len, 0);
	ck_assert_int_ne(o.state, VMC_MIG_CLOSED);
	vmc_mig_opener_fini(&o);
}

START_TEST(test_known_answer)
{
	/* From Python's cryptography AESGCM: key 00..1f, salt a1b2c3d4, AAD = header. */
	static const uint8_t want0[] = { 0x00, 0x00, 0x00, 0x08, 0xd3, 0x46, 0x63, 0xa5, 0x9c, 0x9e,
					 0xc3, 0x07, 0xdf, 0x5e, 0x00, 0xb4, 0x4e, 0xfe, 0x8a, 0x34,
					 0x14, 0xb8, 0x72, 0x57, 0x39, 0xf9, 0x0d, 0xca };
	static const uint8_t want1[] = { 0x00, 0x00, 0x00, 0x00, 0x69, 0xaf, 0x06, 0xeb, 0xb7, 0xf8,
					 0x2a, 0x95, 0xf4, 0xfa, 0x0e, 0x8f, 0x34, 0x02, 0x0e, 0x1f };
	struct vmc_mig_key k = key_make(0);
	struct vmc_mig_sealer s;
	size_t n;

	sealer_start(&s, &k);
	n = seal_ok(&s, "QEVM\0\0\0\3", 8, sealed[0]);
	ck_assert_uint_eq(n, sizeof(want0));
	ck_assert_mem_eq(sealed[0], want0, sizeof(want0));
	seal_close_ok(&s, sealed[0]);
	ck_assert_mem_eq(sealed[0], want1, sizeof(want1));
	vmc_mig_sealer_fini(&s);
}
END_TEST

static const size_t round_trip_sizes[] = { 1, 2, 15, 16, 17, 255, 4096, 65535, 65536,
					   VMC_MIG_RECORD_MAX - 1, VMC_MIG_RECORD_MAX };

START_TEST(test_round_trip_sizes)
{
	struct vmc_mig_key k = key_make(7);
	struct vmc_mig_sealer s;
	struct vmc_mig_opener o;
	size_t n_sizes = sizeof(round_trip_sizes) / sizeof(round_trip_sizes[0]);
	const uint8_t *rec = sealed[0], *body = rec + VMC_MIG_HEADER_LEN;
	size_t n, body_len, got;

	sealer_start(&s, &k);
	opener_start(&o, &k);
	for (size_t i = 0; i < n_sizes; i++) {
		size_t len = round_trip_sizes[i];

		pattern_fill(plain_in, len, (uint32_t)i);
		n = seal_ok(&s, plain_in, len, sealed[0]);
		ck_assert_uint_eq((uint32_t)rec[0] << 24 | rec[1] << 16 | rec[2] << 8 | rec[3], len);
		ck_assert_int_eq(vmc_mig_open_header(&o, rec, &body_len), 0);
		ck_assert_uint_eq(body_len, n - VMC_MIG_HEADER_LEN);
		ck_assert_int_eq(vmc_mig_open_body(&o, body, body_len, plain_out, &got), 0);
		ck_assert_uint_eq(got, len);
		ck_assert_mem_eq(plain_out, plain_in, len);
		ck_assert_int_eq(o.state, VMC_MIG_READY);
	}
	seal_close_ok(&s, sealed[0]);
	ck_assert_int_eq(vmc_mig_open_header(&o, rec, &body_len), 0);
	ck_assert_uint_eq(body_len, VMC_MIG_TAG_LEN);
	ck_assert_int_eq(vmc_mig_open_body(&o, body, body_len, plain_out, &got), 0);
	ck_assert_uint_eq(got, 0);
	ck_assert_int_eq(o.state, VMC_MIG_CLOSED);
	vmc_mig_sealer_fini(&s);
	vmc_mig_opener_fini(&o);
}
END_TEST

/* The relay's way: plaintext read at out + header, sealed there, opened where it lies. */
START_TEST(test_in_place)
{
	struct vmc_mig_key k = key_make(9);
	struct vmc_mig_sealer s;
	struct vmc_mig_opener o;
	uint8_t *buf = sealed[0], *body = buf + VMC_MIG_HEADER_LEN;
	size_t n, body_len, got;

	sealer_start(&s, &k);
	opener_start(&o, &k);
	pattern_fill(plain_in, VMC_MIG_RECORD_MAX, 3);
	memcpy(body, plain_in, VMC_MIG_RECORD_MAX);
	n = seal_ok(&s, body, VMC_MIG_RECORD_MAX, buf);
	ck_assert_int_ne(memcmp(body, plain_in, 64), 0);
	ck_assert_int_eq(vmc_mig_open_header(&o, buf, &body_len), 0);
	ck_assert_uint_eq(body_len, n - VMC_MIG_HEADER_LEN);
	ck_assert_int_eq(vmc_mig_open_body(&o, body, body_len, body, &got), 0);
	ck_assert_uint_eq(got, VMC_MIG_RECORD_MAX);
	ck_assert_mem_eq(body, plain_in, VMC_MIG_RECORD_MAX);
	vmc_mig_sealer_fini(&s);
	vmc_mig_opener_fini(&o);
}
END_TEST

START_TEST(test_seal_refuses_bad_lengths_and_after_close)
{
	struct vmc_mig_key k = key_make(1);
	struct vmc_mig_sealer s;
	size_t n = 0;

	sealer_start(&s, &k);
	ck_assert_int_eq(vmc_mig_seal(&s, plain_in, 0, sealed[0], &n), -EINVAL);
	ck_assert_int_eq(vmc_mig_seal(&s, plain_in, VMC_MIG_RECORD_MAX + 1, sealed[0], &n), -EINVAL);
	ck_assert_int_eq(s.state, VMC_MIG_READY);
	ck_assert_uint_eq(s.counter, 0);
	seal_close_ok(&s, sealed[0]);
	ck_assert_int_eq(vmc_mig_seal(&s, plain_in, 1, sealed[0], &n), -EPIPE);
	ck_assert_int_eq(vmc_mig_seal_close(&s, sealed[0], &n), -EPIPE);
	vmc_mig_sealer_fini(&s);
}
END_TEST

START_TEST(test_nothing_after_close)
{
	struct vmc_mig_key k = key_make(1);
	struct vmc_mig_sealer s, s2;
	struct vmc_mig_opener o;
	uint8_t out[64];
	size_t n0, n1, out_len = 0;

	sealer_start(&s, &k);
	opener_start(&o, &k);
	n0 = seal_close_ok(&s, sealed[0]);
	/* a record sealed as if the stream went on (counter 1) */
	sealer_start(&s2, &k);
	s2.counter = 1;
	n1 = seal_ok(&s2, "more", 4, sealed[1]);
	ck_assert_int_eq(stream_feed(&o, sealed[0], n0, out, &out_len), 0);
	ck_assert_int_eq(o.state, VMC_MIG_CLOSED);
	ck_assert_int_eq(stream_feed(&o, sealed[1], n1, out, &out_len), -EPIPE);
	ck_assert_uint_eq(out_len, 0);
	vmc_mig_sealer_fini(&s);
	vmc_mig_sealer_fini(&s2);
	vmc_mig_opener_fini(&o);
}
END_TEST

/* Every bit of a data record, then of a close record, flipped one at a time. */
START_TEST(test_every_bit_flip_refused)
{
	static uint8_t stream[2 * 128];
	struct vmc_mig_key k = key_make(3);
	struct vmc_mig_sealer s;
	size_t n0, n1;

	sealer_start(&s, &k);
	pattern_fill(plain_in, 64, 5);
	n0 = seal_ok(&s, plain_in, 64, stream);
	n1 = seal_close_ok(&s, stream + n0);
	for (size_t bit = 0; bit < (n0 + n1) * 8; bit++) {
		stream[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		if (bit < n0 * 8) {
			assert_refused(&k, stream, n0 + n1);
		} else {
			/* the data record is fine; the close must not be taken */
			static uint8_t out[128];
			struct vmc_mig_opener o;
			size_t out_len = 0;

			opener_start(&o, &k);
			ck_assert_int_ne(stream_feed(&o, stream, n0 + n1, out, &out_len), 0);
			ck_assert_int_ne(o.state, VMC_MIG_CLOSED);
			vmc_mig_opener_fini(&o);
		}
		stream[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	vmc_mig_sealer_fini(&s);
}
END_TEST

START_TEST(test_reordered_record_refused)
{
	struct vmc_mig_key k = key_make(4);
	struct vmc_mig_sealer s;
	size_t n0, n1;

	sealer_start(&s, &k);
	n0 = seal_ok(&s, "first", 5, sealed[0]);
	n1 = seal_ok(&s, "secnd", 5, sealed[1]);
	ck_assert_uint_eq(n0, n1);
	assert_refused(&k, sealed[1], n1);
	vmc_mig_sealer_fini(&s);
}
END_TEST

START_TEST(test_replayed_record_refused)
{
	static uint8_t stream[2 * 64];
	static uint8_t out[2 * 64];
	struct vmc_mig_key k = key_make(4);
	struct vmc_mig_sealer s;
	struct vmc_mig_opener o;
	size_t n0, out_len = 0;

	sealer_start(&s, &k);
	opener_start(&o, &k);
	n0 = seal_ok(&s, "first", 5, stream);
	memcpy(stream + n0, stream, n0);
	ck_assert_int_eq(stream_feed(&o, stream, 2 * n0, out, &out_len), -EBADMSG);
	ck_assert_uint_eq(out_len, 5);
	ck_assert_mem_eq(out, "first", 5);
	vmc_mig_sealer_fini(&s);
	vmc_mig_opener_fini(&o);
}
END_TEST

/* Every prefix of a two-record stream: never a byte of the cut record, never closed. */
START_TEST(test_truncated_never_accepted)
{
	static uint8_t stream[2 * 256];
	static uint8_t out[2 * 256];
	struct vmc_mig_key k = key_make(5);
	struct vmc_mig_sealer s;
	size_t n0, n1;

	sealer_start(&s, &k);
	pattern_fill(plain_in, 200, 6);
	n0 = seal_ok(&s, plain_in, 200, stream);
	n1 = seal_close_ok(&s, stream + n0);
	for (size_t cut = 0; cut < n0 + n1; cut++) {
		struct vmc_mig_opener o;
		size_t out_len = 0;
		int rc;

		opener_start(&o, &k);
		rc = stream_feed(&o, stream, cut, out, &out_len);
		ck_assert_int_eq(rc, cut == 0 || cut == n0 ? 0 : CUT_SHORT);
		ck_assert_uint_eq(out_len, cut < n0 ? 0 : 200);
		ck_assert_int_ne(o.state, VMC_MIG_CLOSED);
		vmc_mig_opener_fini(&o);
	}
	vmc_mig_sealer_fini(&s);
}
END_TEST

/* A body shorter than its header said (a relay's bug, or a cut tag) is refused, not opened. */
START_TEST(test_body_of_other_length_refused)
{
	struct vmc_mig_key k = key_make(5);
	struct vmc_mig_sealer s;
	struct vmc_mig_opener o;
	size_t n, body_len, got;

	sealer_start(&s, &k);
	opener_start(&o, &k);
	n = seal_ok(&s, "abcdefgh", 8, sealed[0]);
	ck_assert_int_eq(vmc_mig_open_header(&o, sealed[0], &body_len), 0);
	ck_assert_int_eq(vmc_mig_open_body(&o, sealed[0] + 4, n - 5, plain_out, &got), -EINVAL);
	ck_assert_int_eq(o.state, VMC_MIG_FAILED);
	vmc_mig_sealer_fini(&s);
	vmc_mig_opener_fini(&o);
}
END_TEST

START_TEST(test_wrong_key_or_salt_refused)
{
	struct vmc_mig_key k = key_make(6), other_key = key_make(60), other_salt = k;
	struct vmc_mig_sealer s;
	size_t n;

	other_salt.salt[3] ^= 1;
	sealer_start(&s, &k);
	n = seal_ok(&s, "payload", 7, sealed[0]);
	assert_refused(&other_key, sealed[0], n);
	assert_refused(&other_salt, sealed[0], n);
	vmc_mig_sealer_fini(&s);
}
END_TEST

START_TEST(test_length_above_max_refused_from_header)
{
	static const uint32_t lengths[] = { VMC_MIG_RECORD_MAX + 1, 0x7fffffffu, 0xffffffffu };
	struct vmc_mig_key k = key_make(8);

	for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
		uint8_t header[4] = { (uint8_t)(lengths[i] >> 24), (uint8_t)(lengths[i] >> 16),
				      (uint8_t)(lengths[i] >> 8), (uint8_t)lengths[i] };
		struct vmc_mig_opener o;
		size_t body_len = 12345;

		opener_start(&o, &k);
		ck_assert_int_eq(vmc_mig_open_header(&o, header, &body_len), -EMSGSIZE);
		ck_assert_uint_eq(body_len, 12345);
		ck_assert_int_eq(o.state, VMC_MIG_FAILED);
		vmc_mig_opener_fini(&o);
	}
}
END_TEST

/* After one refusal, the records that follow are refused though they are sound. */
START_TEST(test_failure_is_sticky)
{
	struct vmc_mig_key k = key_make(2);
	struct vmc_mig_sealer s;
	struct vmc_mig_opener o;
	size_t n0, n1, body_len, got;

	sealer_start(&s, &k);
	opener_start(&o, &k);
	n0 = seal_ok(&s, "one", 3, sealed[0]);
	n1 = seal_ok(&s, "two", 3, sealed[1]);
	sealed[0][n0 - 1] ^= 0x80;
	memset(plain_out, 0x55, 3);
	ck_assert_int_eq(vmc_mig_open_header(&o, sealed[0], &body_len), 0);
	ck_assert_int_eq(vmc_mig_open_body(&o, sealed[0] + 4, body_len, plain_out, &got), -EBADMSG);
	ck_assert_int_eq(o.state, VMC_MIG_FAILED);
	/* GCM decrypted "one" before it could tell: wiped */
	ck_assert_mem_eq(plain_out, "\0\0\0", 3);
	sealed[0][n0 - 1] ^= 0x80;
	ck_assert_int_eq(vmc_mig_open_header(&o, sealed[0], &body_len), -EBADMSG);
	ck_assert_int_eq(vmc_mig_open_header(&o, sealed[1], &body_len), -EBADMSG);
	ck_assert_int_eq(vmc_mig_open_body(&o, sealed[1] + 4, n1 - 4, plain_out, &got), -EBADMSG);
	ck_assert_int_eq(o.state, VMC_MIG_FAILED);
	vmc_mig_sealer_fini(&s);
	vmc_mig_opener_fini(&o);
}
END_TEST

START_TEST(test_calls_out_of_order_refused)
{
	struct vmc_mig_key k = key_make(2);
	struct vmc_mig_opener o;
	size_t body_len, got;

	opener_start(&o, &k);
	ck_assert_int_eq(vmc_mig_open_body(&o, sealed[0], VMC_MIG_TAG_LEN, plain_out, &got), -EINVAL);
	ck_assert_int_eq(o.state, VMC_MIG_FAILED);
	vmc_mig_opener_fini(&o);
	opener_start(&o, &k);
	memset(sealed[0], 0, 8);
	ck_assert_int_eq(vmc_mig_open_header(&o, sealed[0], &body_len), 0);
	ck_assert_int_eq(vmc_mig_open_header(&o, sealed[0], &body_len), -EINVAL);
	vmc_mig_opener_fini(&o);
}
END_TEST

/* The last counter value is never used: the sealer stops one short, and stays stopped. */
START_TEST(test_counter_overflow_refused)
{
	struct vmc_mig_key k = key_make(11);
	struct vmc_mig_sealer s;
	struct vmc_mig_opener o;
	size_t n, out_len = 0;

	sealer_start(&s, &k);
	opener_start(&o, &k);
	s.counter = UINT64_MAX - 1;
	o.counter = UINT64_MAX - 1;
	n = seal_ok(&s, "last", 4, sealed[0]);
	ck_assert_int_eq(vmc_mig_seal(&s, "over", 4, sealed[1], &n), -EOVERFLOW);
	ck_assert_int_eq(vmc_mig_seal_close(&s, sealed[1], &n), -EOVERFLOW);
	ck_assert_int_eq(s.state, VMC_MIG_FAILED);
	ck_assert_int_eq(stream_feed(&o, sealed[0], 4 + VMC_MIG_OVERHEAD, plain_out, &out_len), 0);
	ck_assert_uint_eq(out_len, 4);
	ck_assert_uint_eq(o.counter, UINT64_MAX);
	/* an opener that got there refuses the next header's body */
	memset(sealed[1], 0, VMC_MIG_OVERHEAD);
	ck_assert_int_eq(stream_feed(&o, sealed[1], VMC_MIG_OVERHEAD, plain_out, &out_len), -EOVERFLOW);
	vmc_mig_sealer_fini(&s);
	vmc_mig_opener_fini(&o);
}
END_TEST

START_TEST(test_fini_is_safe_twice_and_on_zero)
{
	struct vmc_mig_key k = key_make(12);
	struct vmc_mig_sealer s = { 0 };
	struct vmc_mig_opener o = { 0 };
	size_t n;

	vmc_mig_sealer_fini(&s);
	vmc_mig_opener_fini(&o);
	sealer_start(&s, &k);
	vmc_mig_sealer_fini(&s);
	vmc_mig_sealer_fini(&s);
	ck_assert_int_eq(vmc_mig_seal(&s, "x", 1, sealed[0], &n), -EBADF);
	ck_assert_str_eq(vmc_mig_record_state_to_str(s.state), "failed");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("migrate_record");
	TCase *tc = tcase_create("records");

	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_known_answer);
	tcase_add_test(tc, test_round_trip_sizes);
	tcase_add_test(tc, test_in_place);
	tcase_add_test(tc, test_seal_refuses_bad_lengths_and_after_close);
	tcase_add_test(tc, test_nothing_after_close);
	tcase_add_test(tc, test_every_bit_flip_refused);
	tcase_add_test(tc, test_reordered_record_refused);
	tcase_add_test(tc, test_replayed_record_refused);
	tcase_add_test(tc, test_truncated_never_accepted);
	tcase_add_test(tc, test_body_of_other_length_refused);
	tcase_add_test(tc, test_wrong_key_or_salt_refused);
	tcase_add_test(tc, test_length_above_max_refused_from_header);
	tcase_add_test(tc, test_failure_is_sticky);
	tcase_add_test(tc, test_calls_out_of_order_refused);
	tcase_add_test(tc, test_counter_overflow_refused);
	tcase_add_test(tc, test_fini_is_safe_twice_and_on_zero);
	suite_add_tcase(s, tc);
	return check_suite_run(s);
}
