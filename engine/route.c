/* engine/route.c: building and reading the route table (see route.h). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "engine/route.h"
#include "parsers/bacnet.h"
#include "parsers/modbus.h"

void engine_routes_init(struct engine_routes *rt)
{
	memset(rt, 0, sizeof(*rt));
	rt->malformed = ENGINE_MALFORMED_CLOSE;
	rt->modbus_frame_size = MODBUS_MAX_ADU;
	rt->bacnet_frame_size = BACNET_MAX_DATAGRAM;
}

struct engine_route *engine_routes_add(struct engine_routes *rt, enum bms_proto proto)
{
	if (rt->n >= ENGINE_MAX_ROUTES)
		return NULL;
	struct engine_route *r = &rt->routes[rt->n];
	memset(r, 0, sizeof(*r));
	r->proto = (uint8_t)proto;
	r->index = rt->n++;
	return r;
}

void engine_routes_index(struct engine_routes *rt)
{
	/* as the guard always routed: the first device that names the unit, else the last catch-all */
	int fallback = -1;
	memset(rt->modbus_unit, 0, sizeof(rt->modbus_unit));
	for (unsigned i = 0; i < rt->n; i++)
		if (rt->routes[i].proto == BMS_PROTO_MODBUS && rt->routes[i].any_unit)
			fallback = (int)i;
	for (unsigned u = 0; u < 256; u++) {
		for (unsigned i = 0; i < rt->n; i++) {
			const struct engine_route *r = &rt->routes[i];
			if (r->proto == BMS_PROTO_MODBUS && !r->any_unit && (r->units[u / 8] & (1u << (u % 8)))) {
				rt->modbus_unit[u] = (uint8_t)(i + 1);
				break;
			}
		}
		if (rt->modbus_unit[u] == 0 && fallback >= 0)
			rt->modbus_unit[u] = (uint8_t)(fallback + 1);
	}
}

const struct engine_route *engine_route_modbus(const struct engine_routes *rt, uint8_t unit)
{
	unsigned i = rt->modbus_unit[unit];
	return i ? &rt->routes[i - 1] : NULL;
}

/* The address bytes and port of an IPv4 or IPv6 socket address; IPv4-mapped IPv6 as IPv4. */
static size_t addr_bytes(const struct sockaddr *sa, uint8_t out[16], uint16_t *port)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		memcpy(out, &in->sin_addr, 4);
		*port = in->sin_port;
		return 4;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		*port = in6->sin6_port;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			memcpy(out, &in6->sin6_addr.s6_addr[12], 4);
			return 4;
		}
		memcpy(out, &in6->sin6_addr, 16);
		return 16;
	}
	return 0;
}

const struct engine_route *engine_route_addr(const struct engine_routes *rt, enum bms_proto proto,
					     const struct sockaddr *sa)
{
	uint8_t want[16], have[16];
	uint16_t wport, hport;
	size_t wl = sa ? addr_bytes(sa, want, &wport) : 0;
	if (wl == 0)
		return NULL;
	for (unsigned i = 0; i < rt->n; i++) {
		const struct engine_route *r = &rt->routes[i];
		if (r->proto != proto)
			continue;
		size_t hl = addr_bytes((const struct sockaddr *)&r->addr, have, &hport);
		if (hl == wl && hport == wport && memcmp(have, want, wl) == 0)
			return r;
	}
	return NULL;
}

void engine_addr_words(const struct sockaddr *sa, char *buf, size_t cap)
{
	char host[INET6_ADDRSTRLEN] = "?";
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(buf, cap, "%s port %u", host, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(buf, cap, "%s port %u", host, ntohs(in6->sin6_port));
	} else {
		snprintf(buf, cap, "an address of family %u", (unsigned)sa->sa_family);
	}
}
