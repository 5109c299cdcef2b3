/*
 * Helper programs spoken to in JSON lines (agent_proc.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent_proc.h"
#include "log.h"

#define LINE_MAX_BYTES 65536

struct agent_proc {
	qb_loop_t *loop;
	pid_t pid;
	int pidfd;
	int in_fd;   /* its stdin; -1 once closed */
	int out_fd;  /* its stdout; -1 at EOF */
	bool gone;   /* reaped: waiting for the output to drain */
	int status;
	const struct agent_proc_ops *ops;
	void *ctx;
	char tag[64];
	char buf[LINE_MAX_BYTES];
	size_t have;
};

static void proc_free(struct agent_proc *p)
{
	if (p->pidfd >= 0) {
		qb_loop_poll_del(p->loop, p->pidfd);
		close(p->pidfd);
	}
	if (p->out_fd >= 0) {
		qb_loop_poll_del(p->loop, p->out_fd);
		close(p->out_fd);
	}
	if (p->in_fd >= 0) {
		close(p->in_fd);
	}
	free(p);
}

/* Both its output drained and its exit seen: tell the owner, then free. */
static void proc_maybe_end(struct agent_proc *p)
{
	if (p->gone && p->out_fd < 0) {
		p->ops->exited(p->ctx, p, p->status);
		proc_free(p);
	}
}

static void lines_take(struct agent_proc *p)
{
	char *nl;

	while ((nl = memchr(p->buf, '\n', p->have)) != NULL) {
		json_object *o;
		*nl = '\0';
		o = json_tokener_parse(p->buf);
		if (o != NULL && !json_object_is_type(o, json_type_object)) {
			json_object_put(o);
			o = NULL;
		}
		p->ops->line(p->ctx, p, o, p->buf);
		json_object_put(o);
		p->have -= (size_t)(nl + 1 - p->buf);
		memmove(p->buf, nl + 1, p->have);
	}
	if (p->have == sizeof(p->buf)) {
		log_warn("agent pid %d wrote a line longer than %d bytes: dropped", (int)p->pid, LINE_MAX_BYTES);
		p->have = 0;
	}
}

static int32_t out_dispatch(int32_t fd, int32_t revents, void *data)
{
	struct agent_proc *p = data;
	ssize_t n = read(fd, p->buf + p->have, sizeof(p->buf) - p->have);

	(void)revents;
	if (n > 0) {
		p->have += (size_t)n;
		lines_take(p);
		return 0;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		return 0;
	}
	qb_loop_poll_del(p->loop, p->out_fd);
	close(p->out_fd);
	p->out_fd = -1;
	proc_maybe_end(p);
	return -1;
}

static int32_t exit_dispatch(int32_t fd, int32_t revents, void *data)
{
	struct agent_proc *p = data;

	(void)fd;
	(void)revents;
	if (waitpid(p->pid, &p->status, WNOHANG) != p->pid) {
		return 0;
	}
	qb_loop_poll_del(p->loop, p->pidfd);
	close(p->pidfd);
	p->pidfd = -1;
	p->gone = true;
	proc_maybe_end(p);
	return -1;
}

static pid_t proc_fork(char *const argv[], int in_r, int out_w)
{
	pid_t pid = fork();

	if (pid == 0) {
		setsid();
		dup2(in_r, STDIN_FILENO);
		dup2(out_w, STDOUT_FILENO);
		/* Nothing of the daemon's (corosync, IPC, QMP sockets) goes to the agent. */
		syscall(SYS_close_range, 3, ~0U, 0);
		execv(argv[0], argv);
		fprintf(stderr, "vmclusterd: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

struct agent_proc *agent_proc_start(qb_loop_t *loop, char *const argv[], const struct agent_proc_ops *ops,
				    void *ctx, char *err, size_t errlen)
{
	struct agent_proc *p = calloc(1, sizeof(*p));
	int in[2] = { -1, -1 }, out[2] = { -1, -1 };

	if (p == NULL || pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
		snprintf(err, errlen, "cannot start %s: %s", argv[0], strerror(errno));
		goto fail;
	}
	*p = (struct agent_proc){ .loop = loop, .pidfd = -1, .in_fd = in[1], .out_fd = out[0], .ops = ops, .ctx = ctx };
	p->pid = proc_fork(argv, in[0], out[1]);
	close(in[0]);
	close(out[1]);
	in[0] = out[1] = -1;
	if (p->pid < 0) {
		snprintf(err, errlen, "cannot start %s: fork: %s", argv[0], strerror(errno));
		p->in_fd = p->out_fd = -1;
		goto fail;
	}
	fcntl(p->in_fd, F_SETFL, O_NONBLOCK);
	fcntl(p->out_fd, F_SETFL, O_NONBLOCK);
	p->pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
	if (p->pidfd < 0 || qb_loop_poll_add(loop, QB_LOOP_MED, p->pidfd, POLLIN, p, exit_dispatch) != 0 ||
	    qb_loop_poll_add(loop, QB_LOOP_MED, p->out_fd, POLLIN, p, out_dispatch) != 0) {
		snprintf(err, errlen, "cannot follow %s (pid %d)", argv[0], (int)p->pid);
		kill(-p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
		if (p->pidfd >= 0) {
			qb_loop_poll_del(loop, p->pidfd);
		}
		proc_free(p);
		return NULL;
	}
	return p;
fail:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0) {
			close(in[i]);
		}
		if (out[i] >= 0) {
			close(out[i]);
		}
	}
	free(p);
	return NULL;
}

int agent_proc_send(struct agent_proc *p, const char *line)
{
	char buf[4096];
	int n = snprintf(buf, sizeof(buf), "%s\n", line);
	ssize_t w;

	if (p->in_fd < 0 || n <= 0 || (size_t)n >= sizeof(buf)) {
		return -EINVAL;
	}
	w = write(p->in_fd, buf, (size_t)n);
	if (w != n) {
		log_warn("agent pid %d: a line to it was dropped (%s)", (int)p->pid, w < 0 ? strerror(errno) : "pipe full");
		return w < 0 ? -errno : -EAGAIN;
	}
	return 0;
}

void agent_proc_kill(struct agent_proc *p, bool hard)
{
	if (!p->gone) {
		kill(-p->pid, hard ? SIGKILL : SIGTERM);
	}
}

static void reap_later(void *data)
{
	pid_t pid = (pid_t)(intptr_t)data;

	waitpid(pid, NULL, WNOHANG);
}

void agent_proc_abandon(struct agent_proc *p, bool hard)
{
	if (!p->gone) {
		qb_loop_timer_handle t;
		kill(-p->pid, hard ? SIGKILL : SIGTERM);
		if (waitpid(p->pid, NULL, WNOHANG) != p->pid) {
			qb_loop_timer_add(p->loop, QB_LOOP_LOW, 200 * QB_TIME_NS_IN_MSEC, (void *)(intptr_t)p->pid,
					  reap_later, &t);
		}
	}
	proc_free(p);
}

pid_t agent_proc_pid(const struct agent_proc *p)
{
	return p->pid;
}

void agent_proc_set_tag(struct agent_proc *p, const char *tag)
{
	snprintf(p->tag, sizeof(p->tag), "%s", tag);
}

const char *agent_proc_tag(const struct agent_proc *p)
{
	return p->tag;
}
