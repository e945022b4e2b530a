/* fuzz/fuzz_modbus.c: the Modbus/TCP framer and decoder over an arbitrary byte stream.
 *
 * The input is a TCP stream: frames are cut the way the gateway cuts them, in
 * chunks whose sizes come from the input itself, and each frame is decoded as
 * a request and as a response; each request is checked against the response
 * that follows it. Invariants that must hold for any input abort the run. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/modbus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_request_model(const struct bms_request *r, enum bms_parse_result res, const uint8_t *frame,
				size_t len)
{
	if (res != BMS_OK && res != BMS_MALFORMED)
		abort(); /* decode never asks for more: it is given whole frames */
	if ((res == BMS_MALFORMED) != ((r->anomalies & MODBUS_MALFORMED_MASK) != 0))
		abort();
	if (r->ntargets > BMS_MAX_TARGETS || (res == BMS_MALFORMED && r->ntargets != 0))
		abort();
	for (unsigned b = 0; b < 64; b++)
		if ((r->anomalies & (1ull << b)) && modbus_anomaly_name(b) == NULL)
			abort();
	for (unsigned i = 0; i < r->ntargets; i++) {
		const struct bms_target *t = &r->targets[i];
		if (t->data_len && (t->data < frame || t->data + t->data_len > frame + len))
			abort();
		/* Ranges that a policy reads must lie in the 16-bit address space. */
		if (t->space != BMS_SPACE_FILE_RECORD && (uint64_t)t->start + t->count > 65536u)
			abort();
	}
	if (r->raw.modbus.pdu_len &&
	    (r->raw.modbus.pdu < frame || r->raw.modbus.pdu + r->raw.modbus.pdu_len > frame + len))
		abort();
	(void)modbus_fc_name(r->raw.modbus.fc);
	(void)modbus_exception_name(r->raw.modbus.exception);
	(void)modbus_diag_name(r->raw.modbus.sub);
}

/* Cuts and decodes frames from `data`; returns when the stream ends or breaks. */
static void run_stream(const uint8_t *data, size_t size, uint8_t **prev_frame)
{
	static struct bms_request prev_req, req, rsp;
	uint8_t rx[MODBUS_MAX_ADU * 2];
	size_t off = 0, have = 0;
	unsigned chunk = 0;

	while (off < size) {
		/* Feed the next chunk: 1..64 bytes, varied by position. */
		size_t n = 1 + (data[(chunk++ * 7) % size] & 63);
		if (n > size - off)
			n = size - off;
		if (n > sizeof(rx) - have)
			n = sizeof(rx) - have;
		memcpy(rx + have, data + off, n);
		have += n;
		off += n;
		for (;;) {
			size_t flen = 0;
			uint64_t an = 0;
			enum bms_parse_result fr = modbus_frame(rx, have, &flen, &an);

			if (fr == BMS_NEED_MORE) {
				if (flen <= have || flen > MODBUS_MAX_ADU || an != 0)
					abort();
				break;
			}
			if (fr == BMS_MALFORMED) {
				if (an == 0 || (an & ~MODBUS_MALFORMED_MASK) != 0)
					abort();
				/* The gateway drops the connection; the audit decodes what is there. */
				enum bms_parse_result res = modbus_decode(rx, have, BMS_DIR_REQUEST, &req);
				check_request_model(&req, res, rx, have);
				if (res != BMS_MALFORMED)
					abort();
				return;
			}
			if (flen < MODBUS_MIN_ADU || flen > have || an != 0)
				abort();
			/* An exact-size copy, so that ASan sees a read past the frame. */
			uint8_t *frame = malloc(flen);
			uint64_t pan = 0;
			if (frame == NULL)
				abort();
			memcpy(frame, rx, flen);
			enum bms_parse_result rq = modbus_decode(frame, flen, BMS_DIR_REQUEST, &req);
			check_request_model(&req, rq, frame, flen);
			enum bms_parse_result rs = modbus_decode(frame, flen, BMS_DIR_RESPONSE, &rsp);
			check_request_model(&rsp, rs, frame, flen);
			if (rs == BMS_OK && *prev_frame != NULL) {
				enum bms_parse_result pr = modbus_check_response(&prev_req, &rsp, &pan);
				if ((pr == BMS_MALFORMED) != ((pan & MODBUS_MALFORMED_MASK) != 0))
					abort();
				if (pr == BMS_OK)
					modbus_pair_response(&prev_req, &rsp);
			}
			/* The request borrows from its frame: keep that frame alive with it. */
			if (rq == BMS_OK) {
				free(*prev_frame);
				*prev_frame = frame;
				prev_req = req;
			} else {
				free(frame);
			}
			memmove(rx, rx + flen, have - flen);
			have -= flen;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *prev_frame = NULL;

	if (size > 0)
		run_stream(data, size, &prev_frame);
	free(prev_frame);
	return 0;
}
