/* fuzz/fuzz_reasm.c: TCP reassembly driven directly by arbitrary segment sequences (no pcap
 * framing in the way), with tiny limits so that every limit path runs. Checks the invariants the
 * design promises: buffered bytes never exceed the per-flow and total limits, the flow table never
 * exceeds its size, and every delivery is non-empty.
 * Input: records of [op 1][seq 2][ack 1][len 1][len bytes]; op bits: 0-1 flow, 2 direction,
 * 3-7 TCP flags (FIN SYN RST PSH ACK). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "capture/link.h"
#include "capture/reasm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FLOWS 3
#define FLOW_BYTES 600
#define TOTAL_BYTES 1000

struct sum {
	uint64_t delivered;
	uint64_t closes;
};

static volatile uint64_t fuzz_keep;

static void on_data(void *user, struct reasm_flow *f, int dir, const uint8_t *d, size_t len, unsigned ev)
{
	struct sum *s = user;
	(void)f;
	(void)ev;
	if (len == 0 || dir < 0 || dir > 1)
		abort();
	for (size_t i = 0; i < len; i++)
		s->delivered += d[i];
}

static void on_close(void *user, struct reasm_flow *f, unsigned ev)
{
	struct sum *s = user;
	(void)f;
	(void)ev;
	s->closes++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sum s = { 0, 0 };
	struct reasm_config cfg = { .max_flows = MAX_FLOWS, .max_flow_bytes = FLOW_BYTES,
				    .max_total_bytes = TOTAL_BYTES, .history_bytes = 32, .app_size = 8 };
	struct reasm_callbacks cb = { .data = on_data, .close = on_close, .user = &s };
	struct reasm *r = NULL;
	size_t off = 0;

	if (reasm_new(&cfg, &cb, &r))
		return 0;
	while (size - off >= 5) {
		uint8_t op = data[off];
		uint32_t seq = (uint32_t)data[off + 1] << 8 | data[off + 2];
		uint32_t ack = (uint32_t)data[off + 3] << 8;
		size_t len = data[off + 4];
		off += 5;
		if (len > size - off)
			len = size - off;
		struct reasm_key k;
		memset(&k, 0, sizeof(k));
		k.ipver = 4;
		k.src[0] = 10, k.src[3] = 1;
		k.dst[0] = 10, k.dst[3] = 2;
		k.sport = (uint16_t)(40000 + (op & 3));
		k.dport = 502;
		if (op & 4) {
			struct reasm_key t = k;
			memcpy(k.src, t.dst, 16);
			memcpy(k.dst, t.src, 16);
			k.sport = t.dport;
			k.dport = t.sport;
		}
		uint8_t flags = 0;
		if (op & 0x08) flags |= CAP_TCP_FIN;
		if (op & 0x10) flags |= CAP_TCP_SYN;
		if (op & 0x20) flags |= CAP_TCP_RST;
		if (op & 0x40) flags |= CAP_TCP_PSH;
		if (op & 0x80) flags |= CAP_TCP_ACK;
		/* Sequence numbers near the wrap point half of the time. */
		if (data[off - 4] & 0x80)
			seq += 0xFFFF0000u;
		if (reasm_tcp(r, &k, seq, ack, flags, data + off, len))
			break;
		off += len;
		const struct reasm_stats *st = reasm_stats(r);
		if (st->bytes_now > TOTAL_BYTES || st->flows_now > MAX_FLOWS)
			abort();
	}
	reasm_finish(r);
	if (reasm_stats(r)->bytes_now != 0 || reasm_stats(r)->flows_now != 0 || reasm_stats(r)->bytes_peak > TOTAL_BYTES)
		abort();
	reasm_free(r);
	fuzz_keep = s.delivered + s.closes;
	return 0;
}
