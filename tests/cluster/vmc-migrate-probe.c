/*
 * vmc-migrate-probe: connects to a vmcluster-migrate listener, misbehaves
 * in the one way its command word names, and says on stdout what the
 * listener answered (the ERROR code it sent, "closed" or "timeout").
 * Exit 0 when the listener refused as it must, 1 when it did not, 2 when
 * the probe could not run (bad usage, no connection, no key).
 *
 * What each case sends, and what a correct listener answers
 * (lib/migrate_proto.h has the handshake):
 *
 *   nokey           connect, send nothing           closes at its 5-s read deadline
 *   garbage         random bytes                    ERROR protocol
 *   truncated       half a HELLO, then wait         closes at its read deadline
 *   unknown-id      a good HELLO for a fresh id     ERROR unknown-id
 *   wrongkey ID     a whole handshake on ID with    ERROR auth (at PROOF: the listener
 *                   a key from another key file     must expect ID, or it refuses at HELLO)
 *   used-id ID      a control channel on ID, then   ERROR id-used for the second
 *                   a second one while it is open
 *   squat ID        wrongkey on ID, then the right  WELCOME: a peer without the key
 *                   key on ID                       cannot use up a migration's id
 *   squat-hold ID   a HELLO on ID left at its       WELCOME for the source: a handshake
 *                   CHALLENGE; meanwhile the right  without the key cannot hold the id
 *                   key on ID                       (ids travel in clear)
 *   record ID FILE  a genuine handshake on ID (the  WELCOME; FILE keeps the bytes sent
 *                   library's own client engine)
 *   replay FILE     those HELLO and PROOF bytes,    ERROR auth: the new CHALLENGE has a
 *                   verbatim, on a new connection   new server nonce, the old PROOF is void
 *   flood N         N bad connections one after     ERROR unknown-id for the last one:
 *                   the other, then unknown-id      the listener still serves
 *   hog N           N silent connections held open, ERROR unknown-id: stalled peers do
 *                   then unknown-id                 not shut the others out
 *
 * Only loopback and the cluster tests' range (198.51.100.0/24, or
 * $VMC_TEST_NET.0/24) are ever connected to.
 *
 * Output: a line per connection ("CASE: connection from ADDR:PORT"), what
 * happened on it, then one verdict, "ok: CASE: ADDR:PORT: ANSWER" or
 * "FAIL: CASE: ADDR:PORT: ANSWER (expected ...)", naming the connection
 * the verdict is about, so a test can find its line in the node's log.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "clock.h"
#include "json_util.h"
#include "migrate_proto.h"

/*
 * Timeline of one connection. The listener gives each read of a
 * handshake VMCM_READ_DEADLINE_MS (5 s, agents/migrate/conn.h), then
 * drops the peer; a refusal that is not a deadline comes at once.
 *
 *   0 s   connect (CONNECT_MS at most)
 *   ...   a bad frame: ERROR within ANSWER_MS
 *   5 s   a silent or truncated peer: the listener closes
 *   15 s  STALL_WAIT_MS: no close by then is "timeout", a failure
 */
#define CONNECT_MS 3000
#define ANSWER_MS 6000 /* the listener gives an id not expected yet 3 s to become expected */
#define LISTENER_DEADLINE_MS 5000
#define STALL_WAIT_MS (3 * LISTENER_DEADLINE_MS)
#define PAYLOAD_READ_MAX 65536
#define KEY_FILE_MAX 4096
#define KEY_FILE_MIN 16
#define HASH_LEN 32
#define HEX32_LEN (2 * HASH_LEN)
#define T_LEN (VMC_MIGP_ID_LEN + 1 + 4 + 2 * VMC_MIGP_NONCE_LEN)
#define FLOOD_MAX 1000000
#define HOG_MAX 1000
#define RECORD_MAX 8192

#define LABEL_SERVER "vmcm1 server"
#define LABEL_CLIENT "vmcm1 client"

struct probe {
	const char *name; /* the case */
	struct sockaddr_in to;
	char to_text[64];
	uint8_t key[VMC_MIGP_KEY_LEN]; /* K from --key-file */
	bool have_key;
	uint8_t wrong_key[VMC_MIGP_KEY_LEN]; /* K from --wrong-key-file, or from random bytes */
};

enum answer_kind {
	ANS_FRAME,   /* a whole frame: type, body */
	ANS_CLOSED,  /* EOF */
	ANS_RESET,   /* ECONNRESET or another read error */
	ANS_TIMEOUT, /* nothing (or not a whole frame) in time */
	ANS_BAD,     /* bytes that are no frame of this protocol: what says why */
};

struct answer {
	enum answer_kind kind;
	uint8_t type;
	json_object *body;
	int64_t ms; /* from the wait's start */
	char what[160];
};

/* ---- small helpers ---- */

static void hex_encode(const uint8_t *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 0xf];
	}
	out[2 * n] = '\0';
}

static int hex_digit(char ch)
{
	if (ch >= '0' && ch <= '9') {
		return ch - '0';
	}
	if (ch >= 'a' && ch <= 'f') {
		return ch - 'a' + 10;
	}
	return -1;
}

/* Exactly 2 * n lowercase hex digits into n bytes; false otherwise. */
static bool hex_decode(const char *s, uint8_t *out, size_t n)
{
	if (s == NULL || strlen(s) != 2 * n) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			return false;
		}
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

static void random_fill(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			fprintf(stderr, "vmc-migrate-probe: no random bytes from the kernel\n");
			exit(2);
		}
		p += n;
		len -= (size_t)n;
	}
}

static void fresh_id(char id[VMC_MIGP_ID_LEN + 1])
{
	if (vmc_migp_new_id(id) != 0) {
		fprintf(stderr, "vmc-migrate-probe: cannot make a migration id\n");
		exit(2);
	}
}

static double seconds(int64_t ms)
{
	return (double)ms / 1000.0;
}

/* K from a key file's bytes, read as the agent reads it (conn.c key_load). 0 or -1. */
static int key_file_load(const char *path, uint8_t key[VMC_MIGP_KEY_LEN])
{
	uint8_t buf[KEY_FILE_MAX];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0) {
		fprintf(stderr, "vmc-migrate-probe: cannot read %s: %s\n", path, strerror(errno));
		return -1;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < KEY_FILE_MIN || vmc_migp_auth_key(buf, (size_t)n, key) != 0) {
		fprintf(stderr, "vmc-migrate-probe: %s is not a cluster key (%zd bytes)\n", path,
			n);
		return -1;
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	return 0;
}

/* 127.0.0.0/8, 198.51.100.0/24 or $VMC_TEST_NET.0/24: the only places a probe may go. */
static bool address_allowed(struct in_addr a)
{
	uint32_t h = ntohl(a.s_addr);
	const char *net = getenv("VMC_TEST_NET");
	char text[32];
	struct in_addr n;

	if ((h >> 24) == 127 || (h >> 8) == ((198u << 16) | (51u << 8) | 100u)) {
		return true;
	}
	if (net == NULL || snprintf(text, sizeof(text), "%s.0", net) >= (int)sizeof(text) ||
	    inet_pton(AF_INET, text, &n) != 1) {
		return false;
	}
	return (h >> 8) == (ntohl(n.s_addr) >> 8);
}

static int target_parse(const char *s, struct probe *p)
{
	const char *colon = strrchr(s, ':');
	char addr[INET_ADDRSTRLEN];
	char *end;
	long port;

	if (colon == NULL || colon == s || (size_t)(colon - s) >= sizeof(addr)) {
		return -1;
	}
	memcpy(addr, s, (size_t)(colon - s));
	addr[colon - s] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 1 || port > 65535 ||
	    inet_pton(AF_INET, addr, &p->to.sin_addr) != 1) {
		return -1;
	}
	p->to.sin_family = AF_INET;
	p->to.sin_port = htons((uint16_t)port);
	snprintf(p->to_text, sizeof(p->to_text), "%s:%ld", addr, port);
	return 0;
}

/* ---- the socket ---- */

/* A connected socket to the listener, its local ADDR:PORT in from; -1 when none in CONNECT_MS. */
static int probe_connect(const struct probe *p, char *from, size_t len, bool quiet)
{
	struct sockaddr_in local;
	socklen_t sl = sizeof(local);
	struct pollfd pfd;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), soerr = 0;
	socklen_t el = sizeof(soerr);
	char ip[INET_ADDRSTRLEN] = "?";

	if (fd < 0) {
		fprintf(stderr, "vmc-migrate-probe: socket: %s\n", strerror(errno));
		return -1;
	}
	if (connect(fd, (const struct sockaddr *)&p->to, sizeof(p->to)) != 0 &&
	    errno != EINPROGRESS) {
		soerr = errno;
	}
	pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
	if (soerr == 0 && (poll(&pfd, 1, CONNECT_MS) != 1 ||
			   getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el) != 0)) {
		soerr = ETIMEDOUT;
	}
	if (soerr != 0) {
		fprintf(stderr, "vmc-migrate-probe: %s: cannot connect to %s: %s\n", p->name,
			p->to_text, strerror(soerr));
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	getsockname(fd, (struct sockaddr *)&local, &sl);
	inet_ntop(AF_INET, &local.sin_addr, ip, sizeof(ip));
	snprintf(from, len, "%s:%u", ip, ntohs(local.sin_port));
	if (!quiet) {
		printf("%s: connection from %s to %s\n", p->name, from, p->to_text);
	}
	return fd;
}

static bool send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *b = buf;

	while (len > 0) {
		ssize_t n = send(fd, b, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			return false;
		}
		b += n;
		len -= (size_t)n;
	}
	return true;
}

/* len bytes before deadline_ms: ANS_FRAME (read them all), or what stopped it. */
static enum answer_kind read_exact(int fd, uint8_t *buf, size_t len, int64_t deadline_ms)
{
	size_t have = 0;

	while (have < len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t left = deadline_ms - vmc_now_ms();
		ssize_t n;
		if (left <= 0 || poll(&pfd, 1, (int)left) != 1) {
			return ANS_TIMEOUT;
		}
		n = recv(fd, buf + have, len - have, 0);
		if (n == 0) {
			return ANS_CLOSED;
		}
		if (n < 0 && errno != EINTR) {
			return ANS_RESET;
		}
		have += n > 0 ? (size_t)n : 0;
	}
	return ANS_FRAME;
}

static void answer_clear(struct answer *a)
{
	json_object_put(a->body);
	*a = (struct answer){ .kind = ANS_TIMEOUT };
}

/* The listener's next frame, or how it ended, within wait_ms. */
static void answer_read(int fd, int wait_ms, struct answer *a)
{
	int64_t start = vmc_now_ms(), deadline = start + wait_ms;
	uint8_t hdr[VMC_MIGP_HEADER_LEN], *payload = NULL;
	uint32_t length = 0;

	answer_clear(a);
	a->kind = read_exact(fd, hdr, sizeof(hdr), deadline);
	if (a->kind == ANS_FRAME &&
	    vmc_migp_header_decode(hdr, &a->type, &length, a->what, sizeof(a->what)) != 0) {
		a->kind = ANS_BAD;
	}
	if (a->kind == ANS_FRAME && length > PAYLOAD_READ_MAX) {
		snprintf(a->what, sizeof(a->what), "a %s frame of %u bytes",
			 vmc_migp_type_to_str(a->type), length);
		a->kind = ANS_BAD;
	}
	if (a->kind == ANS_FRAME) {
		payload = calloc(1, (size_t)length + 1);
		a->kind = payload == NULL ? ANS_BAD : read_exact(fd, payload, length, deadline);
	}
	if (a->kind == ANS_FRAME) {
		a->body = json_tokener_parse((const char *)payload);
		if (a->body == NULL || !json_object_is_type(a->body, json_type_object)) {
			snprintf(a->what, sizeof(a->what),
				 "a %s frame whose body is not a JSON object",
				 vmc_migp_type_to_str(a->type));
			a->kind = ANS_BAD;
		}
	}
	free(payload);
	a->ms = vmc_now_ms() - start;
}

static bool answer_is_error(const struct answer *a, const char *code)
{
	const char *got = a->kind == ANS_FRAME && a->type == VMC_MIGP_ERROR
			      ? vmc_json_str(a->body, "code")
			      : NULL;

	return got != NULL && (code == NULL || strcmp(got, code) == 0);
}

static bool answer_is(const struct answer *a, uint8_t type)
{
	return a->kind == ANS_FRAME && a->type == type;
}

static const char *answer_describe(const struct answer *a, char *buf, size_t len)
{
	switch (a->kind) {
	case ANS_FRAME:
		if (a->type == VMC_MIGP_ERROR) {
			snprintf(buf, len, "ERROR %s: %s", vmc_json_str(a->body, "code") ?: "?",
				 vmc_json_str(a->body, "reason") ?: "?");
		} else {
			snprintf(buf, len, "%s", vmc_migp_type_to_str(a->type));
		}
		break;
	case ANS_CLOSED:
		snprintf(buf, len, "closed after %.1f s", seconds(a->ms));
		break;
	case ANS_RESET:
		snprintf(buf, len, "closed (reset) after %.1f s", seconds(a->ms));
		break;
	case ANS_TIMEOUT:
		snprintf(buf, len, "timeout: nothing after %.1f s", seconds(a->ms));
		break;
	case ANS_BAD:
		snprintf(buf, len, "not a frame of this protocol: %s", a->what);
		break;
	}
	return buf;
}

/* The verdict line; 0 when ok, 1 when not. */
static int verdict(const struct probe *p, const char *from, const struct answer *a, bool ok,
		   const char *expected)
{
	char text[400];

	answer_describe(a, text, sizeof(text));
	if (ok) {
		printf("ok: %s: %s: %s\n", p->name, from, text);
	} else {
		printf("FAIL: %s: %s: %s (expected %s)\n", p->name, from, text, expected);
	}
	return ok ? 0 : 1;
}

/* ---- frames and proofs ---- */

/* Encodes a frame (body consumed) into *buf; exits on failure (a probe bug). */
static size_t frame_make(uint8_t type, json_object *body, uint8_t **buf)
{
	size_t len = 0;

	if (vmc_migp_frame_encode(type, body, buf, &len) != 0) {
		fprintf(stderr, "vmc-migrate-probe: cannot encode a %s frame\n",
			vmc_migp_type_to_str(type));
		exit(2);
	}
	json_object_put(body);
	return len;
}

static bool frame_send(int fd, uint8_t type, json_object *body)
{
	uint8_t *buf;
	size_t len = frame_make(type, body, &buf);
	bool ok = send_all(fd, buf, len);

	free(buf);
	return ok;
}

static json_object *hello_body(const char *id, const char *channel, int64_t index,
			       const uint8_t nonce[VMC_MIGP_NONCE_LEN])
{
	json_object *b = json_object_new_object();
	char hex[HEX32_LEN + 1];

	hex_encode(nonce, VMC_MIGP_NONCE_LEN, hex);
	json_object_object_add(b, "proto_min", json_object_new_int(VMC_MIGP_PROTO_MIN));
	json_object_object_add(b, "proto_max", json_object_new_int(VMC_MIGP_PROTO_MAX));
	json_object_object_add(b, "id", json_object_new_string(id));
	json_object_object_add(b, "channel", json_object_new_string(channel));
	json_object_object_add(b, "index", json_object_new_int64(index));
	json_object_object_add(b, "nonce", json_object_new_string(hex));
	return b;
}

/*
 * HMAC-SHA256(K, label | T), T = id | channel | index | Nc | Ns, in hex:
 * written here from the description in lib/migrate_proto.c rather than
 * taken from the engine, so the probe can make a proof with any key.
 */
static void proof_make(const uint8_t key[VMC_MIGP_KEY_LEN], const char *label, const char *id,
		       const uint8_t nc[VMC_MIGP_NONCE_LEN], const uint8_t ns[VMC_MIGP_NONCE_LEN],
		       char hex[HEX32_LEN + 1])
{
	uint8_t in[32 + T_LEN], out[HASH_LEN];
	size_t label_len = strlen(label);
	unsigned int out_len = 0;
	uint8_t *t = in + label_len;
	const unsigned char *md;

	memcpy(in, label, label_len);
	memcpy(t, id, VMC_MIGP_ID_LEN);
	t[VMC_MIGP_ID_LEN] = 0; /* control channel, index 0 */
	memset(t + VMC_MIGP_ID_LEN + 1, 0, 4);
	memcpy(t + VMC_MIGP_ID_LEN + 5, nc, VMC_MIGP_NONCE_LEN);
	memcpy(t + VMC_MIGP_ID_LEN + 5 + VMC_MIGP_NONCE_LEN, ns, VMC_MIGP_NONCE_LEN);
	md = HMAC(EVP_sha256(), key, VMC_MIGP_KEY_LEN, in, label_len + T_LEN, out, &out_len);
	if (md == NULL || out_len != HASH_LEN) {
		fprintf(stderr, "vmc-migrate-probe: HMAC failed\n");
		exit(2);
	}
	hex_encode(out, HASH_LEN, hex);
}

/*
 * A control-channel handshake on id, by hand: HELLO, then on CHALLENGE a
 * PROOF made with key whatever the listener's own proof said (a client
 * that checked it would stop there, and the listener's check of ours
 * would never be tried). a is the listener's last answer: its ERROR to
 * the HELLO, or its answer to the PROOF. *challenged tells which.
 */
static void handshake(const struct probe *p, int fd, const uint8_t key[VMC_MIGP_KEY_LEN],
		      const char *id, struct answer *a, bool *challenged)
{
	uint8_t nc[VMC_MIGP_NONCE_LEN], ns[VMC_MIGP_NONCE_LEN];
	char mine[HEX32_LEN + 1], want_s[HEX32_LEN + 1];
	json_object *b;

	*challenged = false;
	random_fill(nc, sizeof(nc));
	if (!frame_send(fd, VMC_MIGP_HELLO, hello_body(id, "control", 0, nc))) {
		answer_clear(a);
		a->kind = ANS_RESET;
		return;
	}
	answer_read(fd, ANSWER_MS, a);
	if (!answer_is(a, VMC_MIGP_CHALLENGE) ||
	    !hex_decode(vmc_json_str(a->body, "nonce"), ns, sizeof(ns))) {
		return;
	}
	*challenged = true;
	if (p->have_key) {
		proof_make(p->key, LABEL_SERVER, id, nc, ns, want_s);
		printf("%s: CHALLENGE: the listener's proof %s with the cluster key\n", p->name,
		       strcmp(want_s, vmc_json_str(a->body, "proof") ?: "") == 0
			   ? "checks"
			   : "does NOT check");
	}
	proof_make(key, LABEL_CLIENT, id, nc, ns, mine);
	b = json_object_new_object();
	json_object_object_add(b, "proof", json_object_new_string(mine));
	if (!frame_send(fd, VMC_MIGP_PROOF, b)) {
		answer_clear(a);
		a->kind = ANS_RESET;
		return;
	}
	answer_read(fd, ANSWER_MS, a);
}

/* Waits for the listener to close (reads and drops what comes), within wait_ms. */
static void drain(int fd, int wait_ms)
{
	int64_t deadline = vmc_now_ms() + wait_ms;
	uint8_t buf[512];

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - vmc_now_ms();
		if (left <= 0 || poll(&pfd, 1, (int)left) != 1 ||
		    recv(fd, buf, sizeof(buf), 0) <= 0) {
			return;
		}
	}
}

/* ---- the cases ---- */

static int need_key(const struct probe *p)
{
	if (!p->have_key) {
		fprintf(stderr, "vmc-migrate-probe: %s needs --key-file (the cluster key)\n",
			p->name);
		return -1;
	}
	return 0;
}

static int id_arg(const struct probe *p, const char *id)
{
	if (!vmc_migp_id_valid(id)) {
		fprintf(stderr, "vmc-migrate-probe: %s: '%s' is not a migration id "
				"(32 lowercase hex digits)\n", p->name, id);
		return -1;
	}
	return 0;
}

/* A peer that stalls must be dropped at the listener's read deadline, not kept. */
static int stall_verdict(const struct probe *p, int fd, const char *from)
{
	struct answer a = { .kind = ANS_TIMEOUT };
	bool ok;

	answer_read(fd, STALL_WAIT_MS, &a);
	if (a.kind == ANS_FRAME && a.type == VMC_MIGP_ERROR) {
		drain(fd, ANSWER_MS);
	}
	ok = (a.kind == ANS_CLOSED || a.kind == ANS_RESET || answer_is_error(&a, NULL)) &&
	     a.ms >= LISTENER_DEADLINE_MS - 1000;
	close(fd);
	ok = verdict(p, from, &a, ok, "closed at the 5-s read deadline") == 0;
	answer_clear(&a);
	return ok ? 0 : 1;
}

static int case_nokey(struct probe *p, char **args)
{
	char from[64];
	int fd = probe_connect(p, from, sizeof(from), false);

	(void)args;
	if (fd < 0) {
		return 2;
	}
	printf("%s: sending nothing\n", p->name);
	return stall_verdict(p, fd, from);
}

static int case_truncated(struct probe *p, char **args)
{
	char from[64], id[VMC_MIGP_ID_LEN + 1];
	uint8_t nc[VMC_MIGP_NONCE_LEN], *buf;
	size_t len, half;
	int fd = probe_connect(p, from, sizeof(from), false);

	(void)args;
	if (fd < 0) {
		return 2;
	}
	fresh_id(id);
	random_fill(nc, sizeof(nc));
	len = frame_make(VMC_MIGP_HELLO, hello_body(id, "control", 0, nc), &buf);
	half = len / 2;
	printf("%s: sending %zu of the %zu bytes of a HELLO, then nothing\n", p->name, half, len);
	if (!send_all(fd, buf, half)) {
		free(buf);
		close(fd);
		return 2;
	}
	free(buf);
	return stall_verdict(p, fd, from);
}

static int case_garbage(struct probe *p, char **args)
{
	uint8_t junk[12];
	struct answer a = { .kind = ANS_TIMEOUT };
	char from[64];
	int fd = probe_connect(p, from, sizeof(from), false), rc;

	(void)args;
	if (fd < 0) {
		return 2;
	}
	/* A header's worth: the listener reads 12 bytes first and has nothing left unread. */
	random_fill(junk, sizeof(junk));
	junk[0] = (uint8_t)(junk[0] == 'V' ? 'X' : junk[0]);
	printf("%s: sending %zu random bytes\n", p->name, sizeof(junk));
	send_all(fd, junk, sizeof(junk));
	answer_read(fd, ANSWER_MS, &a);
	rc = verdict(p, from, &a, answer_is_error(&a, VMC_MIGP_E_PROTOCOL), "ERROR protocol");
	answer_clear(&a);
	close(fd);
	return rc;
}

static int case_unknown_id(struct probe *p, char **args)
{
	struct answer a = { .kind = ANS_TIMEOUT };
	char from[64], id[VMC_MIGP_ID_LEN + 1];
	bool challenged;
	int fd, rc;

	(void)args;
	if (need_key(p) != 0 || (fd = probe_connect(p, from, sizeof(from), false)) < 0) {
		return 2;
	}
	fresh_id(id);
	printf("%s: HELLO for id %s, which no daemon announced\n", p->name, id);
	handshake(p, fd, p->key, id, &a, &challenged);
	rc = verdict(p, from, &a, !challenged && answer_is_error(&a, VMC_MIGP_E_UNKNOWN_ID),
		     "ERROR unknown-id");
	answer_clear(&a);
	close(fd);
	return rc;
}

/* The handshake on ID with the wrong key; fd stays open for the caller. */
static int wrongkey_run(struct probe *p, const char *id, int *fdp, char *from, size_t len,
			struct answer *a)
{
	bool challenged;

	*fdp = probe_connect(p, from, len, false);
	if (*fdp < 0) {
		return 2;
	}
	printf("%s: a whole handshake on %s with a key from another key file\n", p->name, id);
	handshake(p, *fdp, p->wrong_key, id, a, &challenged);
	if (!challenged) {
		printf("%s: the listener refused the HELLO, so it never checked a proof: "
		       "it must expect %s (give an id its daemon announced)\n",
		       p->name, id);
	}
	return 0;
}

static int case_wrongkey(struct probe *p, char **args)
{
	struct answer a = { .kind = ANS_TIMEOUT };
	char from[64];
	int fd, rc;

	if (id_arg(p, args[0]) != 0 || wrongkey_run(p, args[0], &fd, from, sizeof(from), &a) != 0) {
		return 2;
	}
	rc = verdict(p, from, &a, answer_is_error(&a, VMC_MIGP_E_AUTH), "ERROR auth at the PROOF");
	answer_clear(&a);
	close(fd);
	return rc;
}

static int case_used_id(struct probe *p, char **args)
{
	struct answer a = { .kind = ANS_TIMEOUT };
	char from[64], text[400];
	bool challenged;
	int first, second, rc;

	if (need_key(p) != 0 || id_arg(p, args[0]) != 0 ||
	    (first = probe_connect(p, from, sizeof(from), false)) < 0) {
		return 2;
	}
	handshake(p, first, p->key, args[0], &a, &challenged);
	printf("%s: first control channel on %s: %s\n", p->name, args[0],
	       answer_describe(&a, text, sizeof(text)));
	if (!answer_is(&a, VMC_MIGP_WELCOME) && !answer_is_error(&a, VMC_MIGP_E_ID_USED)) {
		rc = verdict(p, from, &a, false,
			     "WELCOME (an id the listener expects) or ERROR id-used");
		answer_clear(&a);
		close(first);
		return rc;
	}
	second = probe_connect(p, from, sizeof(from), false);
	if (second < 0) {
		close(first);
		return 2;
	}
	handshake(p, second, p->key, args[0], &a, &challenged);
	rc = verdict(p, from, &a, !challenged && answer_is_error(&a, VMC_MIGP_E_ID_USED),
		     "ERROR id-used at the HELLO");
	answer_clear(&a);
	close(second);
	close(first);
	return rc;
}

/* The real source, with the key, on id: it must be WELCOMEd. */
static int real_source_verdict(struct probe *p, const char *id, const char *expected)
{
	struct answer a = { .kind = ANS_TIMEOUT };
	char from[64];
	bool challenged;
	int fd = probe_connect(p, from, sizeof(from), false), rc;

	if (fd < 0) {
		return 2;
	}
	printf("%s: now the real source, with the cluster key, on %s\n", p->name, id);
	handshake(p, fd, p->key, id, &a, &challenged);
	rc = verdict(p, from, &a, answer_is(&a, VMC_MIGP_WELCOME), expected);
	answer_clear(&a);
	close(fd);
	return rc;
}

static int case_squat(struct probe *p, char **args)
{
	struct answer a = { .kind = ANS_TIMEOUT };
	char from[64], text[400];
	int fd, rc;

	if (need_key(p) != 0 || id_arg(p, args[0]) != 0 ||
	    wrongkey_run(p, args[0], &fd, from, sizeof(from), &a) != 0) {
		return 2;
	}
	printf("%s: without the key: %s\n", p->name, answer_describe(&a, text, sizeof(text)));
	close(fd);
	if (!answer_is_error(&a, VMC_MIGP_E_AUTH)) {
		rc = verdict(p, from, &a, false, "ERROR auth for the attempt without the key");
		answer_clear(&a);
		return rc;
	}
	answer_clear(&a);
	return real_source_verdict(p, args[0], "WELCOME: a failed attempt without the key "
					       "must not use up the id");
}

static int case_squat_hold(struct probe *p, char **args)
{
	struct answer a = { .kind = ANS_TIMEOUT };
	uint8_t nc[VMC_MIGP_NONCE_LEN];
	char from[64], text[400];
	int fd, rc;

	if (need_key(p) != 0 || id_arg(p, args[0]) != 0 ||
	    (fd = probe_connect(p, from, sizeof(from), false)) < 0) {
		return 2;
	}
	random_fill(nc, sizeof(nc));
	printf("%s: a HELLO on %s from a peer without the key, which then never sends its PROOF\n",
	       p->name, args[0]);
	frame_send(fd, VMC_MIGP_HELLO, hello_body(args[0], "control", 0, nc));
	answer_read(fd, ANSWER_MS, &a);
	printf("%s: its answer: %s (the connection stays open)\n", p->name,
	       answer_describe(&a, text, sizeof(text)));
	if (!answer_is(&a, VMC_MIGP_CHALLENGE)) {
		rc = verdict(p, from, &a, false, "CHALLENGE (the listener must expect the id)");
		answer_clear(&a);
		close(fd);
		return rc;
	}
	answer_clear(&a);
	rc = real_source_verdict(p, args[0], "WELCOME: a handshake without the key, left open, "
					     "must not shut the source out");
	close(fd);
	return rc;
}

/* ---- record and replay ---- */

struct recording {
	uint8_t sent[RECORD_MAX]; /* every byte the client wrote: HELLO, then PROOF */
	size_t sent_len;
	uint8_t got[RECORD_MAX]; /* every byte it read: CHALLENGE, WELCOME */
	size_t got_len;
};

static size_t frame_len_at(const uint8_t *b, size_t have)
{
	uint32_t len;

	if (have < VMC_MIGP_HEADER_LEN) {
		return 0;
	}
	len = (uint32_t)b[8] << 24 | (uint32_t)b[9] << 16 | (uint32_t)b[10] << 8 | b[11];
	return VMC_MIGP_HEADER_LEN + len <= have ? VMC_MIGP_HEADER_LEN + len : 0;
}

/* Runs the library's client engine over fd, keeping every byte both ways; the event it ended on. */
static void engine_run(int fd, struct vmc_migp *c, struct recording *r, struct vmc_migp_event *ev)
{
	int64_t deadline = vmc_now_ms() + 2 * ANSWER_MS;

	for (;;) {
		const void *out;
		size_t n = vmc_migp_output(c, &out), want;
		if (n > 0) {
			if (r->sent_len + n > sizeof(r->sent) || !send_all(fd, out, n)) {
				vmc_migp_fail(c, VMC_MIGP_E_ABORTED,
					      "cannot write to the listener");
			} else {
				memcpy(r->sent + r->sent_len, out, n);
				r->sent_len += n;
				vmc_migp_output_consume(c, n);
			}
			continue;
		}
		vmc_migp_event_next(c, ev);
		if (ev->kind != VMC_MIGP_EV_NONE) {
			return;
		}
		want = vmc_migp_wanted(c);
		if (want == 0 || r->got_len + want > sizeof(r->got) ||
		    read_exact(fd, r->got + r->got_len, 1, deadline) != ANS_FRAME) {
			vmc_migp_fail(c, VMC_MIGP_E_ABORTED, "the listener said nothing more");
			continue;
		}
		vmc_migp_feed(c, r->got + r->got_len, 1);
		r->got_len++;
	}
}

static bool recording_write(const char *path, const struct recording *r)
{
	size_t hello = frame_len_at(r->sent, r->sent_len);
	size_t challenge = frame_len_at(r->got, r->got_len);
	char *hex = malloc(2 * RECORD_MAX + 1);
	FILE *f = fopen(path, "w");
	bool ok = hex != NULL && f != NULL && hello > 0 && challenge > 0 && hello < r->sent_len;

	if (ok) {
		hex_encode(r->sent, hello, hex);
		fprintf(f, "hello %s\n", hex);
		hex_encode(r->sent + hello, r->sent_len - hello, hex);
		fprintf(f, "proof %s\n", hex);
		hex_encode(r->got, challenge, hex);
		fprintf(f, "challenge %s\n", hex);
	}
	if (f != NULL && fclose(f) != 0) {
		ok = false;
	}
	free(hex);
	return ok;
}

static int case_record(struct probe *p, char **args)
{
	struct recording *r = calloc(1, sizeof(*r));
	struct vmc_migp_event ev = { 0 };
	struct vmc_migp *c;
	struct answer a = { .kind = ANS_TIMEOUT };
	char from[64];
	int fd, rc;

	if (r == NULL || need_key(p) != 0 || id_arg(p, args[0]) != 0 ||
	    (fd = probe_connect(p, from, sizeof(from), false)) < 0) {
		free(r);
		return 2;
	}
	c = vmc_migp_client_new(p->key, args[0], VMC_MIGP_CONTROL, 0);
	if (c == NULL) {
		fprintf(stderr, "vmc-migrate-probe: cannot start a client engine\n");
		close(fd);
		free(r);
		return 2;
	}
	engine_run(fd, c, r, &ev);
	if (ev.kind == VMC_MIGP_EV_AUTHED) {
		printf("%s: the client engine checked the listener's proof and was WELCOMEd\n",
		       p->name);
	} else {
		printf("%s: the client engine failed: %s: %s\n", p->name, ev.code, ev.reason);
	}
	a.kind = ANS_FRAME;
	a.type = ev.kind == VMC_MIGP_EV_AUTHED ? VMC_MIGP_WELCOME : VMC_MIGP_ERROR;
	a.body = json_object_new_object();
	json_object_object_add(a.body, "code", json_object_new_string(ev.code));
	json_object_object_add(a.body, "reason", json_object_new_string(ev.reason));
	if (ev.kind == VMC_MIGP_EV_AUTHED && !recording_write(args[1], r)) {
		fprintf(stderr, "vmc-migrate-probe: cannot write the recording to %s\n", args[1]);
		ev.kind = VMC_MIGP_EV_FAILED;
	}
	rc = verdict(p, from, &a, ev.kind == VMC_MIGP_EV_AUTHED,
		     "WELCOME (a genuine handshake, recorded)");
	answer_clear(&a);
	vmc_migp_free(c);
	close(fd);
	free(r);
	return rc;
}

/* One "NAME HEX" line of a recording into a new buffer; its length, 0 when missing. */
static size_t recording_field(const char *path, const char *name, uint8_t **out)
{
	FILE *f = fopen(path, "r");
	char *line = NULL, *hex;
	size_t cap = 0, n = 0;

	*out = NULL;
	while (f != NULL && n == 0 && getline(&line, &cap, f) > 0) {
		line[strcspn(line, "\n")] = '\0';
		hex = strchr(line, ' ');
		if (hex == NULL || (size_t)(hex - line) != strlen(name) ||
		    strncmp(line, name, strlen(name)) != 0) {
			continue;
		}
		hex++;
		*out = malloc(strlen(hex) / 2 + 1);
		if (*out != NULL && hex_decode(hex, *out, strlen(hex) / 2)) {
			n = strlen(hex) / 2;
		}
	}
	if (f != NULL) {
		fclose(f);
	}
	free(line);
	return n;
}

/* The server nonce a recorded CHALLENGE frame carries, in hex ("" when none). */
static void recorded_nonce(const uint8_t *frame, size_t len, char *hex, size_t hexlen)
{
	const char *payload = (const char *)frame + VMC_MIGP_HEADER_LEN;
	char *json = len > VMC_MIGP_HEADER_LEN ? strndup(payload, len - VMC_MIGP_HEADER_LEN) : NULL;
	json_object *o = json != NULL ? json_tokener_parse(json) : NULL;

	snprintf(hex, hexlen, "%s", vmc_json_str(o, "nonce") ?: "");
	json_object_put(o);
	free(json);
}

static int case_replay(struct probe *p, char **args)
{
	uint8_t *hello, *proof, *challenge;
	size_t hello_len = recording_field(args[0], "hello", &hello);
	size_t proof_len = recording_field(args[0], "proof", &proof);
	size_t challenge_len = recording_field(args[0], "challenge", &challenge);
	struct answer a = { .kind = ANS_TIMEOUT };
	char from[64], old_ns[HEX32_LEN + 1];
	int fd, rc = 2;

	if (hello_len == 0 || proof_len == 0 || challenge_len == 0) {
		fprintf(stderr, "vmc-migrate-probe: %s is not a recording "
				"(vmc-migrate-probe record ID FILE makes one)\n", args[0]);
	} else if ((fd = probe_connect(p, from, sizeof(from), false)) >= 0) {
		recorded_nonce(challenge, challenge_len, old_ns, sizeof(old_ns));
		printf("%s: sending the recorded HELLO (%zu bytes) verbatim\n", p->name, hello_len);
		send_all(fd, hello, hello_len);
		answer_read(fd, ANSWER_MS, &a);
		if (answer_is(&a, VMC_MIGP_CHALLENGE)) {
			bool same = strcmp(old_ns, vmc_json_str(a.body, "nonce") ?: "") == 0;
			printf("%s: CHALLENGE with %s server nonce than the recorded one\n",
			       p->name, same ? "THE SAME" : "another");
			printf("%s: sending the recorded PROOF (%zu bytes) verbatim\n", p->name,
			       proof_len);
			send_all(fd, proof, proof_len);
			answer_read(fd, ANSWER_MS, &a);
		} else {
			printf("%s: the HELLO was refused before any proof was checked: "
			       "the listener must expect the recorded id again\n",
			       p->name);
		}
		rc = verdict(p, from, &a, answer_is_error(&a, VMC_MIGP_E_AUTH),
			     "ERROR auth at the replayed PROOF");
		answer_clear(&a);
		close(fd);
	}
	free(hello);
	free(proof);
	free(challenge);
	return rc;
}

/* ---- many connections ---- */

/* The bad openings a flood cycles through: each is refused at its first frame. */
enum bad_kind {
	BAD_RANDOM,	 /* random bytes */
	BAD_MAGIC,	 /* a header with another magic */
	BAD_FORMAT,	 /* frame format 2 */
	BAD_TYPE,	 /* type 0 */
	BAD_LENGTH,	 /* a HELLO of 4 GiB */
	BAD_NOT_JSON,	 /* a HELLO whose body is not JSON */
	BAD_FIELDS,	 /* a HELLO with an id that is not hex */
	BAD_VERSION,	 /* a HELLO for protocol 99 only */
	BAD_PROOF_FIRST, /* a PROOF before any HELLO */
	BAD_SHORT,	 /* half a HELLO, then EOF */
	BAD_COUNT,
};

/* Each one's name, and the ERROR code the listener answers it with (NULL: it just closes). */
static const struct bad_opening {
	const char *name;
	const char *code;
} bad_openings[BAD_COUNT] = {
	[BAD_RANDOM] = { "random bytes", VMC_MIGP_E_PROTOCOL },
	[BAD_MAGIC] = { "bad magic", VMC_MIGP_E_PROTOCOL },
	[BAD_FORMAT] = { "frame format 2", VMC_MIGP_E_PROTOCOL },
	[BAD_TYPE] = { "type 0", VMC_MIGP_E_PROTOCOL },
	[BAD_LENGTH] = { "length 4 GiB", VMC_MIGP_E_PROTOCOL },
	[BAD_NOT_JSON] = { "body not JSON", VMC_MIGP_E_PROTOCOL },
	[BAD_FIELDS] = { "id not hex", VMC_MIGP_E_PROTOCOL },
	[BAD_VERSION] = { "protocol 99", VMC_MIGP_E_VERSION },
	[BAD_PROOF_FIRST] = { "PROOF first", VMC_MIGP_E_PROTOCOL },
	[BAD_SHORT] = { "half a HELLO", NULL }, /* EOF mid-frame: "aborted", nothing sent */
};

#define UNEXPECTED_SHOWN 5

/* The bytes of one bad opening into buf (at least 512 bytes); their length. */
static size_t bad_make(enum bad_kind kind, uint8_t *buf)
{
	uint8_t nc[VMC_MIGP_NONCE_LEN], *frame;
	char id[VMC_MIGP_ID_LEN + 1];
	json_object *b;
	size_t len;

	random_fill(nc, sizeof(nc));
	fresh_id(id);
	b = hello_body(id, "control", 0, nc);
	if (kind == BAD_FIELDS) {
		json_object_object_add(b, "id", json_object_new_string("not-an-id"));
	} else if (kind == BAD_VERSION) {
		json_object_object_add(b, "proto_min", json_object_new_int(99));
		json_object_object_add(b, "proto_max", json_object_new_int(99));
	}
	len = frame_make(kind == BAD_PROOF_FIRST ? VMC_MIGP_PROOF : VMC_MIGP_HELLO, b, &frame);
	memcpy(buf, frame, len);
	free(frame);
	switch (kind) {
	case BAD_RANDOM:
		random_fill(buf, VMC_MIGP_HEADER_LEN);
		buf[0] = (uint8_t)(buf[0] == 'V' ? 'X' : buf[0]);
		return VMC_MIGP_HEADER_LEN;
	case BAD_MAGIC:
		buf[3] = 'X';
		break;
	case BAD_FORMAT:
		buf[4] = 2;
		break;
	case BAD_TYPE:
		buf[5] = 0;
		break;
	case BAD_LENGTH:
		memset(buf + 8, 0xff, 4);
		break;
	case BAD_NOT_JSON:
		memset(buf + VMC_MIGP_HEADER_LEN, 'x', len - VMC_MIGP_HEADER_LEN);
		return len;
	case BAD_PROOF_FIRST:
		break;
	case BAD_SHORT:
		return len / 2;
	default:
		return len;
	}
	/*
	 * The header alone when it is what is wrong: the listener reads
	 * nothing past a bad header, and a close with bytes left unread
	 * would be a reset that can overtake its ERROR.
	 */
	return VMC_MIGP_HEADER_LEN;
}

struct tally {
	unsigned long errors[8]; /* by code, in the order of codes[] */
	unsigned long other_error, closed, reset, timeout, failed_connect;
	unsigned long
	    accepted; /* a CHALLENGE or WELCOME to a bad opening, or bytes that are no frame */
	unsigned long unexpected; /* not the answer bad_openings[] has for it */
	int64_t slowest_ms;
};

static const char *const codes[8] = {
	VMC_MIGP_E_PROTOCOL, VMC_MIGP_E_VERSION, VMC_MIGP_E_UNKNOWN_ID, VMC_MIGP_E_AUTH,
	VMC_MIGP_E_ID_USED,  VMC_MIGP_E_TIMEOUT, VMC_MIGP_E_ABORTED,	VMC_MIGP_E_INTERNAL,
};

static void tally_add(struct tally *t, const struct answer *a)
{
	size_t i;

	t->slowest_ms = a->ms > t->slowest_ms ? a->ms : t->slowest_ms;
	if (a->kind == ANS_CLOSED) {
		t->closed++;
	} else if (a->kind == ANS_RESET) {
		t->reset++;
	} else if (a->kind == ANS_TIMEOUT) {
		t->timeout++;
	} else if (!answer_is_error(a, NULL)) {
		t->accepted++;
	} else {
		for (i = 0; i < 8 && !answer_is_error(a, codes[i]); i++) {
		}
		if (i < 8) {
			t->errors[i]++;
		} else {
			t->other_error++;
		}
	}
}

static void tally_print(const struct probe *p, const struct tally *t)
{
	printf("%s: answers:", p->name);
	for (size_t i = 0; i < 8; i++) {
		if (t->errors[i] > 0) {
			printf(" ERROR %s %lu,", codes[i], t->errors[i]);
		}
	}
	printf(" other ERROR %lu, closed %lu, reset %lu, timeout %lu, accepted %lu, no connection "
	       "%lu; "
	       "not the answer expected %lu; slowest %.3f s\n",
	       t->other_error, t->closed, t->reset, t->timeout, t->accepted, t->failed_connect,
	       t->unexpected, seconds(t->slowest_ms));
}

/* One bad opening on its own connection, and the listener's answer. */
static void flood_one(const struct probe *p, enum bad_kind kind, struct tally *t)
{
	uint8_t buf[1024];
	struct answer a = { .kind = ANS_TIMEOUT };
	char from[64];
	size_t len = bad_make(kind, buf);
	const char *code = bad_openings[kind].code; /* NULL: it must just close */
	int fd = probe_connect(p, from, sizeof(from), true);

	if (fd < 0) {
		t->failed_connect++;
		return;
	}
	send_all(fd, buf, len);
	shutdown(fd, SHUT_WR); /* and closes: all it sends is this */
	answer_read(fd, ANSWER_MS, &a);
	tally_add(t, &a);
	if (code != NULL ? !answer_is_error(&a, code) : a.kind != ANS_CLOSED) {
		char text[400];
		if (t->unexpected++ < UNEXPECTED_SHOWN) {
			answer_describe(&a, text, sizeof(text));
			printf("%s: %s from %s: %s (expected %s)\n", p->name,
			       bad_openings[kind].name, from, text, code ?: "closed");
		}
	}
	if (a.kind == ANS_FRAME) {
		drain(fd, ANSWER_MS); /* the listener closes first: its port keeps the TIME_WAIT */
	}
	answer_clear(&a);
	close(fd);
}

/* After the abuse: a good HELLO for an unknown id must still be answered. */
static int still_serving(struct probe *p)
{
	const char *name = p->name;
	char label[64];
	int rc;

	snprintf(label, sizeof(label), "%s: then unknown-id", name);
	p->name = label;
	rc = case_unknown_id(p, NULL);
	p->name = name;
	return rc;
}

static long count_arg(const struct probe *p, const char *s, long max)
{
	char *end;
	long n = strtol(s, &end, 10);

	if (*end != '\0' || n < 1 || n > max) {
		fprintf(stderr, "vmc-migrate-probe: %s: '%s' is not a count from 1 to %ld\n",
			p->name, s, max);
		return -1;
	}
	return n;
}

static int case_flood(struct probe *p, char **args)
{
	long n = count_arg(p, args[0], FLOOD_MAX);
	struct tally t = { 0 };
	int64_t start = vmc_now_ms(), ms;
	bool bad;

	if (n < 0 || need_key(p) != 0) {
		return 2;
	}
	printf("%s: %ld connections one after the other, each a bad opening and a close; in turn:",
	       p->name, n);
	for (int k = 0; k < BAD_COUNT; k++) {
		printf("%s %s", k ? "," : "", bad_openings[k].name);
	}
	printf("\n");
	for (long i = 0; i < n; i++) {
		flood_one(p, (enum bad_kind)(i % BAD_COUNT), &t);
	}
	ms = vmc_now_ms() - start;
	printf("%s: %ld connections in %.2f s (%.0f a second)\n", p->name, n, seconds(ms),
	       ms > 0 ? (double)n * 1000.0 / (double)ms : 0.0);
	tally_print(p, &t);
	bad = t.unexpected > 0 || t.failed_connect > 0;
	if (bad) {
		printf("FAIL: %s: %lu bad openings did not get the answer expected, %lu "
		       "connections failed\n",
		       p->name, t.unexpected, t.failed_connect);
	}
	return still_serving(p) != 0 || bad ? 1 : 0;
}

static int case_hog(struct probe *p, char **args)
{
	long n = count_arg(p, args[0], HOG_MAX);
	int *fds;
	char from[64];
	long open_n = 0;
	int rc;

	if (n < 0 || need_key(p) != 0 || (fds = calloc((size_t)n, sizeof(*fds))) == NULL) {
		return 2;
	}
	for (long i = 0; i < n; i++) {
		fds[i] = probe_connect(p, from, sizeof(from), true);
		open_n += fds[i] >= 0;
	}
	printf("%s: %ld of %ld connections open, all silent\n", p->name, open_n, n);
	usleep(200 * 1000); /* the listener has accepted them */
	rc = still_serving(p);
	for (long i = 0; i < n; i++) {
		if (fds[i] >= 0) {
			close(fds[i]);
		}
	}
	free(fds);
	return rc;
}

/* ---- options and cases: one table each ---- */

static const struct probe_case {
	const char *word;
	int nargs;
	int (*run)(struct probe *p, char **args);
	const char *args_help;
	const char *help;
} cases[] = {
	{ "nokey", 0, case_nokey, "", "connect and send nothing: dropped at the read deadline" },
	{ "garbage", 0, case_garbage, "", "random bytes: ERROR protocol" },
	{ "truncated", 0, case_truncated, "",
	  "half a HELLO, then wait: dropped at the read deadline" },
	{ "unknown-id", 0, case_unknown_id, "",
	  "a good HELLO for an id nobody announced: ERROR unknown-id" },
	{ "wrongkey", 1, case_wrongkey, " ID",
	  "a handshake on an expected ID with another key: ERROR auth" },
	{ "used-id", 1, case_used_id, " ID", "a second control channel on ID: ERROR id-used" },
	{ "squat", 1, case_squat, " ID", "wrongkey on ID, then the right key on ID: WELCOME" },
	{ "squat-hold", 1, case_squat_hold, " ID",
	  "a keyless HELLO on ID held open, the right key meanwhile: WELCOME" },
	{ "record", 2, case_record, " ID FILE",
	  "a genuine handshake on ID, its bytes into FILE: WELCOME" },
	{ "replay", 1, case_replay, " FILE",
	  "FILE's HELLO and PROOF on a new connection: ERROR auth" },
	{ "flood", 1, case_flood, " N",
	  "N bad connections in a row, then unknown-id still answered" },
	{ "hog", 1, case_hog, " N", "N silent connections held, then unknown-id still answered" },
};

#define CASES_N (sizeof(cases) / sizeof(cases[0]))

enum { O_KEY = 256, O_TO, O_WRONG_KEY };

static const struct probe_option {
	struct option opt;
	const char *arg;
	const char *help;
} options[] = {
	{ { "key-file", required_argument, NULL, O_KEY },
	  "FILE",
	  "the cluster key (corosync's authkey)" },
	{ { "to", required_argument, NULL, O_TO },
	  "ADDR:PORT",
	  "the listener (default 127.0.0.1:7794)" },
	{ { "wrong-key-file", required_argument, NULL, O_WRONG_KEY },
	  "FILE",
	  "the other key for wrongkey and squat (default: 256 random bytes)" },
	{ { "help", no_argument, NULL, 'h' }, NULL, "this text" },
};

#define OPTIONS_N (sizeof(options) / sizeof(options[0]))

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: vmc-migrate-probe [OPTIONS] CASE [ARGS]\n\n"
		"Misbehaves once against a vmcluster-migrate listener and says what it answered.\n"
		"Exit 0: refused as it must be; 1: not; 2: the probe could not run.\n\nCases:\n");
	for (size_t i = 0; i < CASES_N; i++) {
		char word[32];
		snprintf(word, sizeof(word), "%s%s", cases[i].word, cases[i].args_help);
		fprintf(f, "  %-18s %s\n", word, cases[i].help);
	}
	fprintf(f, "\nOptions:\n");
	for (size_t i = 0; i < OPTIONS_N; i++) {
		char opt[40];
		snprintf(opt, sizeof(opt), "--%s%s%s", options[i].opt.name,
			 options[i].arg ? " " : "", options[i].arg ? options[i].arg : "");
		fprintf(f, "  %-26s %s\n", opt, options[i].help);
	}
}

static int options_parse(int argc, char **argv, struct probe *p)
{
	struct option longopts[OPTIONS_N + 1];
	bool wrong_given = false;
	uint8_t random_key[256];
	int c;

	for (size_t i = 0; i < OPTIONS_N; i++) {
		longopts[i] = options[i].opt;
	}
	longopts[OPTIONS_N] = (struct option){ NULL, 0, NULL, 0 };
	target_parse("127.0.0.1:7794", p);
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			exit(0);
		} else if (c == O_KEY) {
			if (key_file_load(optarg, p->key) != 0) {
				return -1;
			}
			p->have_key = true;
		} else if (c == O_WRONG_KEY) {
			if (key_file_load(optarg, p->wrong_key) != 0) {
				return -1;
			}
			wrong_given = true;
		} else if (c == O_TO) {
			if (target_parse(optarg, p) != 0) {
				fprintf(stderr,
					"vmc-migrate-probe: --to '%s' is not IPV4-ADDRESS:PORT\n",
					optarg);
				return -1;
			}
		} else {
			return -1;
		}
	}
	if (!wrong_given) {
		random_fill(random_key, sizeof(random_key));
		vmc_migp_auth_key(random_key, sizeof(random_key), p->wrong_key);
	}
	if (!address_allowed(p->to.sin_addr)) {
		fprintf(stderr,
			"vmc-migrate-probe: %s is neither loopback nor the test range "
			"198.51.100.0/24: refused\n",
			p->to_text);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct probe p = { 0 };

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (options_parse(argc, argv, &p) != 0) {
		fprintf(stderr, "vmc-migrate-probe: see --help\n");
		return 2;
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	for (size_t i = 0; i < CASES_N; i++) {
		if (strcmp(argv[optind], cases[i].word) != 0) {
			continue;
		}
		if (argc - optind - 1 != cases[i].nargs) {
			fprintf(stderr, "vmc-migrate-probe: %s takes%s\n", cases[i].word,
				cases[i].nargs ? cases[i].args_help : " no argument");
			return 2;
		}
		p.name = cases[i].word;
		return cases[i].run(&p, argv + optind + 1);
	}
	fprintf(stderr, "vmc-migrate-probe: unknown case '%s' (see --help)\n", argv[optind]);
	return 2;
}
