/*
 * Encoding and validation of vmclusterd's CPG messages (format in msg.h).
 * A message that fails any check is refused whole: nothing of it reaches
 * the state machine.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_util.h"
#include "msg.h"
#include "msg_types.h"
#include "vmc_errors.h"

void vmc_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

void vmc_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++) {
		p[i] = (uint8_t)(v >> (8 * i));
	}
}

void vmc_put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		p[i] = (uint8_t)(v >> (8 * i));
	}
}

uint16_t vmc_get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

uint32_t vmc_get_le32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--) {
		v = (v << 8) | p[i];
	}
	return v;
}

uint64_t vmc_get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--) {
		v = (v << 8) | p[i];
	}
	return v;
}

const char *vmc_msg_type_to_str(uint16_t type)
{
	const struct vmc_msg_type_info *t = vmc_msg_type_info(type);

	return t != NULL ? t->name : "invalid";
}

int vmc_msg_encode(const struct vmc_msg *m, void **buf, size_t *len)
{
	const char *json = json_object_to_json_string_ext(m->body, JSON_C_TO_STRING_PLAIN);
	size_t payload_len = strlen(json) + 1;
	uint8_t *p;

	if (vmc_msg_type_info(m->type) == NULL) {
		return -EINVAL;
	}
	if (VMC_MSG_HEADER_LEN + payload_len > VMC_MSG_MAX_LEN) {
		return -EMSGSIZE;
	}
	p = malloc(VMC_MSG_HEADER_LEN + payload_len);
	if (p == NULL) {
		return -ENOMEM;
	}
	vmc_put_le32(p, VMC_MSG_MAGIC);
	vmc_put_le16(p + 4, m->version);
	vmc_put_le16(p + 6, m->type);
	vmc_put_le32(p + 8, m->sender);
	vmc_put_le32(p + 12, (uint32_t)payload_len);
	vmc_put_le64(p + 16, m->request_id);
	memcpy(p + VMC_MSG_HEADER_LEN, json, payload_len);
	*buf = p;
	*len = VMC_MSG_HEADER_LEN + payload_len;
	return 0;
}

int vmc_msg_decode(const void *buf, size_t len, struct vmc_msg *m, char *err, size_t errlen)
{
	const struct vmc_msg_type_info *info;
	const uint8_t *p = buf;
	uint32_t payload_len;
	const char *payload;
	json_object *body;

	memset(m, 0, sizeof(*m));
	if (len < VMC_MSG_HEADER_LEN) {
		snprintf(err, errlen, "message of %zu bytes is shorter than the %d-byte header", len,
			 VMC_MSG_HEADER_LEN);
		return -VMC_E_PROTOCOL;
	}
	if (vmc_get_le32(p) != VMC_MSG_MAGIC) {
		snprintf(err, errlen, "bad magic 0x%08x", vmc_get_le32(p));
		return -VMC_E_PROTOCOL;
	}
	m->version = vmc_get_le16(p + 4);
	m->type = vmc_get_le16(p + 6);
	m->sender = vmc_get_le32(p + 8);
	payload_len = vmc_get_le32(p + 12);
	m->request_id = vmc_get_le64(p + 16);
	if (m->version < VMC_PROTO_VERSION_MIN || m->version > VMC_PROTO_VERSION_MAX) {
		snprintf(err, errlen, "protocol version %u not spoken here (%d..%d)", m->version,
			 VMC_PROTO_VERSION_MIN, VMC_PROTO_VERSION_MAX);
		return -VMC_E_VERSION;
	}
	info = vmc_msg_type_info(m->type);
	if (info == NULL) {
		snprintf(err, errlen, "unknown message type %u", m->type);
		return -VMC_E_PROTOCOL;
	}
	if (info->since > m->version) {
		snprintf(err, errlen, "%s messages exist since protocol %u, this one says %u", info->name,
			 info->since, m->version);
		return -VMC_E_PROTOCOL;
	}
	if (payload_len == 0 || payload_len != len - VMC_MSG_HEADER_LEN) {
		snprintf(err, errlen, "payload length %u does not match the %zu bytes received",
			 payload_len, len - VMC_MSG_HEADER_LEN);
		return -VMC_E_PROTOCOL;
	}
	payload = (const char *)p + VMC_MSG_HEADER_LEN;
	if (payload[payload_len - 1] != '\0' || strlen(payload) != payload_len - 1) {
		snprintf(err, errlen, "payload is not one NUL-terminated string");
		return -VMC_E_PROTOCOL;
	}
	body = vmc_json_parse(payload, err, errlen);
	if (body == NULL || !json_object_is_type(body, json_type_object)) {
		json_object_put(body);
		snprintf(err, errlen, "%s payload is not one JSON object", vmc_msg_type_to_str(m->type));
		return -VMC_E_PROTOCOL;
	}
	m->body = body;
	return 0;
}

void vmc_msg_clear(struct vmc_msg *m)
{
	json_object_put(m->body);
	m->body = NULL;
}
