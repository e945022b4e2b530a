/* fuzz/fuzz_bacnet.c: the BACnet/IP decoder over one arbitrary datagram, and the deny encoders
 * over whatever confirmed request it accepts.
 *
 * Invariants that must hold for any input abort the run: the verdict agrees with the anomaly
 * bits, every bit has a name, targets are bounded and borrow only from the datagram, and a deny
 * reply built for an accepted confirmed request decodes as that reply. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/bacnet.h"
#include "parsers/bacnet_tag.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct bms_request *r, enum bms_parse_result res, const uint8_t *d, size_t n)
{
	bool fatal = (r->anomalies & ~BACNET_INFO_ANOMALIES) != 0 ||
		     ((r->anomalies & BACNET_AN(BACNET_AN_TOO_MANY_TARGETS)) && r->op != BMS_OP_READ);

	if (res != BMS_OK && res != BMS_MALFORMED)
		abort();
	if ((res == BMS_MALFORMED) != fatal)
		abort();
	if (r->proto != BMS_PROTO_BACNET || r->ntargets > BMS_MAX_TARGETS || r->op >= BMS_OP_COUNT)
		abort();
	for (unsigned b = 0; b < 64; b++)
		if ((r->anomalies & BACNET_AN(b)) && bacnet_anomaly_name(b) == NULL)
			abort();
	for (unsigned i = 0; i < r->ntargets; i++) {
		const struct bms_target *t = &r->targets[i];
		if (t->space != BMS_SPACE_BACNET_OBJECT || t->priority > 16 || t->object_type > 1023)
			abort();
		if (t->instance > BACNET_MAX_INSTANCE && t->instance != BMS_NO_INDEX)
			abort();
		if (t->property > BACNET_MAX_PROPERTY && t->property != BMS_NO_INDEX)
			abort();
		if (t->data_len && (t->data < d || t->data + t->data_len > d + n))
			abort();
	}
	if (r->raw.bacnet.dadr_len > BACNET_MAX_MAC || r->raw.bacnet.sadr_len > BACNET_MAX_MAC)
		abort();
}

static void check_reply(const struct bms_request *req, int rc, const uint8_t *out, size_t len, uint8_t pdu_type)
{
	struct bms_request rep;

	if (rc == -ENOTSUP && pdu_type == BACNET_PDU_ERROR &&
	    (req->raw.bacnet.service == BACNET_SVC_SUBSCRIBE_COV_PROPERTY_MULTIPLE ||
	     (req->raw.bacnet.service == BACNET_SVC_WRITE_PROPERTY_MULTIPLE && req->ntargets == 0)))
		return;
	if (rc != 0)
		abort();
	if (bacnet_decode(out, len, &rep) != BMS_OK)
		abort();
	if (rep.raw.bacnet.pdu_type != pdu_type || rep.raw.bacnet.invoke_id != req->raw.bacnet.invoke_id ||
	    rep.dir != BMS_DIR_RESPONSE)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bms_request r;
	enum bms_parse_result res = bacnet_decode(data, size, &r);
	uint8_t out[64];
	size_t len = 0;

	check(&r, res, data, size);
	if (bacnet_tag_validate(data, size) > 0)
		abort();
	if (res == BMS_OK && r.raw.bacnet.has_apdu && r.raw.bacnet.pdu_type == BACNET_PDU_CONFIRMED) {
		int rc; /* each call completes before `len` is read */

		rc = bacnet_encode_error(&r, BACNET_ERROR_CLASS_SECURITY, BACNET_ERROR_CODE_WRITE_ACCESS_DENIED,
					 out, sizeof(out), &len);
		check_reply(&r, rc, out, len, BACNET_PDU_ERROR);
		rc = bacnet_encode_reject(&r, 9, out, sizeof(out), &len);
		check_reply(&r, rc, out, len, BACNET_PDU_REJECT);
		rc = bacnet_encode_abort(&r, 4, out, sizeof(out), &len);
		check_reply(&r, rc, out, len, BACNET_PDU_ABORT);
	}
	return 0;
}
