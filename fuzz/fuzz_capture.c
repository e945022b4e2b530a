/* fuzz/fuzz_capture.c: the whole capture-reading path of `bmsgate decode`:
 * pcap/pcapng bytes in memory -> libpcap -> link/IP/TCP/UDP -> reassembly -> Modbus/BACnet decoders.
 * Reassembly limits are small so that eviction, memory caps and gap handling run often. */
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "capture/engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint64_t fuzz_keep;

struct sum {
	uint64_t acc;
};

/* Touch everything a sink may read, so that ASan sees any dangling or short buffer. */
static void sink(void *user, const struct cap_pdu *p)
{
	struct sum *s = user;
	uint64_t acc = p->frame + p->sport + p->dport + p->cap_anomalies + (uint64_t)p->result;
	for (size_t i = 0; i < p->len; i++)
		acc += p->bytes[i];
	for (int i = 0; i < 16; i++)
		acc += (uint64_t)p->src[i] + p->dst[i];
	acc += p->req->anomalies + p->req->op + p->req->ntargets;
	size_t nt = p->req->ntargets < BMS_MAX_TARGETS ? p->req->ntargets : BMS_MAX_TARGETS;
	for (size_t i = 0; i < nt; i++) {
		const struct bms_target *t = &p->req->targets[i];
		acc += t->start + t->count + t->instance;
		for (size_t j = 0; j < t->data_len; j++)
			acc += t->data[j];
	}
	s->acc += acc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	struct cap_config cfg;
	struct cap_engine *e = NULL;
	struct sum s = { 0 };
	struct pcap_pkthdr *h;
	const u_char *pkt;

	if (size == 0)
		return 0;
	FILE *f = fmemopen((void *)data, size, "rb");
	if (f == NULL)
		return 0;
	pcap_t *pc = pcap_fopen_offline(f, errbuf);
	if (pc == NULL) {
		fclose(f);
		return 0;
	}
	cap_config_default(&cfg);
	cfg.reasm.max_flows = 8;
	cfg.reasm.max_flow_bytes = 4096;
	cfg.reasm.max_total_bytes = 16384;
	cfg.reasm.history_bytes = 64;
	if (cap_config_add_port(&cfg, BMS_PROTO_MODBUS, 502) || cap_config_add_port(&cfg, BMS_PROTO_MODBUS, 15020) ||
	    cap_config_add_port(&cfg, BMS_PROTO_BACNET, 47808) || cap_config_add_port(&cfg, BMS_PROTO_BACNET, 47809))
		goto out;
	if (cap_engine_new(&cfg, sink, &s, &e))
		goto out;
	int dlt = pcap_datalink(pc);
	for (int n = 0; n < 100000 && pcap_next_ex(pc, &h, &pkt) == 1; n++)
		if (cap_engine_packet(e, dlt, h->ts.tv_sec, (int32_t)h->ts.tv_usec, pkt, h->caplen))
			break;
	cap_engine_finish(e);
out:
	cap_engine_free(e);
	pcap_close(pc);
	fuzz_keep = s.acc; /* keeps the sink's reads from being optimised away */
	return 0;
}
