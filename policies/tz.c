/* policies/tz.c: the site's time zone, parsed once at compile time from the
 * TZif bytes (RFC 8536) a policy source hands in, so that evaluation needs
 * neither the process TZ nor localtime(): an offset lookup is a binary search
 * over transitions. Pure: the source reads the zoneinfo file, not this.
 *
 * TZif layout (RFC 8536 section 3), all integers big-endian:
 *   "TZif" version(1) unused(15) isutcnt isstdcnt leapcnt timecnt typecnt charcnt (6 x u32)
 *   v1 data: timecnt x i32 times, timecnt x u8 type indices, typecnt x {i32 utoff, u8 isdst, u8 idx},
 *            charcnt bytes, leapcnt x 8, isstdcnt, isutcnt
 *   v2+: a second header and data block with 64-bit times (leap records 12 bytes),
 *        then the footer "\n<POSIX TZ string>\n" for times after the last transition.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h> /* strtol */
#include <string.h>

#include "parsers/cursor.h"
#include "policies/policy_int.h"

#define TZ_FILE_MAX BMS_POLICY_ZONE_MAX

void pol_tz_utc(struct pol_tz *tz)
{
	memset(tz, 0, sizeof(*tz));
	snprintf(tz->name, sizeof(tz->name), "UTC");
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int64_t year_of(int64_t days)
{
	days += 719468;
	const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
	const unsigned doe = (unsigned)(days - era * 146097);
	const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	const unsigned mp = (5 * doy + 2) / 153;
	const unsigned m = mp < 10 ? mp + 3 : mp - 9;
	return (int64_t)yoe + era * 400 + (m <= 2);
}

/* Local seconds since the epoch (in the offset in force before the change) of rule r in year y. */
static int64_t rule_local(const struct pol_tz_rule *r, int64_t y)
{
	static const unsigned mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int64_t first = days_from_civil(y, r->month, 1);
	/* 1970-01-01 was a Thursday (4). */
	int wd_first = (int)(((first % 7) + 7 + 4) % 7);
	int day = 1 + ((int)r->wday - wd_first + 7) % 7 + 7 * (r->week - 1);
	unsigned dim = mdays[r->month - 1];
	if (r->month == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		dim = 29;
	while ((unsigned)day > dim)
		day -= 7;
	return (first + day - 1) * 86400 + r->secs;
}

int32_t pol_tz_offset(const struct pol_tz *tz, int64_t utc)
{
	if (tz->ntrans == 0 && !tz->has_rule)
		return tz->before;
	if (tz->ntrans > 0 && utc < tz->trans[0])
		return tz->before;
	if (tz->ntrans > 0 && (!tz->has_rule || utc < tz->trans[tz->ntrans - 1])) {
		uint32_t lo = 0, hi = tz->ntrans; /* find the last trans[i] <= utc */
		while (hi - lo > 1) {
			uint32_t mid = lo + (hi - lo) / 2;
			if (tz->trans[mid] <= utc)
				lo = mid;
			else
				hi = mid;
		}
		return tz->offs[lo];
	}
	if (!tz->rule_dst)
		return tz->std_off;
	int64_t y = year_of((utc + tz->std_off) / 86400 - ((utc + tz->std_off) % 86400 < 0));
	int64_t start = rule_local(&tz->start, y) - tz->std_off;
	int64_t end = rule_local(&tz->end, y) - tz->dst_off;
	bool dst = start < end ? (utc >= start && utc < end) : !(utc >= end && utc < start);
	return dst ? tz->dst_off : tz->std_off;
}

/* POSIX TZ string pieces. Each returns the position after what it read, or NULL. */
static const char *posix_name(const char *s)
{
	if (*s == '<') {
		const char *e = strchr(s, '>');
		return e ? e + 1 : NULL;
	}
	const char *b = s;
	while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
		s++;
	return s - b >= 3 ? s : NULL;
}

static const char *posix_time(const char *s, int32_t *out)
{
	int sign = 1;
	if (*s == '+' || *s == '-')
		sign = *s++ == '-' ? -1 : 1;
	long part[3] = { 0, 0, 0 };
	for (int i = 0; i < 3; i++) {
		if (*s < '0' || *s > '9')
			return i == 0 ? NULL : s;
		char *e;
		part[i] = strtol(s, &e, 10);
		if (part[i] > 167)
			return NULL;
		s = e;
		if (*s != ':' || i == 2)
			break;
		s++;
	}
	*out = (int32_t)(sign * (part[0] * 3600 + part[1] * 60 + part[2]));
	return s;
}

static const char *posix_rule(const char *s, struct pol_tz_rule *r)
{
	if (*s != 'M')
		return NULL; /* Jn and n forms: not used by tzdata for current zones */
	char *e;
	long m = strtol(s + 1, &e, 10);
	if (*e != '.')
		return NULL;
	long w = strtol(e + 1, &e, 10);
	if (*e != '.')
		return NULL;
	long d = strtol(e + 1, &e, 10);
	if (m < 1 || m > 12 || w < 1 || w > 5 || d < 0 || d > 6)
		return NULL;
	r->month = (uint8_t)m;
	r->week = (uint8_t)w;
	r->wday = (uint8_t)d;
	r->secs = 7200;
	s = e;
	if (*s == '/') {
		s = posix_time(s + 1, &r->secs);
		if (s == NULL)
			return NULL;
	}
	return s;
}

static void parse_footer(struct pol_tz *tz, const char *s)
{
	int32_t off;
	if ((s = posix_name(s)) == NULL || (s = posix_time(s, &off)) == NULL)
		return;
	tz->std_off = -off;
	tz->has_rule = true;
	if (*s == '\0')
		return;
	const char *n = posix_name(s);
	if (n == NULL)
		goto bad;
	s = n;
	tz->dst_off = tz->std_off + 3600;
	if (*s != ',' && *s != '\0') {
		if ((s = posix_time(s, &off)) == NULL)
			goto bad;
		tz->dst_off = -off;
	}
	if (*s != ',' || (s = posix_rule(s + 1, &tz->start)) == NULL || *s != ',' ||
	    (s = posix_rule(s + 1, &tz->end)) == NULL || *s != '\0')
		goto bad;
	tz->rule_dst = true;
	return;
bad:
	/* A footer we cannot read: keep the offset of the last transition for later times. */
	tz->has_rule = false;
}

struct tzhdr {
	uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static int read_hdr(struct bms_cursor *c, uint8_t *version, struct tzhdr *h)
{
	const uint8_t *magic;
	if (bms_cursor_bytes(c, 4, &magic) < 0 || memcmp(magic, "TZif", 4) != 0)
		return -1;
	if (bms_cursor_u8(c, version) < 0 || bms_cursor_skip(c, 15) < 0)
		return -1;
	uint32_t *f[6] = { &h->isutcnt, &h->isstdcnt, &h->leapcnt, &h->timecnt, &h->typecnt, &h->charcnt };
	for (int i = 0; i < 6; i++)
		if (bms_cursor_u32be(c, f[i]) < 0)
			return -1;
	if (h->typecnt == 0 || h->typecnt > 256 || h->timecnt > 100000 || h->charcnt > 4096 ||
	    h->leapcnt > 10000 || h->isutcnt > 256 || h->isstdcnt > 256)
		return -1;
	return 0;
}

static int read_block(struct bms_cursor *c, const struct tzhdr *h, size_t tsize, struct pol_tz *tz)
{
	int32_t utoff[256];
	struct bms_cursor times, idx;
	if (bms_cursor_sub(c, (size_t)h->timecnt * tsize, &times) < 0 ||
	    bms_cursor_sub(c, h->timecnt, &idx) < 0)
		return -1;
	for (uint32_t i = 0; i < h->typecnt; i++) {
		uint32_t u;
		uint8_t isdst, di;
		if (bms_cursor_u32be(c, &u) < 0 || bms_cursor_u8(c, &isdst) < 0 || bms_cursor_u8(c, &di) < 0)
			return -1;
		utoff[i] = (int32_t)u;
	}
	if (bms_cursor_skip(c, h->charcnt) < 0 || bms_cursor_skip(c, (size_t)h->leapcnt * (tsize + 4)) < 0 ||
	    bms_cursor_skip(c, h->isstdcnt) < 0 || bms_cursor_skip(c, h->isutcnt) < 0)
		return -1;
	tz->before = utoff[0];
	tz->ntrans = 0;
	/* Keep the last POL_MAX_TZ_TRANS transitions: older ones matter to no policy. */
	uint32_t skip = h->timecnt > POL_MAX_TZ_TRANS ? h->timecnt - POL_MAX_TZ_TRANS : 0;
	for (uint32_t i = 0; i < h->timecnt; i++) {
		uint64_t t;
		uint8_t ti;
		if (bms_cursor_uint_be(&times, tsize, &t) < 0 || bms_cursor_u8(&idx, &ti) < 0 || ti >= h->typecnt)
			return -1;
		int64_t st = tsize == 4 ? (int64_t)(int32_t)(uint32_t)t : (int64_t)t;
		if (i < skip) {
			tz->before = utoff[ti];
			continue;
		}
		if (tz->ntrans > 0 && st <= tz->trans[tz->ntrans - 1])
			return -1; /* RFC 8536: times are in strictly ascending order */
		tz->trans[tz->ntrans] = st;
		tz->offs[tz->ntrans] = utoff[ti];
		tz->ntrans++;
	}
	return 0;
}

int pol_tz_check_name(const char *name, char *err, size_t errlen)
{
	/* A zone name is words joined by '/': nothing that climbs out of the zone directory. */
	if (name[0] == '\0' || name[0] == '/' || strstr(name, "..") != NULL || strlen(name) >= POL_NAME_MAX) {
		snprintf(err, errlen, "'%s' is not a time zone name (such as Europe/Berlin)", name);
		return -EINVAL;
	}
	return 0;
}

int pol_tz_parse(struct pol_tz *tz, const char *name, const uint8_t *data, size_t len, const char *where,
		 char *err, size_t errlen)
{
	pol_tz_utc(tz);
	struct bms_cursor c;
	bms_cursor_init(&c, data, len < TZ_FILE_MAX ? len : TZ_FILE_MAX);
	uint8_t version;
	struct tzhdr h;
	if (read_hdr(&c, &version, &h) < 0 || read_block(&c, &h, 4, tz) < 0)
		goto bad;
	if (version >= '2') {
		if (read_hdr(&c, &version, &h) < 0 || read_block(&c, &h, 8, tz) < 0)
			goto bad;
		char footer[128];
		uint8_t ch;
		size_t k = 0;
		if (bms_cursor_u8(&c, &ch) == 0 && ch == '\n') {
			while (bms_cursor_u8(&c, &ch) == 0 && ch != '\n' && k + 1 < sizeof(footer))
				footer[k++] = (char)ch;
			footer[k] = '\0';
			parse_footer(tz, footer);
		}
	}
	snprintf(tz->name, sizeof(tz->name), "%s", name);
	return 0;
bad:
	snprintf(err, errlen, "time zone file %s is not a TZif file I can read", where);
	pol_tz_utc(tz);
	return -EINVAL;
}
