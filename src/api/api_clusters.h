/*
 * api_clusters.h — INTERNAL to the spec 001 endpoint files (entities.c,
 * clusters.c, conversations.c, cluster_reply.c): the JSON:API resources they
 * share and the 404 that names the part of a nested path that was not found.
 */
#ifndef PROMPTD_API_CLUSTERS_H
#define PROMPTD_API_CLUSTERS_H

#include <jansson.h>

#include "api/api.h"

#define ENTITY_NAME_MAX 255
#define ENTITY_DESCRIPTION_MAX 10000
#define ENTITY_PERSONA_MAX 100000
#define ENTITY_MODEL_MAX 200
#define MESSAGE_CONTENT_MAX 100000

/* Answer a store failure on a cluster path: STORE_NOTFOUND names the missing
 * part ("Cluster Not Found", "Entity Not Found", ...), others as api_store_error. */
void api_cluster_store_error(api_req *rq, int rc, enum store_cluster_part missing);

/* JSON:API resources (new references). */
json_t *api_entity_json(const store_entity *e);
json_t *api_conversation_json(const store_conversation *c);
json_t *api_cluster_message_json(const store_message *m);

/* POST /clusters/:id/conversations/:conversation_id/messages (cluster_reply.c). */
void api_cluster_message_send(api_req *rq);

#endif
