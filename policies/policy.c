/* policies/policy.c: what callers may ask a compiled policy. */
#include <arpa/inet.h>
#include <string.h>

#include "policies/policy_int.h"

const char *bms_policy_hash(const struct bms_policy *p) { return p->hash; }
const char *bms_policy_site(const struct bms_policy *p) { return p->site; }
const char *bms_policy_timezone(const struct bms_policy *p) { return p->tz.name; }
size_t bms_policy_rule_count(const struct bms_policy *p) { return p->nrules; }
size_t bms_policy_device_count(const struct bms_policy *p) { return p->ndevices; }

const struct bms_policy_device *bms_policy_device_at(const struct bms_policy *p, size_t i)
{
	return i < p->ndevices ? &p->devices[i] : NULL;
}

const char *bms_policy_device_name(const struct bms_policy_device *d) { return d->name; }
enum bms_proto bms_policy_device_proto(const struct bms_policy_device *d) { return (enum bms_proto)d->proto; }

void bms_policy_device_addr(const struct bms_policy_device *d, struct sockaddr_storage *out, socklen_t *len)
{
	*out = d->addr;
	*len = d->addr_len;
}

bool bms_policy_device_monitor(const struct bms_policy_device *d)
{
	/* The compiler resolved "as the site" into the site's mode. */
	return d->mode == 1;
}

const struct bms_policy_device *bms_policy_find_device_by_name(const struct bms_policy *p, const char *name)
{
	for (uint32_t i = 0; i < p->ndevices; i++)
		if (strcmp(p->devices[i].name, name) == 0)
			return &p->devices[i];
	return NULL;
}

/* Same address and port; an IPv4-mapped IPv6 address equals its IPv4 form. */
static bool same_addr(const struct sockaddr_storage *dev, const struct sockaddr *a)
{
	uint8_t ab[16], db[16];
	size_t al, dl;
	uint16_t ap, dp;
	if (a->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)a;
		memcpy(ab, &s->sin_addr, 4), al = 4, ap = s->sin_port;
	} else if (a->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)a;
		static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
		if (memcmp(s->sin6_addr.s6_addr, mapped, 12) == 0)
			memcpy(ab, s->sin6_addr.s6_addr + 12, 4), al = 4;
		else
			memcpy(ab, s->sin6_addr.s6_addr, 16), al = 16;
		ap = s->sin6_port;
	} else {
		return false;
	}
	if (dev->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)dev;
		memcpy(db, &s->sin_addr, 4), dl = 4, dp = s->sin_port;
	} else {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)dev;
		memcpy(db, s->sin6_addr.s6_addr, 16), dl = 16, dp = s->sin6_port;
	}
	return al == dl && memcmp(ab, db, al) == 0 && (ap == 0 || ap == dp);
}

uint64_t pol_addr_key(const struct sockaddr *a, bool with_port)
{
	uint8_t b[18];
	size_t n;
	uint16_t port;
	if (a->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)a;
		memcpy(b, &s->sin_addr, 4), n = 4, port = s->sin_port;
	} else if (a->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)a;
		static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
		if (memcmp(s->sin6_addr.s6_addr, mapped, 12) == 0)
			memcpy(b, s->sin6_addr.s6_addr + 12, 4), n = 4;
		else
			memcpy(b, s->sin6_addr.s6_addr, 16), n = 16;
		port = s->sin6_port;
	} else {
		return 0;
	}
	if (with_port) {
		memcpy(b + n, &port, 2);
		n += 2;
	}
	return pol_idx_key(7, b, n);
}

static bool unit_match(const struct bms_policy_device *d, enum bms_proto proto, uint32_t unit)
{
	if (proto == BMS_PROTO_MODBUS)
		return unit <= 255 && (d->units[unit / 64] >> (unit % 64) & 1);
	return unit == BMS_POLICY_ANY_UNIT || !d->has_instance || d->instance == unit;
}

const struct bms_policy_device *bms_policy_find_device(const struct bms_policy *p, enum bms_proto proto,
							const struct sockaddr *addr, uint32_t unit)
{
	if (p == NULL || addr == NULL)
		return NULL;
	uint16_t port = addr->sa_family == AF_INET ? ((const struct sockaddr_in *)addr)->sin_port
		      : addr->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)addr)->sin6_port : 0;
	if (p->devidx != NULL && port != 0) {
		/* The first declared device at this address, port and unit: the index keeps declaration order
		 * among equal keys because it was filled in that order with linear probing. */
		const struct bms_policy_device *best = NULL;
		uint64_t key = pol_addr_key(addr, true);
		for (uint32_t s = (uint32_t)key & p->devidx_mask; p->devidx[s].key != 0; s = (s + 1) & p->devidx_mask) {
			if (p->devidx[s].key != key)
				continue;
			const struct bms_policy_device *d = &p->devices[p->devidx[s].dev];
			if (d->proto == proto && same_addr(&d->addr, addr) && unit_match(d, proto, unit) &&
			    (best == NULL || d < best))
				best = d;
		}
		return best;
	}
	for (uint32_t i = 0; i < p->ndevices; i++) {
		const struct bms_policy_device *d = &p->devices[i];
		if (d->proto != proto || !same_addr(&d->addr, addr))
			continue;
		if (proto == BMS_PROTO_MODBUS) {
			if (unit <= 255 && (d->units[unit / 64] >> (unit % 64) & 1))
				return d;
		} else if (unit == BMS_POLICY_ANY_UNIT || !d->has_instance || d->instance == unit) {
			return d;
		}
	}
	return NULL;
}
