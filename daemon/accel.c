/*
 * Accelerator choice (accel.h): kvm and tcg are taken as asked; auto is
 * probed once per daemon run by booting a kernel under KVM.
 *
 * Why the probe looks for "Linux version": SeaBIOS writes its banner
 * ("SeaBIOS (version ...)", "Booting from ROM..") to the serial port even
 * under the KVM that then hangs the kernel, so "any line" would take the
 * firmware for the guest. The kernel's own first line, with earlyprintk,
 * is "Linux version ..." from start_kernel(); under a working KVM it comes
 * within a second, under the broken nested KVM of the test machines it
 * never comes.
 *
 * The probe QEMU is our child (unlike the VMs): stdout is the serial
 * console, through a pipe; stderr another pipe, for QEMU's own complaint
 * when it cannot start; PR_SET_PDEATHSIG kills it if the daemon dies
 * mid-probe. It is killed with SIGKILL and reaped before this returns.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "accel.h"
#include "clock.h"
#include "log.h"

#define QEMU_NAME "qemu-system-x86_64"
#define PROBE_MEMORY_MIB "128"
#define PROBE_CMDLINE "console=ttyS0 earlyprintk=ttyS0 panic=-1"
#define PROBE_KERNEL_LINE "Linux version"
#define PROBE_READ_LEN 4096

static struct {
	bool probed;
	enum vmc_accel verdict;
	unsigned int probe_ms;
} accel_cache;

int vmcd_qemu_find(char *path, size_t len)
{
	const char *env = getenv("VMC_QEMU");
	const char *dirs = getenv("PATH");
	const char *p;

	if (env != NULL && env[0] != '\0') {
		if ((size_t)snprintf(path, len, "%s", env) >= len) {
			return -ENAMETOOLONG;
		}
		return access(path, X_OK) == 0 ? 0 : -ENOENT;
	}
	if (dirs == NULL || dirs[0] == '\0') {
		dirs = "/usr/local/bin:/usr/bin:/bin";
	}
	for (p = dirs; *p != '\0';) {
		size_t dlen = strcspn(p, ":");

		if (dlen > 0 && (size_t)snprintf(path, len, "%.*s/%s", (int)dlen, p, QEMU_NAME) < len &&
		    access(path, X_OK) == 0) {
			return 0;
		}
		p += dlen;
		if (*p == ':') {
			p++;
		}
	}
	return -ENOENT;
}

/* /dev/kvm opens read-write: 0, else -errno. */
static int kvm_device_check(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		return -errno;
	}
	close(fd);
	return 0;
}

/* Remembers the last complete, non-empty line of QEMU's stderr. */
static void stderr_take(char *last, size_t lastlen, char *pending, size_t *plen,
			const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (buf[i] == '\n') {
			if (*plen > 0) {
				snprintf(last, lastlen, "%.*s", (int)*plen, pending);
			}
			*plen = 0;
		} else if (*plen < PROBE_READ_LEN - 1) {
			pending[(*plen)++] = buf[i];
		}
	}
}

static void probe_child(const char *const *argv, int serial_w, int err_w, pid_t parent)
{
	int devnull = open("/dev/null", O_RDWR);

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent) {
		_exit(127);
	}
	/* Out of the way of 0..2 first, whatever numbers they had. */
	devnull = fcntl(devnull, F_DUPFD, 10);
	serial_w = fcntl(serial_w, F_DUPFD, 10);
	err_w = fcntl(err_w, F_DUPFD, 10);
	if (devnull < 0 || serial_w < 0 || err_w < 0 || dup2(devnull, 0) < 0 ||
	    dup2(serial_w, 1) < 0 || dup2(err_w, 2) < 0) {
		_exit(127);
	}
	for (int sig = 1; sig < NSIG; sig++) {
		signal(sig, SIG_DFL);
	}
	{
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
	}
	execv(argv[0], (char *const *)argv);
	_exit(127);
}

/* The probe QEMU: KVM, the serial console on stdout, no network, no display. */
static void probe_argv(const char **argv, size_t max, const char *qemu, const char *kernel,
		       const char *initrd)
{
	static const char *const fixed[] = {
		"-accel", "kvm", "-machine", "pc", "-m", PROBE_MEMORY_MIB, "-nodefaults",
		"-no-user-config", "-display", "none", "-no-reboot", "-nic", "none",
		"-append", PROBE_CMDLINE, "-chardev", "stdio,id=serial0,signal=off",
		"-serial", "chardev:serial0",
	};
	size_t n = 0;

	argv[n++] = qemu;
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]) && n + 5 < max; i++) {
		argv[n++] = fixed[i];
	}
	argv[n++] = "-kernel";
	argv[n++] = kernel;
	if (initrd != NULL) {
		argv[n++] = "-initrd";
		argv[n++] = initrd;
	}
	argv[n] = NULL;
}

struct probe_io {
	int serial;              /* read end: the guest's console */
	int err;                 /* read end: QEMU's stderr */
	char window[2 * PROBE_READ_LEN];
	size_t wlen;
	char pending[PROBE_READ_LEN];
	size_t plen;
	char last_err[256];
};

/* One read of the console; true once the kernel's first line is in. */
static bool probe_serial_read(struct probe_io *io, bool *open_out)
{
	char buf[PROBE_READ_LEN];
	ssize_t n = read(io->serial, buf, sizeof(buf));

	if (n <= 0) {
		*open_out = n < 0 && errno == EINTR;
		return false;
	}
	/* Keep a tail so a line split across reads is still found. */
	if (io->wlen + (size_t)n > sizeof(io->window)) {
		size_t keep = sizeof(PROBE_KERNEL_LINE);

		memmove(io->window, io->window + io->wlen - keep, keep);
		io->wlen = keep;
	}
	memcpy(io->window + io->wlen, buf, (size_t)n);
	io->wlen += (size_t)n;
	return memmem(io->window, io->wlen, PROBE_KERNEL_LINE, strlen(PROBE_KERNEL_LINE)) != NULL;
}

static void probe_err_read(struct probe_io *io, bool *open_out)
{
	char buf[PROBE_READ_LEN];
	ssize_t n = read(io->err, buf, sizeof(buf));

	if (n > 0) {
		stderr_take(io->last_err, sizeof(io->last_err), io->pending, &io->plen, buf, (size_t)n);
	} else {
		*open_out = n < 0 && errno == EINTR;
	}
}

/*
 * Watches the probe until the kernel's first line (1), the deadline or
 * QEMU's exit (0, why says which), or a poll failure (-errno).
 */
static int probe_watch(struct probe_io *io, int64_t start, unsigned int *first_line_ms, char *why,
		       size_t whylen)
{
	bool serial_open = true;
	bool err_open = true;

	while (serial_open || err_open) {
		struct pollfd pfd[2] = {
			{ .fd = serial_open ? io->serial : -1, .events = POLLIN },
			{ .fd = err_open ? io->err : -1, .events = POLLIN },
		};
		int64_t left = VMCD_ACCEL_PROBE_DEADLINE_MS - (vmc_now_ms() - start);

		if (left <= 0) {
			snprintf(why, whylen, "no console line from the kernel within %d ms",
				 VMCD_ACCEL_PROBE_DEADLINE_MS);
			return 0;
		}
		if (poll(pfd, 2, (int)left) < 0) {
			if (errno == EINTR) {
				continue;
			}
			snprintf(why, whylen, "poll: %s", strerror(errno));
			return -errno;
		}
		if (pfd[1].revents != 0) {
			probe_err_read(io, &err_open);
		}
		if (pfd[0].revents != 0 && probe_serial_read(io, &serial_open)) {
			*first_line_ms = (unsigned int)(vmc_now_ms() - start);
			return 1;
		}
	}
	if (io->plen > 0) {
		snprintf(io->last_err, sizeof(io->last_err), "%.*s", (int)io->plen, io->pending);
	}
	snprintf(why, whylen, "QEMU exited without a kernel line%s%s", io->last_err[0] != '\0' ? ": " : "",
		 io->last_err);
	return 0;
}

/*
 * Boots kernel under KVM until the kernel's first console line or the
 * deadline. 1: KVM works; 0: it does not (why says how); -errno: the probe
 * itself could not run (why says how).
 */
static int probe_run(const char *qemu, const char *kernel, const char *initrd,
		     unsigned int *first_line_ms, char *why, size_t whylen)
{
	const char *argv[40];
	struct probe_io *io = calloc(1, sizeof(*io));
	int serial[2] = { -1, -1 };
	int err[2] = { -1, -1 };
	int64_t start = vmc_now_ms();
	pid_t parent = getpid();
	pid_t pid = -1;
	int status;
	int rc;

	probe_argv(argv, sizeof(argv) / sizeof(argv[0]), qemu, kernel, initrd);
	if (io == NULL || pipe2(serial, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 ||
	    (pid = fork()) < 0) {
		rc = io == NULL ? -ENOMEM : -errno;
		snprintf(why, whylen, "starting QEMU: %s", strerror(-rc));
		goto out;
	}
	if (pid == 0) {
		probe_child(argv, serial[1], err[1], parent);
	}
	close(serial[1]);
	close(err[1]);
	serial[1] = err[1] = -1;
	io->serial = serial[0];
	io->err = err[0];
	rc = probe_watch(io, start, first_line_ms, why, whylen);
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
	}
out:
	for (int i = 0; i < 2; i++) {
		if (serial[i] >= 0) {
			close(serial[i]);
		}
		if (err[i] >= 0) {
			close(err[i]);
		}
	}
	free(io);
	return rc;
}

static enum vmc_accel accel_probe(const char *probe_kernel, const char *probe_initrd)
{
	char kernel_buf[PATH_MAX];
	char qemu[PATH_MAX];
	char why[384] = "";
	unsigned int first_line_ms = 0;
	int64_t start = vmc_now_ms();
	int rc;

	rc = kvm_device_check();
	if (rc < 0) {
		log_notice("accel auto: /dev/kvm: %s; VMs run under TCG", strerror(-rc));
		return VMC_ACCEL_TCG;
	}
	if (probe_kernel == NULL) {
		struct utsname u;

		if (uname(&u) == 0) {
			snprintf(kernel_buf, sizeof(kernel_buf), "/boot/vmlinuz-%s", u.release);
			probe_kernel = kernel_buf;
			probe_initrd = NULL;
		}
	}
	if (probe_kernel == NULL || access(probe_kernel, R_OK) != 0 ||
	    (probe_initrd != NULL && access(probe_initrd, R_OK) != 0)) {
		log_err("accel auto: no probe kernel to check KVM with (%s%s%s: %s); VMs run under TCG",
			probe_kernel != NULL ? probe_kernel : "none",
			probe_initrd != NULL ? ", " : "", probe_initrd != NULL ? probe_initrd : "",
			strerror(errno));
		return VMC_ACCEL_TCG;
	}
	rc = vmcd_qemu_find(qemu, sizeof(qemu));
	if (rc < 0) {
		log_err("accel auto: cannot find " QEMU_NAME " to probe KVM with: %s; VMs run under TCG",
			strerror(-rc));
		return VMC_ACCEL_TCG;
	}
	rc = probe_run(qemu, probe_kernel, probe_initrd, &first_line_ms, why, sizeof(why));
	accel_cache.probe_ms = (unsigned int)(vmc_now_ms() - start);
	if (rc > 0) {
		log_notice("accel auto: KVM booted the probe kernel %s (first kernel line after %u ms); "
			   "VMs run under KVM", probe_kernel, first_line_ms);
		return VMC_ACCEL_KVM;
	}
	if (rc < 0) {
		log_err("accel auto: the KVM probe could not run (%s); VMs run under TCG", why);
		return VMC_ACCEL_TCG;
	}
	log_warn("accel auto: /dev/kvm is there but KVM did not boot the probe kernel %s: %s "
		 "(nested virtualisation?); VMs run under TCG", probe_kernel, why);
	return VMC_ACCEL_TCG;
}

enum vmc_accel vmcd_accel_resolve(enum vmc_accel wanted, const char *probe_kernel,
				  const char *probe_initrd)
{
	int rc;

	switch (wanted) {
	case VMC_ACCEL_KVM:
		rc = kvm_device_check();
		if (rc < 0) {
			log_warn("accel kvm: /dev/kvm: %s; VMs will not start until it can be opened",
				 strerror(-rc));
		}
		return VMC_ACCEL_KVM;
	case VMC_ACCEL_TCG:
		return VMC_ACCEL_TCG;
	case VMC_ACCEL_AUTO:
	default:
		break;
	}
	if (!accel_cache.probed) {
		accel_cache.verdict = accel_probe(probe_kernel, probe_initrd);
		accel_cache.probed = true;
	}
	return accel_cache.verdict;
}

bool vmcd_accel_auto_cached(enum vmc_accel *out)
{
	if (accel_cache.probed) {
		*out = accel_cache.verdict;
	}
	return accel_cache.probed;
}

unsigned int vmcd_accel_probe_ms(void)
{
	return accel_cache.probe_ms;
}
