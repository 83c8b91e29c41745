/*
 * api_stream.h — the SSE answers' flow control: a stream's client (http/)
 * paces the model calls that feed it (engine/), through one engine valve per
 * stream.
 *
 * Ownership: api_stream_flow gives the stream a reference of its own to the
 * valve (released when the client leaves or the stream ends); the caller
 * keeps its reference (the one it passed to exec_request.valve as well).
 */
#ifndef PROMPTD_API_STREAM_H
#define PROMPTD_API_STREAM_H

#include "engine/engine.h"
#include "http/http.h"

/* A full stream closes valve, one its client drained (or left) opens it.
 * Call right after http_reply_stream, before the first write. NULL st or
 * valve: nothing (the stream then runs without flow control). */
void api_stream_flow(http_stream *st, engine_valve *valve);

#endif
