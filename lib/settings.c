/*
 * Cluster-wide settings: defaults, codec, `cluster set` and validation.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group_def.h"
#include "settings.h"

static const char *const fence_method_names[] = {
	[VMC_FENCE_UNSET] = "unset",
	[VMC_FENCE_AGENT] = "agent",
	[VMC_FENCE_PACEMAKER] = "pacemaker",
	[VMC_FENCE_NONE] = "none",
	[VMC_FENCE_LEASE] = "lease",
};

static const char *const accel_names[] = {
	[VMC_ACCEL_AUTO] = "auto",
	[VMC_ACCEL_KVM] = "kvm",
	[VMC_ACCEL_TCG] = "tcg",
};

#define N_FENCE (sizeof(fence_method_names) / sizeof(fence_method_names[0]))
#define N_ACCEL (sizeof(accel_names) / sizeof(accel_names[0]))

const char *vmc_fence_method_to_str(enum vmc_fence_method m)
{
	return (size_t)m < N_FENCE ? fence_method_names[m] : "unknown";
}

const char *vmc_accel_to_str(enum vmc_accel a)
{
	return (size_t)a < N_ACCEL ? accel_names[a] : "unknown";
}

void vmc_settings_defaults(struct vmc_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->fence_method = VMC_FENCE_UNSET;
	s->fence_timeout_s = VMC_FENCE_TIMEOUT_S_DEFAULT;
	s->accel = VMC_ACCEL_AUTO;
	s->lease_io_timeout_s = VMC_LEASE_IO_TIMEOUT_S_DEFAULT;
	s->migration_port = VMC_MIGRATION_PORT_DEFAULT;
	s->migration_max_parallel = VMC_MIGRATION_MAX_PARALLEL_DEFAULT;
	s->migration_downtime_ms = VMC_MIGRATION_DOWNTIME_MS_DEFAULT;
	s->migration_timeout_s = VMC_MIGRATION_TIMEOUT_S_DEFAULT;
	s->migration_encrypt = true;
	s->migration_adaptive = true;
	s->failback_delay_s = VMC_FAILBACK_DELAY_S_DEFAULT;
	s->quarantine_threshold = VMC_QUARANTINE_THRESHOLD_DEFAULT;
	s->quarantine_duration_s = VMC_QUARANTINE_DURATION_S_DEFAULT;
	snprintf(s->timezone, sizeof(s->timezone), "UTC");
	s->shutdown_policy = VMC_SHUTDOWN_MIGRATE;
}

static const char *const shutdown_names[] = {
	[VMC_SHUTDOWN_MIGRATE] = "migrate",
	[VMC_SHUTDOWN_STOP] = "stop",
	[VMC_SHUTDOWN_FREEZE] = "freeze",
};

#define N_SHUTDOWN (sizeof(shutdown_names) / sizeof(shutdown_names[0]))

const char *vmc_shutdown_policy_to_str(enum vmc_shutdown_policy p)
{
	return (size_t)p < N_SHUTDOWN ? shutdown_names[p] : "unknown";
}

bool vmc_settings_nodes_changed(const struct vmc_settings *a, const struct vmc_settings *b)
{
	return a->migration_adaptive != b->migration_adaptive || a->failback_delay_s != b->failback_delay_s ||
	       a->quarantine_threshold != b->quarantine_threshold ||
	       a->quarantine_duration_s != b->quarantine_duration_s || strcmp(a->timezone, b->timezone) != 0 ||
	       a->shutdown_policy != b->shutdown_policy;
}

bool vmc_name_in_list(const char *list, const char *node)
{
	size_t n = strlen(node);

	for (const char *p = list; *p != '\0';) {
		size_t len = strcspn(p, ",");
		if (len == n && strncmp(p, node, n) == 0) {
			return true;
		}
		p += len + (p[len] == ',');
	}
	return false;
}

/* A comma-separated list of node names, or "". */
static bool node_list_valid(const char *v)
{
	char name[128];

	for (const char *p = v; *p != '\0';) {
		size_t len = strcspn(p, ",");
		if (len == 0 || len >= sizeof(name)) {
			return false;
		}
		memcpy(name, p, len);
		name[len] = '\0';
		if (!vmc_valid_name(name)) {
			return false;
		}
		p += len + (p[len] == ',');
		if (p[-1] == ',' && *p == '\0') {
			return false;
		}
	}
	return true;
}

bool vmc_settings_migration_changed(const struct vmc_settings *a, const struct vmc_settings *b)
{
	return strcmp(a->migration_network, b->migration_network) != 0 ||
	       strcmp(a->migration_no_incoming, b->migration_no_incoming) != 0 ||
	       strcmp(a->migration_no_outgoing, b->migration_no_outgoing) != 0 || a->migration_port != b->migration_port ||
	       a->migration_max_parallel != b->migration_max_parallel ||
	       a->migration_bandwidth_mib != b->migration_bandwidth_mib ||
	       a->migration_downtime_ms != b->migration_downtime_ms ||
	       a->migration_timeout_s != b->migration_timeout_s || a->migration_encrypt != b->migration_encrypt;
}

int vmc_cidr_parse(const char *cidr, uint32_t *net, unsigned *prefix)
{
	unsigned a, b, c, d, n;
	char tail;

	if (sscanf(cidr, "%u.%u.%u.%u/%u%c", &a, &b, &c, &d, &n, &tail) != 5 || a > 255 || b > 255 || c > 255 ||
	    d > 255 || n > 32 || !isdigit((unsigned char)cidr[0])) {
		return -EINVAL;
	}
	*net = a << 24 | b << 16 | c << 8 | d;
	*prefix = n;
	return 0;
}

/* Every migration key at its default is left out, so older snapshots keep their digest. */
static void migration_to_json(const struct vmc_settings *s, json_object *o)
{
	struct vmc_settings def;

	vmc_settings_defaults(&def);
	if (s->migration_network[0] != '\0') {
		json_object_object_add(o, "migration_network", json_object_new_string(s->migration_network));
	}
	if (s->migration_no_incoming[0] != '\0') {
		json_object_object_add(o, "migration_no_incoming", json_object_new_string(s->migration_no_incoming));
	}
	if (s->migration_no_outgoing[0] != '\0') {
		json_object_object_add(o, "migration_no_outgoing", json_object_new_string(s->migration_no_outgoing));
	}
#define ADD_IF_SET(field)                                                                    \
	if (s->field != def.field) {                                                          \
		json_object_object_add(o, #field, json_object_new_int64(s->field));            \
	}
	ADD_IF_SET(migration_port)
	ADD_IF_SET(migration_max_parallel)
	ADD_IF_SET(migration_bandwidth_mib)
	ADD_IF_SET(migration_downtime_ms)
	ADD_IF_SET(migration_timeout_s)
#undef ADD_IF_SET
	if (!s->migration_encrypt) {
		json_object_object_add(o, "migration_encrypt", json_object_new_string("off"));
	}
}

/* The same for the protocol 6 keys. */
static void nodes_to_json(const struct vmc_settings *s, json_object *o)
{
	struct vmc_settings def;

	vmc_settings_defaults(&def);
	if (!s->migration_adaptive) {
		json_object_object_add(o, "migration_adaptive", json_object_new_string("off"));
	}
	if (s->failback_delay_s != def.failback_delay_s) {
		json_object_object_add(o, "failback_delay_s", json_object_new_int64(s->failback_delay_s));
	}
	if (s->quarantine_threshold != def.quarantine_threshold) {
		json_object_object_add(o, "quarantine_threshold", json_object_new_int64(s->quarantine_threshold));
	}
	if (s->quarantine_duration_s != def.quarantine_duration_s) {
		json_object_object_add(o, "quarantine_duration_s", json_object_new_int64(s->quarantine_duration_s));
	}
	if (strcmp(s->timezone, def.timezone) != 0) {
		json_object_object_add(o, "timezone", json_object_new_string(s->timezone));
	}
	if (s->shutdown_policy != def.shutdown_policy) {
		json_object_object_add(o, "shutdown_policy",
				       json_object_new_string(vmc_shutdown_policy_to_str(s->shutdown_policy)));
	}
}

/*
 * An IANA zone name ("Europe/Berlin") or UTC. Only its form is checked
 * here, alike on every node; clusterctl's daemon checks the zone exists.
 */
static bool timezone_valid(const char *v)
{
	if (v[0] == '\0' || v[0] == '/' || v[0] == '.' || strstr(v, "..") != NULL || strlen(v) >= VMC_TIMEZONE_MAX) {
		return false;
	}
	for (const char *p = v; *p != '\0'; p++) {
		if (!isalnum((unsigned char)*p) && strchr("/_+-", *p) == NULL) {
			return false;
		}
	}
	return true;
}

json_object *vmc_settings_to_json(const struct vmc_settings *s)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "fence_method",
			       json_object_new_string(vmc_fence_method_to_str(s->fence_method)));
	json_object_object_add(o, "fence_agent", json_object_new_string(s->fence_agent));
	json_object_object_add(o, "fence_timeout_s", json_object_new_int64(s->fence_timeout_s));
	json_object_object_add(o, "accel", json_object_new_string(vmc_accel_to_str(s->accel)));
	/* Absent at its default, so the settings of an older daemon keep their digest. */
	if (s->lease_io_timeout_s != VMC_LEASE_IO_TIMEOUT_S_DEFAULT) {
		json_object_object_add(o, "lease_io_timeout_s", json_object_new_int64(s->lease_io_timeout_s));
	}
	migration_to_json(s, o);
	nodes_to_json(s, o);
	return o;
}

static int word_index(const char *value, const char *const *words, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(value, words[i]) == 0) {
			return (int)i;
		}
	}
	return -1;
}

/* A whole number of seconds from 1 to max, or -EINVAL with the setting named. */
static int seconds_parse(const char *key, const char *value, long max, uint32_t *out, char *err,
			 size_t errlen)
{
	char *end;
	long x;

	errno = 0;
	x = strtol(value, &end, 10);
	if (!isdigit((unsigned char)value[0]) || *end != '\0' || errno != 0 || x < 1 || x > max) {
		snprintf(err, errlen, "setting '%s': '%s' is not a number of seconds from 1 to %ld", key,
			 value, max);
		return -EINVAL;
	}
	*out = (uint32_t)x;
	return 0;
}

/* A whole number from min to max, or -EINVAL with the setting named. */
static int number_parse(const char *key, const char *value, long min, long max, uint32_t *out, char *err,
			size_t errlen)
{
	char *end;
	long x;

	errno = 0;
	x = strtol(value, &end, 10);
	if (!isdigit((unsigned char)value[0]) || *end != '\0' || errno != 0 || x < min || x > max) {
		snprintf(err, errlen, "setting '%s': '%s' is not a whole number from %ld to %ld", key, value, min, max);
		return -EINVAL;
	}
	*out = (uint32_t)x;
	return 0;
}

static int migration_assign(struct vmc_settings *s, const char *key, const char *value, char *err,
			    size_t errlen)
{
	uint32_t net;
	unsigned prefix;

	if (strcmp(key, "migration_network") == 0) {
		if (value[0] != '\0' && (strlen(value) >= sizeof(s->migration_network) ||
					 vmc_cidr_parse(value, &net, &prefix) != 0)) {
			snprintf(err, errlen, "setting 'migration_network': '%s' is not an IPv4 network "
				 "like 198.51.100.0/24 (or empty for the corosync ring addresses)", value);
			return -EINVAL;
		}
		snprintf(s->migration_network, sizeof(s->migration_network), "%s", value);
		return 0;
	}
	if (strcmp(key, "migration_no_incoming") == 0 || strcmp(key, "migration_no_outgoing") == 0) {
		char *dst = key[13] == 'i' ? s->migration_no_incoming : s->migration_no_outgoing;
		if (strlen(value) >= VMC_MIGRATION_NODES_MAX || !node_list_valid(value)) {
			snprintf(err, errlen, "setting '%s': '%s' is not a comma-separated list of node names (or empty)", key,
				 value);
			return -EINVAL;
		}
		snprintf(dst, VMC_MIGRATION_NODES_MAX, "%s", value);
		return 0;
	}
	if (strcmp(key, "migration_encrypt") == 0 || strcmp(key, "migration_adaptive") == 0) {
		if (strcmp(value, "on") != 0 && strcmp(value, "off") != 0) {
			snprintf(err, errlen, "setting '%s': '%s' is not on or off", key, value);
			return -EINVAL;
		}
		if (strcmp(key, "migration_encrypt") == 0) {
			s->migration_encrypt = strcmp(value, "on") == 0;
		} else {
			s->migration_adaptive = strcmp(value, "on") == 0;
		}
		return 0;
	}
	if (strcmp(key, "migration_port") == 0) {
		return number_parse(key, value, 1, 65535, &s->migration_port, err, errlen);
	}
	if (strcmp(key, "migration_max_parallel") == 0) {
		return number_parse(key, value, 1, VMC_MIGRATION_MAX_PARALLEL_MAX, &s->migration_max_parallel, err,
				    errlen);
	}
	if (strcmp(key, "migration_bandwidth_mib") == 0) {
		return number_parse(key, value, 0, 1000000, &s->migration_bandwidth_mib, err, errlen);
	}
	if (strcmp(key, "migration_downtime_ms") == 0) {
		return number_parse(key, value, 1, 60000, &s->migration_downtime_ms, err, errlen);
	}
	if (strcmp(key, "migration_timeout_s") == 0) {
		return number_parse(key, value, 1, 86400, &s->migration_timeout_s, err, errlen);
	}
	return 1;
}

static int nodes_assign(struct vmc_settings *s, const char *key, const char *value, char *err, size_t errlen)
{
	if (strcmp(key, "failback_delay_s") == 0) {
		return number_parse(key, value, 0, 86400, &s->failback_delay_s, err, errlen);
	}
	if (strcmp(key, "quarantine_threshold") == 0) {
		return number_parse(key, value, 0, VMC_QUARANTINE_THRESHOLD_MAX, &s->quarantine_threshold, err, errlen);
	}
	if (strcmp(key, "quarantine_duration_s") == 0) {
		return number_parse(key, value, 1, 7 * 86400, &s->quarantine_duration_s, err, errlen);
	}
	if (strcmp(key, "timezone") == 0) {
		if (!timezone_valid(value)) {
			snprintf(err, errlen, "setting 'timezone': '%s' is not a zone name like UTC or Europe/Berlin", value);
			return -EINVAL;
		}
		snprintf(s->timezone, sizeof(s->timezone), "%s", value);
		return 0;
	}
	if (strcmp(key, "shutdown_policy") == 0) {
		int i = word_index(value, shutdown_names, N_SHUTDOWN);
		if (i < 0) {
			snprintf(err, errlen, "setting 'shutdown_policy': '%s' is not migrate, stop or freeze", value);
			return -EINVAL;
		}
		s->shutdown_policy = (enum vmc_shutdown_policy)i;
		return 0;
	}
	return 1;
}

/* One key from its string form; the whole is validated afterwards. */
static int setting_assign(struct vmc_settings *s, const char *key, const char *value, char *err,
			  size_t errlen)
{
	int i = migration_assign(s, key, value, err, errlen);

	if (i <= 0) {
		return i;
	}
	i = nodes_assign(s, key, value, err, errlen);
	if (i <= 0) {
		return i;
	}
	if (strcmp(key, "fence_method") == 0) {
		i = word_index(value, fence_method_names, N_FENCE);
		if (i <= 0) {
			snprintf(err, errlen,
				 "setting 'fence_method': '%s' is not agent, pacemaker, lease or none", value);
			return -EINVAL;
		}
		s->fence_method = (enum vmc_fence_method)i;
	} else if (strcmp(key, "fence_agent") == 0) {
		if (strlen(value) >= sizeof(s->fence_agent)) {
			snprintf(err, errlen, "setting 'fence_agent': longer than %zu characters",
				 sizeof(s->fence_agent) - 1);
			return -EINVAL;
		}
		memcpy(s->fence_agent, value, strlen(value) + 1);
	} else if (strcmp(key, "fence_timeout_s") == 0) {
		return seconds_parse(key, value, VMC_FENCE_TIMEOUT_S_MAX, &s->fence_timeout_s, err, errlen);
	} else if (strcmp(key, "lease_io_timeout_s") == 0) {
		return seconds_parse(key, value, VMC_LEASE_IO_TIMEOUT_S_MAX, &s->lease_io_timeout_s, err,
				     errlen);
	} else if (strcmp(key, "accel") == 0) {
		i = word_index(value, accel_names, N_ACCEL);
		if (i < 0) {
			snprintf(err, errlen, "setting 'accel': '%s' is not auto, kvm or tcg", value);
			return -EINVAL;
		}
		s->accel = (enum vmc_accel)i;
	} else {
		snprintf(err, errlen, "setting '%s': unknown (settable: fence_method, fence_agent, "
				      "fence_timeout_s, accel, lease_io_timeout_s, migration_network, migration_port, "
				      "migration_max_parallel, migration_bandwidth_mib, migration_downtime_ms, "
				      "migration_timeout_s, migration_encrypt, migration_adaptive, migration_no_incoming, "
				      "migration_no_outgoing, "
				      "failback_delay_s, quarantine_threshold, quarantine_duration_s, timezone, "
				      "shutdown_policy)", key);
		return -EINVAL;
	}
	return 0;
}

static int settings_validate(const struct vmc_settings *s, char *err, size_t errlen)
{
	for (const char *p = s->fence_agent; *p != '\0'; p++) {
		if (iscntrl((unsigned char)*p)) {
			snprintf(err, errlen, "setting 'fence_agent': contains control characters");
			return -EINVAL;
		}
	}
	if (s->fence_agent[0] != '\0' && s->fence_agent[0] != '/') {
		snprintf(err, errlen, "setting 'fence_agent': '%s' is not an absolute path", s->fence_agent);
		return -EINVAL;
	}
	if (s->fence_method == VMC_FENCE_AGENT && s->fence_agent[0] == '\0') {
		snprintf(err, errlen, "setting 'fence_agent': fence_method=agent needs one "
				      "(set both: fence_method=agent fence_agent=/usr/sbin/fence_...)");
		return -EINVAL;
	}
	return 0;
}

int vmc_settings_set(const struct vmc_settings *cur, const char *const *assignments, size_t n,
		     struct vmc_settings *out, char *err, size_t errlen)
{
	struct vmc_settings s = *cur;

	if (n == 0) {
		snprintf(err, errlen, "nothing to set: give at least one KEY=VALUE");
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		const char *eq = assignments[i] ? strchr(assignments[i], '=') : NULL;
		char key[32];
		int rc;

		if (eq == NULL || eq == assignments[i] || (size_t)(eq - assignments[i]) >= sizeof(key)) {
			snprintf(err, errlen, "'%s' is not KEY=VALUE", assignments[i] ? assignments[i] : "(null)");
			return -EINVAL;
		}
		memcpy(key, assignments[i], (size_t)(eq - assignments[i]));
		key[eq - assignments[i]] = '\0';
		rc = setting_assign(&s, key, eq + 1, err, errlen);
		if (rc != 0) {
			return rc;
		}
	}
	if (settings_validate(&s, err, errlen) != 0) {
		return -EINVAL;
	}
	*out = s;
	return 0;
}

static int from_json_key(json_object *o, const char *key, struct vmc_settings *s, char *err,
			 size_t errlen)
{
	json_object *v;
	char value[300];

	if (!json_object_object_get_ex(o, key, &v)) {
		return 0;
	}
	if (json_object_is_type(v, json_type_int)) {
		snprintf(value, sizeof(value), "%lld", (long long)json_object_get_int64(v));
	} else if (json_object_is_type(v, json_type_string)) {
		snprintf(value, sizeof(value), "%s", json_object_get_string(v));
	} else {
		snprintf(err, errlen, "setting '%s': wrong type", key);
		return -EINVAL;
	}
	if (strcmp(key, "fence_method") == 0 && strcmp(value, "unset") == 0) {
		s->fence_method = VMC_FENCE_UNSET;
		return 0;
	}
	return setting_assign(s, key, value, err, errlen);
}

int vmc_settings_from_json(json_object *o, struct vmc_settings *out, char *err, size_t errlen)
{
	static const char *const keys[] = { "fence_method", "fence_agent", "fence_timeout_s", "accel",
					    "lease_io_timeout_s", "migration_network", "migration_port",
					    "migration_max_parallel", "migration_bandwidth_mib",
					    "migration_downtime_ms", "migration_timeout_s", "migration_encrypt",
					    "migration_no_incoming", "migration_no_outgoing", "migration_adaptive", "failback_delay_s",
					    "quarantine_threshold", "quarantine_duration_s", "timezone", "shutdown_policy" };
	struct vmc_settings s;

	vmc_settings_defaults(&s);
	if (!json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "settings: not an object");
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (from_json_key(o, keys[i], &s, err, errlen) != 0) {
			return -EINVAL;
		}
	}
	if (settings_validate(&s, err, errlen) != 0) {
		return -EINVAL;
	}
	*out = s;
	return 0;
}

const char *vmc_settings_warning(const struct vmc_settings *s)
{
	switch (s->fence_method) {
	case VMC_FENCE_UNSET:
		return "fencing is not configured: a lost node's VMs are not failed over until "
		       "'clusterctl cluster set fence_method=agent|pacemaker|none'";
	case VMC_FENCE_NONE:
		return "fencing is disabled (fence_method=none): a lost node's VMs are restarted "
		       "without proof that the node is dead";
	default:
		return NULL;
	}
}
