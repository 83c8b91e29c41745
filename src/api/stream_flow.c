/*
 * stream_flow.c — a stream's stop / go hooks are its valve's close / open
 * (see api_stream.h), a client that left drops it. They run under the stream's lock, on the writing
 * thread (close: an atomic store) or a server thread (open: an atomic
 * exchange and, when the valve was closed, a moment under the engine's queue
 * lock plus an eventfd write): neither blocks.
 */
#include "api/api_stream.h"

static void flow_stop(void *ud) { engine_valve_close(ud); }
static void flow_go(void *ud) { engine_valve_open(ud); }
static void flow_gone(void *ud) { engine_valve_drop(ud); }
static void flow_release(void *ud) { engine_valve_unref(ud); }

void api_stream_flow(http_stream *st, engine_valve *valve)
{
    if (!st || !valve)
        return;
    engine_valve_ref(valve); /* the stream's own, dropped through flow_release */
    http_stream_flow flow = {.stop = flow_stop, .go = flow_go, .gone = flow_gone, .release = flow_release, .ud = valve};
    http_stream_set_flow(st, &flow);
}
