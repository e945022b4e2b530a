/* proxy/tunnel.h: the tunnel's life on a given loop (proxy_tunnel_run, the loop tests in
 * tests/unit/test_tunnel_loop.c) and the states of one head-end connection. */
#ifndef BMS_PROXY_TUNNEL_H
#define BMS_PROXY_TUNNEL_H

#include <stdbool.h>

#include <uv.h>

#include "base/attr.h"
#include "proxy/config.h"

struct tunnel;

/* One head-end connection's life (tunnel.c holds the table of allowed moves and the one setter). */
enum tsess_state {
	TS_ACCEPTED = 0, /* taken; the connection limit not yet checked */
	TS_WAITING,      /* no connection to the guard: a back-off runs (after a failed try, or the tunnel's) */
	TS_DIALING,      /* a TCP connect to the guard is under way (the connect-timeout runs) */
	TS_RETRYING,     /* that connect failed: its handle closes, then WAITING, or the end at the deadline */
	TS_HANDSHAKING,  /* connected: TLS with our certificate, the guard's verified; head-end bytes held */
	TS_OPEN,         /* bytes relayed both ways */
	TS_FINISHING,    /* the head-end half-closed: close_notify sent; answers relayed until the guard closes */
	TS_CLOSING,      /* the close path ran (once); the handles close, memory goes in the last callback */
	TS_NSTATES
};

bool tunnel_session_can(enum tsess_state from, enum tsess_state to);
const char *tunnel_session_state_name(enum tsess_state st);

/* Set up on `loop`: TLS context, the listener, privileges dropped, signals. On failure every
 * handle it opened is closed again (the loop is run until they are); nothing to tear down. */
BMS_WUR int tunnel_setup(const struct proxy_config *cfg, uv_loop_t *loop, struct tunnel **out);
/* Runs the loop until a stop (tunnel_stop, SIGTERM, SIGINT) has closed every handle. */
void tunnel_run(struct tunnel *t);
/* Stop: the listener, every connection (at once) and the signal handles close. */
void tunnel_stop(struct tunnel *t);
/* After the loop ran out: memory freed. The loop itself is the caller's. */
void tunnel_teardown(struct tunnel *t);

#endif
