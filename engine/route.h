/* engine/route.h: the route table the inspect step reads instead of the gateway config.
 *
 * One entry per device the gateway forwards to: its name, protocol, address and (Modbus)
 * the unit ids it takes, plus the few settings the step needs (what to do with a malformed
 * frame, the largest frame). The guard builds it from its config at start-up
 * (proxy_config_routes), `replay` builds one whose addresses follow each request's
 * destination; tests and fuzzers build their own. Values only, no pointers: a table can
 * be copied.
 */
#ifndef BMS_ENGINE_ROUTE_H
#define BMS_ENGINE_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "parsers/request.h"

#define ENGINE_MAX_ROUTES 64
#define ENGINE_NAME_MAX 64

enum engine_malformed {
	ENGINE_MALFORMED_CLOSE = 0, /* close the connection (the default) */
	ENGINE_MALFORMED_ANSWER,    /* answer where the frame can be answered: Modbus 03, BACnet Reject/Abort */
};

struct engine_route {
	char name[ENGINE_NAME_MAX];  /* the gateway's name for the device, for records and reasons */
	uint8_t proto;               /* enum bms_proto */
	struct sockaddr_storage addr; /* the device's address and port */
	socklen_t addr_len;
	bool any_unit;               /* Modbus: takes every unit id that no other route names */
	uint8_t units[32];           /* Modbus: bit set of the unit ids routed here */
	unsigned index;              /* the builder's own number for the device (the guard: cfg.devices[index]) */
};

struct engine_routes {
	unsigned n;
	uint8_t malformed;           /* enum engine_malformed */
	unsigned modbus_frame_size;  /* largest Modbus/TCP ADU accepted (<= MODBUS_MAX_ADU) */
	unsigned bacnet_frame_size;  /* largest BVLC message accepted (<= BACNET_MAX_DATAGRAM) */
	/* Built by engine_routes_index: route number + 1 of each Modbus unit id, 0 = none; so that
	 * the per-request lookup is one load, not a walk over the devices. */
	uint8_t modbus_unit[256];
	struct engine_route routes[ENGINE_MAX_ROUTES];
};

/* No routes; the protocols' own frame limits; malformed frames close. */
void engine_routes_init(struct engine_routes *rt);
/* The next free entry (zeroed, proto set), or NULL when the table is full. */
struct engine_route *engine_routes_add(struct engine_routes *rt, enum bms_proto proto);
/* Call once the routes are filled, and after any change to their protocols or units (not
 * needed for address changes). A unit goes to the first route that names it, else to the
 * last route with any_unit. */
void engine_routes_index(struct engine_routes *rt);

/* The route of a Modbus unit id, or NULL. */
const struct engine_route *engine_route_modbus(const struct engine_routes *rt, uint8_t unit);
/* The first route of `proto` at this address and port (an IPv4-mapped IPv6 address equals its
 * IPv4 form), or NULL. */
const struct engine_route *engine_route_addr(const struct engine_routes *rt, enum bms_proto proto,
					     const struct sockaddr *sa);

/* "127.0.0.1 port 5020" / "::1 port 502": an address as the policy language writes a device. */
void engine_addr_words(const struct sockaddr *sa, char *buf, size_t cap);

#endif
