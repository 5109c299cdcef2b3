/*
 * The agent's connections and its reports (conn.h).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "conn.h"

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static int addr_make(const char *addr, int port, struct sockaddr_in *sin, char *err, size_t errlen)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	if (port < 1 || port > 65535 || inet_pton(AF_INET, addr, &sin->sin_addr) != 1) {
		snprintf(err, errlen, "'%s:%d' is not an IPv4 address and port", addr, port);
		return -1;
	}
	if (sin->sin_addr.s_addr == htonl(INADDR_ANY)) {
		snprintf(err, errlen, "refusing to use 0.0.0.0: name the address of the migration network");
		return -1;
	}
	return 0;
}

int net_parse_hostport(const char *s, char *addr, size_t len, int *port)
{
	const char *colon = strrchr(s, ':');
	char *end;
	long p;

	if (colon == NULL || (size_t)(colon - s) >= len || colon == s) {
		return -1;
	}
	p = strtol(colon + 1, &end, 10);
	if (*end != '\0' || p < 1 || p > 65535) {
		return -1;
	}
	memcpy(addr, s, (size_t)(colon - s));
	addr[colon - s] = '\0';
	*port = (int)p;
	return 0;
}

int net_listen(const char *addr, int port, char *err, size_t errlen)
{
	struct sockaddr_in sin;
	int one = 1;
	int fd;

	if (addr_make(addr, port, &sin, err, errlen) != 0) {
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(fd, 64) != 0) {
		snprintf(err, errlen, "cannot listen on %s:%d: %s", addr, port, strerror(errno));
		if (fd >= 0) {
			close(fd);
		}
		return -1;
	}
	return fd;
}

void net_tune(int fd)
{
	int one = 1, idle = 5, intvl = 2, cnt = 3;
	unsigned user_timeout_ms = 10000;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* A link gone silent (cut, peer powered off) ends the connection in about 10 s, not TCP's 15 minutes:
	 * the migration fails, and the source, still the owner, runs on. The socket keeps this in QEMU's hands. */
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof(user_timeout_ms));
}

int net_connect(const char *addr, int port, const char *bind_addr, int timeout_ms, char *err, size_t errlen)
{
	struct sockaddr_in sin, local;
	struct pollfd p;
	int fd, soerr = 0;
	socklen_t sl = sizeof(soerr);

	if (addr_make(addr, port, &sin, err, errlen) != 0 ||
	    (bind_addr != NULL && addr_make(bind_addr, 1, &local, err, errlen) != 0)) {
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (bind_addr != NULL) {
		local.sin_port = 0;
		if (bind(fd, (struct sockaddr *)&local, sizeof(local)) != 0) {
			snprintf(err, errlen, "cannot bind to %s: %s", bind_addr, strerror(errno));
			close(fd);
			return -1;
		}
	}
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 && errno != EINPROGRESS) {
		int e = errno;
		snprintf(err, errlen, "cannot connect to %s:%d: %s", addr, port, strerror(e));
		close(fd);
		errno = e;
		return -1;
	}
	p = (struct pollfd){ .fd = fd, .events = POLLOUT };
	if (poll(&p, 1, timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
		snprintf(err, errlen, "cannot connect to %s:%d: %s", addr, port,
			 soerr != 0 ? strerror(soerr) : "no answer in time");
		close(fd);
		errno = soerr != 0 ? soerr : ETIMEDOUT;
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	net_tune(fd);
	return fd;
}

/* Writes every queued byte; false when the socket fails or stalls past deadline. */
static bool write_all(int fd, struct vmc_migp *c, int64_t deadline_ms)
{
	const void *data;
	size_t n;

	while ((n = vmc_migp_output(c, &data)) > 0) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int64_t left = deadline_ms - vmc_now_ms();
		ssize_t w;
		if (left <= 0 || poll(&p, 1, (int)left) != 1) {
			return false;
		}
		w = send(fd, data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno != EAGAIN && errno != EINTR) {
			return false;
		}
		if (w > 0) {
			vmc_migp_output_consume(c, (size_t)w);
		}
	}
	return true;
}

void migp_flush(int fd, struct vmc_migp *c)
{
	(void)write_all(fd, c, vmc_now_ms() + 1000);
}

void migp_pump(int fd, struct vmc_migp *c, int64_t deadline_ms, struct vmc_migp_event *ev)
{
	uint8_t buf[4096];

	for (;;) {
		size_t want;
		int64_t left;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (!write_all(fd, c, vmc_now_ms() + VMCM_READ_DEADLINE_MS)) {
			vmc_migp_fail(c, VMC_MIGP_E_ABORTED, "cannot write to the peer agent");
		}
		vmc_migp_event_next(c, ev);
		if (ev->kind != VMC_MIGP_EV_NONE) {
			return;
		}
		want = vmc_migp_wanted(c);
		if (want == 0) {
			vmc_migp_fail(c, VMC_MIGP_E_INTERNAL, "the handshake waits for nothing");
			continue;
		}
		left = deadline_ms - vmc_now_ms();
		if (left > VMCM_READ_DEADLINE_MS) {
			left = VMCM_READ_DEADLINE_MS;
		}
		if (left <= 0 || poll(&p, 1, (int)left) != 1) {
			vmc_migp_fail(c, VMC_MIGP_E_TIMEOUT, "the peer agent said nothing in time");
			continue;
		}
		n = recv(fd, buf, want < sizeof(buf) ? want : sizeof(buf), 0);
		if (n <= 0) {
			vmc_migp_fail(c, VMC_MIGP_E_ABORTED,
				      n == 0 ? "the peer agent closed the connection" : "reading from the peer agent failed");
			continue;
		}
		vmc_migp_feed(c, buf, (size_t)n);
	}
}

int key_load(const char *path, uint8_t key[VMC_MIGP_KEY_LEN], char *err, size_t errlen)
{
	uint8_t buf[4096];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "cannot read the cluster key %s: %s", path, strerror(errno));
		return -1;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 16) {
		snprintf(err, errlen, "the cluster key %s is %s", path, n < 0 ? strerror(errno) : "shorter than 16 bytes");
		return -1;
	}
	n = vmc_migp_auth_key(buf, (size_t)n, key);
	memset(buf, 0, sizeof(buf));
	if (n != 0) {
		snprintf(err, errlen, "cannot derive the migration key from %s (libcrypto failed)", path);
		return -1;
	}
	return 0;
}

void report(json_object *o)
{
	pthread_mutex_lock(&out_lock);
	fprintf(stdout, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
	json_object_put(o);
}

json_object *report_new(const char *event, const char *id)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "event", json_object_new_string(event));
	if (id != NULL) {
		json_object_object_add(o, "id", json_object_new_string(id));
	}
	return o;
}

void agent_log(const char *fmt, ...)
{
	va_list ap;
	char line[512];

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&out_lock);
	fprintf(stderr, "vmcluster-migrate[%d]: %s\n", (int)getpid(), line);
	pthread_mutex_unlock(&out_lock);
}
