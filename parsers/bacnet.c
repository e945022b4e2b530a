/* parsers/bacnet.c: BACnet/IP datagram decoding: BVLC, NPDU, APDU header (ASHRAE 135).
 *
 * BVLC (Annex J.2), all big-endian:
 *  off size field
 *  0   1    type: 0x81 = BACnet/IP
 *  1   1    function 0x00..0x0C
 *  2   2    length of the whole BVLL message including these 4 octets (= UDP payload)
 *  4   ..   per function:
 *           0x00 Result               2  result code (0x0000, 0x0010 .. 0x0060)
 *           0x01 Write-BDT            10*N  BDT entries: IPv4(4) port(2) mask(4)
 *           0x02 Read-BDT             0
 *           0x03 Read-BDT-Ack         10*N  BDT entries
 *           0x04 Forwarded-NPDU       6  original source IPv4(4) port(2), then the NPDU
 *           0x05 Register-FD          2  time-to-live (seconds)
 *           0x06 Read-FDT             0
 *           0x07 Read-FDT-Ack         10*N  FDT entries: IPv4(4) port(2) TTL(2) remaining(2)
 *           0x08 Delete-FDT-Entry     6  IPv4(4) port(2)
 *           0x09 Distribute-Broadcast-To-Network, 0x0A Original-Unicast-NPDU,
 *           0x0B Original-Broadcast-NPDU: the NPDU
 *           0x0C Secure-BVLL          security wrapper (clause 24), not decoded
 *
 * NPDU (clause 6.2): NPCI, then a network message or an APDU
 *  off size field
 *  0   1    version: 1
 *  1   1    control: b7 network message, b6 reserved, b5 DNET present, b4 reserved,
 *           b3 SNET present, b2 expecting reply, b1..0 priority
 *  2   2    DNET (b5)        1..65535 (65535 = global broadcast)
 *  +   1    DLEN (b5)        0 = broadcast on DNET; else DADR length (<= 8)
 *  +   DLEN DADR
 *  +   2    SNET (b3)        1..65534
 *  +   1    SLEN (b3)        1..8
 *  +   SLEN SADR
 *  +   1    hop count (b5)
 *  +   1    message type (b7); 0x80..0xFF followed by a 2-octet vendor id
 *  +   ..   message parameters (b7) or APDU
 *
 * APDU header (clause 20.1), first octet: b7..4 PDU type, b3..0 flags
 *  type 0 Confirmed-Request: [0] SEG b3, MOR b2, SA b1; [1] b6..4 max segments, b3..0 max APDU;
 *         [2] invoke id; if SEG: [3] sequence number, [4] proposed window (1..127); service; params
 *  type 1 Unconfirmed-Request: [1] service; params
 *  type 2 SimpleACK: [1] invoke id, [2] service
 *  type 3 ComplexACK: [0] SEG b3, MOR b2; [1] invoke id; if SEG: sequence, window; service; params
 *  type 4 SegmentACK: [0] NAK b1, SRV b0; [1] invoke id, [2] sequence number, [3] actual window
 *  type 5 Error: [1] invoke id, [2] error choice (service), then error parameters
 *  type 6 Reject: [1] invoke id, [2] reject reason
 *  type 7 Abort: [0] SRV b0; [1] invoke id, [2] abort reason
 */
#include <string.h>

#include "parsers/bacnet.h"
#include "parsers/bacnet_services.h"
#include "parsers/bacnet_tag.h"

static int flag(struct bms_request *r, unsigned bit)
{
	r->anomalies |= BACNET_AN(bit);
	return -1;
}

/* Network layer message parameters (clause 6.4): sizes checked so that nothing undecoded rides along. */
static int decode_net_msg(struct bms_request *r, struct bms_cursor *c)
{
	struct bacnet_fields *f = &r->raw.bacnet;
	size_t n = bms_cursor_left(c);
	uint8_t ports;

	switch (f->net_msg_type) {
	case 0x00: /* Who-Is-Router-To-Network: optional DNET */
		if (n != 0 && n != 2)
			return flag(r, BACNET_AN_NPDU_MESSAGE_TRUNCATED);
		r->op = BMS_OP_DISCOVERY;
		return 0;
	case 0x01: /* I-Am-Router-To-Network: list of DNETs */
	case 0x04: /* Router-Busy-To-Network */
	case 0x05: /* Router-Available-To-Network */
		if (n % 2 != 0 || (f->net_msg_type == 0x01 && n == 0))
			return flag(r, BACNET_AN_NPDU_MESSAGE_TRUNCATED);
		r->op = f->net_msg_type == 0x01 ? BMS_OP_DISCOVERY : BMS_OP_MANAGEMENT;
		r->dir = f->net_msg_type == 0x01 ? BMS_DIR_RESPONSE : BMS_DIR_REQUEST;
		return 0;
	case 0x02: /* I-Could-Be-Router-To-Network: DNET, performance index */
	case 0x03: /* Reject-Message-To-Network: reason, DNET */
	case 0x08: /* Establish-Connection-To-Network: DNET, termination time */
	case 0x13: /* Network-Number-Is: network number, flag */
		if (n != 3)
			return flag(r, BACNET_AN_NPDU_MESSAGE_TRUNCATED);
		r->op = (f->net_msg_type == 0x02 || f->net_msg_type == 0x13) ? BMS_OP_DISCOVERY : BMS_OP_MANAGEMENT;
		r->dir = f->net_msg_type == 0x08 ? BMS_DIR_REQUEST : BMS_DIR_RESPONSE;
		return 0;
	case 0x06: /* Initialize-Routing-Table: number of ports, then per port DNET, id, info length, info */
	case 0x07: /* Initialize-Routing-Table-Ack */
		r->op = BMS_OP_MANAGEMENT;
		r->dir = f->net_msg_type == 0x07 ? BMS_DIR_RESPONSE : BMS_DIR_REQUEST;
		if (n == 0 && f->net_msg_type == 0x07)
			return 0;
		if (bms_cursor_u8(c, &ports) != 0)
			return flag(r, BACNET_AN_NPDU_MESSAGE_TRUNCATED);
		for (unsigned i = 0; i < ports; i++) {
			uint8_t infolen;
			if (bms_cursor_skip(c, 3) != 0 || bms_cursor_u8(c, &infolen) != 0 ||
			    bms_cursor_skip(c, infolen) != 0)
				return flag(r, BACNET_AN_NPDU_MESSAGE_TRUNCATED);
		}
		if (bms_cursor_left(c) != 0)
			return flag(r, BACNET_AN_NPDU_MESSAGE_TRUNCATED);
		return 0;
	case 0x09: /* Disconnect-Connection-To-Network: DNET */
		if (n != 2)
			return flag(r, BACNET_AN_NPDU_MESSAGE_TRUNCATED);
		r->op = BMS_OP_MANAGEMENT;
		return 0;
	case 0x12: /* What-Is-Network-Number */
		if (n != 0)
			return flag(r, BACNET_AN_NPDU_MESSAGE_TRUNCATED);
		r->op = BMS_OP_DISCOVERY;
		return 0;
	default:
		break;
	}
	if (f->net_msg_type >= 0x0A && f->net_msg_type <= 0x11) {
		/* Network security messages (clause 24): opaque, but they rekey and challenge. */
		r->op = BMS_OP_MANAGEMENT;
		r->dir = f->net_msg_type == 0x0C ? BMS_DIR_RESPONSE : BMS_DIR_REQUEST;
		return 0;
	}
	if (f->net_msg_type >= 0x80) {
		r->op = BMS_OP_PRIVATE;
		return 0;
	}
	r->op = BMS_OP_UNKNOWN;
	flag(r, BACNET_AN_NPDU_UNKNOWN_MESSAGE);
	return 0;
}

static int read_addr(struct bms_request *r, struct bms_cursor *c, uint16_t *net, uint8_t *alen,
		     uint8_t addr[BACNET_MAX_MAC])
{
	const uint8_t *p;

	if (bms_cursor_u16be(c, net) != 0 || bms_cursor_u8(c, alen) != 0)
		return flag(r, BACNET_AN_NPDU_TRUNCATED);
	if (*alen > BACNET_MAX_MAC) {
		*alen = 0; /* never a length beyond the array that holds the address */
		return 1;  /* the caller names the field */
	}
	if (bms_cursor_bytes(c, *alen, &p) != 0)
		return flag(r, BACNET_AN_NPDU_TRUNCATED);
	memcpy(addr, p, *alen);
	return 0;
}

/* APDU header; then the service parameters. */
static int decode_apdu(struct bms_request *r, struct bms_cursor *c)
{
	struct bacnet_fields *f = &r->raw.bacnet;
	uint8_t b0, b1;
	const uint8_t *params;
	size_t nparams;
	int rc;

	if (bms_cursor_u8(c, &b0) != 0)
		return flag(r, BACNET_AN_APDU_MISSING);
	f->has_apdu = 1;
	f->pdu_type = b0 >> 4;
	f->pdu_flags = b0 & 0x0F;
	r->dir = f->pdu_type <= BACNET_PDU_UNCONFIRMED ? BMS_DIR_REQUEST : BMS_DIR_RESPONSE;

	switch (f->pdu_type) {
	case BACNET_PDU_CONFIRMED:
		if (f->pdu_flags & 0x01)
			flag(r, BACNET_AN_APDU_RESERVED_BITS);
		if (bms_cursor_u8(c, &b1) != 0 || bms_cursor_u8(c, &f->invoke_id) != 0)
			return flag(r, BACNET_AN_APDU_TRUNCATED);
		f->has_invoke_id = 1;
		if (b1 & 0x80)
			flag(r, BACNET_AN_APDU_RESERVED_BITS);
		f->max_segs = (b1 >> 4) & 0x07;
		f->max_apdu = b1 & 0x0F;
		/* 20.1.2.5: codes 6..15 are reserved. */
		if (f->max_apdu > 5)
			flag(r, BACNET_AN_APDU_BAD_MAX_APDU);
		break;
	case BACNET_PDU_COMPLEX_ACK:
		if (f->pdu_flags & 0x03)
			flag(r, BACNET_AN_APDU_RESERVED_BITS);
		if (bms_cursor_u8(c, &f->invoke_id) != 0)
			return flag(r, BACNET_AN_APDU_TRUNCATED);
		f->has_invoke_id = 1;
		break;
	case BACNET_PDU_UNCONFIRMED:
		if (f->pdu_flags != 0)
			flag(r, BACNET_AN_APDU_RESERVED_BITS);
		break;
	case BACNET_PDU_SIMPLE_ACK:
	case BACNET_PDU_ERROR:
	case BACNET_PDU_REJECT:
		if (f->pdu_flags != 0)
			flag(r, BACNET_AN_APDU_RESERVED_BITS);
		if (bms_cursor_u8(c, &f->invoke_id) != 0)
			return flag(r, BACNET_AN_APDU_TRUNCATED);
		f->has_invoke_id = 1;
		break;
	case BACNET_PDU_SEGMENT_ACK:
	case BACNET_PDU_ABORT:
		if (f->pdu_flags & (f->pdu_type == BACNET_PDU_ABORT ? 0x0E : 0x0C))
			flag(r, BACNET_AN_APDU_RESERVED_BITS);
		if (bms_cursor_u8(c, &f->invoke_id) != 0)
			return flag(r, BACNET_AN_APDU_TRUNCATED);
		f->has_invoke_id = 1;
		break;
	default:
		return flag(r, BACNET_AN_APDU_BAD_TYPE);
	}

	/* Segmentation (20.1.2.1..20.1.2.4): SEG announces sequence number and window size. */
	if (f->pdu_type == BACNET_PDU_CONFIRMED || f->pdu_type == BACNET_PDU_COMPLEX_ACK) {
		if (f->pdu_flags & 0x08) {
			f->segmented = 1;
			if (bms_cursor_u8(c, &f->sequence_number) != 0 || bms_cursor_u8(c, &f->window_size) != 0)
				return flag(r, BACNET_AN_APDU_TRUNCATED);
			/* 20.1.2.8: "The range of permitted values for the proposed-window-size is 1 to 127." */
			if (f->window_size == 0 || f->window_size > 127)
				flag(r, BACNET_AN_APDU_BAD_WINDOW_SIZE);
			flag(r, BACNET_AN_APDU_SEGMENTED);
		} else if (f->pdu_flags & 0x04) {
			flag(r, BACNET_AN_APDU_MOR_WITHOUT_SEG);
		}
	}

	switch (f->pdu_type) {
	case BACNET_PDU_SEGMENT_ACK:
		if (bms_cursor_u8(c, &f->sequence_number) != 0 || bms_cursor_u8(c, &f->window_size) != 0)
			return flag(r, BACNET_AN_APDU_TRUNCATED);
		if (f->window_size == 0 || f->window_size > 127)
			flag(r, BACNET_AN_APDU_BAD_WINDOW_SIZE);
		if (bms_cursor_left(c) != 0)
			flag(r, BACNET_AN_APDU_TRAILING_DATA);
		return 0;
	case BACNET_PDU_REJECT:
	case BACNET_PDU_ABORT:
		if (bms_cursor_u8(c, &f->reason) != 0)
			return flag(r, BACNET_AN_APDU_TRUNCATED);
		f->has_reason = 1;
		/* 18.8 / 18.9: Reject reasons 0..9 and Abort reasons 0..11 are defined, 64..255 proprietary. */
		if (f->reason < 64 && f->reason > (f->pdu_type == BACNET_PDU_REJECT ? 9 : 11))
			flag(r, BACNET_AN_UNKNOWN_REASON);
		if (bms_cursor_left(c) != 0)
			flag(r, BACNET_AN_APDU_TRAILING_DATA);
		return 0;
	default:
		break;
	}

	if (bms_cursor_u8(c, &f->service) != 0)
		return flag(r, BACNET_AN_APDU_TRUNCATED);
	f->has_service = 1;
	if (f->pdu_type == BACNET_PDU_UNCONFIRMED) {
		r->op = bacnet_unconfirmed_service_op(f->service);
		if (f->service >= BACNET_USVC_COUNT)
			flag(r, BACNET_AN_UNKNOWN_SERVICE);
	} else {
		r->op = bacnet_confirmed_service_op(f->service);
		if (f->service >= BACNET_SVC_CONFIRMED_COUNT)
			flag(r, BACNET_AN_UNKNOWN_SERVICE);
	}
	nparams = bms_cursor_left(c);
	if (bms_cursor_bytes(c, nparams, &params) != 0)
		return flag(r, BACNET_AN_APDU_TRUNCATED);

	if (f->pdu_type == BACNET_PDU_SIMPLE_ACK) {
		if (nparams != 0)
			flag(r, BACNET_AN_APDU_TRAILING_DATA);
		return 0;
	}
	/* A segment holds a slice of the parameters, cut anywhere, even inside a tag: they are
	 * decoded by whoever reassembles the segments, not here. */
	if (f->segmented)
		return 0;
	rc = bacnet_tag_validate(params, nparams);
	if (rc != 0)
		return flag(r, BACNET_TAG_ERR_BIT(rc));
	switch (f->pdu_type) {
	case BACNET_PDU_CONFIRMED: return bacnet_svc_confirmed(r, f->service, params, nparams);
	case BACNET_PDU_UNCONFIRMED: return bacnet_svc_unconfirmed(r, f->service, params, nparams);
	case BACNET_PDU_COMPLEX_ACK: return bacnet_svc_complex_ack(r, f->service, params, nparams);
	case BACNET_PDU_ERROR: return bacnet_svc_error(r, f->service, params, nparams);
	}
	return 0;
}

static int decode_npdu(struct bms_request *r, struct bms_cursor *c)
{
	struct bacnet_fields *f = &r->raw.bacnet;
	int rc;

	if (bms_cursor_left(c) > BACNET_MAX_NPDU)
		flag(r, BACNET_AN_BVLC_TOO_LONG);
	if (bms_cursor_u8(c, &f->npdu_version) != 0 || bms_cursor_u8(c, &f->npdu_control) != 0)
		return flag(r, BACNET_AN_NPDU_TRUNCATED);
	f->has_npdu = 1;
	/* 6.2.1: "version ... shall be X'01'". Anything else is a protocol we do not know. */
	if (f->npdu_version != 1)
		return flag(r, BACNET_AN_NPDU_BAD_VERSION);
	/* 6.2.2: bits 6 and 4 "Reserved. Shall be zero." */
	if (f->npdu_control & 0x50)
		flag(r, BACNET_AN_NPDU_RESERVED_BITS);
	if (f->npdu_control & 0x20) {
		f->has_dnet = 1;
		rc = read_addr(r, c, &f->dnet, &f->dadr_len, f->dadr);
		if (rc < 0)
			return rc;
		if (rc > 0)
			return flag(r, BACNET_AN_NPDU_BAD_DLEN);
		if (f->dnet == 0)
			flag(r, BACNET_AN_NPDU_BAD_DNET);
		/* A global broadcast (DNET 0xFFFF) reaches every station: it cannot name one. */
		if (f->dnet == 0xFFFF && f->dadr_len != 0)
			flag(r, BACNET_AN_NPDU_BAD_DLEN);
	}
	if (f->npdu_control & 0x08) {
		f->has_snet = 1;
		rc = read_addr(r, c, &f->snet, &f->sadr_len, f->sadr);
		if (rc < 0)
			return rc;
		/* 6.2.2: "SLEN = 0 Invalid"; SNET names one network, never the broadcast 0xFFFF. */
		if (rc > 0 || f->sadr_len == 0)
			return flag(r, BACNET_AN_NPDU_BAD_SLEN);
		if (f->snet == 0 || f->snet == 0xFFFF)
			flag(r, BACNET_AN_NPDU_BAD_SNET);
	}
	if (f->has_dnet) {
		if (bms_cursor_u8(c, &f->hop_count) != 0)
			return flag(r, BACNET_AN_NPDU_TRUNCATED);
		if (f->hop_count == 0)
			flag(r, BACNET_AN_NPDU_ZERO_HOP_COUNT);
	}
	if (f->npdu_control & 0x80) {
		f->has_net_msg = 1;
		if (bms_cursor_u8(c, &f->net_msg_type) != 0)
			return flag(r, BACNET_AN_NPDU_TRUNCATED);
		if (f->net_msg_type >= 0x80 && bms_cursor_u16be(c, &f->net_msg_vendor) != 0)
			return flag(r, BACNET_AN_NPDU_TRUNCATED);
		return decode_net_msg(r, c);
	}
	return decode_apdu(r, c);
}

/* The BVLC functions that carry no NPDU: fixed sizes and entry lists (Annex J.2). */
static int decode_bvll_only(struct bms_request *r, struct bms_cursor *c)
{
	struct bacnet_fields *f = &r->raw.bacnet;
	size_t n = bms_cursor_left(c);
	const uint8_t *p;

	switch (f->bvlc_function) {
	case BACNET_BVLC_RESULT:
		r->dir = BMS_DIR_RESPONSE;
		if (n != 2 || bms_cursor_u16be(c, &f->bvlc_result) != 0)
			return flag(r, BACNET_AN_BVLC_BAD_LENGTH);
		/* J.2.1.1: 0x0000 successful completion, 0x0010..0x0060 the NAK of each function. */
		if (f->bvlc_result & 0xFF0F || f->bvlc_result > 0x0060)
			return flag(r, BACNET_AN_BVLC_BAD_RESULT_CODE);
		return 0;
	case BACNET_BVLC_WRITE_BDT:
	case BACNET_BVLC_READ_BDT_ACK:
		r->op = f->bvlc_function == BACNET_BVLC_WRITE_BDT ? BMS_OP_MANAGEMENT : BMS_OP_READ;
		r->dir = f->bvlc_function == BACNET_BVLC_WRITE_BDT ? BMS_DIR_REQUEST : BMS_DIR_RESPONSE;
		/* J.2.2: each BDT entry is a 6-octet B/IP address and a 4-octet broadcast mask. */
		if (n % 10 != 0)
			return flag(r, BACNET_AN_BVLC_BDT_ENTRY_LENGTH);
		f->bvlc_entries = (uint16_t)(n / 10);
		return 0;
	case BACNET_BVLC_READ_FDT_ACK:
		r->op = BMS_OP_READ;
		r->dir = BMS_DIR_RESPONSE;
		/* J.2.8: each FDT entry: B/IP address (6), time-to-live (2), time remaining (2). */
		if (n % 10 != 0)
			return flag(r, BACNET_AN_BVLC_FDT_ENTRY_LENGTH);
		f->bvlc_entries = (uint16_t)(n / 10);
		return 0;
	case BACNET_BVLC_READ_BDT:
	case BACNET_BVLC_READ_FDT:
		r->op = BMS_OP_READ;
		if (n != 0)
			return flag(r, BACNET_AN_BVLC_BAD_LENGTH);
		return 0;
	case BACNET_BVLC_REGISTER_FD:
		r->op = BMS_OP_MANAGEMENT;
		if (n != 2 || bms_cursor_u16be(c, &f->bvlc_ttl) != 0)
			return flag(r, BACNET_AN_BVLC_BAD_LENGTH);
		return 0;
	case BACNET_BVLC_DELETE_FDT_ENTRY:
		r->op = BMS_OP_MANAGEMENT;
		if (n != 6 || bms_cursor_bytes(c, 6, &p) != 0)
			return flag(r, BACNET_AN_BVLC_BAD_LENGTH);
		memcpy(f->bvlc_addr, p, 6);
		f->has_bvlc_addr = 1;
		return 0;
	}
	return flag(r, BACNET_AN_BVLC_UNKNOWN_FUNCTION);
}

enum bms_parse_result bacnet_decode(const uint8_t *dgram, size_t len, struct bms_request *out)
{
	struct bacnet_fields *f = &out->raw.bacnet;
	struct bms_cursor c;
	const uint8_t *p;

	bms_request_reset(out, BMS_PROTO_BACNET);
	out->dir = BMS_DIR_REQUEST;
	out->op = BMS_OP_NONE;
	bms_cursor_init(&c, dgram, len);

	if (bms_cursor_u8(&c, &f->bvlc_type) != 0 || bms_cursor_u8(&c, &f->bvlc_function) != 0 ||
	    bms_cursor_u16be(&c, &f->bvlc_length) != 0) {
		flag(out, BACNET_AN_BVLC_TRUNCATED);
		goto done;
	}
	/* J.1: "BVLC Type: 1-octet X'81' BVLL for BACnet/IP". */
	if (f->bvlc_type != 0x81) {
		flag(out, BACNET_AN_BVLC_BAD_TYPE);
		goto done;
	}
	/* J.2: the length "of the entire BVLL message, including the two octets of the length
	 * field itself": a shorter or longer datagram is not what the sender framed. The rest
	 * is still decoded (over the datagram as received) so that the audit trail says what the
	 * malformed datagram carried; the verdict stays MALFORMED. */
	if (f->bvlc_length != len)
		flag(out, BACNET_AN_BVLC_LENGTH_MISMATCH);
	switch (f->bvlc_function) {
	case BACNET_BVLC_FORWARDED_NPDU:
		if (bms_cursor_bytes(&c, 6, &p) != 0) {
			flag(out, BACNET_AN_BVLC_BAD_LENGTH);
			goto done;
		}
		memcpy(f->bvlc_addr, p, 6);
		f->has_bvlc_addr = 1;
		(void)decode_npdu(out, &c);
		break;
	case BACNET_BVLC_DISTRIBUTE_BROADCAST:
	case BACNET_BVLC_ORIGINAL_UNICAST:
	case BACNET_BVLC_ORIGINAL_BROADCAST:
		(void)decode_npdu(out, &c);
		break;
	case BACNET_BVLC_SECURE_BVLL:
		/* Clause 24 wraps the NPDU in a signed, possibly encrypted envelope: nothing inside
		 * can be checked, so the operation is unknown and policy decides. */
		out->op = BMS_OP_UNKNOWN;
		flag(out, BACNET_AN_BVLC_SECURE);
		break;
	default:
		(void)decode_bvll_only(out, &c);
		break;
	}
done:
	/* Too many targets leaves targets unchecked: tolerable for reads, not for anything that
	 * carries values or changes the device. */
	if (out->anomalies & ~BACNET_INFO_ANOMALIES)
		return BMS_MALFORMED;
	if ((out->anomalies & BACNET_AN(BACNET_AN_TOO_MANY_TARGETS)) && out->op != BMS_OP_READ)
		return BMS_MALFORMED;
	return BMS_OK;
}
