/* audit/record.c: one event -> the JSON body of its record line.
 *
 * The writer wraps the body as {"seq":N,<body>,"prev":"<hex>"}. Field names
 * and their order are fixed here and documented in docs/audit-format.md.
 * Every string goes through audit_buf_json_str (escaping, UTF-8 checked).
 * The request model holds no secret (a BACnet password is only flagged as
 * present); nothing here adds one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "audit/audit_int.h"
#include "parsers/bacnet.h"
#include "parsers/modbus.h"

static const char *const kind_names[AUDIT_KIND_COUNT] = {
	[AUDIT_DECISION] = "decision",
	[AUDIT_MALFORMED] = "malformed",
	[AUDIT_RESULT] = "result",
	[AUDIT_START] = "start",
	[AUDIT_STOP] = "stop",
	[AUDIT_POLICY_LOADED] = "policy_loaded",
	[AUDIT_CERTS_RELOADED] = "certs_reloaded",
	[AUDIT_CONN_ACCEPTED] = "conn_accepted",
	[AUDIT_CONN_REFUSED] = "conn_refused",
	[AUDIT_CONN_CLOSED] = "conn_closed",
	[AUDIT_LOG_RECOVERED] = "log_recovered",
	[AUDIT_LOG_DROPPED] = "log_dropped",
	[AUDIT_RELOAD_FAILED] = "reload_failed",
};

static const char *const result_names[AUDIT_RESULT_COUNT] = {
	[AUDIT_RESULT_NONE] = "none",
	[AUDIT_RESULT_PENDING] = "pending",
	[AUDIT_RESULT_OK] = "ok",
	[AUDIT_RESULT_EXCEPTION] = "exception",
	[AUDIT_RESULT_TIMEOUT] = "timeout",
	[AUDIT_RESULT_DEVICE_DOWN] = "device_down",
	[AUDIT_RESULT_NOT_FORWARDED] = "not_forwarded",
	[AUDIT_RESULT_BAD_ANSWER] = "bad_answer",
};

const char *audit_kind_name(enum audit_kind k)
{
	if ((unsigned)k >= AUDIT_KIND_COUNT || !kind_names[k])
		return "invalid";
	return kind_names[k];
}

const char *audit_result_name(enum audit_result r)
{
	if ((unsigned)r >= AUDIT_RESULT_COUNT)
		return "invalid";
	return result_names[r];
}

static void put_address(struct audit_buf *b, const struct bms_identity *id)
{
	char host[INET6_ADDRSTRLEN] = "";
	char out[INET6_ADDRSTRLEN + 16];
	const struct sockaddr_storage *ss = &id->addr;
	if (id->addr_len == 0 || ss->ss_family == AF_UNSPEC) {
		audit_buf_json_str(b, "");
		return;
	}
	if (ss->ss_family == AF_INET && id->addr_len >= sizeof(struct sockaddr_in)) {
		/* dotted quad by hand: inet_ntop formats with sprintf, and this runs per record */
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		const uint8_t *a = (const uint8_t *)&sin->sin_addr.s_addr;
		struct audit_buf ob;
		audit_buf_init(&ob, out, sizeof(out) - 1);
		for (int i = 0; i < 4; i++) {
			if (i)
				audit_buf_lit(&ob, ".");
			audit_buf_u64(&ob, a[i]);
		}
		audit_buf_kv_u64(&ob, ":", ntohs(sin->sin_port));
		out[ob.len] = '\0';
	} else if (ss->ss_family == AF_INET6 && id->addr_len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(out, sizeof(out), "[%s]:%u", host, ntohs(sin6->sin6_port));
	} else if (ss->ss_family == AF_UNIX) {
		snprintf(out, sizeof(out), "unix");
	} else {
		snprintf(out, sizeof(out), "family-%u", (unsigned)ss->ss_family);
	}
	audit_buf_json_str(b, out);
}

static void put_peer_fields(struct audit_buf *b, const struct bms_identity *id)
{
	/* subject and role are fixed-size arrays: never read past them even if unterminated */
	audit_buf_lit(b, ",\"peer\":{\"subject\":");
	audit_buf_json_strn(b, id->subject, strnlen(id->subject, sizeof(id->subject)));
	if (id->has_fingerprint) {
		char hex[2 * 32 + 1];
		audit_hex(id->fingerprint, sizeof(id->fingerprint), hex);
		audit_buf_lit(b, ",\"fingerprint\":\"");
		audit_buf_put(b, hex, 64);
		audit_buf_put(b, "\"", 1);
	}
	audit_buf_lit(b, ",\"role\":");
	audit_buf_json_strn(b, id->role, strnlen(id->role, sizeof(id->role)));
	audit_buf_lit(b, ",\"address\":");
	put_address(b, id);
	audit_buf_puts(b, id->authenticated ? ",\"authenticated\":true}" : ",\"authenticated\":false}");
}

/* The peer object of the last identity this thread formatted. A connection's
 * records all carry the same one, and escaping its subject, the hex of its
 * fingerprint and its address are a third of a record's formatting. It is
 * used again only when every field it is made of is equal (compared, not
 * trusted by pointer: the caller may reuse or change its struct). */
#define PEER_CACHE_MAX 640
static __thread struct {
	bool valid;
	struct bms_identity id; /* the fields put_peer_fields reads; the rest zero */
	size_t len;
	char json[PEER_CACHE_MAX];
} peer_cache;

/* Copies of the fields put_peer_fields reads, everything else zero, so that
 * two identities that format alike compare equal with memcmp. */
static void peer_key(const struct bms_identity *id, struct bms_identity *key)
{
	memset(key, 0, sizeof(*key));
	key->authenticated = id->authenticated;
	memcpy(key->subject, id->subject, strnlen(id->subject, sizeof(id->subject)));
	memcpy(key->role, id->role, strnlen(id->role, sizeof(id->role)));
	key->has_fingerprint = id->has_fingerprint;
	if (id->has_fingerprint)
		memcpy(key->fingerprint, id->fingerprint, sizeof(key->fingerprint));
	key->addr_len = id->addr_len <= sizeof(key->addr) ? id->addr_len : sizeof(key->addr);
	memcpy(&key->addr, &id->addr, key->addr_len);
}

static bool peer_cached(const struct bms_identity *id)
{
	const struct bms_identity *c = &peer_cache.id;
	if (!peer_cache.valid || c->authenticated != id->authenticated || c->has_fingerprint != id->has_fingerprint ||
	    c->addr_len != id->addr_len)
		return false;
	size_t sl = strnlen(id->subject, sizeof(id->subject)), rl = strnlen(id->role, sizeof(id->role));
	/* the cached copies are zero after their text: equal lengths follow from equal bytes and a zero */
	return (sl == sizeof(c->subject) || c->subject[sl] == '\0') && memcmp(c->subject, id->subject, sl) == 0 &&
	       (rl == sizeof(c->role) || c->role[rl] == '\0') && memcmp(c->role, id->role, rl) == 0 &&
	       (!id->has_fingerprint || memcmp(c->fingerprint, id->fingerprint, sizeof(c->fingerprint)) == 0) &&
	       (id->addr_len > sizeof(c->addr) || memcmp(&c->addr, &id->addr, id->addr_len) == 0);
}

static void put_peer(struct audit_buf *b, const struct bms_identity *id)
{
	if (peer_cached(id)) {
		audit_buf_put(b, peer_cache.json, peer_cache.len);
		return;
	}
	size_t start = b->len;
	put_peer_fields(b, id);
	size_t len = b->len - start;
	peer_cache.valid = false;
	/* an address shorter than its family field is read past its length: not cached */
	if (b->overflow || len > sizeof(peer_cache.json) || id->addr_len > sizeof(id->addr) ||
	    (id->addr_len != 0 && id->addr_len < sizeof(sa_family_t)))
		return;
	peer_key(id, &peer_cache.id);
	memcpy(peer_cache.json, b->p + start, len);
	peer_cache.len = len;
	peer_cache.valid = true;
}

static void put_value(struct audit_buf *b, const struct bms_value *v)
{
	switch (v->type) {
	case BMS_VAL_NULL: audit_buf_lit(b, "null"); break;
	case BMS_VAL_BOOL: audit_buf_puts(b, v->b ? "true" : "false"); break;
	case BMS_VAL_UNSIGNED:
	case BMS_VAL_ENUM: audit_buf_u64(b, v->u); break;
	case BMS_VAL_SIGNED: audit_buf_printf(b, "%lld", (long long)v->i); break;
	case BMS_VAL_REAL:
		/* JSON has no NaN or infinity: name them as strings */
		if (isnan(v->d))
			audit_buf_lit(b, "\"NaN\"");
		else if (isinf(v->d))
			audit_buf_puts(b, v->d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
		else
			audit_buf_printf(b, "%.17g", v->d);
		break;
	default: audit_buf_lit(b, "\"(not numeric)\""); break;
	}
}

/* Written data as numbers: registers as 16-bit words, coils as bits. Other
 * data as hex. Bounded by data_len (<= one frame). */
static void put_data(struct audit_buf *b, const struct bms_request *req, const struct bms_target *t)
{
	if (req->proto == BMS_PROTO_MODBUS && req->raw.modbus.fc == 22 && t->data_len == 4) {
		audit_buf_printf(b, ",\"and_mask\":%u,\"or_mask\":%u", (unsigned)(t->data[0] << 8 | t->data[1]),
				 (unsigned)(t->data[2] << 8 | t->data[3]));
		return;
	}
	if (t->space == BMS_SPACE_COIL) {
		uint32_t n = t->count;
		if (n > (uint32_t)t->data_len * 8)
			n = (uint32_t)t->data_len * 8;
		audit_buf_lit(b, ",\"values\":[");
		for (uint32_t i = 0; i < n; i++)
			audit_buf_puts(b, i ? ((t->data[i / 8] >> (i % 8)) & 1 ? ",1" : ",0")
					    : ((t->data[0] & 1) ? "1" : "0"));
		audit_buf_lit(b, "]");
		return;
	}
	if (t->space == BMS_SPACE_HOLDING_REGISTER || t->space == BMS_SPACE_INPUT_REGISTER ||
	    t->space == BMS_SPACE_FILE_RECORD) {
		audit_buf_lit(b, ",\"values\":[");
		for (uint16_t i = 0; i + 1 < t->data_len; i += 2) {
			if (i)
				audit_buf_put(b, ",", 1);
			audit_buf_u64(b, (unsigned)(t->data[i] << 8 | t->data[i + 1]));
		}
		audit_buf_lit(b, "]");
		return;
	}
	char hex[2 * 64 + 1];
	size_t n = t->data_len > 64 ? 64 : t->data_len;
	audit_hex(t->data, n, hex);
	audit_buf_printf(b, ",\"data\":\"%s%s\"", hex, t->data_len > 64 ? "..." : "");
}

static void put_target(struct audit_buf *b, const struct bms_request *req, const struct bms_target *t)
{
	audit_buf_lit(b, "{\"space\":");
	audit_buf_json_str(b, bms_space_name((enum bms_space)t->space));
	if (t->space == BMS_SPACE_BACNET_OBJECT) {
		audit_buf_kv_u64(b, ",\"object_type\":", t->object_type);
		audit_buf_kv_u64(b, ",\"instance\":", t->instance);
		audit_buf_kv_u64(b, ",\"property\":", t->property);
		if (t->array_index != BMS_NO_INDEX)
			audit_buf_kv_u64(b, ",\"index\":", t->array_index);
		if (t->priority)
			audit_buf_kv_u64(b, ",\"priority\":", t->priority);
	} else if (t->space == BMS_SPACE_FILE_RECORD) {
		audit_buf_printf(b, ",\"file\":%u,\"start\":%u,\"count\":%u", (unsigned)t->instance, (unsigned)t->start,
				 (unsigned)t->count);
	} else if (t->space != BMS_SPACE_NONE) {
		audit_buf_kv_u64(b, ",\"start\":", t->start);
		audit_buf_kv_u64(b, ",\"count\":", t->count);
	}
	if (t->data && t->data_len)
		put_data(b, req, t);
	else if (t->has_value) {
		audit_buf_lit(b, ",\"value\":");
		put_value(b, &t->value);
	}
	if (t->data && t->data_len && t->has_value && t->space == BMS_SPACE_BACNET_OBJECT) {
		audit_buf_lit(b, ",\"value\":");
		put_value(b, &t->value);
	}
	audit_buf_lit(b, "}");
}

/* ,"anomalies":["name",...]: the bits of one protocol's anomaly set, by name. */
static void put_anomalies(struct audit_buf *b, unsigned proto, uint64_t anomalies)
{
	audit_buf_lit(b, ",\"anomalies\":[");
	int first = 1;
	for (unsigned bit = 0; bit < 64; bit++) {
		if (!(anomalies & (1ull << bit)))
			continue;
		const char *name = bms_anomaly_name((enum bms_proto)proto, bit);
		if (!first)
			audit_buf_lit(b, ",");
		first = 0;
		if (name)
			audit_buf_json_str(b, name);
		else
			audit_buf_printf(b, "\"bit%u\"", bit);
	}
	audit_buf_lit(b, "]");
}

static void put_request(struct audit_buf *b, const struct bms_request *req)
{
	if (req->proto == BMS_PROTO_MODBUS) {
		audit_buf_kv_u64(b, ",\"unit\":", req->unit);
	}
	audit_buf_lit(b, ",\"op\":");
	audit_buf_json_str(b, bms_op_name((enum bms_op)req->op));
	if (req->proto == BMS_PROTO_MODBUS) {
		audit_buf_kv_u64(b, ",\"fc\":", req->raw.modbus.fc);
		audit_buf_lit(b, ",\"function\":");
		audit_buf_json_str(b, modbus_fc_name(req->raw.modbus.fc));
		if (req->raw.modbus.has_sub)
			audit_buf_kv_u64(b, ",\"sub\":", req->raw.modbus.sub);
	} else if (req->proto == BMS_PROTO_BACNET && req->raw.bacnet.has_service) {
		/* PDU type 0 = confirmed request, 1 = unconfirmed */
		const char *name = req->raw.bacnet.pdu_type == 1
					   ? bacnet_unconfirmed_service_name(req->raw.bacnet.service)
					   : bacnet_confirmed_service_name(req->raw.bacnet.service);
		audit_buf_lit(b, ",\"service\":");
		audit_buf_json_str(b, name);
		audit_buf_kv_u64(b, ",\"service_choice\":", req->raw.bacnet.service);
		if (req->raw.bacnet.password_present)
			audit_buf_lit(b, ",\"password_present\":true"); /* the value is never kept */
	}
	unsigned n = req->ntargets > BMS_MAX_TARGETS ? BMS_MAX_TARGETS : req->ntargets;
	if (n) {
		audit_buf_lit(b, ",\"target\":[");
		for (unsigned i = 0; i < n; i++) {
			if (i)
				audit_buf_lit(b, ",");
			put_target(b, req, &req->targets[i]);
		}
		audit_buf_lit(b, "]");
	}
	if (req->ntargets > BMS_MAX_TARGETS)
		audit_buf_kv_u64(b, ",\"targets_total\":", req->ntargets);
	if (req->anomalies)
		put_anomalies(b, req->proto, req->anomalies);
}

static const char *proto_name(unsigned p)
{
	switch (p) {
	case BMS_PROTO_MODBUS: return "modbus";
	case BMS_PROTO_BACNET: return "bacnet";
	default: return NULL;
	}
}

int audit_format_body(const struct audit_event *ev, const char *node, int64_t time_us, struct audit_buf *b)
{
	if (ev->kind == 0 || ev->kind >= AUDIT_KIND_COUNT || ev->result >= AUDIT_RESULT_COUNT)
		return -EINVAL;
	char ts[AUDIT_TIME_LEN + 1];
	audit_format_time(time_us, ts);
	audit_buf_lit(b, "\"time\":\"");
	audit_buf_put(b, ts, AUDIT_TIME_LEN);
	audit_buf_lit(b, "\",\"node\":");
	audit_buf_json_str(b, node);
	audit_buf_lit(b, ",\"kind\":\"");
	audit_buf_puts(b, audit_kind_name((enum audit_kind)ev->kind));
	audit_buf_put(b, "\"", 1);
	if (ev->peer)
		put_peer(b, ev->peer);
	unsigned proto = ev->req ? ev->req->proto : ev->proto;
	if (proto_name(proto))
	{
		audit_buf_lit(b, ",\"proto\":\"");
		audit_buf_puts(b, proto_name(proto));
		audit_buf_put(b, "\"", 1);
	}
	if (ev->device) {
		audit_buf_lit(b, ",\"device\":");
		audit_buf_json_strn(b, ev->device, strnlen(ev->device, 256));
	}
	if (ev->req)
		put_request(b, ev->req);
	if (ev->kind == AUDIT_DECISION) {
		/* no decision given is a deny: the zero value of bms_decision fails closed too */
		const struct bms_decision *d = ev->decision;
		audit_buf_lit(b, ",\"decision\":");
		audit_buf_json_str(b, bms_verdict_name(d ? (enum bms_verdict)d->verdict : BMS_VERDICT_DENY));
		if (d && d->rule_file) {
			char rule[512];
			struct audit_buf rb;
			audit_buf_init(&rb, rule, sizeof(rule));
			audit_buf_put(&rb, d->rule_file, strnlen(d->rule_file, sizeof(rule) - 24));
			audit_buf_kv_u64(&rb, ":", d->rule_line);
			audit_buf_lit(b, ",\"rule\":");
			audit_buf_json_strn(b, rule, rb.len);
		} else {
			audit_buf_lit(b, ",\"rule\":\"default\"");
		}
		if (d) {
			audit_buf_lit(b, ",\"reason\":");
			audit_buf_json_strn(b, d->reason, strnlen(d->reason, sizeof(d->reason)));
		}
	} else if (ev->kind == AUDIT_MALFORMED) {
		audit_buf_lit(b, ",\"decision\":\"malformed\"");
	}
	if (ev->kind == AUDIT_RESULT)
		audit_buf_kv_u64(b, ",\"ref\":", ev->ref);
	if (ev->result != AUDIT_RESULT_NONE) {
		audit_buf_lit(b, ",\"result\":\"");
		audit_buf_puts(b, audit_result_name((enum audit_result)ev->result));
		audit_buf_put(b, "\"", 1);
		if (ev->result == AUDIT_RESULT_EXCEPTION)
			audit_buf_kv_u64(b, ",\"exception\":", ev->exception);
	}
	/* what was wrong with a device's answer; a result has no request of its own to carry it */
	if (ev->kind == AUDIT_RESULT && ev->anomalies && !ev->req)
		put_anomalies(b, proto, ev->anomalies);
	if (ev->kind == AUDIT_DECISION || ev->kind == AUDIT_MALFORMED || ev->kind == AUDIT_RESULT)
		audit_buf_kv_u64(b, ",\"latency_us\":", ev->latency_us);
	if (ev->detail) {
		/* free text from the caller: bounded so that a record always fits a line */
		audit_buf_lit(b, ",\"detail\":");
		audit_buf_json_strn(b, ev->detail, strnlen(ev->detail, 1024));
	}
	if (ev->hash) {
		audit_buf_lit(b, ",\"hash\":");
		audit_buf_json_strn(b, ev->hash, strnlen(ev->hash, 256));
	}
	if (ev->prev_hash) {
		audit_buf_lit(b, ",\"prev_hash\":");
		audit_buf_json_strn(b, ev->prev_hash, strnlen(ev->prev_hash, 256));
	}
	return b->overflow ? -ENOSPC : 0;
}
