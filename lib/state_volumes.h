/*
 * The state's volumes in the snapshot: what state.c calls (state.h has
 * the table's functions).
 */
#ifndef VMC_STATE_VOLUMES_H
#define VMC_STATE_VOLUMES_H

#include <json-c/json.h>

#include "state.h"

json_object *vmc_state_volumes_to_json(const struct vmc_state *s);
/* The "volumes" key of a snapshot, absent in those from before protocol 4. */
int vmc_state_volumes_from_json(json_object *obj, struct vmc_state *s, char *err, size_t errlen);
void vmc_state_volumes_free(struct vmc_state *s);

#endif
