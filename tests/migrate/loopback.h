/*
 * Sockets for the relay's test and benchmark: a socketpair for the QEMU
 * side, a TCP connection on 127.0.0.1 (never any other address) for the
 * network side, and a blocking send of all bytes. Each program defines
 * die(what): it reports errno and exits.
 */
#ifndef VMC_TEST_LOOPBACK_H
#define VMC_TEST_LOOPBACK_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

static void die(const char *what);

static inline void unix_pair(int fds[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
		die("socketpair");
	}
}

/* Two ends of one TCP connection on 127.0.0.1. */
static inline void tcp_pair(int fds[2])
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(l, 1) != 0 ||
	    getsockname(l, (struct sockaddr *)&a, &len) != 0) {
		die("listen on 127.0.0.1");
	}
	fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fds[0] < 0 || connect(fds[0], (struct sockaddr *)&a, sizeof(a)) != 0) {
		die("connect to 127.0.0.1");
	}
	fds[1] = accept(l, NULL, NULL);
	if (fds[1] < 0) {
		die("accept");
	}
	close(l);
}

/* All of len bytes: 0 or -errno (EINTR retried, never SIGPIPE). */
static inline int send_all(int fd, const void *p, size_t len)
{
	const uint8_t *b = p;

	while (len > 0) {
		ssize_t n = send(fd, b, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			return -errno;
		}
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

#endif
