/* parsers/modbus_encode.c: request ADUs as a client would send them (pure).
 *
 * For `policy explain`, the tests and the simulators' peers: what is explained
 * or sent is a real frame that then goes through the real decoder. The encoder
 * is faithful, not judging: it writes any 16-bit start and quantity (an
 * out-of-spec quantity is for the decoder to flag); it refuses only what cannot
 * be framed (a byte count over 255, an ADU over 260 bytes, data shorter than
 * the quantity needs).
 *
 *  off size field (Modbus Messaging on TCP/IP V1.0b, 3.1.3; Application Protocol V1.1b3, 6)
 *  0   2    transaction id
 *  2   2    protocol id 0
 *  4   2    length: unit + PDU
 *  6   1    unit id
 *  7   1    function code
 *  8   ..   FC 1-4:  start(2) quantity(2)
 *           FC 5:    address(2) value(2) FF00 / 0000
 *           FC 6:    address(2) value(2)
 *           FC 15/16: start(2) quantity(2) byte count(1) values
 *           FC 23:   read start(2) read quantity(2) write start(2) write quantity(2) byte count(1) values
 */
#include <errno.h>
#include <string.h>

#include "parsers/modbus.h"

static void put16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

int modbus_encode_request(uint16_t tid, uint8_t unit, const struct modbus_request_spec *spec, uint8_t *out,
			  size_t cap, size_t *out_len)
{
	uint8_t pdu[MODBUS_MAX_ADU];
	size_t n = 0;
	size_t bytes = 0;
	pdu[n++] = spec->fc;
	switch (spec->fc) {
	case 1: case 2: case 3: case 4:
		put16(pdu + n, spec->start), put16(pdu + n + 2, spec->count), n += 4;
		break;
	case 5:
		put16(pdu + n, spec->start), put16(pdu + n + 2, spec->coil_on ? 0xFF00 : 0x0000), n += 4;
		break;
	case 6:
		if (spec->data_len < 2)
			return -EINVAL;
		put16(pdu + n, spec->start), n += 2;
		pdu[n++] = spec->data[0], pdu[n++] = spec->data[1];
		break;
	case 15: case 16: case 23: {
		uint16_t wcount = spec->fc == 23 ? spec->write_count : spec->count;
		bytes = spec->fc == 15 ? ((size_t)wcount + 7) / 8 : 2 * (size_t)wcount;
		if (bytes > 255 || spec->data_len < bytes)
			return -EINVAL;
		if (spec->fc == 23) {
			put16(pdu + n, spec->start), put16(pdu + n + 2, spec->count), n += 4;
			put16(pdu + n, spec->write_start), put16(pdu + n + 2, spec->write_count), n += 4;
		} else {
			put16(pdu + n, spec->start), put16(pdu + n + 2, spec->count), n += 4;
		}
		if (n + 1 + bytes > MODBUS_MAX_ADU - 7)
			return -EINVAL;
		pdu[n++] = (uint8_t)bytes;
		if (bytes)
			memcpy(pdu + n, spec->data, bytes);
		n += bytes;
		break;
	}
	default:
		return -EINVAL;
	}
	if (cap < 7 + n)
		return -ENOSPC;
	put16(out, tid);
	put16(out + 2, 0);
	put16(out + 4, (uint16_t)(n + 1));
	out[6] = unit;
	memcpy(out + 7, pdu, n);
	*out_len = 7 + n;
	return 0;
}
