/* capture/engine.c: one packet at a time from link layer to decoded PDUs.
 *
 * Modbus/TCP: a segment to or from a Modbus port goes through reassembly; each
 * direction's in-order bytes are cut into ADUs by modbus_frame. Bytes to the
 * server port are requests, bytes from it responses. A partial ADU waits in a
 * per-direction buffer of MODBUS_MAX_ADU bytes (the only copy on this path).
 * After a gap, or after bytes that can never frame, the direction resynchronises:
 * it skips to the first offset where a whole frame parses and is followed by a
 * plausible one (or ends the delivered data), so one lost segment costs at most
 * the PDUs it touched.
 * BACnet/IP: a UDP datagram to or from a BACnet port is decoded whole.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "capture/engine.h"
#include "parsers/bacnet.h"
#include "parsers/modbus.h"

struct mb_dir {
	uint16_t pend_len;
	uint8_t resync;              /* looking for the start of a frame */
	uint8_t kind;                /* 0 not known yet, 1 requests (to a server port), 2 responses */
	unsigned events;             /* CAP_AN_* for the next PDU of this direction */
	uint8_t sink_scratch[CAP_FLOW_SCRATCH]; /* cap_pdu.flow_scratch */
};

/* A request waiting for its response, kept as bytes and decoded again when the response comes:
 * 8 per flow (a client rarely has more outstanding), the oldest overwritten beyond that.
 * What a response is matched on sits apart, in one array, so that the search reads two
 * cache lines instead of one per slot. */
#define MB_PENDING 8
#define MB_PAIR_TARGETS 2 /* targets kept decoded; a request with more is decoded again */
/* used (0 free, 1 waiting) | request direction << 8 |
 * transaction id << 16: one compare finds a waiting request of the other direction. */
#define MB_TAG(used, dir, tid) ((uint32_t)(used) | (uint32_t)(dir) << 8 | (uint32_t)(tid) << 16)
struct mb_match {
	uint32_t tag[MB_PENDING];
	uint64_t frame[MB_PENDING];
};
struct mb_pending {
	uint8_t op;
	uint16_t len;
	uint16_t ntargets;
	uint32_t unit;
	uint64_t anomalies;
	struct modbus_fields raw; /* pointers rebased into adu[] */
	struct bms_target targets[MB_PAIR_TARGETS];
	uint8_t adu[MODBUS_MAX_ADU];
};

struct mb_flow {
	struct mb_dir d[2];
	uint8_t next_slot;
	struct mb_match match;
	uint8_t partial[2][MODBUS_MAX_ADU]; /* a partial ADU per direction (d[].pend_len bytes) */
	struct mb_pending pend[MB_PENDING];
};

struct cap_engine {
	struct cap_config cfg;
	uint8_t modbus_map[65536 / 8];
	uint8_t bacnet_map[65536 / 8];
	struct reasm *reasm; /* owned */
	cap_sink_fn sink;
	void *user;
	struct cap_stats st;
	int64_t sec;         /* the packet being processed */
	int32_t usec;
	struct bms_request req;
	struct bms_request paired; /* the request a response answers, decoded again */
};

static const char *const cap_an_names[CAP_AN_COUNT] = {
	"tcp_gap", "tcp_overlap_differs", "tcp_memcap", "stream_resync", "stream_truncated", "packet_truncated",
};

const char *cap_anomaly_name(unsigned bit)
{
	return bit < CAP_AN_COUNT ? cap_an_names[bit] : NULL;
}

static int port_in(const uint8_t *map, uint16_t port)
{
	return (map[port >> 3] >> (port & 7)) & 1;
}

void cap_config_default(struct cap_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->reasm.max_flows = 4096;
	cfg->reasm.max_flow_bytes = 64 * 1024;
	cfg->reasm.max_total_bytes = 16 * 1024 * 1024;
	cfg->reasm.history_bytes = 1024;
}

int cap_config_add_port(struct cap_config *cfg, enum bms_proto proto, uint16_t port)
{
	uint16_t *ports = proto == BMS_PROTO_MODBUS ? cfg->modbus_ports : cfg->bacnet_ports;
	size_t *n = proto == BMS_PROTO_MODBUS ? &cfg->n_modbus_ports : &cfg->n_bacnet_ports;

	if (proto != BMS_PROTO_MODBUS && proto != BMS_PROTO_BACNET)
		return -EINVAL;
	if (*n == CAP_MAX_PORTS)
		return -ENOSPC;
	ports[(*n)++] = port;
	return 0;
}

int cap_config_default_ports(struct cap_config *cfg)
{
	if (cfg->n_modbus_ports == 0 && cap_config_add_port(cfg, BMS_PROTO_MODBUS, CAP_MODBUS_PORT))
		return -ENOSPC;
	if (cfg->n_bacnet_ports == 0 && cap_config_add_port(cfg, BMS_PROTO_BACNET, CAP_BACNET_PORT))
		return -ENOSPC;
	return 0;
}

static unsigned map_reasm_events(unsigned ev)
{
	unsigned an = 0;
	if (ev & REASM_EV_GAP)
		an |= CAP_AN_TCP_GAP;
	if (ev & REASM_EV_OVERLAP_DIFF)
		an |= CAP_AN_TCP_OVERLAP_DIFF;
	if (ev & REASM_EV_MEMCAP)
		an |= CAP_AN_TCP_MEMCAP | CAP_AN_TCP_GAP;
	return an;
}

/* A pointer into the ADU at `from`, moved to the same offset of its copy at `to`. */
static const uint8_t *rebase(const uint8_t *p, const uint8_t *from, size_t len, const uint8_t *to)
{
	if (p == NULL || p < from || p > from + len)
		return NULL;
	return to + (p - from);
}

/* The stored request as a struct bms_request in e->paired. */
static int slot_request(struct cap_engine *e, const struct mb_pending *s)
{
	struct bms_request *q = &e->paired;

	if (s->ntargets > MB_PAIR_TARGETS)
		return modbus_decode(s->adu, s->len, BMS_DIR_REQUEST, q) == BMS_OK ? 0 : -1;
	q->proto = BMS_PROTO_MODBUS;
	q->dir = BMS_DIR_REQUEST;
	q->op = s->op;
	q->unit = s->unit;
	q->anomalies = s->anomalies;
	q->ntargets = s->ntargets;
	/* All MB_PAIR_TARGETS slots, a fixed-size copy: those past ntargets are never read. */
	memcpy(q->targets, s->targets, sizeof(s->targets));
	q->raw.modbus = s->raw;
	return 0;
}

/* Requests are remembered by transaction id; a response is checked against its request
 * (modbus_check_response: same unit and function, counts, echoes) and given the request's
 * address range (modbus_pair_response). Clients that reuse a transaction id, or send a request
 * twice, leave several candidates: the oldest that the response answers is taken, and only when
 * none does is the response reported against the oldest. A gap clears the table (the request a
 * response answers may be among the lost bytes). Returns the response's result. */
static void match_set_used(struct mb_match *mt, int i, unsigned used)
{
	mt->tag[i] = (mt->tag[i] & ~0xFFu) | used;
}

static int pair(struct cap_engine *e, struct mb_flow *m, int dir, const uint8_t *adu, size_t len, uint64_t *req_frame)
{
	struct mb_match *mt = &m->match;
	uint16_t tid = e->req.raw.modbus.tid;
	int first = -1;
	uint64_t an = 0, first_an = 0;

	if (e->req.dir == BMS_DIR_REQUEST) {
		unsigned i = m->next_slot; /* the oldest when all are used */
		struct mb_pending *slot = &m->pend[i];
		m->next_slot = (uint8_t)((i + 1) % MB_PENDING);
		mt->tag[i] = MB_TAG(1, dir, tid);
		mt->frame[i] = e->st.packets;
		slot->len = (uint16_t)len;
		memcpy(slot->adu, adu, len);
		/* Keep the decoded request too (cheaper than decoding it again), its borrowed
		 * pointers moved into the copy of the ADU. */
		slot->op = e->req.op;
		slot->unit = e->req.unit;
		slot->anomalies = e->req.anomalies;
		slot->ntargets = e->req.ntargets;
		slot->raw = e->req.raw.modbus;
		slot->raw.pdu = rebase(slot->raw.pdu, adu, len, slot->adu);
		if (slot->ntargets <= MB_PAIR_TARGETS) {
			for (unsigned t = 0; t < slot->ntargets; t++) {
				slot->targets[t] = e->req.targets[t];
				slot->targets[t].data = rebase(slot->targets[t].data, adu, len, slot->adu);
			}
		}
		return BMS_OK;
	}
	/* The waiting requests of the other direction with this transaction id, tried oldest first. */
	const uint32_t want = MB_TAG(1, !dir, tid);
	unsigned cand = 0;
	for (int i = 0; i < MB_PENDING; i++)
		cand |= (unsigned)(mt->tag[i] == want) << i;
	while (cand != 0) {
		int best = -1;
		for (unsigned c = cand; c != 0; c &= c - 1) {
			int i = __builtin_ctz(c);
			if (best < 0 || mt->frame[i] < mt->frame[best])
				best = i;
		}
		cand &= ~(1u << best);
		if (slot_request(e, &m->pend[best]) != 0)
			continue;
		if (modbus_check_response(&e->paired, &e->req, &an) == BMS_OK) {
			match_set_used(mt, best, 0);
			*req_frame = mt->frame[best];
			e->req.anomalies |= an;
			modbus_pair_response(&e->paired, &e->req);
			return BMS_OK;
		}
		if (first < 0) {
			first = best;
			first_an = an;
		}
	}
	if (first < 0)
		return BMS_OK;
	match_set_used(mt, first, 0);
	*req_frame = mt->frame[first];
	e->req.anomalies |= first_an;
	return BMS_MALFORMED;
}

/* k and m: the flow's key and state (reasm_flow_key, reasm_flow_app), looked up once per delivery. */
static void emit_modbus(struct cap_engine *e, const struct reasm_key *k, struct mb_flow *m, int dir,
			const uint8_t *adu, size_t len, int malformed, uint64_t framer_an, unsigned cap_an)
{
	struct cap_pdu p;
	/* Direction 0 runs from the key's source to its destination. */
	uint16_t sport = dir == 0 ? k->sport : k->dport;
	uint16_t dport = dir == 0 ? k->dport : k->sport;
	struct mb_dir *d = &m->d[dir];
	if (d->kind == 0) /* the ports of a direction never change: the bitmap is read once */
		d->kind = port_in(e->modbus_map, dport) ? 1 : 2;
	enum bms_dir bd = d->kind == 1 ? BMS_DIR_REQUEST : BMS_DIR_RESPONSE;

	int r = modbus_decode(adu, len, bd, &e->req);
	if (malformed || r != BMS_OK) {
		r = BMS_MALFORMED;
		e->req.anomalies |= framer_an;
	}
	p.req_frame = 0;
	if (r == BMS_OK)
		r = pair(e, m, dir, adu, len, &p.req_frame);
	e->st.modbus_pdus++;
	if (r != BMS_OK)
		e->st.malformed++;
	if (e->sink == NULL)
		return;
	p.frame = e->st.packets;
	p.ts_sec = e->sec;
	p.ts_usec = e->usec;
	p.ipver = k->ipver;
	p.sport = sport;
	p.dport = dport;
	p.src = dir == 0 ? k->src : k->dst;
	p.dst = dir == 0 ? k->dst : k->src;
	p.result = r;
	p.cap_anomalies = cap_an;
	p.req = &e->req;
	p.bytes = adu;
	p.len = len;
	p.flow_scratch = d->sink_scratch;
	e->sink(e->user, &p);
}

/* A frame start we trust after losing sync: a whole frame that ends the data or is followed by
 * a plausible header, or a valid header at the very start of a delivery (segments start frames). */
static int plausible_at(const uint8_t *p, size_t n, int at_start)
{
	size_t flen, flen2;
	uint64_t an;
	enum bms_parse_result r = modbus_frame(p, n, &flen, &an);

	if (r == BMS_OK) {
		if (flen == 0 || flen > n)
			return 0;
		if (flen == n)
			return 1;
		return modbus_frame(p + flen, n - flen, &flen2, &an) != BMS_MALFORMED;
	}
	if (r == BMS_NEED_MORE)
		return at_start && n >= MODBUS_MBAP_LEN;
	return 0;
}

static void take_events(struct mb_dir *d, unsigned *an)
{
	*an = d->events;
	d->events = 0;
}

static void mb_data(void *user, struct reasm_flow *f, int dir, const uint8_t *data, size_t len, unsigned events)
{
	struct cap_engine *e = user;
	struct mb_flow *m = reasm_flow_app(f);
	const struct reasm_key *k = reasm_flow_key(f);
	struct mb_dir *d = &m->d[dir];
	size_t off = 0, flen;
	uint64_t an;
	unsigned cap_an;

	d->events |= map_reasm_events(events);
	if (events & (REASM_EV_GAP | REASM_EV_MEMCAP)) {
		for (int i = 0; i < MB_PENDING; i++)
			match_set_used(&m->match, i, 0);
		if (d->pend_len > 0) {
			/* The rest of this ADU was lost: report what there was. The gap stays
			 * pending too: the next whole PDU also follows lost bytes. */
			emit_modbus(e, k, m, dir, m->partial[dir], d->pend_len, 1, 0, d->events | CAP_AN_TCP_GAP);
			d->pend_len = 0;
		}
		d->resync = 1;
	}
	while (d->pend_len > 0) {
		enum bms_parse_result r = modbus_frame(m->partial[dir], d->pend_len, &flen, &an);
		if (r == BMS_NEED_MORE && flen > d->pend_len && flen <= sizeof(m->partial[dir])) {
			size_t take = flen - d->pend_len;
			if (take > len - off)
				take = len - off;
			memcpy(m->partial[dir] + d->pend_len, data + off, take);
			d->pend_len = (uint16_t)(d->pend_len + take);
			off += take;
			if (d->pend_len < flen)
				return;
			continue;
		}
		take_events(d, &cap_an);
		if (r == BMS_OK && flen == d->pend_len) {
			emit_modbus(e, k, m, dir, m->partial[dir], flen, 0, 0, cap_an);
		} else {
			emit_modbus(e, k, m, dir, m->partial[dir], d->pend_len, 1, an, cap_an);
			d->resync = 1;
		}
		d->pend_len = 0;
	}
	while (off < len) {
		if (d->resync) {
			size_t i = off;
			while (i < len && !plausible_at(data + i, len - i, i == 0))
				i++;
			if (i > off) {
				e->st.resync_bytes += i - off;
				d->events |= CAP_AN_STREAM_RESYNC;
			}
			off = i;
			if (off == len)
				return;
			d->resync = 0;
		}
		enum bms_parse_result r = modbus_frame(data + off, len - off, &flen, &an);
		if (r == BMS_OK && flen > 0 && flen <= len - off) {
			take_events(d, &cap_an);
			emit_modbus(e, k, m, dir, data + off, flen, 0, 0, cap_an);
			off += flen;
			continue;
		}
		if (r == BMS_NEED_MORE && len - off < sizeof(m->partial[dir])) {
			memcpy(m->partial[dir], data + off, len - off);
			d->pend_len = (uint16_t)(len - off);
			return;
		}
		/* Bytes that can never frame: one malformed record, then look for the next frame. */
		size_t n = len - off < MODBUS_MAX_ADU ? len - off : MODBUS_MAX_ADU;
		take_events(d, &cap_an);
		emit_modbus(e, k, m, dir, data + off, n, 1, an, cap_an);
		d->resync = 1;
		off++;
	}
}

static void mb_close(void *user, struct reasm_flow *f, unsigned why)
{
	struct cap_engine *e = user;
	struct mb_flow *m = reasm_flow_app(f);
	const struct reasm_key *k = reasm_flow_key(f);
	unsigned cap_an;

	(void)why;
	for (int dir = 0; dir < 2; dir++) {
		struct mb_dir *d = &m->d[dir];
		if (d->pend_len == 0)
			continue;
		take_events(d, &cap_an);
		emit_modbus(e, k, m, dir, m->partial[dir], d->pend_len, 1, 0, cap_an | CAP_AN_STREAM_TRUNCATED);
		d->pend_len = 0;
	}
}

int cap_engine_new(const struct cap_config *cfg, cap_sink_fn sink, void *user, struct cap_engine **out)
{
	struct cap_engine *e;
	struct reasm_config rc = cfg->reasm;
	struct reasm_callbacks cb = { .data = mb_data, .close = mb_close };
	int err;

	*out = NULL;
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return -ENOMEM;
	e->cfg = *cfg;
	e->sink = sink;
	e->user = user;
	for (size_t i = 0; i < cfg->n_modbus_ports; i++)
		e->modbus_map[cfg->modbus_ports[i] >> 3] |= (uint8_t)(1u << (cfg->modbus_ports[i] & 7));
	for (size_t i = 0; i < cfg->n_bacnet_ports; i++)
		e->bacnet_map[cfg->bacnet_ports[i] >> 3] |= (uint8_t)(1u << (cfg->bacnet_ports[i] & 7));
	rc.app_size = sizeof(struct mb_flow);
	cb.user = e;
	err = reasm_new(&rc, &cb, &e->reasm);
	if (err)
		goto fail;
	*out = e;
	return 0;
fail:
	free(e);
	return err;
}

static void udp_bacnet(struct cap_engine *e, const struct cap_packet *pk)
{
	struct cap_pdu p;
	int r = bacnet_decode(pk->payload, pk->payload_len, &e->req);

	e->st.bacnet_pdus++;
	if (r != BMS_OK)
		e->st.malformed++;
	if (e->sink == NULL)
		return;
	p.frame = e->st.packets;
	p.req_frame = 0;
	p.ts_sec = e->sec;
	p.ts_usec = e->usec;
	p.ipver = pk->ipver;
	p.sport = pk->sport;
	p.dport = pk->dport;
	p.src = pk->src;
	p.dst = pk->dst;
	p.result = r == BMS_OK ? BMS_OK : BMS_MALFORMED;
	p.cap_anomalies = (pk->flags & CAP_PKT_TRUNCATED) ? CAP_AN_PACKET_TRUNCATED : 0;
	p.req = &e->req;
	p.bytes = pk->payload;
	p.len = pk->payload_len;
	p.flow_scratch = NULL;
	e->sink(e->user, &p);
}

int cap_engine_packet(struct cap_engine *e, int dlt, int64_t ts_sec, int32_t ts_usec, const uint8_t *buf, size_t caplen)
{
	struct cap_packet pk;

	e->st.packets++;
	e->st.bytes += caplen;
	e->sec = ts_sec;
	e->usec = ts_usec;
	int r = cap_link_parse(dlt, buf, caplen, &pk);
	if (r < 0) {
		if (-r < CAP_LINK_NERR)
			e->st.link_err[-r]++;
		return 0;
	}
	if (pk.l4 == 17) {
		if (port_in(e->bacnet_map, pk.dport) || port_in(e->bacnet_map, pk.sport)) {
			e->st.udp_datagrams++;
			udp_bacnet(e, &pk);
		}
		return 0;
	}
	if (!port_in(e->modbus_map, pk.dport) && !port_in(e->modbus_map, pk.sport))
		return 0;
	e->st.tcp_segments++;
	struct reasm_key k;
	k.ipver = pk.ipver;
	k.vlan = pk.vlan;
	k.sport = pk.sport;
	k.dport = pk.dport;
	memcpy(k.src, pk.src, 16);
	memcpy(k.dst, pk.dst, 16);
	return reasm_tcp(e->reasm, &k, pk.seq, pk.ack, pk.tcp_flags, pk.payload, pk.payload_len);
}

void cap_engine_finish(struct cap_engine *e)
{
	reasm_finish(e->reasm);
}

void cap_engine_free(struct cap_engine *e)
{
	if (e == NULL)
		return;
	reasm_free(e->reasm);
	free(e);
}

const struct cap_stats *cap_engine_stats(const struct cap_engine *e)
{
	return &e->st;
}

const struct reasm_stats *cap_engine_reasm_stats(const struct cap_engine *e)
{
	return reasm_stats(e->reasm);
}
