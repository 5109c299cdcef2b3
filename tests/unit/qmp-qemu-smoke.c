/*
 * The QMP client against a real QEMU, once: start qemu-system-x86_64 with
 * no machine and a QMP socket, connect with vmc_qmp_fd_connect(), drive
 * the engine from poll() and check query-version, query-status, getfd
 * (a pipe's fd through SCM_RIGHTS) and closefd twice (the second is
 * QEMU's error: the name is gone), then quit: its reply, the SHUTDOWN
 * event and EOF. QEMU is killed by pid on every path, and by
 * PR_SET_PDEATHSIG if this program dies first.
 *
 * Exits 77 (automake's SKIP) when QEMU is not installed.
 * VMC_QEMU=/path/to/qemu-system-x86_64 chooses the binary.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "qmp.h"

#define EXIT_SKIP 77
#define QEMU_NAME "qemu-system-x86_64"
#define CONNECT_TIMEOUT_MS 10000
#define SESSION_TIMEOUT_MS 20000
#define EXIT_TIMEOUT_MS 5000
#define WATCHDOG_S 60
#define RETRY_MS 20
#define PATH_LEN 512

/* The commands, in the order they are sent and answered. */
enum smoke_cmd {
	CMD_QUERY_VERSION,
	CMD_QUERY_STATUS,
	CMD_GETFD,
	CMD_CLOSEFD,
	CMD_CLOSEFD_AGAIN,
	CMD_QUIT,
	CMD_COUNT,
};

struct smoke {
	struct vmc_qmp *q;
	int sock;
	int pipefd[2];
	int checks_failed;
	int greeting_major, greeting_minor, greeting_micro;
	bool ready;
	bool shutdown_event;
	bool eof;
	int done_calls[CMD_COUNT];
	enum smoke_cmd order[CMD_COUNT];
	int order_len;
	struct smoke_cmd_ctx {
		struct smoke *s;
		enum smoke_cmd cmd;
	} ctx[CMD_COUNT];
};

static const char *const cmd_names[CMD_COUNT] = {
	[CMD_QUERY_VERSION] = "query-version",
	[CMD_QUERY_STATUS] = "query-status",
	[CMD_GETFD] = "getfd",
	[CMD_CLOSEFD] = "closefd",
	[CMD_CLOSEFD_AGAIN] = "closefd",
	[CMD_QUIT] = "quit",
};

static void check(struct smoke *s, bool ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void check(struct smoke *s, bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s - ", ok ? "ok" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!ok) {
		s->checks_failed++;
	}
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* $VMC_QEMU, else the first qemu-system-x86_64 on $PATH; false if none. */
static bool qemu_find(char *out, size_t len)
{
	const char *env = getenv("VMC_QEMU");
	const char *path = getenv("PATH");
	char dirs[PATH_LEN * 4];
	char *save = NULL;

	if (env != NULL && env[0] != '\0') {
		snprintf(out, len, "%s", env);
		return access(out, X_OK) == 0;
	}
	snprintf(dirs, sizeof(dirs), "%s", path != NULL ? path : "/usr/bin:/bin");
	for (char *d = strtok_r(dirs, ":", &save); d != NULL; d = strtok_r(NULL, ":", &save)) {
		snprintf(out, len, "%s/%s", d, QEMU_NAME);
		if (access(out, X_OK) == 0) {
			return true;
		}
	}
	return false;
}

static pid_t qemu_start(const char *qemu, const char *sock_path, const char *log_path)
{
	char qmp_arg[PATH_LEN + 32];
	pid_t parent = getpid();
	int in, log;
	pid_t pid;

	snprintf(qmp_arg, sizeof(qmp_arg), "unix:%s,server=on,wait=off", sock_path);
	pid = fork();
	if (pid != 0) {
		return pid;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent) {
		_exit(127);
	}
	in = open("/dev/null", O_RDONLY);
	log = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (in < 0 || log < 0 || dup2(in, 0) < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0) {
		_exit(127);
	}
	execl(qemu, qemu, "-machine", "none", "-nodefaults", "-nographic", "-qmp", qmp_arg,
	      (char *)NULL);
	_exit(127);
}

/* True once QEMU has exited (reaped; *status set). */
static bool qemu_reaped(pid_t pid, int *status)
{
	return waitpid(pid, status, WNOHANG) == pid;
}

/* QEMU creates the socket a moment after it starts: retry until it listens. */
static int qmp_connect_wait(struct smoke *s, const char *path, pid_t pid, bool *reaped, int *status)
{
	long long deadline = now_ms() + CONNECT_TIMEOUT_MS;
	int rc;

	for (;;) {
		rc = vmc_qmp_fd_connect(path, &s->sock);
		if (rc == 0 || (rc != -ENOENT && rc != -ECONNREFUSED && rc != -EAGAIN)) {
			return rc;
		}
		if (qemu_reaped(pid, status)) {
			*reaped = true;
			return -ECHILD;
		}
		if (now_ms() > deadline) {
			return -ETIMEDOUT;
		}
		sleep_ms(RETRY_MS);
	}
}

static void on_greeting(void *ctx, const struct vmc_qmp_greeting *g)
{
	struct smoke *s = ctx;

	s->greeting_major = g->major;
	s->greeting_minor = g->minor;
	s->greeting_micro = g->micro;
	check(s, g->major > 0, "greeting from QEMU %d.%d.%d (%s), %zu capabilities", g->major,
	      g->minor, g->micro, g->package, g->capability_count);
}

static void cmd_done(struct vmc_qmp *q, void *opaque, const struct vmc_qmp_reply *reply);

static void cmd_submit(struct smoke *s, enum smoke_cmd cmd, const char *args_json)
{
	json_object *args = args_json != NULL ? json_tokener_parse(args_json) : NULL;
	int rc;

	s->ctx[cmd] = (struct smoke_cmd_ctx){ .s = s, .cmd = cmd };
	if (cmd == CMD_GETFD) {
		rc = vmc_qmp_command_with_fd(s->q, cmd_names[cmd], args, s->pipefd[1], cmd_done,
					     &s->ctx[cmd], NULL);
	} else {
		rc = vmc_qmp_command(s->q, cmd_names[cmd], args, cmd_done, &s->ctx[cmd], NULL);
	}
	check(s, rc == 0, "submit %s: rc %d", cmd_names[cmd], rc);
}

/* Negotiated: send everything at once; QEMU answers in order. */
static void on_ready(void *ctx)
{
	struct smoke *s = ctx;

	s->ready = true;
	cmd_submit(s, CMD_QUERY_VERSION, NULL);
	cmd_submit(s, CMD_QUERY_STATUS, NULL);
	cmd_submit(s, CMD_GETFD, "{\"fdname\": \"smoke\"}");
	cmd_submit(s, CMD_CLOSEFD, "{\"fdname\": \"smoke\"}");
	cmd_submit(s, CMD_CLOSEFD_AGAIN, "{\"fdname\": \"smoke\"}");
	cmd_submit(s, CMD_QUIT, NULL);
}

static void on_event(void *ctx, const struct vmc_qmp_event *ev)
{
	struct smoke *s = ctx;

	printf("# event %s %s\n", ev->name,
	       ev->data != NULL ? json_object_to_json_string_ext(ev->data, JSON_C_TO_STRING_PLAIN) : "");
	if (strcmp(ev->name, "SHUTDOWN") == 0) {
		s->shutdown_event = true;
	}
}

static void on_failed(void *ctx, const char *reason)
{
	struct smoke *s = ctx;

	s->eof = strcmp(reason, "QEMU closed the QMP socket") == 0;
	printf("# connection ended: %s\n", reason);
}

static void on_warn(void *ctx, const char *what)
{
	printf("# warn: %s\n", what);
}

static const struct vmc_qmp_ops smoke_ops = {
	.greeting = on_greeting,
	.ready = on_ready,
	.event = on_event,
	.failed = on_failed,
	.warn = on_warn,
};

static void version_check(struct smoke *s, json_object *ret)
{
	json_object *qemu = NULL, *v;
	int major = -1, minor = -1, micro = -1;

	if (json_object_object_get_ex(ret, "qemu", &qemu)) {
		major = json_object_object_get_ex(qemu, "major", &v) ? json_object_get_int(v) : -1;
		minor = json_object_object_get_ex(qemu, "minor", &v) ? json_object_get_int(v) : -1;
		micro = json_object_object_get_ex(qemu, "micro", &v) ? json_object_get_int(v) : -1;
	}
	check(s, major == s->greeting_major && minor == s->greeting_minor && micro == s->greeting_micro,
	      "query-version says %d.%d.%d, as the greeting did", major, minor, micro);
}

static void status_check(struct smoke *s, json_object *ret)
{
	json_object *running, *status;

	check(s, json_object_object_get_ex(ret, "running", &running) &&
			 json_object_is_type(running, json_type_boolean) &&
			 json_object_object_get_ex(ret, "status", &status) &&
			 json_object_is_type(status, json_type_string),
	      "query-status: %s", json_object_to_json_string_ext(ret, JSON_C_TO_STRING_PLAIN));
}

static void cmd_done(struct vmc_qmp *q, void *opaque, const struct vmc_qmp_reply *reply)
{
	struct smoke_cmd_ctx *c = opaque;
	struct smoke *s = c->s;
	bool want_error = c->cmd == CMD_CLOSEFD_AGAIN;
	enum vmc_qmp_reply_status want = want_error ? VMC_QMP_ERROR : VMC_QMP_OK;

	s->done_calls[c->cmd]++;
	s->order[s->order_len++ % CMD_COUNT] = c->cmd;
	check(s, reply->status == want, "%s (id %llu): %s %s", reply->command,
	      (unsigned long long)reply->id, vmc_qmp_reply_status_to_str(reply->status),
	      reply->error_class != NULL ? reply->error_class : "");
	if (reply->status != VMC_QMP_OK) {
		printf("#   %s\n", reply->error_desc);
	}
	if (reply->status != VMC_QMP_OK) {
		return;
	}
	if (c->cmd == CMD_QUERY_VERSION) {
		version_check(s, reply->ret);
	} else if (c->cmd == CMD_QUERY_STATUS) {
		status_check(s, reply->ret);
	}
}

/* poll() and the engine until QEMU closes the socket or time runs out. */
static void session_run(struct smoke *s)
{
	long long deadline = now_ms() + SESSION_TIMEOUT_MS;

	while (vmc_qmp_state_get(s->q) != VMC_QMP_FAILED) {
		struct pollfd pfd = { .fd = s->sock, .events = POLLIN };
		long long left = deadline - now_ms();
		int n;

		if (left <= 0) {
			vmc_qmp_fail(s->q, "session timed out");
			break;
		}
		if (vmc_qmp_output_pending(s->q)) {
			pfd.events |= POLLOUT;
		}
		n = poll(&pfd, 1, (int)left);
		if (n < 0 && errno != EINTR) {
			vmc_qmp_fail(s->q, "poll failed");
			break;
		}
		if (n > 0 && (pfd.revents & POLLOUT) != 0) {
			vmc_qmp_fd_flush(s->q, s->sock);
		}
		if (n > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
			vmc_qmp_fd_receive(s->q, s->sock);
		}
	}
}

static void session_check(struct smoke *s)
{
	check(s, s->ready, "capabilities negotiated");
	for (int i = 0; i < CMD_COUNT; i++) {
		check(s, s->done_calls[i] == 1, "%s completed once (%d)", cmd_names[i], s->done_calls[i]);
		check(s, s->order_len == CMD_COUNT && s->order[i] == (enum smoke_cmd)i,
		      "reply %d answers %s", i, cmd_names[i]);
	}
	check(s, s->shutdown_event, "SHUTDOWN event after quit");
	check(s, s->eof, "QEMU closed the socket after quit");
}

/* Waits for QEMU to exit by itself; kills it if it does not. */
static void qemu_wait_exit(struct smoke *s, pid_t pid, bool *reaped, int *status)
{
	long long deadline = now_ms() + EXIT_TIMEOUT_MS;

	while (!*reaped && now_ms() < deadline) {
		*reaped = qemu_reaped(pid, status);
		if (!*reaped) {
			sleep_ms(RETRY_MS);
		}
	}
	check(s, *reaped && WIFEXITED(*status) && WEXITSTATUS(*status) == 0,
	      "QEMU exited with status 0 after quit");
}

static void log_dump(const char *log_path)
{
	char line[512];
	FILE *f = fopen(log_path, "r");

	if (f == NULL) {
		return;
	}
	printf("# QEMU's output:\n");
	while (fgets(line, sizeof(line), f) != NULL) {
		printf("#   %s", line);
	}
	fclose(f);
}

int main(void)
{
	char qemu[PATH_LEN], dir[] = "/tmp/vmc-qmp-smoke.XXXXXX";
	char sock_path[PATH_LEN], log_path[PATH_LEN];
	struct smoke s = { .sock = -1, .pipefd = { -1, -1 } };
	bool reaped = false;
	int status = 0, rc;
	pid_t pid;

	if (!qemu_find(qemu, sizeof(qemu))) {
		printf("SKIP: %s not found (set VMC_QEMU to choose one)\n", QEMU_NAME);
		return EXIT_SKIP;
	}
	alarm(WATCHDOG_S);
	if (mkdtemp(dir) == NULL || pipe(s.pipefd) < 0) {
		perror("setup");
		return EXIT_FAILURE;
	}
	snprintf(sock_path, sizeof(sock_path), "%s/qmp.sock", dir);
	snprintf(log_path, sizeof(log_path), "%s/qemu.log", dir);
	pid = qemu_start(qemu, sock_path, log_path);
	check(&s, pid > 0, "started %s (pid %d)", qemu, (int)pid);
	if (pid > 0) {
		rc = qmp_connect_wait(&s, sock_path, pid, &reaped, &status);
		check(&s, rc == 0, "connected to %s: %s", sock_path, rc == 0 ? "yes" : strerror(-rc));
		if (rc == 0) {
			s.q = vmc_qmp_new(&smoke_ops, &s);
			session_run(&s);
			session_check(&s);
			vmc_qmp_free(s.q);
			qemu_wait_exit(&s, pid, &reaped, &status);
		}
		if (!reaped) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
		}
	}
	if (s.checks_failed > 0) {
		log_dump(log_path);
	}
	if (s.sock >= 0) {
		close(s.sock);
	}
	close(s.pipefd[0]);
	close(s.pipefd[1]);
	unlink(sock_path);
	unlink(log_path);
	rmdir(dir);
	printf("%s: %d check(s) failed\n", s.checks_failed == 0 ? "PASS" : "FAIL", s.checks_failed);
	return s.checks_failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
