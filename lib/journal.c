/*
 * Journal lines and their replay (see journal.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "json_util.h"
#include "replica.h"
#include "vmc_errors.h"

char *vmc_journal_line_change(const struct vmc_msg *m, uint64_t version_after)
{
	return vmc_journal_line_change_in_view(m, version_after, NULL, 0);
}

/*
 * The body as JSON text, newly allocated. json-c out of memory can write
 * text that is well-formed but wrong (a key left empty, a member
 * missing), so it is written twice and kept only when both agree.
 */
static char *body_text(json_object *body)
{
	const char *first = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
	char *copy = first != NULL ? strdup(first) : NULL;
	const char *again = copy != NULL ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) : NULL;

	if (again == NULL || strcmp(copy, again) != 0 || copy[0] != '{') {
		free(copy);
		return NULL;
	}
	return copy;
}

/* The rest is numbers, written by hand; out of memory anywhere: NULL, and
 * the caller writes a snapshot instead. */
char *vmc_journal_line_change_in_view(const struct vmc_msg *m, uint64_t version_after,
				      const uint32_t *members, size_t n_members)
{
	char view[VMC_NODES_MAX * 11 + 3] = "[";
	char *body = body_text(m->body);
	char *line = NULL;
	size_t used = 1;

	for (size_t i = 0; i < n_members && i < VMC_NODES_MAX; i++) {
		used += (size_t)snprintf(view + used, sizeof(view) - used, "%s%u", i ? "," : "", members[i]);
	}
	snprintf(view + used, sizeof(view) - used, "]");
	/* The version: the apply may depend on the protocol the change was written in. */
	if (body == NULL ||
	    asprintf(&line, "{\"members\":%s,\"v\":%llu,\"type\":%u,\"version\":%u,\"sender\":%u,"
			    "\"request_id\":%llu,\"body\":%s}\n",
		     view, (unsigned long long)version_after, m->type, m->version ? m->version : 1, m->sender,
		     (unsigned long long)m->request_id, body) < 0) {
		line = NULL;
	}
	free(body);
	return line;
}

/*
 * {"v":version,"<key>":value}: written without json-c, whose output can
 * lose a member and stay well-formed when it runs out of memory.
 */
static char *number_line(const char *key, uint64_t value, uint64_t version)
{
	char *line = NULL;

	if (asprintf(&line, "{\"v\":%llu,\"%s\":%llu}\n", (unsigned long long)version, key,
		     (unsigned long long)value) < 0) {
		return NULL;
	}
	return line;
}

char *vmc_journal_line_epoch(uint64_t epoch, uint64_t version)
{
	return number_line("epoch", epoch, version);
}

char *vmc_journal_line_promise(uint64_t counter, uint64_t version)
{
	return number_line("promise", counter, version);
}

static int replay_line(struct vmc_state *s, json_object *o, bool *applied, char *err,
		       size_t errlen)
{
	json_object *v, *epoch, *promise, *type, *sender, *rid, *body, *view;
	uint32_t members[VMC_NODES_MAX];
	struct vmc_apply_ctx ctx = { .members = members };
	struct vmc_msg m = { .version = VMC_PROTO_VERSION_MIN };
	char detail[400];
	uint64_t version;

	*applied = false;
	if (!json_object_object_get_ex(o, "v", &v) || !json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) < 0) {
		snprintf(err, errlen, "no config_version");
		return -VMC_E_PROTOCOL;
	}
	version = json_object_get_uint64(v);
	if (json_object_object_get_ex(o, "promise", &promise)) {
		if (!json_object_is_type(promise, json_type_int) || json_object_get_int64(promise) < 0) {
			snprintf(err, errlen, "promise is not a non-negative integer");
			return -VMC_E_PROTOCOL;
		}
		if (json_object_get_uint64(promise) > s->promised) {
			s->promised = json_object_get_uint64(promise);
			*applied = true;
		}
		return 0;
	}
	if (json_object_object_get_ex(o, "epoch", &epoch)) {
		if (!json_object_is_type(epoch, json_type_int) || json_object_get_int64(epoch) < 0) {
			snprintf(err, errlen, "epoch is not a non-negative integer");
			return -VMC_E_PROTOCOL;
		}
		if (json_object_get_uint64(epoch) > s->epoch) {
			s->epoch = json_object_get_uint64(epoch);
			*applied = true;
		}
		return 0;
	}
	if (version <= s->config_version) {
		return 0; /* already in the snapshot */
	}
	if (!json_object_object_get_ex(o, "type", &type) ||
	    !json_object_object_get_ex(o, "sender", &sender) ||
	    !json_object_object_get_ex(o, "request_id", &rid) ||
	    !json_object_object_get_ex(o, "body", &body) || !json_object_is_type(body, json_type_object)) {
		snprintf(err, errlen, "a change without type, sender, request_id or body");
		return -VMC_E_PROTOCOL;
	}
	m.type = (uint16_t)json_object_get_int(type);
	/* Lines written before the version was recorded are version 1. */
	if (json_object_object_get_ex(o, "version", NULL)) {
		uint32_t version_of_line;
		if (!vmc_json_u32(o, "version", &version_of_line) || version_of_line < VMC_PROTO_VERSION_MIN ||
		    version_of_line > VMC_PROTO_VERSION_MAX) {
			snprintf(err, errlen, "a change in a protocol version this build does not speak");
			return -VMC_E_PROTOCOL;
		}
		m.version = (uint16_t)version_of_line;
	}
	m.sender = (uint32_t)json_object_get_int64(sender);
	m.request_id = json_object_get_uint64(rid);
	m.body = body;
	ctx.sender = m.sender;
	ctx.version = m.version;
	if (json_object_object_get_ex(o, "members", &view) && json_object_is_type(view, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(view) && i < VMC_NODES_MAX; i++) {
			members[i] = (uint32_t)json_object_get_int64(json_object_array_get_idx(view, i));
			ctx.n_members = i + 1;
		}
	}
	if (vmc_state_apply(s, &ctx, &m, detail, sizeof(detail)) != 0) {
		snprintf(err, errlen, "change no longer applies: %s", detail);
		return -VMC_E_PROTOCOL;
	}
	if (s->config_version != version) {
		snprintf(err, errlen, "change gives config_version %llu, journal says %llu",
			 (unsigned long long)s->config_version, (unsigned long long)version);
		return -VMC_E_PROTOCOL;
	}
	*applied = true;
	return 0;
}

int vmc_journal_replay(struct vmc_state *s, const char *text, size_t *applied, char *err,
		       size_t errlen)
{
	const char *line = text;
	unsigned int lineno = 0;

	*applied = 0;
	for (const char *nl = strchr(line, '\n'); nl != NULL; line = nl + 1, nl = strchr(line, '\n')) {
		char buf[640], why[128];
		json_object *o;
		bool done = false;
		char *copy;
		int rc;

		lineno++;
		copy = strndup(line, (size_t)(nl - line));
		if (copy == NULL) {
			return -ENOMEM;
		}
		o = vmc_json_parse(copy, why, sizeof(why));
		free(copy);
		if (o == NULL || !json_object_is_type(o, json_type_object)) {
			json_object_put(o);
			snprintf(err, errlen, "journal line %u: not a JSON object", lineno);
			return -VMC_E_PROTOCOL;
		}
		rc = replay_line(s, o, &done, buf, sizeof(buf));
		json_object_put(o);
		if (rc != 0) {
			snprintf(err, errlen, "journal line %u: %s", lineno, buf);
			return rc;
		}
		*applied += done;
	}
	return 0;
}
