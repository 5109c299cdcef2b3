/*
 * Parsing and validation of VM group definitions.
 *
 * Every refusal is one line that starts with the field it is about, so an
 * operator can fix the file without guessing. The canonical JSON written
 * back by vmc_group_def_to_json() carries every field in a fixed order:
 * it is what the replicated state stores and what the digest covers.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "group_def.h"
#include "json_util.h"

#define PATH_LEN_MAX 4095
#define BRIDGE_LEN_MAX 15

struct verr {
	char *buf;
	size_t len;
};

__attribute__((format(printf, 3, 4))) static int
refuse(struct verr *e, const char *field, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (e->buf == NULL || e->len == 0) {
		return -EINVAL;
	}
	if (field != NULL) {
		n = snprintf(e->buf, e->len, "field '%s': ", field);
	}
	if (n >= 0 && (size_t)n < e->len) {
		va_start(ap, fmt);
		vsnprintf(e->buf + n, e->len - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static const char *json_type_word(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null:
		return "null";
	case json_type_boolean:
		return "a boolean";
	case json_type_double:
		return "a number with a fraction";
	case json_type_int:
		return "an integer";
	case json_type_object:
		return "an object";
	case json_type_array:
		return "an array";
	case json_type_string:
		return "a string";
	}
	return "something else";
}

bool vmc_valid_name(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > VMC_NAME_MAX || !isalnum((unsigned char)name[0])) {
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!isalnum(c) && c != '-' && c != '_' && c != '.') {
			return false;
		}
	}
	return true;
}

static bool has_control_chars(const char *s)
{
	for (; *s != '\0'; s++) {
		if (iscntrl((unsigned char)*s)) {
			return true;
		}
	}
	return false;
}

static int check_keys(json_object *obj, const char *where, const char *const *known,
		      struct verr *e)
{
	json_object_object_foreach(obj, key, val) {
		bool found = false;
		(void)val;
		for (size_t i = 0; known[i] != NULL; i++) {
			if (strcmp(key, known[i]) == 0) {
				found = true;
				break;
			}
		}
		if (!found) {
			char field[160];
			char list[512] = "";
			for (size_t i = 0; known[i] != NULL; i++) {
				strncat(list, i ? ", " : "", sizeof(list) - strlen(list) - 1);
				strncat(list, known[i], sizeof(list) - strlen(list) - 1);
			}
			snprintf(field, sizeof(field), "%s%s%s", where, *where ? "." : "", key);
			return refuse(e, field, "unknown key (known keys: %s)", list);
		}
	}
	return 0;
}

static int get_uint(json_object *v, const char *field, int64_t min, int64_t max,
		    uint32_t *out, struct verr *e)
{
	int64_t x;

	if (!json_object_is_type(v, json_type_int)) {
		return refuse(e, field, "expected an integer from %lld to %lld, got %s",
			      (long long)min, (long long)max, json_type_word(v));
	}
	errno = 0;
	x = json_object_get_int64(v);
	if (errno != 0 || x < min || x > max) {
		return refuse(e, field, "%s is out of range %lld..%lld",
			      json_object_get_string(v), (long long)min, (long long)max);
	}
	*out = (uint32_t)x;
	return 0;
}

static int get_string(json_object *v, const char *field, size_t max_len, char **out,
		      struct verr *e)
{
	const char *s;

	if (!json_object_is_type(v, json_type_string)) {
		return refuse(e, field, "expected a string, got %s", json_type_word(v));
	}
	s = json_object_get_string(v);
	if ((size_t)json_object_get_string_len(v) != strlen(s)) {
		return refuse(e, field, "contains a NUL character");
	}
	if (*s == '\0') {
		return refuse(e, field, "must not be empty");
	}
	if (strlen(s) > max_len) {
		return refuse(e, field, "longer than %zu characters", max_len);
	}
	if (has_control_chars(s)) {
		return refuse(e, field, "contains control characters");
	}
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

static int get_path(json_object *v, const char *field, char **out, struct verr *e)
{
	int rc = get_string(v, field, PATH_LEN_MAX, out, e);

	if (rc == 0 && (*out)[0] != '/') {
		rc = refuse(e, field, "'%s' is not an absolute path", *out);
		free(*out);
		*out = NULL;
	}
	return rc;
}

static int get_name_list(json_object *v, const char *field, size_t max,
			 struct vmc_strlist *out, struct verr *e)
{
	size_t n;

	if (!json_object_is_type(v, json_type_array)) {
		return refuse(e, field, "expected an array of names, got %s", json_type_word(v));
	}
	n = json_object_array_length(v);
	if (n > max) {
		return refuse(e, field, "has %zu entries, at most %zu allowed", n, max);
	}
	out->v = calloc(n ? n : 1, sizeof(char *));
	if (out->v == NULL) {
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *item = json_object_array_get_idx(v, i);
		const char *s;

		if (!json_object_is_type(item, json_type_string)) {
			return refuse(e, field, "entry %zu: expected a name, got %s", i,
				      json_type_word(item));
		}
		s = json_object_get_string(item);
		if ((size_t)json_object_get_string_len(item) != strlen(s) || !vmc_valid_name(s)) {
			return refuse(e, field,
				      "'%s' is not a valid name (1-%d letters, digits, '-', '_', '.', starting with a letter or digit)",
				      s, VMC_NAME_MAX);
		}
		if (vmc_strlist_contains(out, s)) {
			return refuse(e, field, "'%s' is listed twice", s);
		}
		out->v[out->n] = strdup(s);
		if (out->v[out->n] == NULL) {
			return -ENOMEM;
		}
		out->n++;
	}
	return 0;
}

bool vmc_strlist_contains(const struct vmc_strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->v[i], s) == 0) {
			return true;
		}
	}
	return false;
}

static int parse_boot(json_object *v, struct vmc_group_def *d, struct verr *e)
{
	static const char *const known[] = { "kernel", "initrd", "cmdline", NULL };
	json_object *x;
	int rc;

	if (!json_object_is_type(v, json_type_object)) {
		return refuse(e, "boot", "expected an object with kernel, initrd, cmdline, got %s",
			      json_type_word(v));
	}
	rc = check_keys(v, "boot", known, e);
	if (rc != 0) {
		return rc;
	}
	if (!json_object_object_get_ex(v, "kernel", &x)) {
		return refuse(e, "boot.kernel", "missing (the path of the kernel to boot)");
	}
	rc = get_path(x, "boot.kernel", &d->kernel, e);
	if (rc == 0 && json_object_object_get_ex(v, "initrd", &x)) {
		rc = get_path(x, "boot.initrd", &d->initrd, e);
	}
	if (rc == 0 && json_object_object_get_ex(v, "cmdline", &x)) {
		rc = get_string(x, "boot.cmdline", VMC_CMDLINE_MAX, &d->cmdline, e);
	}
	d->has_boot = true;
	return rc;
}

static int parse_disk(json_object *v, size_t i, struct vmc_disk *disk, struct verr *e)
{
	static const char *const known[] = { "path", "format", "local", NULL };
	char where[32];
	char field[48];
	json_object *x;
	int rc;

	snprintf(where, sizeof(where), "disks[%zu]", i);
	if (!json_object_is_type(v, json_type_object)) {
		return refuse(e, where, "expected an object with path and format, got %s",
			      json_type_word(v));
	}
	rc = check_keys(v, where, known, e);
	if (rc != 0) {
		return rc;
	}
	snprintf(field, sizeof(field), "%s.path", where);
	if (!json_object_object_get_ex(v, "path", &x)) {
		return refuse(e, field, "missing (the path of the disk image)");
	}
	rc = get_path(x, field, &disk->path, e);
	if (rc != 0) {
		return rc;
	}
	if (json_object_object_get_ex(v, "local", &x)) {
		snprintf(field, sizeof(field), "%s.local", where);
		if (!json_object_is_type(x, json_type_boolean)) {
			return refuse(e, field, "expected true or false, got %s", json_type_word(x));
		}
		disk->local = json_object_get_boolean(x);
	}
	snprintf(field, sizeof(field), "%s.format", where);
	if (!json_object_object_get_ex(v, "format", &x)) {
		disk->format = strdup("raw");
		return disk->format ? 0 : -ENOMEM;
	}
	rc = get_string(x, field, 16, &disk->format, e);
	if (rc == 0 && strcmp(disk->format, "raw") != 0 && strcmp(disk->format, "qcow2") != 0) {
		rc = refuse(e, field, "'%s' is not a supported format (raw, qcow2)", disk->format);
	}
	return rc;
}

static bool valid_mac(const char *s)
{
	unsigned int b[6];
	char tail;

	if (strlen(s) != 17 ||
	    sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &tail) != 6) {
		return false;
	}
	for (size_t i = 0; i < 17; i++) {
		if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i])) {
			return false;
		}
	}
	/* multicast addresses can't be a NIC's own; all-zero is no address */
	return (b[0] & 1) == 0 && (b[0] | b[1] | b[2] | b[3] | b[4] | b[5]) != 0;
}

static bool valid_ifname(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > BRIDGE_LEN_MAX) {
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!isalnum(c) && c != '-' && c != '_' && c != '.') {
			return false;
		}
	}
	return true;
}

static int parse_nic(json_object *v, size_t i, struct vmc_nic *nic, struct verr *e)
{
	static const char *const known[] = { "bridge", "mac", NULL };
	char where[32];
	char field[48];
	json_object *x;
	int rc;

	snprintf(where, sizeof(where), "nics[%zu]", i);
	if (!json_object_is_type(v, json_type_object)) {
		return refuse(e, where, "expected an object with bridge and mac, got %s",
			      json_type_word(v));
	}
	rc = check_keys(v, where, known, e);
	if (rc != 0) {
		return rc;
	}
	snprintf(field, sizeof(field), "%s.bridge", where);
	if (!json_object_object_get_ex(v, "bridge", &x)) {
		return refuse(e, field, "missing (the host bridge to attach to)");
	}
	rc = get_string(x, field, 64, &nic->bridge, e);
	if (rc == 0 && !valid_ifname(nic->bridge)) {
		return refuse(e, field, "'%s' is not a valid interface name (1-15 letters, digits, '-', '_', '.')",
			      nic->bridge);
	}
	snprintf(field, sizeof(field), "%s.mac", where);
	if (rc == 0 && json_object_object_get_ex(v, "mac", &x)) {
		rc = get_string(x, field, 32, &nic->mac, e);
		if (rc == 0 && !valid_mac(nic->mac)) {
			rc = refuse(e, field, "'%s' is not a unicast MAC address like 52:54:00:12:34:56",
				    nic->mac);
		}
	}
	return rc;
}

static int parse_disks(json_object *v, struct vmc_group_def *d, struct verr *e)
{
	size_t n;

	if (!json_object_is_type(v, json_type_array)) {
		return refuse(e, "disks", "expected an array of disks, got %s", json_type_word(v));
	}
	n = json_object_array_length(v);
	if (n > VMC_DISKS_MAX) {
		return refuse(e, "disks", "has %zu disks, at most %d allowed", n, VMC_DISKS_MAX);
	}
	d->disks = calloc(n ? n : 1, sizeof(*d->disks));
	if (d->disks == NULL) {
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		int rc = parse_disk(json_object_array_get_idx(v, i), i, &d->disks[i], e);
		d->n_disks = i + 1;
		if (rc != 0) {
			return rc;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(d->disks[j].path, d->disks[i].path) == 0) {
				char field[32];
				snprintf(field, sizeof(field), "disks[%zu].path", i);
				return refuse(e, field, "'%s' is already disks[%zu]", d->disks[i].path, j);
			}
		}
	}
	return 0;
}

static int parse_nics(json_object *v, struct vmc_group_def *d, struct verr *e)
{
	size_t n;

	if (!json_object_is_type(v, json_type_array)) {
		return refuse(e, "nics", "expected an array of NICs, got %s", json_type_word(v));
	}
	n = json_object_array_length(v);
	if (n > VMC_NICS_MAX) {
		return refuse(e, "nics", "has %zu NICs, at most %d allowed", n, VMC_NICS_MAX);
	}
	d->nics = calloc(n ? n : 1, sizeof(*d->nics));
	if (d->nics == NULL) {
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		int rc = parse_nic(json_object_array_get_idx(v, i), i, &d->nics[i], e);
		d->n_nics = i + 1;
		if (rc != 0) {
			return rc;
		}
		for (size_t j = 0; d->nics[i].mac != NULL && j < i; j++) {
			if (d->nics[j].mac != NULL && strcasecmp(d->nics[j].mac, d->nics[i].mac) == 0) {
				char field[32];
				snprintf(field, sizeof(field), "nics[%zu].mac", i);
				return refuse(e, field, "'%s' is already nics[%zu]'s", d->nics[i].mac, j);
			}
		}
	}
	return 0;
}

static int parse_priority(json_object *v, struct vmc_group_def *d, struct verr *e)
{
	static const char *const words[] = { "high", "medium", "low", "no-auto-start" };
	const char *s;

	if (!json_object_is_type(v, json_type_string)) {
		return refuse(e, "priority", "expected one of high, medium, low, no-auto-start, got %s",
			      json_type_word(v));
	}
	s = json_object_get_string(v);
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (strcmp(s, words[i]) == 0) {
			d->priority = (enum vmc_priority)i;
			return 0;
		}
	}
	return refuse(e, "priority", "'%s' is not one of high, medium, low, no-auto-start", s);
}

static int parse_failover(json_object *v, struct vmc_group_def *d, struct verr *e)
{
	static const char *const known[] = { "max_failures", "period_s", NULL };
	json_object *x;
	int rc;

	if (!json_object_is_type(v, json_type_object)) {
		return refuse(e, "failover", "expected an object with max_failures and period_s, got %s",
			      json_type_word(v));
	}
	rc = check_keys(v, "failover", known, e);
	if (rc == 0 && json_object_object_get_ex(v, "max_failures", &x)) {
		rc = get_uint(x, "failover.max_failures", 0, 1000, &d->failover_max_failures, e);
	}
	if (rc == 0 && json_object_object_get_ex(v, "period_s", &x)) {
		rc = get_uint(x, "failover.period_s", 1, VMC_FAILOVER_PERIOD_S_MAX,
			      &d->failover_period_s, e);
	}
	return rc;
}

/* "HH" or "HH:MM" at *p, into minutes of the day; *p moves past it. false when it is neither. */
static bool clock_parse(const char **p, unsigned int *minutes)
{
	const char *s = *p;
	unsigned int h, m = 0;

	if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1])) {
		return false;
	}
	h = (unsigned int)(s[0] - '0') * 10 + (unsigned int)(s[1] - '0');
	s += 2;
	if (*s == ':') {
		if (!isdigit((unsigned char)s[1]) || !isdigit((unsigned char)s[2])) {
			return false;
		}
		m = (unsigned int)(s[1] - '0') * 10 + (unsigned int)(s[2] - '0');
		s += 3;
	}
	if (h > 23 || m > 59) {
		return false;
	}
	*minutes = h * 60 + m;
	*p = s;
	return true;
}

static int parse_failback(json_object *v, struct vmc_group_def *d, struct verr *e)
{
	const char *s, *p;
	unsigned int from, to;

	if (!json_object_is_type(v, json_type_string)) {
		return refuse(e, "failback", "expected \"never\", \"immediate\" or \"window HH-HH\", got %s",
			      json_type_word(v));
	}
	s = json_object_get_string(v);
	if (strcmp(s, "never") == 0) {
		d->failback = VMC_FAILBACK_NEVER;
		return 0;
	}
	if (strcmp(s, "immediate") == 0) {
		d->failback = VMC_FAILBACK_IMMEDIATE;
		return 0;
	}
	p = s + 7;
	if (strncmp(s, "window ", 7) == 0 && clock_parse(&p, &from) && *p++ == '-' && clock_parse(&p, &to) &&
	    *p == '\0') {
		if (from == to) {
			return refuse(e, "failback", "window '%s': it must start and end at different times", s);
		}
		d->failback = VMC_FAILBACK_WINDOW;
		d->failback_start_min = (uint16_t)from;
		d->failback_end_min = (uint16_t)to;
		return 0;
	}
	return refuse(e, "failback", "'%s' is not \"never\", \"immediate\" or \"window HH-HH\" (hours 00..23, "
		      "or HH:MM)", s);
}

static int parse_manager(json_object *v, struct vmc_group_def *d, struct verr *e)
{
	const char *s;

	if (!json_object_is_type(v, json_type_string)) {
		return refuse(e, "manager", "expected \"vmcluster\" or \"pacemaker\", got %s",
			      json_type_word(v));
	}
	s = json_object_get_string(v);
	if (strcmp(s, "vmcluster") == 0) {
		d->manager = VMC_MANAGER_VMCLUSTER;
	} else if (strcmp(s, "pacemaker") == 0) {
		d->manager = VMC_MANAGER_PACEMAKER;
	} else {
		return refuse(e, "manager", "'%s' is not \"vmcluster\" or \"pacemaker\"", s);
	}
	return 0;
}

static int parse_identity(json_object *obj, struct vmc_group_def *d, struct verr *e)
{
	json_object *x;
	int rc;

	if (!json_object_object_get_ex(obj, "name", &x)) {
		return refuse(e, "name", "missing (every VM needs a name)");
	}
	if (!json_object_is_type(x, json_type_string)) {
		return refuse(e, "name", "expected a string, got %s", json_type_word(x));
	}
	if ((size_t)json_object_get_string_len(x) != strlen(json_object_get_string(x)) ||
	    !vmc_valid_name(json_object_get_string(x))) {
		return refuse(e, "name",
			      "'%s' is not a valid name (1-%d letters, digits, '-', '_', '.', starting with a letter or digit)",
			      json_object_get_string(x), VMC_NAME_MAX);
	}
	d->name = strdup(json_object_get_string(x));
	if (d->name == NULL) {
		return -ENOMEM;
	}
	if (!json_object_object_get_ex(obj, "memory_mib", &x)) {
		return refuse(e, "memory_mib", "missing (the VM's memory in MiB)");
	}
	rc = get_uint(x, "memory_mib", VMC_MEMORY_MIB_MIN, VMC_MEMORY_MIB_MAX, &d->memory_mib, e);
	if (rc != 0) {
		return rc;
	}
	d->vcpus = 1;
	if (json_object_object_get_ex(obj, "vcpus", &x)) {
		rc = get_uint(x, "vcpus", 1, VMC_VCPUS_MAX, &d->vcpus, e);
	}
	if (rc == 0 && json_object_object_get_ex(obj, "cpu", &x)) {
		rc = get_string(x, "cpu", 63, &d->cpu, e);
		for (const char *p = d->cpu; rc == 0 && *p != '\0'; p++) {
			if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.') {
				return refuse(e, "cpu", "'%s' is not a QEMU CPU model name (letters, digits, '-', '_', '.'; "
					      "qemu-system-x86_64 -cpu help lists them)", d->cpu);
			}
		}
	}
	return rc;
}

static int parse_placement(json_object *obj, struct vmc_group_def *d, struct verr *e)
{
	json_object *x;
	int rc = 0;

	if (json_object_object_get_ex(obj, "preferred_owners", &x)) {
		rc = get_name_list(x, "preferred_owners", VMC_OWNERS_MAX, &d->preferred_owners, e);
	}
	if (rc == 0 && json_object_object_get_ex(obj, "possible_owners", &x)) {
		rc = get_name_list(x, "possible_owners", VMC_OWNERS_MAX, &d->possible_owners, e);
	}
	if (rc == 0 && json_object_object_get_ex(obj, "anti_affinity", &x)) {
		rc = get_name_list(x, "anti_affinity", VMC_CLASSES_MAX, &d->anti_affinity, e);
	}
	if (rc != 0) {
		return rc;
	}
	if (d->possible_owners.n > 0) {
		for (size_t i = 0; i < d->preferred_owners.n; i++) {
			if (!vmc_strlist_contains(&d->possible_owners, d->preferred_owners.v[i])) {
				return refuse(e, "preferred_owners",
					      "'%s' is not among possible_owners; add it there or remove it here",
					      d->preferred_owners.v[i]);
			}
		}
	}
	return 0;
}

static void group_def_defaults(struct vmc_group_def *d)
{
	d->priority = VMC_PRIORITY_MEDIUM;
	d->failover_max_failures = 3;
	d->failover_period_s = 6 * 3600;
	d->failback = VMC_FAILBACK_NEVER;
	d->manager = VMC_MANAGER_VMCLUSTER;
	d->start_after_timeout_s = VMC_START_AFTER_TIMEOUT_S_DEFAULT;
}

static int parse_start_order(json_object *obj, struct vmc_group_def *d, struct verr *e)
{
	json_object *x;
	int rc = 0;

	if (json_object_object_get_ex(obj, "start_after", &x)) {
		rc = get_name_list(x, "start_after", VMC_START_AFTER_MAX, &d->start_after, e);
	}
	if (rc == 0 && vmc_strlist_contains(&d->start_after, d->name)) {
		return refuse(e, "start_after", "'%s' cannot start after itself", d->name);
	}
	if (rc == 0 && json_object_object_get_ex(obj, "start_after_timeout_s", &x)) {
		rc = get_uint(x, "start_after_timeout_s", 0, VMC_START_AFTER_TIMEOUT_S_MAX, &d->start_after_timeout_s, e);
	}
	return rc;
}

static int parse_all(json_object *obj, struct vmc_group_def *d, struct verr *e)
{
	static const char *const known[] = {
		"name", "memory_mib", "vcpus", "cpu", "boot", "disks", "nics", "preferred_owners",
		"possible_owners", "anti_affinity", "priority", "failover", "failback",
		"manager", "start_after", "start_after_timeout_s", NULL
	};
	json_object *x;
	int rc;

	if (!json_object_is_type(obj, json_type_object)) {
		return refuse(e, NULL, "a VM definition must be a JSON object, got %s",
			      json_type_word(obj));
	}
	rc = check_keys(obj, "", known, e);
	if (rc == 0) {
		rc = parse_identity(obj, d, e);
	}
	if (rc == 0 && json_object_object_get_ex(obj, "boot", &x)) {
		rc = parse_boot(x, d, e);
	}
	if (rc == 0 && json_object_object_get_ex(obj, "disks", &x)) {
		rc = parse_disks(x, d, e);
	}
	if (rc == 0 && !d->has_boot && d->n_disks == 0) {
		return refuse(e, "boot", "missing: give boot.kernel or at least one bootable disk");
	}
	if (rc == 0 && json_object_object_get_ex(obj, "nics", &x)) {
		rc = parse_nics(x, d, e);
	}
	if (rc == 0) {
		rc = parse_placement(obj, d, e);
	}
	if (rc == 0 && json_object_object_get_ex(obj, "priority", &x)) {
		rc = parse_priority(x, d, e);
	}
	if (rc == 0 && json_object_object_get_ex(obj, "failover", &x)) {
		rc = parse_failover(x, d, e);
	}
	if (rc == 0 && json_object_object_get_ex(obj, "failback", &x)) {
		rc = parse_failback(x, d, e);
	}
	if (rc == 0 && json_object_object_get_ex(obj, "manager", &x)) {
		rc = parse_manager(x, d, e);
	}
	if (rc == 0) {
		rc = parse_start_order(obj, d, e);
	}
	return rc;
}

int vmc_group_def_from_json(json_object *obj, struct vmc_group_def **out, char *err,
			    size_t errlen)
{
	struct verr e = { err, errlen };
	struct vmc_group_def *d = calloc(1, sizeof(*d));
	int rc;

	if (d == NULL) {
		return -ENOMEM;
	}
	group_def_defaults(d);
	rc = parse_all(obj, d, &e);
	if (rc != 0) {
		vmc_group_def_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

int vmc_group_def_from_string(const char *text, struct vmc_group_def **out, char *err,
			      size_t errlen)
{
	json_object *obj = vmc_json_parse(text, err, errlen);
	int rc;

	if (obj == NULL) {
		return -EINVAL;
	}
	rc = vmc_group_def_from_json(obj, out, err, errlen);
	json_object_put(obj);
	return rc;
}

static json_object *strlist_to_json(const struct vmc_strlist *l)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; i < l->n; i++) {
		json_object_array_add(a, json_object_new_string(l->v[i]));
	}
	return a;
}

static json_object *boot_to_json(const struct vmc_group_def *d)
{
	json_object *b = json_object_new_object();

	json_object_object_add(b, "kernel", json_object_new_string(d->kernel));
	if (d->initrd != NULL) {
		json_object_object_add(b, "initrd", json_object_new_string(d->initrd));
	}
	if (d->cmdline != NULL) {
		json_object_object_add(b, "cmdline", json_object_new_string(d->cmdline));
	}
	return b;
}

static json_object *devices_to_json(const struct vmc_group_def *d, bool disks)
{
	json_object *a = json_object_new_array();
	size_t n = disks ? d->n_disks : d->n_nics;

	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_new_object();
		if (disks) {
			json_object_object_add(o, "path", json_object_new_string(d->disks[i].path));
			json_object_object_add(o, "format", json_object_new_string(d->disks[i].format));
			/* Absent while false, so definitions from before it keep their digest. */
			if (d->disks[i].local) {
				json_object_object_add(o, "local", json_object_new_boolean(true));
			}
		} else {
			json_object_object_add(o, "bridge", json_object_new_string(d->nics[i].bridge));
			if (d->nics[i].mac != NULL) {
				json_object_object_add(o, "mac", json_object_new_string(d->nics[i].mac));
			}
		}
		json_object_array_add(a, o);
	}
	return a;
}

json_object *vmc_group_def_to_json(const struct vmc_group_def *d)
{
	json_object *o = json_object_new_object();
	json_object *f = json_object_new_object();
	char fb[32];

	json_object_object_add(o, "name", json_object_new_string(d->name));
	json_object_object_add(o, "memory_mib", json_object_new_int64(d->memory_mib));
	json_object_object_add(o, "vcpus", json_object_new_int64(d->vcpus));
	/* Absent unless pinned, so definitions from before keep their digest. */
	if (d->cpu != NULL) {
		json_object_object_add(o, "cpu", json_object_new_string(d->cpu));
	}
	if (d->has_boot) {
		json_object_object_add(o, "boot", boot_to_json(d));
	}
	json_object_object_add(o, "disks", devices_to_json(d, true));
	json_object_object_add(o, "nics", devices_to_json(d, false));
	json_object_object_add(o, "preferred_owners", strlist_to_json(&d->preferred_owners));
	json_object_object_add(o, "possible_owners", strlist_to_json(&d->possible_owners));
	json_object_object_add(o, "anti_affinity", strlist_to_json(&d->anti_affinity));
	json_object_object_add(o, "priority",
			       json_object_new_string(vmc_priority_to_str(d->priority)));
	json_object_object_add(f, "max_failures", json_object_new_int64(d->failover_max_failures));
	json_object_object_add(f, "period_s", json_object_new_int64(d->failover_period_s));
	json_object_object_add(o, "failover", f);
	json_object_object_add(o, "failback",
			       json_object_new_string(vmc_failback_to_str(d, fb, sizeof(fb))));
	json_object_object_add(o, "manager", json_object_new_string(vmc_manager_to_str(d->manager)));
	/* Absent unset, so definitions from before start order keep their digest. */
	if (d->start_after.n > 0) {
		json_object_object_add(o, "start_after", strlist_to_json(&d->start_after));
	}
	if (d->start_after_timeout_s != VMC_START_AFTER_TIMEOUT_S_DEFAULT) {
		json_object_object_add(o, "start_after_timeout_s", json_object_new_int64(d->start_after_timeout_s));
	}
	return o;
}

struct vmc_group_def *vmc_group_def_copy(const struct vmc_group_def *def)
{
	json_object *j = vmc_group_def_to_json(def);
	struct vmc_group_def *copy = NULL;
	char err[256];

	if (vmc_group_def_from_json(j, &copy, err, sizeof(err)) != 0) {
		copy = NULL;
	}
	json_object_put(j);
	return copy;
}

static void strlist_free(struct vmc_strlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i]);
	}
	free(l->v);
}

void vmc_group_def_free(struct vmc_group_def *d)
{
	if (d == NULL) {
		return;
	}
	free(d->name);
	free(d->cpu);
	free(d->kernel);
	free(d->initrd);
	free(d->cmdline);
	for (size_t i = 0; i < d->n_disks; i++) {
		free(d->disks[i].path);
		free(d->disks[i].format);
	}
	free(d->disks);
	for (size_t i = 0; i < d->n_nics; i++) {
		free(d->nics[i].bridge);
		free(d->nics[i].mac);
	}
	free(d->nics);
	strlist_free(&d->preferred_owners);
	strlist_free(&d->possible_owners);
	strlist_free(&d->anti_affinity);
	strlist_free(&d->start_after);
	free(d);
}

const char *vmc_priority_to_str(enum vmc_priority p)
{
	switch (p) {
	case VMC_PRIORITY_HIGH:
		return "high";
	case VMC_PRIORITY_MEDIUM:
		return "medium";
	case VMC_PRIORITY_LOW:
		return "low";
	case VMC_PRIORITY_NO_AUTO_START:
		return "no-auto-start";
	}
	return "unknown";
}

const char *vmc_manager_to_str(enum vmc_manager m)
{
	return m == VMC_MANAGER_PACEMAKER ? "pacemaker" : "vmcluster";
}

bool vmc_group_def_by_pacemaker(const struct vmc_group_def *def)
{
	return def->manager == VMC_MANAGER_PACEMAKER;
}

const char *vmc_failback_to_str(const struct vmc_group_def *d, char *buf, size_t len)
{
	switch (d->failback) {
	case VMC_FAILBACK_NEVER:
		return "never";
	case VMC_FAILBACK_IMMEDIATE:
		return "immediate";
	case VMC_FAILBACK_WINDOW:
		if (d->failback_start_min % 60 == 0 && d->failback_end_min % 60 == 0) {
			snprintf(buf, len, "window %02u-%02u", d->failback_start_min / 60u, d->failback_end_min / 60u);
		} else {
			snprintf(buf, len, "window %02u:%02u-%02u:%02u", d->failback_start_min / 60u, d->failback_start_min % 60u,
				 d->failback_end_min / 60u, d->failback_end_min % 60u);
		}
		return buf;
	}
	return "never";
}
