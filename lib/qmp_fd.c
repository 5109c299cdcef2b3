/*
 * The QMP engine on a real socket: connect, write (with an fd for getfd),
 * read. Everything is non-blocking; the caller's poll() or libqb loop
 * decides when to call again.
 *
 * Why the fd rides with the command's bytes: QEMU keeps the last fd that
 * arrived on the monitor socket and getfd takes it when the command runs,
 * so the fd must arrive no later than the command. Sending both in one
 * sendmsg() makes that hold whatever else is in flight.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "qmp.h"

#define QMP_READ_LEN (64 * 1024)

int vmc_qmp_fd_connect(const char *path, int *fd_out)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int sock;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		return -ENAMETOOLONG;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1);
	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (sock < 0) {
		return -errno;
	}
	/*
	 * An AF_UNIX connect completes at once or fails; with QEMU's listen
	 * backlog full it fails with EAGAIN, and the caller retries later.
	 */
	if (connect(sock, (const struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int rc = -errno;

		close(sock);
		return rc;
	}
	*fd_out = sock;
	return 0;
}

ssize_t vmc_qmp_fd_send(int sock, const void *buf, size_t len, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (fd >= 0) {
		struct cmsghdr *cmsg;

		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof(control.buf);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	}
	do {
		n = sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

int vmc_qmp_fd_flush(struct vmc_qmp *q, int sock)
{
	struct vmc_qmp_output out;

	while (vmc_qmp_output_peek(q, &out)) {
		ssize_t n = vmc_qmp_fd_send(sock, out.data, out.len, out.fd);
		char reason[128];

		if (n == -EAGAIN || n == -EWOULDBLOCK) {
			return -EAGAIN;
		}
		if (n < 0) {
			snprintf(reason, sizeof(reason), "writing to the QMP socket: %s", strerror((int)-n));
			vmc_qmp_fail(q, reason);
			return (int)n;
		}
		vmc_qmp_output_consume(q, (size_t)n);
	}
	return 0;
}

ssize_t vmc_qmp_fd_receive(struct vmc_qmp *q, int sock)
{
	char buf[QMP_READ_LEN];
	char reason[128];
	ssize_t n;

	do {
		n = recv(sock, buf, sizeof(buf), MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n > 0) {
		vmc_qmp_feed(q, buf, (size_t)n);
		return n;
	}
	/*
	 * On AF_UNIX, ECONNRESET only means the peer closed with some of our
	 * bytes unread (QEMU exiting on "quit" with commands queued behind it):
	 * a close like any other.
	 */
	if (n == 0 || errno == ECONNRESET) {
		vmc_qmp_fail(q, "QEMU closed the QMP socket");
		return 0;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		return -EAGAIN;
	}
	n = -errno;
	snprintf(reason, sizeof(reason), "reading the QMP socket: %s", strerror((int)-n));
	vmc_qmp_fail(q, reason);
	return n;
}
