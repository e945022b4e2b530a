/* parsers/modbus.c: Modbus/TCP framer and decoder into the request model.
 *
 * Pure: no I/O, no allocation, no logging. Every byte is read through the
 * bounds-checked cursor. Reference: MODBUS Application Protocol Specification
 * V1.1b3 ("spec"), MODBUS Messaging on TCP/IP Implementation Guide V1.0b ("TCP").
 * Quoted sentences beside the checks are from those documents.
 *
 * MBAP header                              offset size
 *   transaction id                            0     2
 *   protocol id (must be 0)                   2     2
 *   length = unit id + PDU bytes (2..254)     4     2
 *   unit id                                   6     1
 *   PDU: function code, data                  7     length-1 (1..253)
 *
 * PDU layouts, offsets from the function code byte (off:size), bc = byte count.
 * fc       request                                    response
 * 1, 2     addr 1:2, qty 3:2 (1..2000)                bc 1:1 (= ceil(qty/8)), bits 2:bc
 * 3, 4     addr 1:2, qty 3:2 (1..125)                 bc 1:1 (= 2*qty), registers 2:bc
 * 5        addr 1:2, value 3:2 (0x0000/0xFF00)        echo of the request
 * 6        addr 1:2, value 3:2                        echo of the request
 * 7        -                                          output data 1:1
 * 8        sub-function 1:2, data 3:n                 echo, or counter/register 3:2
 * 11       -                                          status 1:2 (0/0xFFFF), event count 3:2
 * 12       -                                          bc 1:1 (6..70), status 2:2, event count 4:2,
 *                                                     message count 6:2, events 8:bc-6
 * 15       addr 1:2, qty 3:2 (1..1968), bc 5:1, bits  addr 1:2, qty 3:2
 * 16       addr 1:2, qty 3:2 (1..123), bc 5:1, regs   addr 1:2, qty 3:2
 * 17       -                                          bc 1:1, server id + run indicator + data
 * 20       bc 1:1 (7..245), n x {ref 1 (6), file 2,   bc 1:1, n x {len 1 (odd >= 3), ref 1 (6),
 *          record 2 (0..9999), length 2}              data len-1}
 * 21       bc 1:1 (9..251), n x {ref 1, file 2,       echo of the request
 *          record 2, length 2, data 2*length}
 * 22       addr 1:2, AND mask 3:2, OR mask 5:2        echo of the request
 * 23       read addr 1:2, read qty 3:2 (1..125),      bc 1:1 (= 2*read qty), registers 2:bc
 *          write addr 5:2, write qty 7:2 (1..121),
 *          bc 9:1 (= 2*write qty), registers 10:bc
 * 24       FIFO pointer addr 1:2                      bc 1:2, FIFO count 3:2 (0..31), regs 5:2*count
 * 43/13    MEI 1:1 (0x0D), CANopen data 2:n           MEI 1:1, data 2:n
 * 43/14    MEI 1:1 (0x0E), code 2:1 (1..4),           MEI 1:1, code 2:1, conformity 3:1, more 4:1,
 *          object id 3:1                              next id 5:1, n 6:1, n x {id 1, len 1, value}
 * fc|0x80  -                                          exception code 1:1
 * other    opaque data 1:n                            opaque data 1:n
 */
#include <string.h>

#include "parsers/modbus.h"

#define MAX_PDU 253

/* Field reads and the target helper run for every PDU: BMS_HOT inlines them into each decoder. */

/* Decoder state for one PDU. */
struct dctx {
	struct bms_cursor c; /* over the PDU bytes after the function code */
	struct bms_request *out;
	struct modbus_fields *f;
	bool req;
};

BMS_HOT static void flag(struct dctx *d, enum modbus_anomaly a)
{
	d->out->anomalies |= 1ull << a;
}

/* Flags a malformed anomaly and returns -1, so checks read `return bad(d, X);`. */
BMS_HOT static int bad(struct dctx *d, enum modbus_anomaly a)
{
	flag(d, a);
	return -1;
}

BMS_HOT BMS_WUR static int rd8(struct dctx *d, uint8_t *v)
{
	if (bms_cursor_u8(&d->c, v) != 0)
		return bad(d, MB_AN_PDU_TRUNCATED);
	return 0;
}

BMS_HOT BMS_WUR static int rd16(struct dctx *d, uint16_t *v)
{
	if (bms_cursor_u16be(&d->c, v) != 0)
		return bad(d, MB_AN_PDU_TRUNCATED);
	return 0;
}

BMS_HOT BMS_WUR static int rdbytes(struct dctx *d, size_t n, const uint8_t **p)
{
	if (bms_cursor_bytes(&d->c, n, p) != 0)
		return bad(d, MB_AN_PDU_TRUNCATED);
	return 0;
}

/* A byte count must describe exactly the rest of the PDU. */
BMS_WUR static int bc_is_rest(struct dctx *d, size_t bc)
{
	if (bc != bms_cursor_left(&d->c))
		return bad(d, MB_AN_BYTE_COUNT_MISMATCH);
	return 0;
}

/* The next target slot, or NULL past BMS_MAX_TARGETS (then flagged). */
BMS_HOT static struct bms_target *add_target(struct dctx *d, uint8_t space, uint32_t start, uint32_t count)
{
	struct bms_target *t;

	if (d->out->ntargets >= BMS_MAX_TARGETS) {
		flag(d, MB_AN_TOO_MANY_TARGETS);
		return NULL;
	}
	t = &d->out->targets[d->out->ntargets++];
	memset(t, 0, sizeof(*t));
	t->space = space;
	t->start = start;
	t->count = count;
	t->array_index = BMS_NO_INDEX;
	return t;
}

/* Spec 4.4: "In a MODBUS PDU each data is addressed from 0 to 65535"; a range
 * reaching past 65535 can never be valid. */
BMS_WUR static int check_range(struct dctx *d, uint32_t addr, uint32_t qty)
{
	if (addr + qty > 65536u)
		return bad(d, MB_AN_ADDRESS_OVERFLOW);
	return 0;
}

BMS_WUR static int check_qty(struct dctx *d, uint16_t qty, uint16_t max)
{
	if (qty < 1 || qty > max)
		return bad(d, MB_AN_BAD_QUANTITY);
	return 0;
}

static uint8_t space_of(uint8_t fc)
{
	switch (fc) {
	case 1: case 5: case 15: return BMS_SPACE_COIL;
	case 2: return BMS_SPACE_DISCRETE_INPUT;
	case 4: return BMS_SPACE_INPUT_REGISTER;
	case 20: case 21: return BMS_SPACE_FILE_RECORD;
	default: return BMS_SPACE_HOLDING_REGISTER;
	}
}

/* FC 1, 2, 3, 4: read a block of bits or registers. */
BMS_WUR static int dec_read(struct dctx *d, uint8_t fc)
{
	bool bits = fc <= 2;
	uint16_t addr, qty;
	uint8_t bc;
	const uint8_t *data;
	struct bms_target *t;

	if (d->req) {
		if (rd16(d, &addr) || rd16(d, &qty))
			return -1;
		d->f->addr = addr, d->f->has_addr = 1;
		d->f->qty = qty, d->f->has_qty = 1;
		/* Spec 6.1/6.2: "Quantity of coils/inputs 2 Bytes 1 to 2000 (0x7D0)";
		 * 6.3/6.4: "Quantity of Registers 2 Bytes 1 to 125 (0x7D)". */
		if (check_qty(d, qty, bits ? 2000 : 125) || check_range(d, addr, qty))
			return -1;
		return add_target(d, space_of(fc), addr, qty) ? 0 : -1;
	}
	if (rd8(d, &bc))
		return -1;
	d->f->byte_count = bc, d->f->has_byte_count = 1;
	if (bc_is_rest(d, bc))
		return -1;
	/* Spec 6.1: "Byte count 1 Byte N*" with "N = Quantity of Outputs / 8, if the
	 * remainder is different of 0 => N = N+1": 1..250 for 1..2000 bits.
	 * 6.3: "Byte count 1 Byte 2 x N*" (N = quantity of registers, 1..125). */
	if (bc == 0 || bc > 250 || (!bits && bc % 2 != 0))
		return bad(d, MB_AN_BAD_BYTE_COUNT);
	if (rdbytes(d, bc, &data))
		return -1;
	/* Count of coils is known only from the request (modbus_pair_response). */
	t = add_target(d, space_of(fc), 0, bits ? 0 : bc / 2u);
	if (t == NULL)
		return -1;
	t->data = data;
	t->data_len = bc;
	return 0;
}

/* FC 5 and 6: write one coil or register; the response echoes the request. */
BMS_WUR static int dec_write_single(struct dctx *d, uint8_t fc)
{
	uint16_t addr, value;
	const uint8_t *p;
	struct bms_target *t;

	if (rd16(d, &addr))
		return -1;
	p = d->c.buf + d->c.off; /* the value bytes, once the read below proved they exist */
	if (rd16(d, &value))
		return -1;
	d->f->addr = addr, d->f->has_addr = 1;
	d->f->value = value, d->f->has_value = 1;
	if (fc == 5) {
		/* Spec 6.5: "A value of FF 00 hex requests the output to be ON. A value of
		 * 00 00 requests it to be OFF. All other values are illegal and will not
		 * affect the output." */
		if (value != 0x0000 && value != 0xFF00)
			return bad(d, MB_AN_BAD_COIL_VALUE);
		t = add_target(d, BMS_SPACE_COIL, addr, 1);
		if (t == NULL)
			return -1;
		t->has_value = true;
		t->value.type = BMS_VAL_BOOL;
		t->value.b = value == 0xFF00;
		return 0;
	}
	t = add_target(d, BMS_SPACE_HOLDING_REGISTER, addr, 1);
	if (t == NULL)
		return -1;
	t->data = p;
	t->data_len = 2;
	t->has_value = true;
	t->value.type = BMS_VAL_UNSIGNED;
	t->value.u = value;
	return 0;
}

/* FC 7: Read Exception Status. The request has no data. */
BMS_WUR static int dec_read_exception_status(struct dctx *d)
{
	uint8_t status;

	if (d->req)
		return 0;
	if (rd8(d, &status))
		return -1;
	d->f->value = status, d->f->has_value = 1;
	return 0;
}

/* FC 8: Diagnostics, spec 6.8.1. */
BMS_WUR static int dec_diagnostics(struct dctx *d)
{
	uint16_t sub, v;
	size_t left;

	if (rd16(d, &sub))
		return -1;
	d->f->sub = sub, d->f->has_sub = 1;
	left = bms_cursor_left(&d->c);
	switch (sub) {
	case 0x00:
		/* "Return Query Data: the data passed in the request data field is to be
		 * returned (looped back) in the response." Any data, any length. */
		return bms_cursor_skip(&d->c, left) == 0 ? 0 : -1;
	case 0x01:
		/* "Restart Communications Option ... Data Field 00 00 or FF 00" (FF 00
		 * also clears the communications event log). */
		flag(d, MB_AN_DIAG_RESTART_COMMS);
		if (left != 2)
			return bad(d, MB_AN_BAD_DIAG_DATA);
		if (rd16(d, &v))
			return -1;
		if (v != 0x0000 && v != 0xFF00)
			return bad(d, MB_AN_BAD_DIAG_DATA);
		return 0;
	case 0x03:
		/* "Change ASCII Input Delimiter ... Data Field CHAR 00". */
		flag(d, MB_AN_DIAG_CHANGE_DELIMITER);
		if (left != 2)
			return bad(d, MB_AN_BAD_DIAG_DATA);
		if (rd16(d, &v))
			return -1;
		if ((v & 0xFF) != 0)
			return bad(d, MB_AN_BAD_DIAG_DATA);
		return 0;
	case 0x04:
		/* "Force Listen Only Mode ... Data Field 00 00 ... No response is returned." */
		flag(d, MB_AN_DIAG_FORCE_LISTEN_ONLY);
		if (!d->req)
			flag(d, MB_AN_UNEXPECTED_RESPONSE);
		break;
	case 0x0A: case 0x14:
		/* "Clear Counters and Diagnostic Register" / "Clear Overrun Counter and
		 * Flag": "Data Field 00 00", response echoes the request. */
		flag(d, MB_AN_DIAG_CLEAR_COUNTERS);
		break;
	case 0x02:
	case 0x0B: case 0x0C: case 0x0D: case 0x0E: case 0x0F:
	case 0x10: case 0x11: case 0x12:
		/* Register and counter reads: request "Data Field 00 00", response the
		 * 16-bit register or counter value. */
		if (left != 2)
			return bad(d, MB_AN_BAD_DIAG_DATA);
		if (rd16(d, &v))
			return -1;
		if (d->req && v != 0)
			return bad(d, MB_AN_BAD_DIAG_DATA);
		d->f->value = v, d->f->has_value = 1;
		return 0;
	default:
		/* Spec Annex A: "8/19; 8/21-65535" are reserved. Opaque. */
		flag(d, MB_AN_RESERVED_DIAG_SUBFUNCTION);
		return bms_cursor_skip(&d->c, left) == 0 ? 0 : -1;
	}
	/* 0x04, 0x0A, 0x14: exactly 00 00 in request and (echoed) response. */
	if (left != 2)
		return bad(d, MB_AN_BAD_DIAG_DATA);
	if (rd16(d, &v))
		return -1;
	if (v != 0)
		return bad(d, MB_AN_BAD_DIAG_DATA);
	return 0;
}

/* FC 11: Get Comm Event Counter. */
BMS_WUR static int dec_comm_event_counter(struct dctx *d)
{
	uint16_t status, count;

	if (d->req)
		return 0;
	if (rd16(d, &status) || rd16(d, &count))
		return -1;
	d->f->value = status, d->f->has_value = 1;
	d->f->value2 = count;
	/* Spec 6.9: "The status word will be all ones (FF FF hex) if a previously-issued
	 * program command is still being processed ... Otherwise, the status word will
	 * be all zeros." */
	if (status != 0x0000 && status != 0xFFFF)
		return bad(d, MB_AN_BAD_STATUS_VALUE);
	return 0;
}

/* FC 12: Get Comm Event Log. */
BMS_WUR static int dec_comm_event_log(struct dctx *d)
{
	uint8_t bc;
	uint16_t status, events, messages;

	if (d->req)
		return 0;
	if (rd8(d, &bc))
		return -1;
	d->f->byte_count = bc, d->f->has_byte_count = 1;
	if (bc_is_rest(d, bc))
		return -1;
	/* Spec 6.10: "Byte Count 1 Byte N" with status, event count and message count
	 * (6 bytes) and "Events (N-6) x 1 Byte"; the log holds "0-64 events". */
	if (bc < 6 || bc > 70)
		return bad(d, MB_AN_BAD_BYTE_COUNT);
	if (rd16(d, &status) || rd16(d, &events) || rd16(d, &messages))
		return -1;
	d->f->value = status, d->f->has_value = 1;
	d->f->value2 = events;
	if (status != 0x0000 && status != 0xFFFF)
		return bad(d, MB_AN_BAD_STATUS_VALUE);
	return bms_cursor_skip(&d->c, bc - 6u) == 0 ? 0 : -1;
}

/* FC 15 and 16: write multiple coils or registers. */
BMS_WUR static int dec_write_multiple(struct dctx *d, uint8_t fc)
{
	bool bits = fc == 15;
	uint16_t addr, qty;
	uint8_t bc;
	const uint8_t *data;
	struct bms_target *t;

	if (rd16(d, &addr) || rd16(d, &qty))
		return -1;
	d->f->addr = addr, d->f->has_addr = 1;
	d->f->qty = qty, d->f->has_qty = 1;
	if (!d->req) {
		/* The response returns "Starting Address" and "Quantity of Outputs/Registers". */
		if (check_qty(d, qty, bits ? 1968 : 123) || check_range(d, addr, qty))
			return -1;
		return add_target(d, space_of(fc), addr, qty) ? 0 : -1;
	}
	if (rd8(d, &bc))
		return -1;
	d->f->byte_count = bc, d->f->has_byte_count = 1;
	if (bc_is_rest(d, bc))
		return -1;
	/* Spec 6.11: "Quantity of Outputs 2 Bytes 0x0001 to 0x07B0", "Byte Count
	 * 1 Byte N*" (N = ceil(quantity / 8)). 6.12: "Quantity of Registers 2 Bytes
	 * 0x0001 to 0x007B", "Byte Count 1 Byte 2 x N*". */
	if (check_qty(d, qty, bits ? 1968 : 123))
		return -1;
	if (bc != (bits ? (qty + 7u) / 8u : 2u * qty))
		return bad(d, MB_AN_BYTE_COUNT_QUANTITY_MISMATCH);
	if (check_range(d, addr, qty))
		return -1;
	if (rdbytes(d, bc, &data))
		return -1;
	/* Bits past the quantity in the last byte are not written; set ones can carry
	 * data nobody checks, so they are worth a flag. */
	if (bits && qty % 8 != 0 && (data[bc - 1] >> (qty % 8)) != 0)
		flag(d, MB_AN_NONZERO_PADDING);
	t = add_target(d, space_of(fc), addr, qty);
	if (t == NULL)
		return -1;
	t->data = data;
	t->data_len = bc;
	return 0;
}

/* FC 17: Report Server ID. */
BMS_WUR static int dec_report_server_id(struct dctx *d)
{
	uint8_t bc;

	if (d->req)
		return 0;
	if (rd8(d, &bc))
		return -1;
	d->f->byte_count = bc, d->f->has_byte_count = 1;
	if (bc_is_rest(d, bc))
		return -1;
	/* Spec 6.13: "Byte Count 1 Byte", "Server ID device specific", "Run Indicator
	 * Status 1 Byte": at least the run indicator is there. */
	if (bc < 1)
		return bad(d, MB_AN_BAD_BYTE_COUNT);
	return bms_cursor_skip(&d->c, bc) == 0 ? 0 : -1;
}

/* One FC 20/21 sub-request header: reference type, file, record, length. */
BMS_WUR static int dec_file_ref(struct dctx *d, uint16_t *file, uint16_t *rec, uint16_t *len)
{
	uint8_t ref;

	if (rd8(d, &ref) || rd16(d, file) || rd16(d, rec) || rd16(d, len))
		return -1;
	/* Spec 6.14: "The reference type: 1 byte (must be specified as 6)". */
	if (ref != 6)
		return bad(d, MB_AN_BAD_REFERENCE_TYPE);
	/* "The File number: 2 bytes" ("File Number 2 Bytes 0x0001 to 0xFFFF"). */
	if (*file == 0)
		return bad(d, MB_AN_BAD_FILE_NUMBER);
	/* "The starting record number within the file: 2 bytes" ("0x0000 to 0x270F");
	 * "Each file contains 10000 records, addressed 0000 to 9999 decimal". */
	if (*rec > 9999)
		return bad(d, MB_AN_BAD_RECORD_NUMBER);
	/* "The length of the record to be read/written: 2 bytes"; zero records is no request. */
	if (*len == 0)
		return bad(d, MB_AN_BAD_RECORD_LENGTH);
	if ((uint32_t)*rec + *len > 10000u)
		return bad(d, MB_AN_RECORD_OVERFLOW);
	return 0;
}

/* FC 20: Read File Record. */
BMS_WUR static int dec_read_file(struct dctx *d)
{
	uint8_t bc;

	if (rd8(d, &bc))
		return -1;
	d->f->byte_count = bc, d->f->has_byte_count = 1;
	if (bc_is_rest(d, bc))
		return -1;
	if (d->req) {
		/* Spec 6.14: "Byte Count 1 Byte 0x07 to 0xF5 bytes", each sub-request 7 bytes. */
		uint32_t rsp_len = 2; /* response fc + resp. data length */

		if (bc < 7 || bc > 0xF5 || bc % 7 != 0)
			return bad(d, MB_AN_BAD_BYTE_COUNT);
		while (bms_cursor_left(&d->c) > 0) {
			uint16_t file, rec, len;
			struct bms_target *t;

			if (dec_file_ref(d, &file, &rec, &len))
				return -1;
			/* "The quantity of registers to be read, combined with all other fields
			 * in the expected response, must not exceed the allowable length of the
			 * MODBUS PDU: 253 bytes." Each sub-response is 2 + 2 x length bytes. */
			rsp_len += 2u + 2u * len;
			if (rsp_len > MAX_PDU)
				return bad(d, MB_AN_BAD_RECORD_LENGTH);
			if (d->f->nsub++ == 0) {
				d->f->addr = rec, d->f->has_addr = 1;
				d->f->qty = len, d->f->has_qty = 1;
			}
			t = add_target(d, BMS_SPACE_FILE_RECORD, rec, len);
			if (t != NULL)
				t->instance = file;
		}
		return 0;
	}
	/* Response: "Resp. data Length 1 Byte", then per sub-request "File Resp. length
	 * 1 Byte", "Reference Type 1 Byte 6", "Record Data N x 2 Bytes". */
	if (bc == 0)
		return bad(d, MB_AN_BAD_BYTE_COUNT);
	while (bms_cursor_left(&d->c) > 0) {
		uint8_t len, ref;
		const uint8_t *data;
		struct bms_target *t;

		if (rd8(d, &len))
			return -1;
		if (len > bms_cursor_left(&d->c))
			return bad(d, MB_AN_BYTE_COUNT_MISMATCH);
		/* The file response length counts the reference type and N x 2 data bytes. */
		if (len < 3 || len % 2 == 0)
			return bad(d, MB_AN_BAD_RECORD_LENGTH);
		if (rd8(d, &ref) || rdbytes(d, len - 1u, &data))
			return -1;
		if (ref != 6)
			return bad(d, MB_AN_BAD_REFERENCE_TYPE);
		d->f->nsub++;
		t = add_target(d, BMS_SPACE_FILE_RECORD, 0, (len - 1u) / 2u);
		if (t != NULL) {
			t->data = data;
			t->data_len = (uint16_t)(len - 1u);
		}
	}
	return 0;
}

/* FC 21: Write File Record; the response echoes the request. */
BMS_WUR static int dec_write_file(struct dctx *d)
{
	uint8_t bc;

	if (rd8(d, &bc))
		return -1;
	d->f->byte_count = bc, d->f->has_byte_count = 1;
	if (bc_is_rest(d, bc))
		return -1;
	/* Spec 6.15: "Request data length 1 Byte 0x09 to 0xFB": one sub-request of at
	 * least 7 header bytes and one register. */
	if (bc < 9 || bc > 0xFB)
		return bad(d, MB_AN_BAD_BYTE_COUNT);
	while (bms_cursor_left(&d->c) > 0) {
		uint16_t file, rec, len;
		const uint8_t *data;
		struct bms_target *t;

		if (bms_cursor_left(&d->c) < 7)
			return bad(d, MB_AN_BYTE_COUNT_MISMATCH);
		if (dec_file_ref(d, &file, &rec, &len))
			return -1;
		/* "Record data N x 2 Bytes" with N the record length. */
		if (2u * len > bms_cursor_left(&d->c))
			return bad(d, MB_AN_BYTE_COUNT_MISMATCH);
		if (rdbytes(d, 2u * len, &data))
			return -1;
		if (d->f->nsub++ == 0) {
			d->f->addr = rec, d->f->has_addr = 1;
			d->f->qty = len, d->f->has_qty = 1;
		}
		t = add_target(d, BMS_SPACE_FILE_RECORD, rec, len);
		if (t != NULL) {
			t->instance = file;
			t->data = data;
			t->data_len = (uint16_t)(2u * len);
		}
	}
	return 0;
}

/* FC 22: Mask Write Register; the response echoes the request. */
BMS_WUR static int dec_mask_write(struct dctx *d)
{
	uint16_t addr, and_mask, or_mask;
	const uint8_t *p;
	struct bms_target *t;

	if (rd16(d, &addr))
		return -1;
	p = d->c.buf + d->c.off; /* the two masks, once the reads below proved they exist */
	if (rd16(d, &and_mask) || rd16(d, &or_mask))
		return -1;
	d->f->addr = addr, d->f->has_addr = 1;
	d->f->value = and_mask, d->f->has_value = 1;
	d->f->value2 = or_mask;
	/* Spec 6.16: "Result = (Current Contents AND And_Mask) OR (Or_Mask AND
	 * (NOT And_Mask))". Any masks are valid. */
	t = add_target(d, BMS_SPACE_HOLDING_REGISTER, addr, 1);
	if (t == NULL)
		return -1;
	t->data = p;
	t->data_len = 4;
	return 0;
}

/* FC 23: Read/Write Multiple registers. */
BMS_WUR static int dec_read_write(struct dctx *d)
{
	uint16_t raddr, rqty, waddr, wqty;
	uint8_t bc;
	const uint8_t *data;
	struct bms_target *t;

	if (!d->req) {
		if (rd8(d, &bc))
			return -1;
		d->f->byte_count = bc, d->f->has_byte_count = 1;
		if (bc_is_rest(d, bc))
			return -1;
		/* Spec 6.17 response: "Byte Count 1 Byte 2 x N*" (N = quantity to read, 1..125). */
		if (bc == 0 || bc > 250 || bc % 2 != 0)
			return bad(d, MB_AN_BAD_BYTE_COUNT);
		if (rdbytes(d, bc, &data))
			return -1;
		t = add_target(d, BMS_SPACE_HOLDING_REGISTER, 0, bc / 2u);
		if (t == NULL)
			return -1;
		t->data = data;
		t->data_len = bc;
		return 0;
	}
	if (rd16(d, &raddr) || rd16(d, &rqty) || rd16(d, &waddr) || rd16(d, &wqty) || rd8(d, &bc))
		return -1;
	d->f->addr = raddr, d->f->has_addr = 1;
	d->f->qty = rqty, d->f->has_qty = 1;
	d->f->addr2 = waddr, d->f->qty2 = wqty, d->f->has_range2 = 1;
	d->f->byte_count = bc, d->f->has_byte_count = 1;
	if (bc_is_rest(d, bc))
		return -1;
	/* Spec 6.17: "Quantity to Read 2 Bytes 0x0001 to 0x007D", "Quantity to Write
	 * 2 Bytes 0x0001 to 0X0079", "Write Byte Count 1 Byte 2 x N*". */
	if (check_qty(d, rqty, 125) || check_qty(d, wqty, 121))
		return -1;
	if (bc != 2u * wqty)
		return bad(d, MB_AN_BYTE_COUNT_QUANTITY_MISMATCH);
	if (check_range(d, raddr, rqty) || check_range(d, waddr, wqty))
		return -1;
	if (rdbytes(d, bc, &data))
		return -1;
	/* targets[0] is the read range (no data), targets[1] the write range. */
	if (add_target(d, BMS_SPACE_HOLDING_REGISTER, raddr, rqty) == NULL)
		return -1;
	t = add_target(d, BMS_SPACE_HOLDING_REGISTER, waddr, wqty);
	if (t == NULL)
		return -1;
	t->data = data;
	t->data_len = bc;
	return 0;
}

/* FC 24: Read FIFO Queue. */
BMS_WUR static int dec_read_fifo(struct dctx *d)
{
	uint16_t addr, bc, count;
	const uint8_t *data;
	struct bms_target *t;

	if (d->req) {
		if (rd16(d, &addr))
			return -1;
		d->f->addr = addr, d->f->has_addr = 1;
		/* "The function returns a count of the registers in the queue, followed by
		 * the queued data. Up to 32 registers can be read: the count, plus up to 31
		 * queued data registers." The range a policy sees is the widest it can be. */
		return add_target(d, BMS_SPACE_HOLDING_REGISTER, addr,
				  65536u - addr < 32u ? 65536u - addr : 32u) ? 0 : -1;
	}
	if (rd16(d, &bc))
		return -1;
	d->f->byte_count = bc, d->f->has_byte_count = 1;
	if (bc_is_rest(d, bc))
		return -1;
	if (rd16(d, &count))
		return -1;
	d->f->fifo_count = count;
	/* Spec 6.18: "FIFO Count 2 Bytes ≤ 31"; "Byte Count 2 Bytes" covers the FIFO
	 * count and "FIFO Value Register N* x 2 Bytes". */
	/* The FIFO count is the quantity of registers this response carries. */
	d->f->qty = count, d->f->has_qty = 1;
	if (count > 31)
		return bad(d, MB_AN_BAD_FIFO_COUNT);
	if (bc != 2u + 2u * count)
		return bad(d, MB_AN_BYTE_COUNT_QUANTITY_MISMATCH);
	if (rdbytes(d, 2u * count, &data))
		return -1;
	t = add_target(d, BMS_SPACE_HOLDING_REGISTER, 0, count);
	if (t == NULL)
		return -1;
	t->data = count ? data : NULL;
	t->data_len = (uint16_t)(2u * count);
	return 0;
}

/* FC 43/14: Read Device Identification response object list. */
BMS_WUR static int dec_device_id_rsp(struct dctx *d)
{
	uint8_t code, conf, more, next, n;

	if (rd8(d, &code) || rd8(d, &conf) || rd8(d, &more) || rd8(d, &next) || rd8(d, &n))
		return -1;
	d->f->devid_code = code;
	d->f->conformity = conf;
	d->f->more_follows = more;
	d->f->object_id = next;
	d->f->nobjects = n;
	/* Spec 6.21: "Read Device ID code 1 Byte 01 / 02 / 03 / 04". */
	if (code < 1 || code > 4)
		return bad(d, MB_AN_BAD_DEVICE_ID_CODE);
	/* "Conformity level 1 Byte": 0x01, 0x02, 0x03, 0x81, 0x82, 0x83. */
	if ((conf & 0x7F) < 1 || (conf & 0x7F) > 3)
		return bad(d, MB_AN_BAD_CONFORMITY_LEVEL);
	/* "More Follows 1 Byte 00 / FF"; "In case of ReadDevId code = 04 (individual
	 * access) this field must be set to 00". */
	if ((more != 0x00 && more != 0xFF) || (code == 4 && more != 0x00))
		return bad(d, MB_AN_BAD_MORE_FOLLOWS);
	for (unsigned i = 0; i < n; i++) {
		uint8_t id, len;
		const uint8_t *value;

		if (bms_cursor_u8(&d->c, &id) != 0 || bms_cursor_u8(&d->c, &len) != 0 ||
		    bms_cursor_bytes(&d->c, len, &value) != 0)
			return bad(d, MB_AN_OBJECT_LIST_MISMATCH);
	}
	/* Bytes after the announced objects: the count and the list disagree. */
	if (bms_cursor_left(&d->c) != 0)
		return bad(d, MB_AN_OBJECT_LIST_MISMATCH);
	return 0;
}

/* FC 43: Encapsulated Interface Transport. */
BMS_WUR static int dec_mei(struct dctx *d)
{
	uint8_t mei, code, obj;

	if (rd8(d, &mei))
		return -1;
	d->f->sub = mei, d->f->has_sub = 1;
	if (mei == 14) {
		if (!d->req)
			return dec_device_id_rsp(d);
		if (rd8(d, &code) || rd8(d, &obj))
			return -1;
		d->f->devid_code = code;
		d->f->object_id = obj;
		/* Spec 6.21: "Read Device ID code 1 Byte 01 / 02 / 03 / 04". Any object id
		 * is acceptable: unknown ones restart at object 0 for codes 1..3. */
		if (code < 1 || code > 4)
			return bad(d, MB_AN_BAD_DEVICE_ID_CODE);
		return 0;
	}
	/* 43/13 CANopen General Reference carries device-specific data; spec Annex A:
	 * "43/0-12, 43/15-255" are reserved. */
	if (mei != 13)
		flag(d, MB_AN_RESERVED_MEI_TYPE);
	return bms_cursor_skip(&d->c, bms_cursor_left(&d->c)) == 0 ? 0 : -1;
}

/* Exception response: spec 7, "Exception Function Code 1 Byte (function code +
 * 0x80)", "Exception Code 1 Byte". */
BMS_WUR static int dec_exception(struct dctx *d)
{
	uint8_t code;

	if (rd8(d, &code))
		return -1;
	d->f->exception = code;
	if (code == 0 || code == 7 || code == 9 || code > 0x0B)
		flag(d, MB_AN_UNKNOWN_EXCEPTION_CODE);
	return 0;
}

enum fc_kind { FC_PUBLIC, FC_USER, FC_RESERVED, FC_UNASSIGNED, FC_INVALID };

/* Spec 4.1: "Valid codes are in the range of 1 ... 255 decimal (the range 128 - 255
 * is reserved and used for exception responses)"; function code 0 is not valid.
 * Spec 5: user-defined codes are "65 to 72 and from 100 to 110 decimal"; Annex A
 * reserves 9, 10, 13, 14, 41, 42, 90, 91, 125, 126 and 127 (legacy and vendor use). */
static enum fc_kind fc_kind_rule(uint8_t fc)
{
	switch (fc) {
	case 1: case 2: case 3: case 4: case 5: case 6: case 7: case 8:
	case 11: case 12: case 15: case 16: case 17:
	case 20: case 21: case 22: case 23: case 24: case 43:
		return FC_PUBLIC;
	case 9: case 10: case 13: case 14: case 41: case 42: case 90: case 91:
	case 125: case 126: case 127:
		return FC_RESERVED;
	case 0:
		return FC_INVALID;
	default:
		break;
	}
	if (fc >= 128)
		return FC_INVALID;
	if ((fc >= 65 && fc <= 72) || (fc >= 100 && fc <= 110))
		return FC_USER;
	return FC_UNASSIGNED;
}

static enum bms_op fc_op_rule(uint8_t fc)
{
	switch (fc) {
	case 1: case 2: case 3: case 4: case 24: return BMS_OP_READ;
	case 5: case 6: case 15: case 16: case 22: case 23: return BMS_OP_WRITE;
	case 20: case 21: return BMS_OP_FILE;
	case 7: case 8: case 11: case 12: return BMS_OP_MANAGEMENT;
	case 17: return BMS_OP_DISCOVERY;
	case 43: return BMS_OP_MANAGEMENT; /* 43/14 is refined to discovery by the decoder */
	default: break;
	}
	return fc_kind_rule(fc) == FC_USER ? BMS_OP_PRIVATE : BMS_OP_UNKNOWN;
}

/* The two rules above as one table, made once at load: every PDU asks both, and a switch over
 * function codes is an indirect jump that mispredicts whenever the code changes. */
static uint8_t fc_table[128]; /* enum fc_kind | enum bms_op << 4 */

__attribute__((constructor)) static void fc_table_init(void)
{
	for (unsigned fc = 0; fc < 128; fc++)
		fc_table[fc] = (uint8_t)(fc_kind_rule((uint8_t)fc) | fc_op_rule((uint8_t)fc) << 4);
}

static enum fc_kind fc_kind(uint8_t fc)
{
	return fc >= 128 ? FC_INVALID : (enum fc_kind)(fc_table[fc] & 0x0F);
}

enum bms_op modbus_fc_op(uint8_t fc)
{
	return (enum bms_op)(fc_table[fc & 0x7F] >> 4);
}

/* Decodes the PDU after the function code; 0 or -1 (malformed, anomaly set). */
BMS_WUR static int dec_pdu(struct dctx *d, uint8_t fc)
{
	switch (fc) {
	case 1: case 2: case 3: case 4: return dec_read(d, fc);
	case 5: case 6: return dec_write_single(d, fc);
	case 7: return dec_read_exception_status(d);
	case 8: return dec_diagnostics(d);
	case 11: return dec_comm_event_counter(d);
	case 12: return dec_comm_event_log(d);
	case 15: case 16: return dec_write_multiple(d, fc);
	case 17: return d->req ? 0 : dec_report_server_id(d);
	case 20: return dec_read_file(d);
	case 21: return dec_write_file(d);
	case 22: return dec_mask_write(d);
	case 23: return dec_read_write(d);
	case 24: return dec_read_fifo(d);
	case 43: return dec_mei(d);
	default: break;
	}
	/* Unassigned, reserved and user-defined codes: opaque, the class says enough. */
	return bms_cursor_skip(&d->c, bms_cursor_left(&d->c)) == 0 ? 0 : -1;
}

/* FC 43 is classed by its MEI type: 14 (device identification) is discovery,
 * 13 (CANopen) management, reserved types unknown. */
static void refine_mei_op(struct bms_request *out)
{
	const struct modbus_fields *f = &out->raw.modbus;

	if ((f->fc & 0x7F) != 43 || !f->has_sub)
		return;
	out->op = f->sub == 14 ? BMS_OP_DISCOVERY : f->sub == 13 ? BMS_OP_MANAGEMENT : BMS_OP_UNKNOWN;
}

enum bms_parse_result modbus_frame(const uint8_t *buf, size_t len, size_t *frame_len, uint64_t *anomalies)
{
	struct bms_cursor c;
	uint16_t proto, length;

	*frame_len = MODBUS_MIN_ADU;
	*anomalies = 0;
	bms_cursor_init(&c, buf, len);
	if (bms_cursor_skip(&c, 2) != 0) /* transaction id */
		return BMS_NEED_MORE;
	if (bms_cursor_u16be(&c, &proto) != 0)
		return BMS_NEED_MORE;
	/* TCP 3.1.3: "Protocol Identifier ... 0 = MODBUS protocol". A stream that
	 * does not start with 0 here is not Modbus, or has lost its framing. */
	if (proto != 0) {
		*anomalies = 1ull << MB_AN_BAD_PROTOCOL_ID;
		return BMS_MALFORMED;
	}
	if (bms_cursor_u16be(&c, &length) != 0)
		return BMS_NEED_MORE;
	/* "Length: Number of following bytes" (unit id + PDU). Spec 4.1: "The size of
	 * the MODBUS PDU is limited ... 253 bytes", and a PDU has at least its function
	 * code: 2..254. */
	if (length < 2 || length > MAX_PDU + 1) {
		*anomalies = 1ull << MB_AN_BAD_LENGTH;
		return BMS_MALFORMED;
	}
	*frame_len = 6u + length;
	return len >= *frame_len ? BMS_OK : BMS_NEED_MORE;
}

enum bms_parse_result modbus_decode(const uint8_t *adu, size_t len, enum bms_dir dir, struct bms_request *out)
{
	struct modbus_fields *f = &out->raw.modbus;
	struct bms_cursor c;
	struct dctx d;
	uint8_t fc, base;
	enum fc_kind kind;

	bms_request_reset(out, BMS_PROTO_MODBUS);
	out->dir = (uint8_t)dir;
	out->op = BMS_OP_UNKNOWN;
	memset(&d, 0, sizeof(d));
	d.out = out;
	d.f = f;
	d.req = dir == BMS_DIR_REQUEST;

	bms_cursor_init(&c, adu, len);
	if (bms_cursor_u16be(&c, &f->tid) != 0 || bms_cursor_u16be(&c, &f->proto_id) != 0 ||
	    bms_cursor_u16be(&c, &f->length) != 0 || bms_cursor_u8(&c, &f->unit) != 0) {
		(void)bad(&d, MB_AN_TRUNCATED_HEADER);
		goto fail;
	}
	out->unit = f->unit;
	/* For the audit trail of a broken frame: what it claimed to be. */
	if (bms_cursor_peek_u8(&c, &fc) == 0) {
		f->fc = fc, f->has_fc = 1;
		out->op = (uint8_t)modbus_fc_op(fc);
	}
	if (f->proto_id != 0) {
		(void)bad(&d, MB_AN_BAD_PROTOCOL_ID);
		goto fail;
	}
	if (f->length < 2 || f->length > MAX_PDU + 1) {
		(void)bad(&d, MB_AN_BAD_LENGTH);
		goto fail;
	}
	/* The frame handed in must be exactly what the MBAP length announces. */
	if (len != 6u + f->length) {
		(void)bad(&d, MB_AN_LENGTH_MISMATCH);
		goto fail;
	}
	if (bms_cursor_u8(&c, &fc) != 0) {
		(void)bad(&d, MB_AN_LENGTH_MISMATCH);
		goto fail;
	}
	f->fc = fc, f->has_fc = 1;
	if (bms_cursor_sub(&c, bms_cursor_left(&c), &d.c) != 0) {
		(void)bad(&d, MB_AN_LENGTH_MISMATCH);
		goto fail;
	}
	f->pdu = d.c.len ? d.c.buf : NULL;
	f->pdu_len = (uint16_t)d.c.len;

	/* Unit 0 is the serial-line broadcast address; a gateway to a serial line may pass
	 * it to every device there. Notable, not malformed: some TCP devices answer to 0. */
	if (d.req && f->unit == 0)
		flag(&d, MB_AN_BROADCAST_UNIT);

	base = fc;
	if (fc & 0x80) {
		/* Spec 7: an exception response sets the high bit of the function code;
		 * "the range 128 - 255 is reserved and used for exception responses". */
		if (d.req) {
			(void)bad(&d, MB_AN_INVALID_FUNCTION_CODE);
			goto fail;
		}
		base = fc & 0x7F;
		/* Kept even when the function code turns out invalid, for the audit trail. */
		if (bms_cursor_peek_u8(&d.c, &f->exception) != 0)
			f->exception = 0;
	}
	kind = fc_kind(base);
	out->op = (uint8_t)modbus_fc_op(base);
	switch (kind) {
	case FC_INVALID:
		(void)bad(&d, MB_AN_INVALID_FUNCTION_CODE);
		goto fail;
	case FC_USER: flag(&d, MB_AN_USER_DEFINED_FUNCTION); break;
	case FC_RESERVED: flag(&d, MB_AN_RESERVED_FUNCTION); break;
	case FC_UNASSIGNED: flag(&d, MB_AN_UNASSIGNED_FUNCTION); break;
	case FC_PUBLIC: break;
	}
	if (fc & 0x80) {
		if (dec_exception(&d) != 0)
			goto fail;
	} else {
		if (dec_pdu(&d, fc) != 0)
			goto fail;
	}
	refine_mei_op(out);
	/* Cross-check: the MBAP length must match what the function code implies. */
	if (bms_cursor_left(&d.c) != 0) {
		(void)bad(&d, MB_AN_PDU_TRAILING_BYTES);
		goto fail;
	}
	return BMS_OK;
fail:
	refine_mei_op(out);
	out->ntargets = 0;
	return BMS_MALFORMED;
}

/* --- pairing a response with its request --- */

static bool same_pdu(const struct modbus_fields *a, const struct modbus_fields *b)
{
	return a->pdu_len == b->pdu_len && (a->pdu_len == 0 || memcmp(a->pdu, b->pdu, a->pdu_len) == 0);
}

static uint64_t check_counts(const struct bms_request *req, const struct bms_request *rsp)
{
	const struct modbus_fields *q = &req->raw.modbus, *r = &rsp->raw.modbus;
	uint64_t an = 0;
	uint16_t want;

	switch (q->fc) {
	case 1: case 2:
		/* Spec 6.1: "If the returned output quantity is not a multiple of eight, the
		 * remaining bits in the final data byte will be padded with zeros". */
		want = (uint16_t)((q->qty + 7u) / 8u);
		if (r->byte_count != want)
			return 1ull << MB_AN_RESPONSE_COUNT_MISMATCH;
		if (q->qty % 8 != 0 && rsp->ntargets == 1 && rsp->targets[0].data_len == want &&
		    (rsp->targets[0].data[want - 1] >> (q->qty % 8)) != 0)
			an |= 1ull << MB_AN_NONZERO_PADDING;
		return an;
	case 3: case 4: case 23:
		if (r->byte_count != 2u * q->qty)
			return 1ull << MB_AN_RESPONSE_COUNT_MISMATCH;
		return 0;
	case 5: case 6: case 22: case 21:
		/* Spec 6.5/6.6/6.16/6.15: "The normal response is an echo of the request". */
		return same_pdu(q, r) ? 0 : 1ull << MB_AN_RESPONSE_ECHO_MISMATCH;
	case 15: case 16:
		/* "The normal response returns the function code, starting address, and
		 * quantity" of outputs/registers written. */
		return r->addr == q->addr && r->qty == q->qty ? 0 : 1ull << MB_AN_RESPONSE_ECHO_MISMATCH;
	case 20:
		if (r->nsub != q->nsub)
			return 1ull << MB_AN_RESPONSE_COUNT_MISMATCH;
		for (unsigned i = 0; i < req->ntargets && i < rsp->ntargets; i++)
			if (rsp->targets[i].count != req->targets[i].count)
				return 1ull << MB_AN_RESPONSE_COUNT_MISMATCH;
		return 0;
	case 8:
		if (r->sub != q->sub)
			return 1ull << MB_AN_RESPONSE_ECHO_MISMATCH;
		switch (q->sub) {
		case 0x00: case 0x01: case 0x03: case 0x0A: case 0x14:
			/* Spec 6.8.1: these sub-functions echo the request data. */
			return same_pdu(q, r) ? 0 : 1ull << MB_AN_RESPONSE_ECHO_MISMATCH;
		default:
			return 0;
		}
	case 43:
		if (r->sub != q->sub)
			return 1ull << MB_AN_RESPONSE_ECHO_MISMATCH;
		/* Spec 6.21: the response repeats "Read Device ID code". */
		if (q->sub == 14 && r->devid_code != q->devid_code)
			return 1ull << MB_AN_RESPONSE_ECHO_MISMATCH;
		return 0;
	default:
		return 0;
	}
}

enum bms_parse_result modbus_check_response(const struct bms_request *req, const struct bms_request *rsp,
					    uint64_t *anomalies)
{
	const struct modbus_fields *q = &req->raw.modbus, *r = &rsp->raw.modbus;
	uint64_t an = 0;

	if (req->proto != BMS_PROTO_MODBUS || rsp->proto != BMS_PROTO_MODBUS ||
	    req->dir != BMS_DIR_REQUEST || rsp->dir != BMS_DIR_RESPONSE || !q->has_fc || !r->has_fc)
		an = 1ull << MB_AN_DIRECTION_MISMATCH;
	else if (r->tid != q->tid)
		an = 1ull << MB_AN_RESPONSE_TID_MISMATCH;
	/* TCP guide, MBAP header: transaction and unit identifiers are "recopied by the
	 * server from the received request". */
	else if (r->unit != q->unit)
		an = 1ull << MB_AN_RESPONSE_UNIT_MISMATCH;
	else if ((r->fc & 0x7F) != q->fc)
		an = 1ull << MB_AN_RESPONSE_FC_MISMATCH;
	else if (q->fc == 8 && q->sub == 0x04 && !(r->fc & 0x80))
		an = 1ull << MB_AN_UNEXPECTED_RESPONSE;
	else if (!(r->fc & 0x80))
		an = check_counts(req, rsp);
	*anomalies = an;
	return (an & MODBUS_MALFORMED_MASK) ? BMS_MALFORMED : BMS_OK;
}

void modbus_pair_response(const struct bms_request *req, struct bms_request *rsp)
{
	const struct modbus_fields *q = &req->raw.modbus;

	if (rsp->raw.modbus.fc & 0x80)
		return;
	switch (q->fc) {
	case 1: case 2: case 3: case 4: case 23:
		if (rsp->ntargets >= 1 && req->ntargets >= 1) {
			rsp->targets[0].start = req->targets[0].start;
			rsp->targets[0].count = req->targets[0].count;
		}
		break;
	case 20:
		for (unsigned i = 0; i < req->ntargets && i < rsp->ntargets; i++) {
			rsp->targets[i].instance = req->targets[i].instance;
			rsp->targets[i].start = req->targets[i].start;
		}
		break;
	case 24:
		if (rsp->ntargets >= 1 && q->has_addr)
			rsp->targets[0].start = q->addr + 1u; /* the queued registers follow the count */
		break;
	default:
		break;
	}
}

/* --- checking a device's answer against the request the guard forwarded ---
 *
 * The guard keeps the request ADU it forwarded and checks the device's answer ADU against it
 * before the client sees it; nothing is decoded into a request model (two of those are 4 KiB
 * of stack per answer). Offsets from the function code byte (off:size); q = the request.
 * fc       answer                                    checked against the request
 * any      MBAP tid 0:2, proto 2:2 (0), length 4:2,  tid, unit = q's; length = frame - 6
 *          unit 6:1, function code 7:1               function code = q's, or q's | 0x80
 * fc|0x80  exception code 1:1, nothing after         code 01..08, 0A, 0B
 * 1, 2     bc 1:1, bits 2:bc                         bc = ceil(q qty / 8) = bytes after bc
 * 3, 4     bc 1:1, registers 2:bc                    bc = 2 x q qty = bytes after bc
 * 5, 6     addr 1:2, value 3:2                       PDU = q's PDU
 * 7        output data 1:1                           length
 * 8        sub 1:2, data 3:n                         sub = q's; 00, 01, 03, 0A, 14: PDU = q's PDU;
 *                                                    02, 0B..12: one 2-byte value; 04: no answer
 * 11       status 1:2 (0/FFFF), event count 3:2      length, status
 * 12       bc 1:1 (6..70), status 2:2, counts, log   bc = bytes after bc, status
 * 15, 16   addr 1:2, qty 3:2                         addr, qty = q's
 * 17       bc 1:1 (>= 1), server id, run indicator   bc = bytes after bc
 * 20       bc 1:1, n x {len 1, ref 1 (6), data}      bc = bytes after bc; n = q's sub-requests;
 *                                                    len = 1 + 2 x that sub-request's length
 * 21, 22   echo                                      PDU = q's PDU
 * 23       bc 1:1, registers 2:bc                    bc = 2 x q read qty = bytes after bc
 * 24       bc 1:2, FIFO count 3:2 (<= 31), 5:2xcount bc = bytes after bc = 2 + 2 x count
 * 43       MEI 1:1; 14: code 2:1, conformity 3:1,    MEI = q's; 14: code = q's, conformity,
 *          more 4:1, next 5:1, n 6:1, objects        more follows, n objects fill the PDU
 * other    opaque data                               tid, unit, function code only
 */

/* Checker state: the answer PDU after its function code, and the request's. */
struct actx {
	struct bms_cursor c;  /* answer bytes after the function code */
	struct bms_cursor q;  /* request bytes after the function code (never advanced) */
	uint64_t an;
	struct modbus_answer_fault *f;
};

/* Flags `bit`, keeps the first fault for the message; returns -1. */
static int afail(struct actx *a, enum modbus_anomaly bit, const char *field, uint32_t got, bool has_want,
		 uint32_t want)
{
	a->an |= 1ull << bit;
	if (a->f->field == NULL) {
		a->f->field = field;
		a->f->got = got;
		a->f->want = want;
		a->f->has_want = has_want;
	}
	return -1;
}

/* A request field at PDU offset `off` (from the function code); -1 when the request is too
 * short to carry it (it cannot be one the guard forwarded). */
BMS_WUR static int qfield(struct actx *a, size_t off, size_t n, uint32_t *v)
{
	struct bms_cursor c = a->q;
	uint64_t x;

	if (off < 1 || bms_cursor_skip(&c, off - 1) != 0 || bms_cursor_uint_be(&c, n, &x) != 0)
		return afail(a, MB_AN_DIRECTION_MISMATCH, "request length", (uint32_t)(a->q.len + 1), true,
			     (uint32_t)(off + n));
	*v = (uint32_t)x;
	return 0;
}

BMS_WUR static int ard8(struct actx *a, const char *field, uint8_t *v)
{
	if (bms_cursor_u8(&a->c, v) != 0)
		return afail(a, MB_AN_PDU_TRUNCATED, field, (uint32_t)a->c.len + 1, false, 0);
	return 0;
}

BMS_WUR static int ard16(struct actx *a, const char *field, uint16_t *v)
{
	if (bms_cursor_u16be(&a->c, v) != 0)
		return afail(a, MB_AN_PDU_TRUNCATED, field, (uint32_t)a->c.len + 1, false, 0);
	return 0;
}

/* Exactly `n` more bytes: the rest of a fixed-size answer. Lengths quoted are whole PDUs. */
BMS_WUR static int arest(struct actx *a, size_t n)
{
	size_t left = bms_cursor_left(&a->c);

	if (left < n)
		return afail(a, MB_AN_PDU_TRUNCATED, "PDU length", (uint32_t)a->c.len + 1, true,
			     (uint32_t)(a->c.off + n + 1));
	if (left > n)
		return afail(a, MB_AN_PDU_TRAILING_BYTES, "PDU length", (uint32_t)a->c.len + 1, true,
			     (uint32_t)(a->c.off + n + 1));
	return bms_cursor_skip(&a->c, n);
}

/* The whole answer PDU repeats the request's. */
BMS_WUR static int aecho(struct actx *a)
{
	if (a->c.len != a->q.len)
		return afail(a, a->c.len < a->q.len ? MB_AN_PDU_TRUNCATED : MB_AN_PDU_TRAILING_BYTES, "PDU length",
			     (uint32_t)a->c.len + 1, true, (uint32_t)a->q.len + 1);
	for (size_t i = 0; i < a->c.len; i++)
		if (a->c.buf[i] != a->q.buf[i])
			return afail(a, MB_AN_RESPONSE_ECHO_MISMATCH, "echoed byte", a->c.buf[i], true, a->q.buf[i]);
	return bms_cursor_skip(&a->c, a->c.len);
}

/* A byte count of `size` bytes that must describe the rest of the PDU and, when `want` is
 * not UINT32_MAX, equal `want` (what the request's quantity implies). Both are checked and
 * flagged: a count that fits neither is reported as both. */
BMS_WUR static int abc(struct actx *a, size_t size, uint32_t want, uint32_t *bc)
{
	uint64_t v;
	int rc = 0;

	if (bms_cursor_uint_be(&a->c, size, &v) != 0)
		return afail(a, MB_AN_PDU_TRUNCATED, "PDU length", (uint32_t)a->c.len + 1, true,
			     (uint32_t)(1 + size + (want != UINT32_MAX ? want : 0)));
	*bc = (uint32_t)v;
	if (want != UINT32_MAX && *bc != want)
		rc = afail(a, MB_AN_RESPONSE_COUNT_MISMATCH, "byte count", *bc, true, want);
	if (*bc != bms_cursor_left(&a->c))
		rc = afail(a, MB_AN_BYTE_COUNT_MISMATCH, "byte count", *bc, true, (uint32_t)bms_cursor_left(&a->c));
	return rc;
}

/* FC 1-4 and 23: a byte count and the data it counts. */
BMS_WUR static int ans_read(struct actx *a, uint8_t fc)
{
	uint32_t qty, want, bc;
	const uint8_t *data;

	if (qfield(a, 3, 2, &qty))
		return -1;
	/* Spec 6.1/6.2: "Byte count 1 Byte N*", "N = Quantity of Outputs / 8, if the remainder is
	 * different of 0 => N = N+1"; "The Byte Count field specifies the quantity of complete
	 * bytes of data". 6.3/6.4: "Byte count 1 Byte 2 x N*", "N = Quantity of Registers".
	 * 6.17: "Byte Count 1 Byte 2 x N*", "N = Quantity to Read". */
	want = fc <= 2 ? (qty + 7u) / 8u : 2u * qty;
	if (abc(a, 1, want, &bc) || bms_cursor_bytes(&a->c, bc, &data) != 0)
		return -1;
	/* 6.1: "If the returned output quantity is not a multiple of eight, the remaining bits in
	 * the final data byte will be padded with zeros (toward the high order end of the byte)."
	 * Harmless when not: notable only. */
	if (fc <= 2 && qty % 8 != 0 && (data[bc - 1] >> (qty % 8)) != 0)
		a->an |= 1ull << MB_AN_NONZERO_PADDING;
	return 0;
}

/* FC 15, 16: "The normal response returns the function code, starting address, and quantity
 * of coils forced" (6.11) / "quantity of registers written" (6.12). */
BMS_WUR static int ans_write_multiple(struct actx *a)
{
	uint32_t qaddr, qqty;
	uint16_t addr, qty;

	if (qfield(a, 1, 2, &qaddr) || qfield(a, 3, 2, &qqty))
		return -1;
	if (ard16(a, "starting address", &addr) || ard16(a, "quantity", &qty))
		return -1;
	if (addr != qaddr)
		return afail(a, MB_AN_RESPONSE_ECHO_MISMATCH, "starting address", addr, true, qaddr);
	if (qty != qqty)
		return afail(a, MB_AN_RESPONSE_ECHO_MISMATCH, "quantity", qty, true, qqty);
	return arest(a, 0);
}

/* FC 8, spec 6.8.1. */
BMS_WUR static int ans_diagnostics(struct actx *a)
{
	uint32_t qsub;
	uint16_t sub;

	if (qfield(a, 1, 2, &qsub))
		return -1;
	switch (qsub) {
	case 0x00: case 0x01: case 0x03: case 0x0A: case 0x14:
		/* 00: "The data passed in the request data field is to be returned (looped back) in
		 * the response. The entire response message should be identical to the request."
		 * 01, 03, 0A, 14: response "Data Field ... Echo Request Data". */
		return aecho(a);
	case 0x04:
		/* "Force Listen Only Mode ... No response is returned." */
		return afail(a, MB_AN_UNEXPECTED_RESPONSE, "answer to sub-function", 4, false, 0);
	default:
		break;
	}
	/* Every response repeats the sub-function: "Sub-function 2 Bytes". */
	if (ard16(a, "sub-function", &sub))
		return -1;
	if (sub != qsub)
		return afail(a, MB_AN_RESPONSE_ECHO_MISMATCH, "sub-function", sub, true, qsub);
	/* Register and counter reads: response "Data Field ... Diagnostic Register Contents" /
	 * "... Count": one 16-bit value. Reserved sub-functions: opaque. */
	if (qsub == 0x02 || (qsub >= 0x0B && qsub <= 0x12))
		return arest(a, 2);
	return bms_cursor_skip(&a->c, bms_cursor_left(&a->c));
}

/* FC 11 and 12: spec 6.9 "The status word will be all ones (FF FF hex) if a previously-issued
 * program command is still being processed ... Otherwise, the status word will be all zeros." */
BMS_WUR static int ans_status(struct actx *a)
{
	uint16_t status;

	if (ard16(a, "status", &status))
		return -1;
	if (status != 0x0000 && status != 0xFFFF)
		return afail(a, MB_AN_BAD_STATUS_VALUE, "status", status, false, 0);
	return 0;
}

BMS_WUR static int ans_comm_event_log(struct actx *a)
{
	uint32_t bc;

	if (abc(a, 1, UINT32_MAX, &bc))
		return -1;
	/* Spec 6.10: "Byte Count 1 Byte N", status, event count and message count (6 bytes),
	 * "Events (N-6) x 1 Byte", of "0-64 events". */
	if (bc < 6 || bc > 70)
		return afail(a, MB_AN_BAD_BYTE_COUNT, "byte count", bc, false, 0);
	return ans_status(a) == 0 ? bms_cursor_skip(&a->c, bc - 2u) : -1;
}

/* FC 17, spec 6.13: "Byte Count 1 Byte", "Server ID device specific", "Run Indicator Status
 * 1 Byte": at least the run indicator. */
BMS_WUR static int ans_report_server_id(struct actx *a)
{
	uint32_t bc;

	if (abc(a, 1, UINT32_MAX, &bc))
		return -1;
	if (bc < 1)
		return afail(a, MB_AN_BAD_BYTE_COUNT, "byte count", bc, false, 0);
	return bms_cursor_skip(&a->c, bc);
}

/* FC 20, spec 6.14: response "Resp. data Length 1 Byte", then for each sub-request "File
 * Resp. length 1 Byte", "Reference Type 1 Byte 6", "Record Data N x 2 Bytes", in the order
 * of the sub-requests. */
BMS_WUR static int ans_read_file(struct actx *a)
{
	uint32_t qbc, bc, n;

	if (qfield(a, 1, 1, &qbc) || abc(a, 1, UINT32_MAX, &bc))
		return -1;
	n = qbc / 7u; /* "Sub-Req. x, Reference Type ... File Number ... Record Number ... Record Length" */
	for (uint32_t i = 0; i < n; i++) {
		uint32_t qlen;
		uint8_t len, ref;

		if (qfield(a, 2 + 7 * i + 5, 2, &qlen))
			return -1;
		if (bms_cursor_left(&a->c) == 0)
			return afail(a, MB_AN_RESPONSE_COUNT_MISMATCH, "sub-responses", i, true, n);
		if (ard8(a, "file response length", &len))
			return -1;
		/* The file response length counts the reference type and the N x 2 data bytes. */
		if (len != 1u + 2u * qlen)
			return afail(a, MB_AN_RESPONSE_COUNT_MISMATCH, "file response length", len, true, 1u + 2u * qlen);
		if (len > bms_cursor_left(&a->c))
			return afail(a, MB_AN_BYTE_COUNT_MISMATCH, "file response length", len, true,
				     (uint32_t)bms_cursor_left(&a->c));
		if (ard8(a, "reference type", &ref))
			return -1;
		if (ref != 6)
			return afail(a, MB_AN_BAD_REFERENCE_TYPE, "reference type", ref, true, 6);
		if (bms_cursor_skip(&a->c, len - 1u) != 0)
			return -1; /* len <= left was checked */
	}
	if (bms_cursor_left(&a->c) != 0)
		return afail(a, MB_AN_RESPONSE_COUNT_MISMATCH, "bytes after the last sub-response",
			     (uint32_t)bms_cursor_left(&a->c), true, 0);
	return 0;
}

/* FC 24, spec 6.18: "Byte Count 2 Bytes", "FIFO Count 2 Bytes ≤ 31", "FIFO Value Register
 * N* x 2 Bytes"; the byte count covers the FIFO count and the values. */
BMS_WUR static int ans_read_fifo(struct actx *a)
{
	uint32_t bc;
	uint16_t count;

	if (abc(a, 2, UINT32_MAX, &bc) || ard16(a, "FIFO count", &count))
		return -1;
	if (count > 31)
		return afail(a, MB_AN_BAD_FIFO_COUNT, "FIFO count", count, false, 0);
	if (bc != 2u + 2u * count)
		return afail(a, MB_AN_BYTE_COUNT_QUANTITY_MISMATCH, "byte count", bc, true, 2u + 2u * count);
	return bms_cursor_skip(&a->c, 2u * count);
}

/* FC 43, spec 6.19-6.21. */
BMS_WUR static int ans_mei(struct actx *a)
{
	uint32_t qmei, qcode;
	uint8_t mei, code, conf, more, next, n;

	if (qfield(a, 1, 1, &qmei) || ard8(a, "MEI type", &mei))
		return -1;
	/* Response "MEI Type 1 Byte": the request's. */
	if (mei != qmei)
		return afail(a, MB_AN_RESPONSE_ECHO_MISMATCH, "MEI type", mei, true, qmei);
	if (mei != 14) /* 13 CANopen General Reference and reserved types: device-specific data */
		return bms_cursor_skip(&a->c, bms_cursor_left(&a->c));
	if (qfield(a, 2, 1, &qcode))
		return -1;
	if (ard8(a, "read device id code", &code) || ard8(a, "conformity level", &conf) ||
	    ard8(a, "more follows", &more) || ard8(a, "next object id", &next) ||
	    ard8(a, "number of objects", &n))
		return -1;
	/* 6.21 response: "Read Device ID code 1 Byte 01 / 02 / 03 / 04", the request's. */
	if (code != qcode)
		return afail(a, MB_AN_RESPONSE_ECHO_MISMATCH, "read device id code", code, true, qcode);
	/* "Conformity level 1 Byte": 0x01, 0x02, 0x03, 0x81, 0x82, 0x83. */
	if ((conf & 0x7F) < 1 || (conf & 0x7F) > 3)
		return afail(a, MB_AN_BAD_CONFORMITY_LEVEL, "conformity level", conf, false, 0);
	/* "More Follows 1 Byte 00 / FF"; "In case of ReadDevId code = 04 (individual access) this
	 * field must be set to 00". */
	if ((more != 0x00 && more != 0xFF) || (code == 4 && more != 0x00))
		return afail(a, MB_AN_BAD_MORE_FOLLOWS, "more follows", more, false, 0);
	/* "Number of objects 1 Byte", then per object "Object ID 1 Byte", "Object length 1 Byte",
	 * "Object Value Object length": the list fills the rest of the PDU exactly. */
	for (unsigned i = 0; i < n; i++) {
		uint8_t id, len;

		if (bms_cursor_u8(&a->c, &id) != 0 || bms_cursor_u8(&a->c, &len) != 0 ||
		    bms_cursor_skip(&a->c, len) != 0)
			return afail(a, MB_AN_OBJECT_LIST_MISMATCH, "objects present", i, true, n);
	}
	if (bms_cursor_left(&a->c) != 0)
		return afail(a, MB_AN_OBJECT_LIST_MISMATCH, "bytes after the last object",
			     (uint32_t)bms_cursor_left(&a->c), true, 0);
	return 0;
}

/* The answer PDU after a normal (not exception) function code. */
BMS_WUR static int ans_pdu(struct actx *a, uint8_t fc)
{
	switch (fc) {
	case 1: case 2: case 3: case 4: case 23:
		return ans_read(a, fc);
	case 5: case 6: case 21: case 22:
		/* 6.5: "The normal response is an echo of the request, returned after the coil state
		 * has been written." 6.6: "... after the register contents have been written."
		 * 6.15: "The normal response is an echo of the request." 6.16: "The normal response
		 * is an echo of the request. The response is returned after the register has been
		 * written." */
		return aecho(a);
	case 7:
		/* 6.7: "Output Data 1 Byte 0x00 to 0xFF". */
		return arest(a, 1);
	case 8:
		return ans_diagnostics(a);
	case 11:
		/* 6.9: "Status 2 Bytes 0x0000 to 0xFFFF", "Event Count 2 Bytes 0x0000 to 0xFFFF". */
		if (bms_cursor_left(&a->c) != 4)
			return arest(a, 4);
		return ans_status(a) == 0 ? bms_cursor_skip(&a->c, 2) : -1;
	case 12:
		return ans_comm_event_log(a);
	case 15: case 16:
		return ans_write_multiple(a);
	case 17:
		return ans_report_server_id(a);
	case 20:
		return ans_read_file(a);
	case 24:
		return ans_read_fifo(a);
	case 43:
		return ans_mei(a);
	default:
		/* User-defined, reserved and unassigned codes: what they carry is the device's. */
		return bms_cursor_skip(&a->c, bms_cursor_left(&a->c));
	}
}

/* Exception codes, spec 7 "MODBUS Exception Codes": 01 ILLEGAL FUNCTION, 02 ILLEGAL DATA
 * ADDRESS, 03 ILLEGAL DATA VALUE, 04 SERVER DEVICE FAILURE, 05 ACKNOWLEDGE, 06 SERVER DEVICE
 * BUSY, 08 MEMORY PARITY ERROR, 0A GATEWAY PATH UNAVAILABLE, 0B GATEWAY TARGET DEVICE FAILED
 * TO RESPOND. 07 NEGATIVE ACKNOWLEDGE is Modicon PI-MBUS-300's, dropped from V1.1b3 but
 * still defined by libmodbus and pymodbus and sent by older devices: accepted. */
static bool exception_defined(uint8_t code)
{
	return (code >= 0x01 && code <= 0x08) || code == 0x0A || code == 0x0B;
}

enum bms_parse_result modbus_check_answer(const uint8_t *req, size_t req_len, const uint8_t *ans, size_t ans_len,
					  uint64_t *anomalies, struct modbus_answer_fault *fault)
{
	struct modbus_answer_fault scratch;
	struct bms_cursor qc, rc;
	struct actx a;
	uint16_t qtid, qproto, qlength, tid, proto, length;
	uint8_t qunit, qfc, unit, fc;

	memset(&a, 0, sizeof(a));
	a.f = fault ? fault : &scratch;
	memset(a.f, 0, sizeof(*a.f));

	/* The request: a whole ADU of a normal function code, as the guard forwarded it. */
	bms_cursor_init(&qc, req, req_len);
	if (bms_cursor_u16be(&qc, &qtid) != 0 || bms_cursor_u16be(&qc, &qproto) != 0 ||
	    bms_cursor_u16be(&qc, &qlength) != 0 || bms_cursor_u8(&qc, &qunit) != 0 ||
	    bms_cursor_u8(&qc, &qfc) != 0 || qproto != 0 || req_len != 6u + qlength || qfc == 0 || qfc >= 0x80) {
		(void)afail(&a, MB_AN_DIRECTION_MISMATCH, "request length", (uint32_t)req_len, false, 0);
		goto done;
	}
	if (bms_cursor_sub(&qc, bms_cursor_left(&qc), &a.q) != 0)
		goto done;

	/* The answer's MBAP header. TCP guide 3.1.3: "Protocol Identifier ... 0 = MODBUS protocol";
	 * "Length ... Number of following bytes" (unit id + PDU; spec 4.1: a PDU of at most 253
	 * bytes, at least its function code). */
	bms_cursor_init(&rc, ans, ans_len);
	if (bms_cursor_u16be(&rc, &tid) != 0 || bms_cursor_u16be(&rc, &proto) != 0 ||
	    bms_cursor_u16be(&rc, &length) != 0 || bms_cursor_u8(&rc, &unit) != 0) {
		(void)afail(&a, MB_AN_TRUNCATED_HEADER, "ADU length", (uint32_t)ans_len, true, MODBUS_MIN_ADU);
		goto done;
	}
	if (proto != 0) {
		(void)afail(&a, MB_AN_BAD_PROTOCOL_ID, "protocol id", proto, true, 0);
		goto done;
	}
	if (length < 2 || length > MAX_PDU + 1) {
		(void)afail(&a, MB_AN_BAD_LENGTH, "MBAP length", length, false, 0);
		goto done;
	}
	if (ans_len != 6u + length) {
		(void)afail(&a, MB_AN_LENGTH_MISMATCH, "MBAP length", length, true, (uint32_t)(ans_len - 6));
		goto done;
	}
	/* TCP guide 3.1.3: the transaction identifier and the unit identifier are "Recopied by the
	 * server from the received request". */
	if (tid != qtid) {
		(void)afail(&a, MB_AN_RESPONSE_TID_MISMATCH, "transaction id", tid, true, qtid);
		goto done;
	}
	if (unit != qunit) {
		(void)afail(&a, MB_AN_RESPONSE_UNIT_MISMATCH, "unit id", unit, true, qunit);
		goto done;
	}
	if (bms_cursor_u8(&rc, &fc) != 0 || bms_cursor_sub(&rc, bms_cursor_left(&rc), &a.c) != 0)
		goto done; /* length >= 2 was checked: the function code is there */
	/* Spec 4.2: "the server ... returns ... the original function code" in a normal response
	 * and, spec 7, in an exception response "the server sets the MSB of the function code
	 * to 1. This makes the function code value in an exception response exactly 80
	 * hexadecimal higher than the value would be for a normal response." */
	if ((fc & 0x7F) != qfc) {
		(void)afail(&a, MB_AN_RESPONSE_FC_MISMATCH, "function code", fc, true, qfc);
		goto done;
	}
	if (fc & 0x80) {
		uint8_t code;

		/* Spec 7: "Exception Function Code 1 Byte", "Exception Code 1 Byte": nothing more. */
		if (ard8(&a, "exception code", &code) || arest(&a, 0))
			goto done;
		if (!exception_defined(code))
			(void)afail(&a, MB_AN_UNKNOWN_EXCEPTION_CODE, "exception code", code, false, 0);
		goto done;
	}
	if (ans_pdu(&a, fc) != 0) {
		/* every failing path flags why; one that did not must not pass as consistent */
		if ((a.an & MODBUS_ANSWER_BAD_MASK) == 0)
			(void)afail(&a, MB_AN_PDU_TRUNCATED, "PDU length", (uint32_t)a.c.len + 1, false, 0);
		goto done;
	}
	/* Every checker above consumes the PDU or fails; a PDU longer than the function implies
	 * is flagged where that is known, and here for any path that stopped short. */
	if (bms_cursor_left(&a.c) != 0)
		(void)afail(&a, MB_AN_PDU_TRAILING_BYTES, "PDU length", (uint32_t)a.c.len + 1, true,
			    (uint32_t)a.c.off + 1);
done:
	*anomalies = a.an;
	return (a.an & MODBUS_ANSWER_BAD_MASK) ? BMS_MALFORMED : BMS_OK;
}

size_t modbus_encode_exception(uint16_t tid, uint8_t unit, uint8_t fc, uint8_t code, uint8_t out[static 9])
{
	out[0] = (uint8_t)(tid >> 8);
	out[1] = (uint8_t)tid;
	out[2] = 0;
	out[3] = 0;
	out[4] = 0;
	out[5] = 3;
	out[6] = unit;
	out[7] = (uint8_t)(fc | 0x80);
	out[8] = code;
	return 9;
}

/* --- names --- */

static const char *const anomaly_names[64] = {
	[MB_AN_TRUNCATED_HEADER] = "truncated_header",
	[MB_AN_BAD_PROTOCOL_ID] = "bad_protocol_id",
	[MB_AN_BAD_LENGTH] = "bad_length",
	[MB_AN_LENGTH_MISMATCH] = "length_mismatch",
	[MB_AN_PDU_TRUNCATED] = "pdu_truncated",
	[MB_AN_PDU_TRAILING_BYTES] = "pdu_trailing_bytes",
	[MB_AN_INVALID_FUNCTION_CODE] = "invalid_function_code",
	[MB_AN_BYTE_COUNT_MISMATCH] = "byte_count_mismatch",
	[MB_AN_BYTE_COUNT_QUANTITY_MISMATCH] = "byte_count_quantity_mismatch",
	[MB_AN_BAD_BYTE_COUNT] = "bad_byte_count",
	[MB_AN_BAD_QUANTITY] = "bad_quantity",
	[MB_AN_ADDRESS_OVERFLOW] = "address_overflow",
	[MB_AN_BAD_COIL_VALUE] = "bad_coil_value",
	[MB_AN_BAD_DIAG_DATA] = "bad_diag_data",
	[MB_AN_BAD_STATUS_VALUE] = "bad_status_value",
	[MB_AN_BAD_REFERENCE_TYPE] = "bad_reference_type",
	[MB_AN_BAD_FILE_NUMBER] = "bad_file_number",
	[MB_AN_BAD_RECORD_NUMBER] = "bad_record_number",
	[MB_AN_BAD_RECORD_LENGTH] = "bad_record_length",
	[MB_AN_RECORD_OVERFLOW] = "record_overflow",
	[MB_AN_BAD_FIFO_COUNT] = "bad_fifo_count",
	[MB_AN_BAD_DEVICE_ID_CODE] = "bad_device_id_code",
	[MB_AN_BAD_CONFORMITY_LEVEL] = "bad_conformity_level",
	[MB_AN_BAD_MORE_FOLLOWS] = "bad_more_follows",
	[MB_AN_OBJECT_LIST_MISMATCH] = "object_list_mismatch",
	[MB_AN_RESPONSE_FC_MISMATCH] = "response_fc_mismatch",
	[MB_AN_RESPONSE_UNIT_MISMATCH] = "response_unit_mismatch",
	[MB_AN_RESPONSE_COUNT_MISMATCH] = "response_count_mismatch",
	[MB_AN_RESPONSE_ECHO_MISMATCH] = "response_echo_mismatch",
	[MB_AN_RESPONSE_TID_MISMATCH] = "response_tid_mismatch",
	[MB_AN_DIRECTION_MISMATCH] = "direction_mismatch",
	[MB_AN_UNASSIGNED_FUNCTION] = "unassigned_function",
	[MB_AN_USER_DEFINED_FUNCTION] = "user_defined_function",
	[MB_AN_RESERVED_FUNCTION] = "reserved_function",
	[MB_AN_RESERVED_DIAG_SUBFUNCTION] = "reserved_diag_subfunction",
	[MB_AN_RESERVED_MEI_TYPE] = "reserved_mei_type",
	[MB_AN_UNKNOWN_EXCEPTION_CODE] = "unknown_exception_code",
	[MB_AN_BROADCAST_UNIT] = "broadcast_unit",
	[MB_AN_NONZERO_PADDING] = "nonzero_padding",
	[MB_AN_TOO_MANY_TARGETS] = "too_many_targets",
	[MB_AN_DIAG_RESTART_COMMS] = "diag_restart_comms",
	[MB_AN_DIAG_FORCE_LISTEN_ONLY] = "diag_force_listen_only",
	[MB_AN_DIAG_CLEAR_COUNTERS] = "diag_clear_counters",
	[MB_AN_DIAG_CHANGE_DELIMITER] = "diag_change_delimiter",
	[MB_AN_UNEXPECTED_RESPONSE] = "unexpected_response",
};

const char *modbus_anomaly_name(unsigned bit)
{
	return bit < 64 ? anomaly_names[bit] : NULL;
}

int modbus_anomaly_from_name(const char *name)
{
	for (unsigned i = 0; i < 64; i++)
		if (anomaly_names[i] != NULL && strcmp(anomaly_names[i], name) == 0)
			return (int)i;
	return -1;
}

const char *modbus_fc_name(uint8_t fc)
{
	fc &= 0x7F;
	switch (fc) {
	case 1: return "read_coils";
	case 2: return "read_discrete_inputs";
	case 3: return "read_holding_registers";
	case 4: return "read_input_registers";
	case 5: return "write_single_coil";
	case 6: return "write_single_register";
	case 7: return "read_exception_status";
	case 8: return "diagnostics";
	case 11: return "get_comm_event_counter";
	case 12: return "get_comm_event_log";
	case 15: return "write_multiple_coils";
	case 16: return "write_multiple_registers";
	case 17: return "report_server_id";
	case 20: return "read_file_record";
	case 21: return "write_file_record";
	case 22: return "mask_write_register";
	case 23: return "read_write_multiple_registers";
	case 24: return "read_fifo_queue";
	case 43: return "encapsulated_interface_transport";
	default: break;
	}
	switch (fc_kind(fc)) {
	case FC_USER: return "user_defined";
	case FC_RESERVED: return "reserved";
	case FC_UNASSIGNED: return "unassigned";
	default: return "invalid";
	}
}

const char *modbus_exception_name(uint8_t code)
{
	switch (code) {
	case 0x01: return "illegal_function";
	case 0x02: return "illegal_data_address";
	case 0x03: return "illegal_data_value";
	case 0x04: return "server_device_failure";
	case 0x05: return "acknowledge";
	case 0x06: return "server_device_busy";
	case 0x07: return "negative_acknowledge"; /* Modicon PI-MBUS-300; not in V1.1b3 */
	case 0x08: return "memory_parity_error";
	case 0x0A: return "gateway_path_unavailable";
	case 0x0B: return "gateway_target_device_failed_to_respond";
	default: return "unknown";
	}
}

const char *modbus_diag_name(uint16_t sub)
{
	switch (sub) {
	case 0x00: return "return_query_data";
	case 0x01: return "restart_communications_option";
	case 0x02: return "return_diagnostic_register";
	case 0x03: return "change_ascii_input_delimiter";
	case 0x04: return "force_listen_only_mode";
	case 0x0A: return "clear_counters_and_diagnostic_register";
	case 0x0B: return "return_bus_message_count";
	case 0x0C: return "return_bus_communication_error_count";
	case 0x0D: return "return_bus_exception_error_count";
	case 0x0E: return "return_server_message_count";
	case 0x0F: return "return_server_no_response_count";
	case 0x10: return "return_server_nak_count";
	case 0x11: return "return_server_busy_count";
	case 0x12: return "return_bus_character_overrun_count";
	case 0x14: return "clear_overrun_counter_and_flag";
	default: return "reserved";
	}
}

const char *modbus_mei_name(uint8_t mei)
{
	switch (mei) {
	case 13: return "canopen_general_reference";
	case 14: return "read_device_identification";
	default: return "reserved";
	}
}
