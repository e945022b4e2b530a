/* parsers/bacnet_encode.c: the gateway's deny replies: Error, Reject and Abort PDUs (pure).
 *
 * Reply layout:
 *  off size field
 *  0   4    BVLC: 0x81, 0x0A Original-Unicast-NPDU, length (2)
 *  4   2    NPDU: version 1, control (priority of the request; 0x20 when routed back)
 *  6   2+1+DLEN+1  DNET = request's SNET, DLEN/DADR = SLEN/SADR, hop count 255 (only if routed)
 *  +   ..   APDU: Error  0x50 invoke service error-parameters
 *                 Reject 0x60 invoke reason
 *                 Abort  0x71 invoke reason (SRV = 1: sent by the server side)
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "parsers/bacnet.h"
#include "parsers/bacnet_tag.h"

struct writer {
	uint8_t *buf; /* borrowed */
	size_t cap;
	size_t off;
	bool full;
};

static void put(struct writer *w, uint8_t b)
{
	if (w->off >= w->cap) {
		w->full = true;
		return;
	}
	w->buf[w->off++] = b;
}

static unsigned octets(uint32_t v)
{
	return v <= 0xFF ? 1 : v <= 0xFFFF ? 2 : v <= 0xFFFFFF ? 3 : 4;
}

/* 20.2.1: tag octet for tag numbers 0..14 with a length 0..4 (all this file writes). */
static void put_uint_tagged(struct writer *w, uint8_t number, bool context, uint32_t v)
{
	unsigned n = octets(v);

	put(w, (uint8_t)((number << 4) | (context ? 0x08 : 0) | n));
	for (unsigned i = n; i-- > 0;)
		put(w, (uint8_t)(v >> (8 * i)));
}

static void put_open(struct writer *w, uint8_t number)
{
	put(w, (uint8_t)((number << 4) | 0x0E));
}

static void put_close(struct writer *w, uint8_t number)
{
	put(w, (uint8_t)((number << 4) | 0x0F));
}

static bool is_confirmed_request(const struct bms_request *req)
{
	const struct bacnet_fields *f = &req->raw.bacnet;

	return req->proto == BMS_PROTO_BACNET && f->has_apdu && f->pdu_type == BACNET_PDU_CONFIRMED &&
	       f->has_invoke_id && f->has_service;
}

/* BVLC and NPDU of a reply; the BVLC length is patched by finish(). */
static void put_header(struct writer *w, const struct bms_request *req)
{
	const struct bacnet_fields *f = &req->raw.bacnet;

	put(w, 0x81);
	put(w, BACNET_BVLC_ORIGINAL_UNICAST);
	put(w, 0);
	put(w, 0);
	put(w, 1);
	/* 6.2.2: a reply to a request that a router brought from SNET goes back to SNET/SADR. */
	if (f->has_snet) {
		put(w, (uint8_t)(0x20 | (f->npdu_control & 0x03)));
		put(w, (uint8_t)(f->snet >> 8));
		put(w, (uint8_t)f->snet);
		put(w, f->sadr_len);
		for (unsigned i = 0; i < f->sadr_len && i < BACNET_MAX_MAC; i++)
			put(w, f->sadr[i]);
		put(w, 255);
	} else {
		put(w, (uint8_t)(f->npdu_control & 0x03));
	}
}

static int finish(struct writer *w, size_t *out_len)
{
	if (w->full)
		return -ENOSPC;
	w->buf[2] = (uint8_t)(w->off >> 8);
	w->buf[3] = (uint8_t)w->off;
	*out_len = w->off;
	return 0;
}

int bacnet_encode_error(const struct bms_request *req, uint32_t error_class, uint32_t error_code,
			uint8_t *buf, size_t cap, size_t *out_len)
{
	const struct bacnet_fields *f = &req->raw.bacnet;
	struct writer w = { .buf = buf, .cap = cap };

	if (!is_confirmed_request(req) || error_class > 0xFFFF || error_code > 0xFFFF)
		return -EINVAL;
	put_header(&w, req);
	put(&w, BACNET_PDU_ERROR << 4);
	put(&w, f->invoke_id);
	put(&w, f->service);
	switch (f->service) {
	case BACNET_SVC_CREATE_OBJECT:
	case BACNET_SVC_ADD_LIST_ELEMENT:
	case BACNET_SVC_REMOVE_LIST_ELEMENT:
		/* 15.3.1.3.1 / 15.1.1.3.1: errorType [0], firstFailedElementNumber [1] (0: not an element) */
		put_open(&w, 0);
		put_uint_tagged(&w, BACNET_APP_ENUMERATED, false, error_class);
		put_uint_tagged(&w, BACNET_APP_ENUMERATED, false, error_code);
		put_close(&w, 0);
		put_uint_tagged(&w, 1, true, 0);
		break;
	case BACNET_SVC_WRITE_PROPERTY_MULTIPLE: {
		/* 15.10.1.3.1: errorType [0], firstFailedWriteAttempt [1] BACnetObjectPropertyReference */
		const struct bms_target *t = &req->targets[0];
		/* A segment's parameters are not decoded: no object to name. Reject/Abort instead. */
		if (req->ntargets == 0)
			return -ENOTSUP;
		put_open(&w, 0);
		put_uint_tagged(&w, BACNET_APP_ENUMERATED, false, error_class);
		put_uint_tagged(&w, BACNET_APP_ENUMERATED, false, error_code);
		put_close(&w, 0);
		put_open(&w, 1);
		put(&w, 0x0C);
		{
			uint32_t id = ((uint32_t)t->object_type << 22) | (t->instance & BACNET_MAX_INSTANCE);
			for (int i = 3; i >= 0; i--)
				put(&w, (uint8_t)(id >> (8 * i)));
		}
		put_uint_tagged(&w, 1, true, t->property);
		if (t->array_index != BMS_NO_INDEX)
			put_uint_tagged(&w, 2, true, t->array_index);
		put_close(&w, 1);
		break;
	}
	case BACNET_SVC_CONFIRMED_PRIVATE_TRANSFER:
		/* 16.2.1.3.2: errorType [0], vendorID [1], serviceNumber [2] */
		put_open(&w, 0);
		put_uint_tagged(&w, BACNET_APP_ENUMERATED, false, error_class);
		put_uint_tagged(&w, BACNET_APP_ENUMERATED, false, error_code);
		put_close(&w, 0);
		put_uint_tagged(&w, 1, true, f->vendor_id);
		put_uint_tagged(&w, 2, true, f->service_number);
		break;
	case BACNET_SVC_VT_CLOSE:
		/* 17.2.1.3.1: errorType [0], listOfVTSessionIdentifiers [1] OPTIONAL */
		put_open(&w, 0);
		put_uint_tagged(&w, BACNET_APP_ENUMERATED, false, error_class);
		put_uint_tagged(&w, BACNET_APP_ENUMERATED, false, error_code);
		put_close(&w, 0);
		break;
	case BACNET_SVC_SUBSCRIBE_COV_PROPERTY_MULTIPLE:
		/* Its error names the first failed subscription, which this decoder does not keep:
		 * the caller answers with Reject or Abort instead. */
		return -ENOTSUP;
	default:
		put_uint_tagged(&w, BACNET_APP_ENUMERATED, false, error_class);
		put_uint_tagged(&w, BACNET_APP_ENUMERATED, false, error_code);
		break;
	}
	return finish(&w, out_len);
}

int bacnet_encode_reject(const struct bms_request *req, uint8_t reason, uint8_t *buf, size_t cap,
			 size_t *out_len)
{
	struct writer w = { .buf = buf, .cap = cap };

	if (!is_confirmed_request(req))
		return -EINVAL;
	put_header(&w, req);
	put(&w, BACNET_PDU_REJECT << 4);
	put(&w, req->raw.bacnet.invoke_id);
	put(&w, reason);
	return finish(&w, out_len);
}

int bacnet_encode_abort(const struct bms_request *req, uint8_t reason, uint8_t *buf, size_t cap,
			size_t *out_len)
{
	struct writer w = { .buf = buf, .cap = cap };

	if (!is_confirmed_request(req))
		return -EINVAL;
	put_header(&w, req);
	put(&w, (BACNET_PDU_ABORT << 4) | 0x01);
	put(&w, req->raw.bacnet.invoke_id);
	put(&w, reason);
	return finish(&w, out_len);
}

/* ---- requests, as a BACnet client sends them (for `policy explain`, tests, peers) ----
 *
 *  BVLC Original-Unicast-NPDU; NPDU version 1, expecting reply (0x04);
 *  APDU confirmed request (20.1.2): 0x00, max segments/max APDU 0x05 (1476), invoke id, service;
 *  ReadProperty (15.5.1.1):  [0] objectIdentifier, [1] propertyIdentifier, [2] arrayIndex OPTIONAL
 *  WriteProperty (15.9.1.1): the same, then [3] propertyValue (opening/closing), [4] priority OPTIONAL
 */
static void put_property_ref(struct writer *w, const struct bacnet_property_ref *ref)
{
	uint32_t id = ((uint32_t)ref->object_type << 22) | (ref->instance & BACNET_MAX_INSTANCE);
	put(w, 0x0C); /* [0], 4 octets */
	for (int i = 3; i >= 0; i--)
		put(w, (uint8_t)(id >> (8 * i)));
	put_uint_tagged(w, 1, true, ref->property);
	if (ref->array_index != BMS_NO_INDEX)
		put_uint_tagged(w, 2, true, ref->array_index);
}

static void put_request_header(struct writer *w, uint8_t invoke_id, uint8_t service)
{
	put(w, 0x81);
	put(w, BACNET_BVLC_ORIGINAL_UNICAST);
	put(w, 0);
	put(w, 0);
	put(w, 1);
	put(w, 0x04);
	put(w, BACNET_PDU_CONFIRMED << 4);
	put(w, 0x05);
	put(w, invoke_id);
	put(w, service);
}

static bool ref_ok(const struct bacnet_property_ref *ref)
{
	return ref->object_type < 1024 && ref->instance <= BACNET_MAX_INSTANCE && ref->property <= BACNET_MAX_PROPERTY;
}

int bacnet_encode_read_property(uint8_t invoke_id, const struct bacnet_property_ref *ref, uint8_t *buf, size_t cap,
				size_t *out_len)
{
	struct writer w = { .buf = buf, .cap = cap };

	if (!ref_ok(ref))
		return -EINVAL;
	put_request_header(&w, invoke_id, BACNET_SVC_READ_PROPERTY);
	put_property_ref(&w, ref);
	return finish(&w, out_len);
}

/* 20.2.3-20.2.11: one application-tagged primitive value. */
static int put_value(struct writer *w, const struct bms_value *v)
{
	switch (v->type) {
	case BMS_VAL_NULL:
		put(w, BACNET_APP_NULL << 4);
		return 0;
	case BMS_VAL_BOOL:
		put(w, (uint8_t)(BACNET_APP_BOOLEAN << 4 | (v->b ? 1 : 0))); /* 20.2.3: the value is the length */
		return 0;
	case BMS_VAL_UNSIGNED:
	case BMS_VAL_ENUM:
		if (v->u > UINT32_MAX)
			return -EINVAL;
		put_uint_tagged(w, v->type == BMS_VAL_ENUM ? BACNET_APP_ENUMERATED : BACNET_APP_UNSIGNED, false,
				(uint32_t)v->u);
		return 0;
	case BMS_VAL_SIGNED: {
		if (v->i < INT32_MIN || v->i > INT32_MAX)
			return -EINVAL;
		/* 20.2.5: two's complement in the fewest octets that hold it */
		int32_t x = (int32_t)v->i;
		unsigned n = (x >= -128 && x <= 127) ? 1 : (x >= -32768 && x <= 32767) ? 2
			   : (x >= -8388608 && x <= 8388607) ? 3 : 4;
		put(w, (uint8_t)(BACNET_APP_SIGNED << 4 | n));
		for (unsigned i = n; i-- > 0;)
			put(w, (uint8_t)((uint32_t)x >> (8 * i)));
		return 0;
	}
	case BMS_VAL_REAL: {
		float f = (float)v->d;
		uint32_t u;
		memcpy(&u, &f, 4);
		put(w, (uint8_t)(BACNET_APP_REAL << 4 | 4));
		for (int i = 3; i >= 0; i--)
			put(w, (uint8_t)(u >> (8 * i)));
		return 0;
	}
	default:
		return -EINVAL;
	}
}

int bacnet_encode_write_property(uint8_t invoke_id, const struct bacnet_property_ref *ref, const struct bms_value *v,
				 uint8_t priority, uint8_t *buf, size_t cap, size_t *out_len)
{
	struct writer w = { .buf = buf, .cap = cap };

	/* Faithful, not judging: a priority over 16 is written as given, for the decoder to flag. */
	if (!ref_ok(ref))
		return -EINVAL;
	put_request_header(&w, invoke_id, BACNET_SVC_WRITE_PROPERTY);
	put_property_ref(&w, ref);
	put_open(&w, 3);
	if (put_value(&w, v) < 0)
		return -EINVAL;
	put_close(&w, 3);
	if (priority)
		put_uint_tagged(&w, 4, true, priority);
	return finish(&w, out_len);
}
