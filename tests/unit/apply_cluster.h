/*
 * A three-node cluster's state driven through the apply path, for the
 * suites that test changes message by message (check_volumes,
 * check_migration): every node in the view, protocol as given.
 */
#ifndef VMC_APPLY_CLUSTER_H
#define VMC_APPLY_CLUSTER_H

#include <check.h>
#include <string.h>
#include <json-c/json.h>

#include "apply.h"
#include "msg.h"
#include "state.h"

struct cluster {
	struct vmc_state *s;
	uint32_t members[3];
	size_t n_members;
	uint16_t version;
	char detail[512];
};

static inline void cluster_init(struct cluster *c)
{
	memset(c, 0, sizeof(*c));
	c->s = vmc_state_new();
	ck_assert_ptr_nonnull(c->s);
	for (uint32_t id = 1; id <= 3; id++) {
		c->members[c->n_members++] = id;
	}
	c->version = VMC_PROTO_VERSION_MAX;
}

/* One message from sender, applied in the cluster's view: the verdict, detail in c->detail. */
static inline int send(struct cluster *c, uint32_t sender, uint16_t type, const char *body)
{
	struct vmc_msg m = { .version = c->version, .type = type, .sender = sender, .body = json_tokener_parse(body) };
	struct vmc_apply_ctx ctx = { .sender = sender, .version = c->version, .members = c->members,
				     .n_members = c->n_members };
	int rc;

	ck_assert_msg(m.body != NULL, "not JSON: %s", body);
	rc = vmc_state_apply(c->s, &ctx, &m, c->detail, sizeof(c->detail));
	vmc_msg_clear(&m);
	return rc;
}

#define OK(c, sender, type, body) ck_assert_msg(send(c, sender, type, body) == 0, "%s: %s", body, (c)->detail)

/* The lock on image in volume csv1, or NULL. */
static inline const struct vmc_image_lock *lock_of(const struct cluster *c, const char *image)
{
	const struct vmc_volume *v = vmc_state_volume_find(c->s, "csv1");

	for (size_t i = 0; v != NULL && i < v->n_locks; i++) {
		if (strcmp(v->locks[i].image, image) == 0) {
			return &v->locks[i];
		}
	}
	return NULL;
}

#endif
