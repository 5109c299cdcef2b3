/*
 * File checks in a child (fs_check.h). The child checks, writes one line
 * ("0" or "-errno message") to a pipe and exits; the loop reads the pipe,
 * or kills the child when its deadline passes (a stat() on a hung NFS
 * mount does not return, and SIGKILL ends it once the kernel lets it).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fs_check.h"
#include "log.h"
#include "qemu_cmd.h"

struct fs_check {
	pid_t pid;
	int fd;
	char vm[VMC_NAME_MAX + 8]; /* what is checked, for the log: "vm web1", "volume" */
	char buf[512];
	size_t have;
	qb_loop_timer_handle timer;
	vmcd_fs_check_done_fn done;
	void *ctx;
	struct vmcd *d;
	struct fs_check *next;
};

static struct fs_check *checks;
static const struct vmcd_fs_check_hooks *check_hooks;
/* Children killed at their deadline, reaped once they are really gone. */
static pid_t unreaped[16];
static size_t n_unreaped;

static void unreaped_reap(void)
{
	size_t k = 0;

	for (size_t i = 0; i < n_unreaped; i++) {
		if (waitpid(unreaped[i], NULL, WNOHANG) == 0) {
			unreaped[k++] = unreaped[i];
		}
	}
	n_unreaped = k;
}

/* In the child: the first file that fails, into out. */
static int files_check(const struct vmc_group_def *def, const char *vm_paths, char *out, size_t len)
{
	const char *paths[2 + VMC_DISKS_MAX];
	bool writable[2 + VMC_DISKS_MAX];
	size_t n = 0;

	if (def->has_boot) {
		writable[n] = false;
		paths[n++] = def->kernel;
		if (def->initrd != NULL) {
			writable[n] = false;
			paths[n++] = def->initrd;
		}
	}
	for (size_t i = 0; i < def->n_disks; i++) {
		writable[n] = true;
		paths[n++] = def->disks[i].path;
	}
	for (size_t i = 0; i < n; i++) {
		char why[400];
		if (vmcd_qemu_path_allowed(vm_paths, writable[i] ? "disk" : "file", paths[i], why, sizeof(why)) != 0) {
			snprintf(out, len, "vm %s cannot start: %s", def->name, why);
			return -EPERM;
		}
		if (access(paths[i], writable[i] ? R_OK | W_OK : R_OK) != 0) {
			int rc = -errno;
			snprintf(out, len, "vm %s cannot start: %s: %s", def->name, paths[i], strerror(errno));
			return rc;
		}
	}
	return 0;
}

static void check_free(struct fs_check *c)
{
	struct fs_check **pp;

	for (pp = &checks; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	if (c->fd >= 0) {
		qb_loop_poll_del(c->d->loop, c->fd);
		close(c->fd);
	}
	free(c);
}

static void check_end(struct fs_check *c, int rc, const char *why)
{
	vmcd_fs_check_done_fn done = c->done;
	struct vmcd *d = c->d;
	void *ctx = c->ctx;
	char line[sizeof(c->buf)];

	/* why may point into c->buf, which goes with c. */
	snprintf(line, sizeof(line), "%s", why);
	why = line;

	if (c->pid > 0) {
		kill(c->pid, SIGKILL);
		/* Reaped now when it is gone, else by a later check. */
		if (waitpid(c->pid, NULL, WNOHANG) == 0 && n_unreaped < sizeof(unreaped) / sizeof(unreaped[0])) {
			unreaped[n_unreaped++] = c->pid;
		}
	}
	qb_loop_timer_del(d->loop, c->timer);
	check_free(c);
	done(d, ctx, rc, why);
	check_hooks->changed(d);
}

void vmcd_fs_check_init(struct vmcd *d, const struct vmcd_fs_check_hooks *hooks)
{
	check_hooks = hooks;
}

static int check_readable(int32_t fd, int32_t revents, void *data)
{
	struct fs_check *c = data;
	ssize_t n = read(fd, c->buf + c->have, sizeof(c->buf) - 1 - c->have);
	char *nl;
	long rc;

	if (n > 0) {
		c->have += (size_t)n;
		c->buf[c->have] = '\0';
	}
	nl = strchr(c->buf, '\n');
	if (nl == NULL && n > 0 && c->have < sizeof(c->buf) - 1) {
		return 0;
	}
	if (nl != NULL) {
		*nl = '\0';
	}
	rc = strtol(c->buf, &nl, 10);
	/* It exits right after its line; if not yet, check_end's kill and the reaper take it. */
	if (waitpid(c->pid, NULL, WNOHANG) == c->pid) {
		c->pid = 0;
	}
	if (c->have == 0) {
		check_end(c, -EIO, "the file check ended without a word");
	} else {
		check_end(c, (int)rc, *nl == ' ' ? nl + 1 : nl);
	}
	return -1;
}

static void check_deadline(void *data)
{
	struct fs_check *c = data;
	char why[256];

	snprintf(why, sizeof(why),
		 "%s: its files did not answer within %u s: is the storage they are on hung?", c->vm,
		 c->d->timeouts.fs_check_deadline_ms / 1000);
	log_err("%s", why);
	check_end(c, -ETIMEDOUT, why);
}

/* In the child: the check's one line ("0 what" or "-errno why"), written to fd. */
typedef void (*child_check_fn)(struct vmcd *d, const void *arg, int fd);

static int check_start(struct vmcd *d, const char *label, child_check_fn fn, const void *arg,
		       vmcd_fs_check_done_fn done, void *ctx)
{
	struct fs_check *c = calloc(1, sizeof(*c));
	int p[2];

	unreaped_reap();
	if (c == NULL) {
		return -ENOMEM;
	}
	if (pipe2(p, O_CLOEXEC) != 0) {
		free(c);
		return -errno;
	}
	c->pid = fork();
	if (c->pid == 0) {
		fn(d, arg, p[1]);
		_exit(0);
	}
	close(p[1]);
	if (c->pid < 0) {
		close(p[0]);
		free(c);
		return -errno;
	}
	c->fd = p[0];
	c->d = d;
	c->done = done;
	c->ctx = ctx;
	snprintf(c->vm, sizeof(c->vm), "%s", label);
	c->next = checks;
	checks = c;
	qb_loop_poll_add(d->loop, QB_LOOP_MED, c->fd, POLLIN, c, check_readable);
	qb_loop_timer_add(d->loop, QB_LOOP_MED, (uint64_t)d->timeouts.fs_check_deadline_ms * QB_TIME_NS_IN_MSEC,
			  c, check_deadline, &c->timer);
	return 0;
}

static void vm_files_child(struct vmcd *d, const void *arg, int fd)
{
	char line[480];
	int rc = files_check(arg, d->opt.vm_paths, line, sizeof(line));

	dprintf(fd, "%d %s\n", rc, rc == 0 ? "ok" : line);
}

int vmcd_fs_check_vm_files(struct vmcd *d, const struct vmc_group_def *def, vmcd_fs_check_done_fn done,
			   void *ctx)
{
	char label[VMC_NAME_MAX + 8];

	snprintf(label, sizeof(label), "vm %s", def->name);
	return check_start(d, label, vm_files_child, def, done, ctx);
}

/* In the child: the directory resolved, a directory, writable. */
static void volume_dir_child(struct vmcd *d, const void *arg, int fd)
{
	const char *path = arg;
	char resolved[PATH_MAX];
	struct stat st;

	(void)d;
	if (realpath(path, resolved) == NULL) {
		dprintf(fd, "%d %s: %s\n", -errno, path, strerror(errno));
	} else if (stat(resolved, &st) != 0) {
		dprintf(fd, "%d %s: %s\n", -errno, resolved, strerror(errno));
	} else if (!S_ISDIR(st.st_mode)) {
		dprintf(fd, "%d %s is not a directory (a volume is the directory its disks lie in)\n", -ENOTDIR,
			resolved);
	} else if (access(resolved, R_OK | W_OK | X_OK) != 0) {
		dprintf(fd, "%d %s: %s\n", -errno, resolved, strerror(errno));
	} else {
		dprintf(fd, "0 %s\n", resolved);
	}
}

int vmcd_fs_check_volume_dir(struct vmcd *d, const char *path, vmcd_fs_check_done_fn done, void *ctx)
{
	return check_start(d, "volume", volume_dir_child, path, done, ctx);
}

void vmcd_fs_check_fini(struct vmcd *d)
{
	while (checks != NULL) {
		struct fs_check *c = checks;
		if (c->pid > 0) {
			kill(c->pid, SIGKILL);
			waitpid(c->pid, NULL, WNOHANG);
		}
		qb_loop_timer_del(d->loop, c->timer);
		check_free(c);
	}
	unreaped_reap();
}
