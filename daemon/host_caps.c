/*
 * What this node's QEMU and CPU can run (host_caps.h), asked once at
 * start, before the loop: the CPU vendor from /proc/cpuinfo, and from a
 * QEMU with no machine (-machine none) on QMP over a pipe, its version
 * and the CPU models whose features it can all give under this node's
 * accelerator (query-cpu-definitions: unavailable-features empty).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <json-c/json.h>

#include "accel.h"
#include "clock.h"
#include "host_caps.h"
#include "json_util.h"
#include "log.h"

#define PROBE_DEADLINE_MS 10000
#define OUT_MAX (1024 * 1024)

static struct vmcd_host_caps caps;

static void vendor_read(void)
{
	char line[256];
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "vendor_id : %31s", caps.cpu_vendor) == 1) {
			break;
		}
	}
	if (f != NULL) {
		fclose(f);
	}
}

/* Runs QEMU with QMP on its stdin and stdout; what it said, up to OUT_MAX. */
static char *qmp_session(const char *qemu, enum vmc_accel accel)
{
	static const char script[] = "{\"execute\":\"qmp_capabilities\"}\n"
				     "{\"execute\":\"query-cpu-definitions\"}\n{\"execute\":\"quit\"}\n";
	const char *argv[] = { qemu, "-machine", "none", "-accel", accel == VMC_ACCEL_KVM ? "kvm" : "tcg",
			       "-nodefaults", "-display", "none", "-qmp", "stdio", NULL };
	int in[2], out[2];
	char *buf = calloc(1, OUT_MAX + 1);
	size_t have = 0;
	int64_t deadline = vmc_now_ms() + PROBE_DEADLINE_MS;
	pid_t pid;

	if (buf == NULL || pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
		free(buf);
		return NULL;
	}
	pid = fork();
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(devnull, 2);
		execv(qemu, (char *const *)argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	if (pid > 0 && write(in[1], script, sizeof(script) - 1) < 0) {
		log_warn("host capabilities: cannot talk to %s: %s", qemu, strerror(errno));
	}
	close(in[1]);
	while (pid > 0 && have < OUT_MAX) {
		struct pollfd p = { .fd = out[0], .events = POLLIN };
		int64_t left = deadline - vmc_now_ms();
		ssize_t n;
		if (left <= 0 || poll(&p, 1, (int)left) != 1 || (n = read(out[0], buf + have, OUT_MAX - have)) <= 0) {
			break;
		}
		have += (size_t)n;
	}
	close(out[0]);
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	return buf;
}

static void models_take(json_object *list)
{
	size_t used = 0;

	for (size_t i = 0; i < json_object_array_length(list); i++) {
		json_object *m = json_object_array_get_idx(list, i), *missing = NULL;
		const char *name = vmc_json_str(m, "name");
		if (name == NULL || !json_object_object_get_ex(m, "unavailable-features", &missing) ||
		    json_object_array_length(missing) != 0 || used + strlen(name) + 2 >= sizeof(caps.cpu_models)) {
			continue;
		}
		used += (size_t)snprintf(caps.cpu_models + used, sizeof(caps.cpu_models) - used, "%s%s",
					 used ? "," : "", name);
	}
}

/* Each line QEMU wrote: the greeting has its version, a reply with an array the CPU models. */
static void session_parse(char *text)
{
	for (char *line = strtok(text, "\r\n"); line != NULL; line = strtok(NULL, "\r\n")) {
		json_object *o = json_tokener_parse(line), *x, *v;
		if (o == NULL) {
			continue;
		}
		if (json_object_object_get_ex(o, "QMP", &x) && json_object_object_get_ex(x, "version", &x) &&
		    json_object_object_get_ex(x, "qemu", &v)) {
			int64_t ma = 0, mi = 0, mc = 0;
			vmc_json_int64(v, "major", &ma);
			vmc_json_int64(v, "minor", &mi);
			vmc_json_int64(v, "micro", &mc);
			snprintf(caps.qemu_version, sizeof(caps.qemu_version), "%lld.%lld.%lld", (long long)ma, (long long)mi,
				 (long long)mc);
		} else if (json_object_object_get_ex(o, "return", &x) && json_object_is_type(x, json_type_array)) {
			models_take(x);
		}
		json_object_put(o);
	}
}

static size_t models_count(void)
{
	size_t n = caps.cpu_models[0] != '\0';

	for (const char *p = caps.cpu_models; *p != '\0'; p++) {
		n += *p == ',';
	}
	return n;
}

void vmcd_host_caps_probe(void)
{
	char qemu[4096];
	enum vmc_accel accel = VMC_ACCEL_TCG;
	char *out;

	memset(&caps, 0, sizeof(caps));
	vendor_read();
	vmcd_accel_auto_cached(&accel);
	if (vmcd_qemu_find(qemu, sizeof(qemu)) != 0 || (out = qmp_session(qemu, accel)) == NULL) {
		log_warn("host capabilities: no QEMU to ask: moves to this node are not checked for CPU models");
		return;
	}
	session_parse(out);
	free(out);
	snprintf(caps.accel, sizeof(caps.accel), "%s", vmc_accel_to_str(accel));
	log_info("host capabilities: CPU %s, QEMU %s, %zu CPU models runnable under %s",
		 caps.cpu_vendor[0] ? caps.cpu_vendor : "unknown", caps.qemu_version[0] ? caps.qemu_version : "unknown",
		 models_count(), caps.accel);
}

const struct vmcd_host_caps *vmcd_host_caps(void)
{
	return &caps;
}
