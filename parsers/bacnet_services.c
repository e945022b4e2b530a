/* parsers/bacnet_services.c: service parameters of ASHRAE 135 clauses 13..17 and 21.
 *
 * The tag structure is already known to be sound (bacnet_tag_validate); what is checked here
 * is the grammar of each service: which tag comes where, which are optional, and the range of
 * each value. One target per object/property named; written values borrowed from the frame.
 * A password (DeviceCommunicationControl, ReinitializeDevice) is noted, never copied.
 */
#include <stdbool.h>
#include <string.h>

#include "parsers/bacnet.h"
#include "parsers/bacnet_services.h"
#include "parsers/bacnet_tag.h"

/* The grammar helpers below run for every tag of every service: BMS_HOT inlines them, so a
 * tag read and its check become straight-line code in the caller instead of a call with a
 * struct in memory. */

#define CTX 1
#define APP 0
#define PRIM BACNET_TAG_PRIMITIVE
#define OPEN BACNET_TAG_OPENING
#define CLOSE BACNET_TAG_CLOSING

#define OBJ_DEVICE 8
#define OBJ_FILE 10
#define OBJ_CHANNEL 53

struct sp {
	struct bms_cursor c;
	struct bms_request *r;
	struct bms_target scratch; /* where targets beyond BMS_MAX_TARGETS are decoded and dropped */
};

BMS_HOT static int fail(struct sp *s, unsigned bit)
{
	s->r->anomalies |= BACNET_AN(bit);
	return -1;
}

BMS_HOT static bool next_is(const struct sp *s, int ctx, uint8_t num, uint8_t kind)
{
	struct bms_cursor k = s->c;
	struct bacnet_tag t;

	if (bms_cursor_left(&k) == 0 || bacnet_tag_read(&k, &t) != 0)
		return false;
	return t.context == ctx && t.number == num && t.kind == kind;
}

BMS_HOT static bool at_end(const struct sp *s)
{
	return bms_cursor_left(&s->c) == 0;
}

/* Consume the next tag if it is the one the grammar expects. */
BMS_HOT static int take(struct sp *s, int ctx, uint8_t num, uint8_t kind, struct bacnet_tag *t)
{
	struct bms_cursor k = s->c;
	int rc;

	if (bms_cursor_left(&k) == 0)
		return fail(s, BACNET_AN_SERVICE_TRUNCATED);
	rc = bacnet_tag_read(&k, t);
	if (rc != 0)
		return fail(s, BACNET_TAG_ERR_BIT(rc));
	if (t->context != ctx || t->number != num || t->kind != kind) {
		/* A list or a constructed value that closes early is missing a parameter. */
		if (t->kind == CLOSE && !(kind == CLOSE && ctx == CTX))
			return fail(s, BACNET_AN_SERVICE_TRUNCATED);
		return fail(s, BACNET_AN_SERVICE_UNEXPECTED_TAG);
	}
	s->c = k;
	return 0;
}

static int finish(struct sp *s)
{
	if (!at_end(s))
		return fail(s, BACNET_AN_SERVICE_TRAILING_DATA);
	return 0;
}

BMS_HOT static int uint_of(struct sp *s, const struct bacnet_tag *t, uint64_t max, uint64_t *out)
{
	if (bacnet_tag_unsigned(t, out) != 0)
		return fail(s, BACNET_AN_TAG_BAD_LENGTH);
	if (*out > max)
		return fail(s, BACNET_AN_SERVICE_VALUE_RANGE);
	return 0;
}

BMS_HOT static int ctx_uint(struct sp *s, uint8_t num, uint64_t max, uint64_t *out)
{
	struct bacnet_tag t;

	if (take(s, CTX, num, PRIM, &t) != 0)
		return -1;
	return uint_of(s, &t, max, out);
}

static int opt_ctx_uint(struct sp *s, uint8_t num, uint64_t max, uint64_t *out, bool *present)
{
	*present = next_is(s, CTX, num, PRIM);
	if (!*present)
		return 0;
	return ctx_uint(s, num, max, out);
}

/* Application Unsigned or Enumerated (the caller names which). */
static int app_uint(struct sp *s, uint8_t apptag, uint64_t max, uint64_t *out)
{
	struct bacnet_tag t;

	if (take(s, APP, apptag, PRIM, &t) != 0)
		return -1;
	return uint_of(s, &t, max, out);
}

static int app_signed(struct sp *s, int64_t *out)
{
	struct bacnet_tag t;

	if (take(s, APP, BACNET_APP_SIGNED, PRIM, &t) != 0)
		return -1;
	if (bacnet_tag_signed(&t, out) != 0)
		return fail(s, BACNET_AN_TAG_BAD_LENGTH);
	return 0;
}

/* 20.2.14: object identifier = object type (10 bits) << 22 | instance (22 bits). */
BMS_HOT static int objid_of(struct sp *s, const struct bacnet_tag *t, uint16_t *type, uint32_t *inst)
{
	uint64_t v;

	if (t->len != 4 || bacnet_tag_unsigned(t, &v) != 0)
		return fail(s, BACNET_AN_TAG_BAD_LENGTH);
	*type = (uint16_t)(v >> 22);
	*inst = (uint32_t)(v & BACNET_MAX_INSTANCE);
	return 0;
}

BMS_HOT static int ctx_objid(struct sp *s, uint8_t num, uint16_t *type, uint32_t *inst)
{
	struct bacnet_tag t;

	if (take(s, CTX, num, PRIM, &t) != 0)
		return -1;
	return objid_of(s, &t, type, inst);
}

static int app_objid(struct sp *s, uint16_t *type, uint32_t *inst)
{
	struct bacnet_tag t;

	if (take(s, APP, BACNET_APP_OBJECT_ID, PRIM, &t) != 0)
		return -1;
	return objid_of(s, &t, type, inst);
}

/* Context-tagged BOOLEAN (20.2.3): one content octet, 0 or 1. */
static int opt_ctx_bool(struct sp *s, uint8_t num)
{
	struct bacnet_tag t;

	if (!next_is(s, CTX, num, PRIM))
		return 0;
	if (take(s, CTX, num, PRIM, &t) != 0)
		return -1;
	if (t.len != 1 || t.data[0] > 1)
		return fail(s, BACNET_AN_TAG_BAD_LENGTH);
	return 0;
}

static int open_tag(struct sp *s, uint8_t num)
{
	struct bacnet_tag t;
	return take(s, CTX, num, OPEN, &t);
}

static int close_tag(struct sp *s, uint8_t num)
{
	struct bacnet_tag t;
	return take(s, CTX, num, CLOSE, &t);
}

/* Any one element: a primitive tag, or an opening tag through its closing tag. */
static int skip_element(struct sp *s)
{
	struct bacnet_tag t;
	unsigned depth = 0;
	int rc;

	do {
		if (at_end(s))
			return fail(s, BACNET_AN_SERVICE_TRUNCATED);
		rc = bacnet_tag_read(&s->c, &t);
		if (rc != 0)
			return fail(s, BACNET_TAG_ERR_BIT(rc));
		if (t.kind == OPEN)
			depth++;
		else if (t.kind == CLOSE) {
			if (depth == 0)
				return fail(s, BACNET_AN_TAG_UNBALANCED);
			depth--;
		}
	} while (depth > 0);
	return 0;
}

/* [num] { ABSTRACT-SYNTAX.&Type } : borrow what lies between the opening and closing tag. */
static int constructed(struct sp *s, uint8_t num, const uint8_t **p, size_t *n)
{
	size_t start;

	if (open_tag(s, num) != 0)
		return -1;
	start = s->c.off;
	while (!next_is(s, CTX, num, CLOSE))
		if (skip_element(s) != 0)
			return -1;
	*p = s->c.buf + start;
	*n = s->c.off - start;
	return close_tag(s, num);
}

static void skip_rest(struct sp *s)
{
	s->c.off = s->c.len;
}

/* The value a policy compares: exactly one application primitive is decoded; a list,
 * an array or a constructed value is BMS_VAL_OTHER, so that a numeric limit cannot be
 * passed by hiding a second value behind a harmless first one. */
static int value_of(struct sp *s, const uint8_t *p, size_t n, struct bms_target *t)
{
	struct bms_cursor c;
	struct bacnet_tag tag;

	t->data = p;
	t->data_len = (uint16_t)n;
	t->has_value = true;
	memset(&t->value, 0, sizeof(t->value));
	t->value.type = BMS_VAL_OTHER;
	if (n == 0) /* an empty list: legal for list-valued properties */
		return 0;
	bms_cursor_init(&c, p, n);
	if (bacnet_tag_read(&c, &tag) != 0)
		return fail(s, BACNET_AN_TAG_TRUNCATED);
	if (bms_cursor_left(&c) != 0)
		return 0;
	bacnet_tag_value(&tag, &t->value);
	return 0;
}

static struct bms_target *target(struct sp *s, uint16_t type, uint32_t inst)
{
	struct bacnet_fields *f = &s->r->raw.bacnet;
	struct bms_target *t;

	if (f->targets_total < UINT16_MAX)
		f->targets_total++;
	if (s->r->ntargets >= BMS_MAX_TARGETS) {
		s->r->anomalies |= BACNET_AN(BACNET_AN_TOO_MANY_TARGETS);
		t = &s->scratch;
	} else {
		t = &s->r->targets[s->r->ntargets++];
	}
	memset(t, 0, sizeof(*t));
	t->space = BMS_SPACE_BACNET_OBJECT;
	t->object_type = type;
	t->instance = inst;
	t->property = BMS_NO_INDEX;
	t->array_index = BMS_NO_INDEX;
	return t;
}

/* propertyIdentifier [pnum] BACnetPropertyIdentifier, propertyArrayIndex [inum] Unsigned OPTIONAL */
static int prop_ref(struct sp *s, uint8_t pnum, uint8_t inum, struct bms_target *t)
{
	uint64_t v;
	bool has;

	if (ctx_uint(s, pnum, BACNET_MAX_PROPERTY, &v) != 0)
		return -1;
	t->property = (uint32_t)v;
	/* BMS_NO_INDEX (0xFFFFFFFF) means "no index": the one value an index cannot take here. */
	if (opt_ctx_uint(s, inum, UINT32_MAX - 1, &v, &has) != 0)
		return -1;
	if (has)
		t->array_index = (uint32_t)v;
	return 0;
}

static int check_priority(struct sp *s, uint64_t v)
{
	/* 15.9.1.1.5: "priority ... in the range 1-16". */
	if (v < 1 || v > 16)
		return fail(s, BACNET_AN_BAD_PRIORITY);
	return 0;
}

static int opt_priority(struct sp *s, uint8_t num, struct bms_target *t)
{
	struct bacnet_tag tag;
	uint64_t v;

	if (!next_is(s, CTX, num, PRIM))
		return 0;
	if (take(s, CTX, num, PRIM, &tag) != 0 || uint_of(s, &tag, UINT64_MAX, &v) != 0 ||
	    check_priority(s, v) != 0)
		return -1;
	t->priority = (uint8_t)v;
	return 0;
}

static int value_into(struct sp *s, uint8_t num, struct bms_target *t)
{
	const uint8_t *p;
	size_t n;

	if (constructed(s, num, &p, &n) != 0)
		return -1;
	return value_of(s, p, n, t);
}

/* SEQUENCE OF BACnetPropertyValue up to the closing tag `end`:
 * [0] property, [1] array index OPT, [2] value, [3] priority OPT. */
static int property_values(struct sp *s, uint8_t end, uint16_t type, uint32_t inst, bool need_one)
{
	unsigned count = 0;

	while (!next_is(s, CTX, end, CLOSE)) {
		struct bms_target *t = target(s, type, inst);
		if (at_end(s))
			return fail(s, BACNET_AN_SERVICE_TRUNCATED);
		if (prop_ref(s, 0, 1, t) != 0 || value_into(s, 2, t) != 0 || opt_priority(s, 3, t) != 0)
			return -1;
		count++;
	}
	if (need_one && count == 0)
		return fail(s, BACNET_AN_SERVICE_EMPTY_LIST);
	return 0;
}

/* ReadProperty-Request (15.5.1.1) and the head of WriteProperty, ReadRange, list elements:
 * objectIdentifier [0], propertyIdentifier [1], propertyArrayIndex [2] OPTIONAL. */
static struct bms_target *object_property(struct sp *s)
{
	uint16_t type;
	uint32_t inst;
	struct bms_target *t;

	if (ctx_objid(s, 0, &type, &inst) != 0)
		return NULL;
	t = target(s, type, inst);
	if (prop_ref(s, 1, 2, t) != 0)
		return NULL;
	return t;
}

static int read_property(struct sp *s)
{
	if (object_property(s) == NULL)
		return -1;
	return finish(s);
}

/* 15.7.1.1: SEQUENCE OF ReadAccessSpecification { [0] object, [1] SEQUENCE OF BACnetPropertyReference } */
static int read_property_multiple(struct sp *s)
{
	if (at_end(s))
		return fail(s, BACNET_AN_SERVICE_EMPTY_LIST);
	while (!at_end(s)) {
		uint16_t type;
		uint32_t inst;
		unsigned count = 0;

		if (ctx_objid(s, 0, &type, &inst) != 0 || open_tag(s, 1) != 0)
			return -1;
		while (!next_is(s, CTX, 1, CLOSE)) {
			if (prop_ref(s, 0, 1, target(s, type, inst)) != 0)
				return -1;
			count++;
		}
		if (count == 0)
			return fail(s, BACNET_AN_SERVICE_EMPTY_LIST);
		if (close_tag(s, 1) != 0)
			return -1;
	}
	return 0;
}

/* 15.9.1.1: object [0], property [1], index [2] OPT, value [3], priority [4] OPT */
static int write_property(struct sp *s)
{
	struct bms_target *t = object_property(s);

	if (t == NULL || value_into(s, 3, t) != 0 || opt_priority(s, 4, t) != 0)
		return -1;
	return finish(s);
}

/* 15.10.1.1: SEQUENCE OF WriteAccessSpecification { [0] object, [1] SEQUENCE OF BACnetPropertyValue } */
static int write_property_multiple(struct sp *s)
{
	if (at_end(s))
		return fail(s, BACNET_AN_SERVICE_EMPTY_LIST);
	while (!at_end(s)) {
		uint16_t type;
		uint32_t inst;

		if (ctx_objid(s, 0, &type, &inst) != 0 || open_tag(s, 1) != 0 ||
		    property_values(s, 1, type, inst, true) != 0 || close_tag(s, 1) != 0)
			return -1;
	}
	return 0;
}

/* 14.2.1.1 / 15.1.1.1 .. : object [0], property [1], index [2] OPT, listOfElements [3] */
static int list_element(struct sp *s)
{
	struct bms_target *t = object_property(s);

	if (t == NULL || value_into(s, 3, t) != 0)
		return -1;
	return finish(s);
}

/* 13.14.1: subscriberProcessIdentifier [0], monitoredObjectIdentifier [1],
 * issueConfirmedNotifications [2] OPT, lifetime [3] OPT; SubscribeCOVProperty (13.15.1) adds
 * monitoredPropertyIdentifier [4] BACnetPropertyReference and covIncrement [5] REAL OPT. */
static int subscribe_cov(struct sp *s, bool property)
{
	uint64_t v;
	uint16_t type;
	uint32_t inst;
	bool has;
	struct bms_target *t;

	if (ctx_uint(s, 0, UINT32_MAX, &v) != 0 || ctx_objid(s, 1, &type, &inst) != 0)
		return -1;
	s->r->raw.bacnet.process_id = (uint32_t)v;
	t = target(s, type, inst);
	if (opt_ctx_bool(s, 2) != 0 || opt_ctx_uint(s, 3, UINT32_MAX, &v, &has) != 0)
		return -1;
	if (property) {
		struct bacnet_tag tag;
		if (open_tag(s, 4) != 0 || prop_ref(s, 0, 1, t) != 0 || close_tag(s, 4) != 0)
			return -1;
		if (next_is(s, CTX, 5, PRIM)) {
			if (take(s, CTX, 5, PRIM, &tag) != 0)
				return -1;
			if (tag.len != 4)
				return fail(s, BACNET_AN_TAG_BAD_LENGTH);
		}
	}
	return finish(s);
}

/* Passwords (16.1.1.1.3, 16.4.1.1.2): CharacterString of 1..20 characters. Only its presence
 * and length are looked at; its octets are never copied anywhere. */
static int password(struct sp *s, uint8_t num)
{
	struct bacnet_tag t;
	size_t chars = 0;

	if (!next_is(s, CTX, num, PRIM))
		return 0;
	if (take(s, CTX, num, PRIM, &t) != 0)
		return -1;
	s->r->raw.bacnet.password_present = 1;
	if (t.len < 1)
		return fail(s, BACNET_AN_TAG_BAD_LENGTH);
	switch (t.data[0]) { /* character set */
	case 0: /* UTF-8: count lead octets */
		for (uint32_t i = 1; i < t.len; i++)
			chars += (t.data[i] & 0xC0) != 0x80;
		break;
	case 4: chars = (t.len - 1) / 2; break; /* UCS-2 */
	case 3: chars = (t.len - 1) / 4; break; /* UCS-4 */
	default: chars = t.len - 1; break;
	}
	if (chars > 20)
		return fail(s, BACNET_AN_PASSWORD_TOO_LONG);
	return 0;
}

/* 16.1.1: timeDuration [0] Unsigned16 OPT, enable-disable [1] ENUMERATED, password [2] OPT */
static int device_communication_control(struct sp *s)
{
	struct bacnet_fields *f = &s->r->raw.bacnet;
	uint64_t v;
	bool has;

	if (opt_ctx_uint(s, 0, UINT16_MAX, &v, &has) != 0)
		return -1;
	f->has_duration = has;
	f->duration = (uint32_t)v;
	/* enable (0), disable (1), disable-initiation (2) */
	if (ctx_uint(s, 1, 2, &v) != 0)
		return -1;
	f->enable_disable = (uint32_t)v;
	if (password(s, 2) != 0)
		return -1;
	return finish(s);
}

/* 16.4.1: reinitializedStateOfDevice [0] ENUMERATED (coldstart .. activate-changes = 7), password [1] OPT */
static int reinitialize_device(struct sp *s)
{
	uint64_t v;

	if (ctx_uint(s, 0, 7, &v) != 0)
		return -1;
	s->r->raw.bacnet.reinit_state = (uint32_t)v;
	if (password(s, 1) != 0)
		return -1;
	return finish(s);
}

static int file_target(struct sp *s, struct bms_target **out)
{
	uint16_t type;
	uint32_t inst;

	if (app_objid(s, &type, &inst) != 0)
		return -1;
	*out = target(s, type, inst);
	return 0;
}

/* File start: position / record, INTEGER. -1 (append) is allowed for writes only, and is
 * kept as BMS_NO_INDEX in the target. */
static int file_start(struct sp *s, struct bms_target *t, bool write)
{
	int64_t v;

	if (app_signed(s, &v) != 0)
		return -1;
	if (v < (write ? -1 : 0) || v > INT32_MAX)
		return fail(s, BACNET_AN_SERVICE_VALUE_RANGE);
	s->r->raw.bacnet.file_start = (int32_t)v;
	t->start = v < 0 ? BMS_NO_INDEX : (uint32_t)v;
	return 0;
}

/* 14.1.1: fileIdentifier, CHOICE { streamAccess [0] { start INTEGER, requestedOctetCount Unsigned },
 * recordAccess [1] { start INTEGER, requestedRecordCount Unsigned } } */
static int atomic_read_file(struct sp *s)
{
	struct bms_target *t;
	uint64_t v;
	uint8_t form;

	if (file_target(s, &t) != 0)
		return -1;
	form = next_is(s, CTX, 1, OPEN) ? 1 : 0;
	if (open_tag(s, form) != 0 || file_start(s, t, false) != 0 ||
	    app_uint(s, BACNET_APP_UNSIGNED, UINT32_MAX, &v) != 0 || close_tag(s, form) != 0)
		return -1;
	t->count = (uint32_t)v;
	return finish(s);
}

/* 14.2.1: fileIdentifier, CHOICE { streamAccess [0] { start INTEGER, fileData OCTET STRING },
 * recordAccess [1] { start INTEGER, recordCount Unsigned, fileRecordData SEQUENCE OF OCTET STRING } } */
static int atomic_write_file(struct sp *s)
{
	struct bms_target *t;
	struct bacnet_tag tag;
	uint64_t v;

	if (file_target(s, &t) != 0)
		return -1;
	if (next_is(s, CTX, 1, OPEN)) {
		size_t start;
		if (open_tag(s, 1) != 0 || file_start(s, t, true) != 0 ||
		    app_uint(s, BACNET_APP_UNSIGNED, UINT32_MAX, &v) != 0)
			return -1;
		t->count = (uint32_t)v;
		start = s->c.off;
		for (uint64_t i = 0; i < v; i++)
			if (take(s, APP, BACNET_APP_OCTET_STRING, PRIM, &tag) != 0)
				return -1;
		t->data = s->c.buf + start;
		t->data_len = (uint16_t)(s->c.off - start);
		/* recordCount must match the records that follow. */
		if (!next_is(s, CTX, 1, CLOSE))
			return fail(s, BACNET_AN_SERVICE_VALUE_RANGE);
		if (close_tag(s, 1) != 0)
			return -1;
	} else {
		if (open_tag(s, 0) != 0 || file_start(s, t, true) != 0 ||
		    take(s, APP, BACNET_APP_OCTET_STRING, PRIM, &tag) != 0 || close_tag(s, 0) != 0)
			return -1;
		t->count = tag.len;
		t->data = tag.data;
		t->data_len = (uint16_t)tag.len;
	}
	return finish(s);
}

/* 15.3.1: objectSpecifier [0] CHOICE { objectType [0], objectIdentifier [1] },
 * listOfInitialValues [1] SEQUENCE OF BACnetPropertyValue OPTIONAL.
 * The first target is the object; an object named by type only has instance BMS_NO_INDEX. */
static int create_object(struct sp *s)
{
	uint16_t type;
	uint32_t inst = BMS_NO_INDEX;
	uint64_t v;

	if (open_tag(s, 0) != 0)
		return -1;
	if (next_is(s, CTX, 1, PRIM)) {
		if (ctx_objid(s, 1, &type, &inst) != 0)
			return -1;
	} else {
		if (ctx_uint(s, 0, 1023, &v) != 0)
			return -1;
		type = (uint16_t)v;
	}
	if (close_tag(s, 0) != 0)
		return -1;
	(void)target(s, type, inst);
	if (next_is(s, CTX, 1, OPEN)) {
		if (open_tag(s, 1) != 0 || property_values(s, 1, type, inst, false) != 0 || close_tag(s, 1) != 0)
			return -1;
	}
	return finish(s);
}

static int delete_object(struct sp *s)
{
	uint16_t type;
	uint32_t inst;

	if (app_objid(s, &type, &inst) != 0)
		return -1;
	(void)target(s, type, inst);
	return finish(s);
}

/* 16.2.1 / 16.3.1: vendorID [0] Unsigned16, serviceNumber [1] Unsigned, serviceParameters [2] OPT */
static int private_transfer(struct sp *s)
{
	struct bacnet_fields *f = &s->r->raw.bacnet;
	const uint8_t *p;
	size_t n;
	uint64_t v;

	if (ctx_uint(s, 0, UINT16_MAX, &v) != 0)
		return -1;
	f->has_vendor = 1;
	f->vendor_id = (uint16_t)v;
	if (ctx_uint(s, 1, UINT32_MAX, &v) != 0)
		return -1;
	f->service_number = (uint32_t)v;
	if (next_is(s, CTX, 2, OPEN) && constructed(s, 2, &p, &n) != 0)
		return -1;
	return finish(s);
}

/* 15.8.1: object [0], property [1], index [2] OPT, range CHOICE OPT { byPosition [3]
 * { referenceIndex Unsigned, count INTEGER }, bySequenceNumber [6] { Unsigned, INTEGER },
 * byTime [7] { BACnetDateTime, INTEGER } } ([4] and [5] are the 2001 forms, accepted opaque). */
static int read_range(struct sp *s)
{
	struct bms_target *t = object_property(s);
	struct bacnet_tag tag;
	uint64_t v;
	int64_t count;

	if (t == NULL)
		return -1;
	if (next_is(s, CTX, 3, OPEN) || next_is(s, CTX, 6, OPEN)) {
		uint8_t num = next_is(s, CTX, 3, OPEN) ? 3 : 6;
		if (open_tag(s, num) != 0 || app_uint(s, BACNET_APP_UNSIGNED, UINT32_MAX, &v) != 0 ||
		    app_signed(s, &count) != 0 || close_tag(s, num) != 0)
			return -1;
	} else if (next_is(s, CTX, 7, OPEN)) {
		if (open_tag(s, 7) != 0 || take(s, APP, BACNET_APP_DATE, PRIM, &tag) != 0 ||
		    take(s, APP, BACNET_APP_TIME, PRIM, &tag) != 0 || app_signed(s, &count) != 0 ||
		    close_tag(s, 7) != 0)
			return -1;
	} else if (next_is(s, CTX, 4, OPEN) || next_is(s, CTX, 5, OPEN)) {
		if (skip_element(s) != 0)
			return -1;
	}
	return finish(s);
}

/* Head of the alarm/event services: processIdentifier [0], then an object at [num]. */
static int pid_object(struct sp *s, uint8_t num)
{
	uint64_t v;
	uint16_t type;
	uint32_t inst;

	if (ctx_uint(s, 0, UINT32_MAX, &v) != 0)
		return -1;
	s->r->raw.bacnet.process_id = (uint32_t)v;
	if (num == 2) { /* notifications: initiatingDeviceIdentifier [1] first */
		if (ctx_objid(s, 1, &type, &inst) != 0)
			return -1;
	}
	if (ctx_objid(s, num, &type, &inst) != 0)
		return -1;
	(void)target(s, type, inst);
	return 0;
}

/* 13.7.1 / 13.8.1: pid [0], initiatingDevice [1], monitoredObject [2], timeRemaining [3],
 * listOfValues [4] SEQUENCE OF BACnetPropertyValue: one target per value reported (the
 * object alone if the list is empty). */
static int cov_notification(struct sp *s)
{
	uint64_t v;
	uint16_t type;
	uint32_t inst;

	if (ctx_uint(s, 0, UINT32_MAX, &v) != 0)
		return -1;
	s->r->raw.bacnet.process_id = (uint32_t)v;
	if (ctx_objid(s, 1, &type, &inst) != 0 || ctx_objid(s, 2, &type, &inst) != 0 ||
	    ctx_uint(s, 3, UINT32_MAX, &v) != 0 || open_tag(s, 4) != 0 ||
	    property_values(s, 4, type, inst, false) != 0 || close_tag(s, 4) != 0)
		return -1;
	if (s->r->raw.bacnet.targets_total == 0)
		(void)target(s, type, inst);
	return finish(s);
}

/* 13.13.1: pid [0], requestingSource [1], request [2], objectIdentifier [3] OPT */
static int life_safety_operation(struct sp *s)
{
	struct bacnet_tag t;
	uint64_t v;
	uint16_t type;
	uint32_t inst;

	if (ctx_uint(s, 0, UINT32_MAX, &v) != 0 || take(s, CTX, 1, PRIM, &t) != 0 ||
	    ctx_uint(s, 2, UINT32_MAX, &v) != 0)
		return -1;
	if (next_is(s, CTX, 3, PRIM)) {
		if (ctx_objid(s, 3, &type, &inst) != 0)
			return -1;
		(void)target(s, type, inst);
	}
	return finish(s);
}

/* 13.16.1 SubscribeCOVPropertyMultiple: pid [0], issueConfirmedNotifications [1] OPT,
 * lifetime [2] OPT, maxNotificationDelay [3] OPT, listOfCOVSubscriptionSpecifications [4]
 * SEQUENCE OF { monitoredObjectIdentifier [0], listOfCOVReferences [1] SEQUENCE OF
 * { monitoredProperty [0] BACnetPropertyReference, covIncrement [1] REAL OPT, timestamped [2] BOOLEAN } } */
static int subscribe_cov_property_multiple(struct sp *s)
{
	struct bacnet_tag tag;
	uint64_t v;
	bool has;

	if (ctx_uint(s, 0, UINT32_MAX, &v) != 0)
		return -1;
	s->r->raw.bacnet.process_id = (uint32_t)v;
	if (opt_ctx_bool(s, 1) != 0 || opt_ctx_uint(s, 2, UINT32_MAX, &v, &has) != 0 ||
	    opt_ctx_uint(s, 3, UINT32_MAX, &v, &has) != 0 || open_tag(s, 4) != 0)
		return -1;
	while (!next_is(s, CTX, 4, CLOSE)) {
		uint16_t type;
		uint32_t inst;
		unsigned count = 0;

		if (ctx_objid(s, 0, &type, &inst) != 0 || open_tag(s, 1) != 0)
			return -1;
		while (!next_is(s, CTX, 1, CLOSE)) {
			struct bms_target *t = target(s, type, inst);
			if (open_tag(s, 0) != 0 || prop_ref(s, 0, 1, t) != 0 || close_tag(s, 0) != 0)
				return -1;
			if (next_is(s, CTX, 1, PRIM)) {
				if (take(s, CTX, 1, PRIM, &tag) != 0)
					return -1;
				if (tag.len != 4)
					return fail(s, BACNET_AN_TAG_BAD_LENGTH);
			}
			if (!next_is(s, CTX, 2, PRIM))
				return fail(s, next_is(s, CTX, 1, CLOSE) ? BACNET_AN_SERVICE_TRUNCATED
									 : BACNET_AN_SERVICE_UNEXPECTED_TAG);
			if (opt_ctx_bool(s, 2) != 0)
				return -1;
			count++;
		}
		if (count == 0)
			return fail(s, BACNET_AN_SERVICE_EMPTY_LIST);
		if (close_tag(s, 1) != 0)
			return -1;
	}
	if (close_tag(s, 4) != 0)
		return -1;
	return finish(s);
}

/* 13.17.1 / 13.18.1 COVNotificationMultiple: pid [0], initiatingDeviceIdentifier [1],
 * timeRemaining [2], timestamp [3] OPT, listOfCOVNotifications [4] SEQUENCE OF
 * { monitoredObjectIdentifier [0], listOfValues [1] SEQUENCE OF { property [0], index [1] OPT,
 * value [2], timeOfChange [3] BACnetTime OPT } }: one target per value reported. */
static int cov_notification_multiple(struct sp *s)
{
	struct bacnet_tag tag;
	uint64_t v;
	uint16_t type;
	uint32_t inst;

	if (ctx_uint(s, 0, UINT32_MAX, &v) != 0)
		return -1;
	s->r->raw.bacnet.process_id = (uint32_t)v;
	if (ctx_objid(s, 1, &type, &inst) != 0 || ctx_uint(s, 2, UINT32_MAX, &v) != 0)
		return -1;
	if (next_is(s, CTX, 3, OPEN) && skip_element(s) != 0)
		return -1;
	if (open_tag(s, 4) != 0)
		return -1;
	while (!next_is(s, CTX, 4, CLOSE)) {
		if (ctx_objid(s, 0, &type, &inst) != 0 || open_tag(s, 1) != 0)
			return -1;
		while (!next_is(s, CTX, 1, CLOSE)) {
			struct bms_target *t = target(s, type, inst);
			if (prop_ref(s, 0, 1, t) != 0 || value_into(s, 2, t) != 0)
				return -1;
			if (next_is(s, CTX, 3, PRIM) && take(s, CTX, 3, PRIM, &tag) != 0)
				return -1;
		}
		if (close_tag(s, 1) != 0)
			return -1;
	}
	if (close_tag(s, 4) != 0)
		return -1;
	return finish(s);
}

/* 16.5.1 / 16.6.1 TextMessage: textMessageSourceDevice [0], messageClass [1] CHOICE
 * { numeric [0] Unsigned, character [1] CharacterString } OPTIONAL, messagePriority [2]
 * ENUMERATED { normal, urgent }, message [3] CharacterString. The source device is the
 * sender, not a target: a text message names no object. */
static int text_message(struct sp *s)
{
	struct bacnet_tag t;
	uint64_t v;
	uint16_t type;
	uint32_t inst;

	if (ctx_objid(s, 0, &type, &inst) != 0)
		return -1;
	if (next_is(s, CTX, 1, OPEN)) {
		if (open_tag(s, 1) != 0)
			return -1;
		if (next_is(s, CTX, 0, PRIM)) {
			if (ctx_uint(s, 0, UINT32_MAX, &v) != 0)
				return -1;
		} else if (take(s, CTX, 1, PRIM, &t) != 0) {
			return -1;
		}
		if (close_tag(s, 1) != 0)
			return -1;
	}
	if (ctx_uint(s, 2, 1, &v) != 0 || take(s, CTX, 3, PRIM, &t) != 0)
		return -1;
	if (t.len < 1)
		return fail(s, BACNET_AN_TAG_BAD_LENGTH);
	return finish(s);
}

/* BACnetTimeStamp ::= CHOICE { time [0] Time, sequenceNumber [1] Unsigned, dateTime [2]
 * BACnetDateTime }, wrapped in the context tag [num]. */
static int timestamp(struct sp *s, uint8_t num)
{
	struct bacnet_tag t;
	uint64_t v;

	if (open_tag(s, num) != 0)
		return -1;
	if (next_is(s, CTX, 2, OPEN)) {
		if (open_tag(s, 2) != 0 || take(s, APP, BACNET_APP_DATE, PRIM, &t) != 0 ||
		    take(s, APP, BACNET_APP_TIME, PRIM, &t) != 0 || close_tag(s, 2) != 0)
			return -1;
	} else if (next_is(s, CTX, 1, PRIM)) {
		if (ctx_uint(s, 1, UINT32_MAX, &v) != 0)
			return -1;
	} else {
		if (take(s, CTX, 0, PRIM, &t) != 0)
			return -1;
		if (t.len != 4)
			return fail(s, BACNET_AN_TAG_BAD_LENGTH);
	}
	return close_tag(s, num);
}

/* 13.5.1 AcknowledgeAlarm: pid [0], eventObjectIdentifier [1], eventStateAcknowledged [2],
 * timeStamp [3], acknowledgmentSource [4] CharacterString, timeOfAcknowledgment [5] */
static int acknowledge_alarm(struct sp *s)
{
	struct bacnet_tag t;
	uint64_t v;

	if (pid_object(s, 1) != 0 || ctx_uint(s, 2, UINT32_MAX, &v) != 0 || timestamp(s, 3) != 0 ||
	    take(s, CTX, 4, PRIM, &t) != 0 || timestamp(s, 5) != 0)
		return -1;
	return finish(s);
}

/* 13.8.1 / 13.9.1 EventNotification: pid [0], initiatingDeviceIdentifier [1],
 * eventObjectIdentifier [2], timeStamp [3], notificationClass [4], priority [5] Unsigned8 (an
 * event priority, not a command priority), eventType [6], messageText [7] OPT, notifyType [8],
 * ackRequired [9] OPT, fromState [10] OPT, toState [11], eventValues [12] OPT */
static int event_notification(struct sp *s)
{
	struct bacnet_tag t;
	uint64_t v;
	bool has;

	if (pid_object(s, 2) != 0 || timestamp(s, 3) != 0 || ctx_uint(s, 4, UINT32_MAX, &v) != 0 ||
	    ctx_uint(s, 5, 255, &v) != 0 || ctx_uint(s, 6, UINT32_MAX, &v) != 0)
		return -1;
	if (next_is(s, CTX, 7, PRIM) && take(s, CTX, 7, PRIM, &t) != 0)
		return -1;
	if (ctx_uint(s, 8, 2, &v) != 0 || opt_ctx_bool(s, 9) != 0 ||
	    opt_ctx_uint(s, 10, UINT32_MAX, &v, &has) != 0 || ctx_uint(s, 11, UINT32_MAX, &v) != 0)
		return -1;
	if (next_is(s, CTX, 12, OPEN) && skip_element(s) != 0)
		return -1;
	return finish(s);
}

int bacnet_svc_confirmed(struct bms_request *r, uint8_t service, const uint8_t *p, size_t n)
{
	struct sp s = { .r = r };

	bms_cursor_init(&s.c, p, n);
	switch (service) {
	case BACNET_SVC_READ_PROPERTY: return read_property(&s);
	case BACNET_SVC_READ_PROPERTY_MULTIPLE: return read_property_multiple(&s);
	case BACNET_SVC_WRITE_PROPERTY: return write_property(&s);
	case BACNET_SVC_WRITE_PROPERTY_MULTIPLE: return write_property_multiple(&s);
	case BACNET_SVC_ADD_LIST_ELEMENT:
	case BACNET_SVC_REMOVE_LIST_ELEMENT: return list_element(&s);
	case BACNET_SVC_SUBSCRIBE_COV: return subscribe_cov(&s, false);
	case BACNET_SVC_SUBSCRIBE_COV_PROPERTY: return subscribe_cov(&s, true);
	case BACNET_SVC_DEVICE_COMMUNICATION_CONTROL: return device_communication_control(&s);
	case BACNET_SVC_REINITIALIZE_DEVICE: return reinitialize_device(&s);
	case BACNET_SVC_ATOMIC_READ_FILE: return atomic_read_file(&s);
	case BACNET_SVC_ATOMIC_WRITE_FILE: return atomic_write_file(&s);
	case BACNET_SVC_CREATE_OBJECT: return create_object(&s);
	case BACNET_SVC_DELETE_OBJECT: return delete_object(&s);
	case BACNET_SVC_CONFIRMED_PRIVATE_TRANSFER: return private_transfer(&s);
	case BACNET_SVC_READ_RANGE: return read_range(&s);
	case BACNET_SVC_CONFIRMED_COV_NOTIFICATION: return cov_notification(&s);
	case BACNET_SVC_LIFE_SAFETY_OPERATION: return life_safety_operation(&s);
	case BACNET_SVC_SUBSCRIBE_COV_PROPERTY_MULTIPLE: return subscribe_cov_property_multiple(&s);
	case BACNET_SVC_CONFIRMED_COV_NOTIFICATION_MULTIPLE: return cov_notification_multiple(&s);
	case BACNET_SVC_GET_ALARM_SUMMARY: return finish(&s); /* no parameters */
	case BACNET_SVC_CONFIRMED_TEXT_MESSAGE: return text_message(&s);
	case BACNET_SVC_ACKNOWLEDGE_ALARM: return acknowledge_alarm(&s);
	case BACNET_SVC_CONFIRMED_EVENT_NOTIFICATION: return event_notification(&s);
	case BACNET_SVC_GET_EVENT_INFORMATION: { /* lastReceivedObjectIdentifier [0] OPT */
		uint16_t type;
		uint32_t inst;
		if (next_is(&s, CTX, 0, PRIM) && ctx_objid(&s, 0, &type, &inst) != 0)
			return -1;
		return finish(&s);
	}
	default:
		/* Named and classed by its choice; its tags were checked, its grammar is not known here. */
		return 0;
	}
}

/* 16.10.1 Who-Is / 16.9.1 Who-Has: deviceInstanceRangeLowLimit [0], HighLimit [1], both or neither. */
static int device_range(struct sp *s)
{
	struct bacnet_fields *f = &s->r->raw.bacnet;
	uint64_t lo, hi;
	bool has_lo, has_hi;

	if (opt_ctx_uint(s, 0, BACNET_MAX_INSTANCE, &lo, &has_lo) != 0 ||
	    opt_ctx_uint(s, 1, BACNET_MAX_INSTANCE, &hi, &has_hi) != 0)
		return -1;
	if (has_lo != has_hi)
		return fail(s, BACNET_AN_WHO_IS_HALF_RANGE);
	if (has_lo) {
		f->has_range = 1;
		f->range_low = (uint32_t)lo;
		f->range_high = (uint32_t)hi;
	}
	return 0;
}

static int who_is(struct sp *s)
{
	struct bacnet_fields *f = &s->r->raw.bacnet;

	if (device_range(s) != 0)
		return -1;
	/* A range of one device names it; a wider range names no single target. */
	if (f->has_range && f->range_low == f->range_high)
		(void)target(s, OBJ_DEVICE, f->range_low);
	return finish(s);
}

/* 16.9.1: range, then CHOICE { objectIdentifier [2], objectName [3] CharacterString } */
static int who_has(struct sp *s)
{
	struct bacnet_tag t;
	uint16_t type;
	uint32_t inst;

	if (device_range(s) != 0)
		return -1;
	if (next_is(s, CTX, 2, PRIM)) {
		if (ctx_objid(s, 2, &type, &inst) != 0)
			return -1;
		(void)target(s, type, inst);
	} else if (take(s, CTX, 3, PRIM, &t) != 0) {
		return -1;
	} else if (t.len < 1) {
		return fail(s, BACNET_AN_TAG_BAD_LENGTH);
	}
	return finish(s);
}

/* 16.10.2: iAmDeviceIdentifier, maxAPDULengthAccepted Unsigned, segmentationSupported
 * ENUMERATED (0..3), vendorID Unsigned16 (all application-tagged). */
static int i_am(struct sp *s)
{
	struct bacnet_fields *f = &s->r->raw.bacnet;
	uint16_t type;
	uint32_t inst;
	uint64_t v;

	if (app_objid(s, &type, &inst) != 0)
		return -1;
	(void)target(s, type, inst);
	if (app_uint(s, BACNET_APP_UNSIGNED, UINT32_MAX, &v) != 0)
		return -1;
	f->max_apdu_accepted = (uint32_t)v;
	if (app_uint(s, BACNET_APP_ENUMERATED, 3, &v) != 0)
		return -1;
	f->segmentation_supported = (uint32_t)v;
	if (app_uint(s, BACNET_APP_UNSIGNED, UINT16_MAX, &v) != 0)
		return -1;
	f->has_vendor = 1;
	f->vendor_id = (uint16_t)v;
	return finish(s);
}

/* 16.9.2: deviceIdentifier, objectIdentifier, objectName (application-tagged) */
static int i_have(struct sp *s)
{
	struct bacnet_tag t;
	uint16_t type;
	uint32_t inst;

	for (int i = 0; i < 2; i++) {
		if (app_objid(s, &type, &inst) != 0)
			return -1;
		(void)target(s, type, inst);
	}
	if (take(s, APP, BACNET_APP_CHARACTER_STRING, PRIM, &t) != 0)
		return -1;
	return finish(s);
}

/* 16.7.1 / 16.8.1: time BACnetDateTime = Date, Time (application-tagged) */
static int time_sync(struct sp *s)
{
	struct bacnet_fields *f = &s->r->raw.bacnet;
	struct bacnet_tag d, t;

	if (take(s, APP, BACNET_APP_DATE, PRIM, &d) != 0 || take(s, APP, BACNET_APP_TIME, PRIM, &t) != 0)
		return -1;
	memcpy(f->date, d.data, 4);
	memcpy(f->time, t.data, 4);
	f->has_datetime = 1;
	return finish(s);
}

/* 15.11.1: groupNumber [0] Unsigned32, writePriority [1] (1..16), changeList [2] SEQUENCE OF
 * BACnetGroupChannelValue { channel [0] Unsigned16, overridingPriority [1] OPT, value
 * BACnetChannelValue }, inhibitDelay [3] BOOLEAN OPT. One target per channel: object type
 * channel (53), instance = the channel number, priority = overriding or write priority. */
static int write_group(struct sp *s)
{
	struct bacnet_fields *f = &s->r->raw.bacnet;
	uint64_t v, prio;
	unsigned count = 0;

	if (ctx_uint(s, 0, UINT32_MAX, &v) != 0)
		return -1;
	f->group_number = (uint32_t)v;
	if (ctx_uint(s, 1, UINT64_MAX, &prio) != 0 || check_priority(s, prio) != 0 || open_tag(s, 2) != 0)
		return -1;
	while (!next_is(s, CTX, 2, CLOSE)) {
		struct bms_target *t;
		size_t start;

		if (ctx_uint(s, 0, UINT16_MAX, &v) != 0)
			return -1;
		t = target(s, OBJ_CHANNEL, (uint32_t)v);
		t->priority = (uint8_t)prio;
		if (opt_priority(s, 1, t) != 0)
			return -1;
		if (at_end(s) || next_is(s, CTX, 2, CLOSE) || next_is(s, CTX, 0, PRIM))
			return fail(s, BACNET_AN_SERVICE_TRUNCATED);
		start = s->c.off;
		if (skip_element(s) != 0 || value_of(s, s->c.buf + start, s->c.off - start, t) != 0)
			return -1;
		count++;
	}
	if (count == 0)
		return fail(s, BACNET_AN_SERVICE_EMPTY_LIST);
	if (close_tag(s, 2) != 0 || opt_ctx_bool(s, 3) != 0)
		return -1;
	return finish(s);
}

/* 16.11.1 Who-Am-I: vendorID Unsigned16, modelName, serialNumber (CharacterString) */
static int identity(struct sp *s)
{
	struct bacnet_fields *f = &s->r->raw.bacnet;
	struct bacnet_tag t;
	uint64_t v;

	if (app_uint(s, BACNET_APP_UNSIGNED, UINT16_MAX, &v) != 0)
		return -1;
	f->has_vendor = 1;
	f->vendor_id = (uint16_t)v;
	if (take(s, APP, BACNET_APP_CHARACTER_STRING, PRIM, &t) != 0 ||
	    take(s, APP, BACNET_APP_CHARACTER_STRING, PRIM, &t) != 0)
		return -1;
	return 0;
}

static int who_am_i(struct sp *s)
{
	if (identity(s) != 0)
		return -1;
	return finish(s);
}

/* 16.11.2 You-Are: the Who-Am-I identity, then deviceIdentifier OPTIONAL and
 * deviceMACAddress OCTET STRING OPTIONAL (all application-tagged) */
static int you_are(struct sp *s)
{
	struct bacnet_tag t;
	uint16_t type;
	uint32_t inst;

	if (identity(s) != 0)
		return -1;
	if (next_is(s, APP, BACNET_APP_OBJECT_ID, PRIM)) {
		if (app_objid(s, &type, &inst) != 0)
			return -1;
		(void)target(s, type, inst);
	}
	if (!at_end(s) && take(s, APP, BACNET_APP_OCTET_STRING, PRIM, &t) != 0)
		return -1;
	return finish(s);
}

int bacnet_svc_unconfirmed(struct bms_request *r, uint8_t service, const uint8_t *p, size_t n)
{
	struct sp s = { .r = r };

	bms_cursor_init(&s.c, p, n);
	switch (service) {
	case BACNET_USVC_I_AM: return i_am(&s);
	case BACNET_USVC_I_HAVE: return i_have(&s);
	case BACNET_USVC_WHO_IS: return who_is(&s);
	case BACNET_USVC_WHO_HAS: return who_has(&s);
	case BACNET_USVC_TIME_SYNCHRONIZATION:
	case BACNET_USVC_UTC_TIME_SYNCHRONIZATION: return time_sync(&s);
	case BACNET_USVC_WRITE_GROUP: return write_group(&s);
	case BACNET_USVC_WHO_AM_I: return who_am_i(&s);
	case BACNET_USVC_YOU_ARE: return you_are(&s);
	case BACNET_USVC_PRIVATE_TRANSFER: return private_transfer(&s);
	case BACNET_USVC_TEXT_MESSAGE: return text_message(&s);
	case BACNET_USVC_COV_NOTIFICATION: return cov_notification(&s);
	case BACNET_USVC_COV_NOTIFICATION_MULTIPLE: return cov_notification_multiple(&s);
	case BACNET_USVC_EVENT_NOTIFICATION: return event_notification(&s);
	default:
		return 0;
	}
}

/* 15.5.1.3: ReadProperty-ACK: object [0], property [1], index [2] OPT, propertyValue [3] */
static int read_property_ack(struct sp *s)
{
	struct bms_target *t = object_property(s);

	if (t == NULL || value_into(s, 3, t) != 0)
		return -1;
	return finish(s);
}

/* 15.7.1.3: SEQUENCE OF ReadAccessResult { [0] object, [1] listOfResults OPT: SEQUENCE OF
 * { [2] property, [3] index OPT, CHOICE { [4] propertyValue, [5] propertyAccessError } } } */
static int read_property_multiple_ack(struct sp *s)
{
	while (!at_end(s)) {
		uint16_t type;
		uint32_t inst;

		if (ctx_objid(s, 0, &type, &inst) != 0)
			return -1;
		if (!next_is(s, CTX, 1, OPEN))
			continue;
		if (open_tag(s, 1) != 0)
			return -1;
		while (!next_is(s, CTX, 1, CLOSE)) {
			struct bms_target *t = target(s, type, inst);
			uint64_t v;
			if (prop_ref(s, 2, 3, t) != 0)
				return -1;
			if (next_is(s, CTX, 5, OPEN)) {
				if (open_tag(s, 5) != 0 || app_uint(s, BACNET_APP_ENUMERATED, UINT16_MAX, &v) != 0 ||
				    app_uint(s, BACNET_APP_ENUMERATED, UINT16_MAX, &v) != 0 || close_tag(s, 5) != 0)
					return -1;
			} else if (value_into(s, 4, t) != 0) {
				return -1;
			}
		}
		if (close_tag(s, 1) != 0)
			return -1;
	}
	return 0;
}

/* 14.1.1.3 AtomicReadFile-ACK: endOfFile BOOLEAN, CHOICE { streamAccess [0] { start INTEGER,
 * fileData OCTET STRING }, recordAccess [1] { start INTEGER, returnedRecordCount Unsigned,
 * fileRecordData SEQUENCE OF OCTET STRING } } */
static int atomic_read_file_ack(struct sp *s)
{
	struct bacnet_tag t;
	struct bms_target scratch;
	uint64_t count;
	uint8_t form;

	if (take(s, APP, BACNET_APP_BOOLEAN, PRIM, &t) != 0)
		return -1;
	form = next_is(s, CTX, 1, OPEN) ? 1 : 0;
	if (open_tag(s, form) != 0 || file_start(s, &scratch, false) != 0)
		return -1;
	if (form == 0) {
		if (take(s, APP, BACNET_APP_OCTET_STRING, PRIM, &t) != 0)
			return -1;
	} else {
		if (app_uint(s, BACNET_APP_UNSIGNED, UINT32_MAX, &count) != 0)
			return -1;
		for (uint64_t i = 0; i < count; i++)
			if (take(s, APP, BACNET_APP_OCTET_STRING, PRIM, &t) != 0)
				return -1;
		if (!next_is(s, CTX, 1, CLOSE))
			return fail(s, BACNET_AN_SERVICE_VALUE_RANGE);
	}
	if (close_tag(s, form) != 0)
		return -1;
	return finish(s);
}

/* 14.2.1.3 AtomicWriteFile-ACK: CHOICE { fileStartPosition [0] INTEGER, fileStartRecord [1] INTEGER } */
static int atomic_write_file_ack(struct sp *s)
{
	struct bacnet_tag t;
	uint8_t form = next_is(s, CTX, 1, PRIM) ? 1 : 0;

	if (take(s, CTX, form, PRIM, &t) != 0)
		return -1;
	if (t.len < 1 || t.len > 8)
		return fail(s, BACNET_AN_TAG_BAD_LENGTH);
	return finish(s);
}

int bacnet_svc_complex_ack(struct bms_request *r, uint8_t service, const uint8_t *p, size_t n)
{
	struct sp s = { .r = r };
	uint16_t type;
	uint32_t inst;

	bms_cursor_init(&s.c, p, n);
	switch (service) {
	case BACNET_SVC_READ_PROPERTY: return read_property_ack(&s);
	case BACNET_SVC_READ_PROPERTY_MULTIPLE: return read_property_multiple_ack(&s);
	case BACNET_SVC_READ_RANGE: /* object [0], property [1], index [2] OPT, then the items */
		if (object_property(&s) == NULL)
			return -1;
		skip_rest(&s);
		return 0;
	case BACNET_SVC_ATOMIC_READ_FILE: return atomic_read_file_ack(&s);
	case BACNET_SVC_ATOMIC_WRITE_FILE: return atomic_write_file_ack(&s);
	case BACNET_SVC_CREATE_OBJECT: /* 15.3.1.3: the new object's identifier */
		if (app_objid(&s, &type, &inst) != 0)
			return -1;
		(void)target(&s, type, inst);
		return finish(&s);
	case BACNET_SVC_CONFIRMED_PRIVATE_TRANSFER: /* 16.2.1.3: same shape as the request */
		return private_transfer(&s);
	default:
		return 0;
	}
}

/* 18, 21: Error ::= SEQUENCE { error-class ENUMERATED, error-code ENUMERATED }. Services with
 * their own error type (CreateObject, WPM, list elements, private transfer, ...) wrap it in
 * [0] and append details, which are tag-checked but not decoded. */
int bacnet_svc_error(struct bms_request *r, uint8_t service, const uint8_t *p, size_t n)
{
	struct bacnet_fields *f = &r->raw.bacnet;
	struct sp s = { .r = r };
	bool wrapped;
	uint64_t cls, code;

	(void)service;
	bms_cursor_init(&s.c, p, n);
	wrapped = next_is(&s, CTX, 0, OPEN);
	if (wrapped && open_tag(&s, 0) != 0)
		return -1;
	if (app_uint(&s, BACNET_APP_ENUMERATED, UINT16_MAX, &cls) != 0 ||
	    app_uint(&s, BACNET_APP_ENUMERATED, UINT16_MAX, &code) != 0)
		return -1;
	f->error_class = (uint32_t)cls;
	f->error_code = (uint32_t)code;
	if (wrapped) {
		if (close_tag(&s, 0) != 0)
			return -1;
		skip_rest(&s);
	}
	return finish(&s);
}
