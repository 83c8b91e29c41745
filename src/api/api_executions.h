/*
 * api_executions.h — pieces shared by the endpoint files that run or show
 * executions (executions.c, execute.c, comments.c, openai_gateway.c).
 */
#ifndef PROMPTD_API_EXECUTIONS_H
#define PROMPTD_API_EXECUTIONS_H

#include <jansson.h>

#include "store/store.h"

/* The JSON:API resource of an execution (spec 000 PromptExecution + status, error). */
json_t *api_execution_json(const store_execution *e);

#endif
