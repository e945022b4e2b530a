/* capture/engine.h: captured packets -> link/IP -> TCP reassembly or UDP -> Modbus/BACnet decoders.
 *
 * Pure like the parsers (no libpcap, no I/O): the caller reads packets and
 * feeds them in; every decoded PDU, well-formed or not, goes to a sink
 * callback. Used by `bmsgate decode`, the fuzz target and the unit tests.
 */
#ifndef BMS_CAP_ENGINE_H
#define BMS_CAP_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "capture/link.h"
#include "capture/reasm.h"
#include "parsers/request.h"

/* Capture-level anomalies, reported beside the decoder's own. */
#define CAP_AN_TCP_GAP 0x01u            /* bytes of the stream were missing before this PDU */
#define CAP_AN_TCP_OVERLAP_DIFF 0x02u   /* a retransmission carried different bytes (first copy kept) */
#define CAP_AN_TCP_MEMCAP 0x04u         /* reassembly dropped data at a memory limit */
#define CAP_AN_STREAM_RESYNC 0x08u      /* bytes were skipped to find the start of this PDU */
#define CAP_AN_STREAM_TRUNCATED 0x10u   /* the stream ended inside this PDU */
#define CAP_AN_PACKET_TRUNCATED 0x20u   /* the capture holds fewer bytes than were sent */
#define CAP_AN_COUNT 6

#define CAP_MAX_PORTS 16

struct cap_pdu {
	uint64_t frame;              /* 1-based number of the packet that completed the PDU */
	uint64_t req_frame;          /* Modbus response: the frame of the request it answers; 0 = not paired */
	int64_t ts_sec;
	int32_t ts_usec;
	uint8_t ipver;
	uint16_t sport, dport;       /* sender -> receiver */
	const uint8_t *src, *dst;    /* borrowed, 16 bytes each */
	int result;                  /* enum bms_parse_result: BMS_OK or BMS_MALFORMED */
	unsigned cap_anomalies;      /* CAP_AN_* */
	const struct bms_request *req; /* borrowed for the call */
	const uint8_t *bytes;        /* the ADU or datagram, borrowed for the call */
	size_t len;
	/* CAP_FLOW_SCRATCH bytes that stay with this PDU's TCP flow and direction, zeroed when
	 * the flow starts, for the sink's own use (decode keeps the flow's text there, in a cache
	 * line the engine has just touched); NULL for UDP. */
	void *flow_scratch;
};
#define CAP_FLOW_SCRATCH 64

typedef void (*cap_sink_fn)(void *user, const struct cap_pdu *pdu);

struct cap_config {
	uint16_t modbus_ports[CAP_MAX_PORTS];
	size_t n_modbus_ports;
	uint16_t bacnet_ports[CAP_MAX_PORTS];
	size_t n_bacnet_ports;
	struct reasm_config reasm;   /* app_size is set by the engine */
};

struct cap_stats {
	uint64_t packets;
	uint64_t bytes;                       /* captured bytes */
	uint64_t link_err[CAP_LINK_NERR];     /* by -cap_link_parse() result */
	uint64_t tcp_segments, udp_datagrams; /* on the protocols' ports */
	uint64_t modbus_pdus, bacnet_pdus, malformed;
	uint64_t resync_bytes;                /* stream bytes skipped while looking for a frame */
};

struct cap_engine;

/* The protocols' registered ports, what a capture tool listens on when told no port. */
#define CAP_MODBUS_PORT 502
#define CAP_BACNET_PORT 47808

/* No ports, the reassembly limits of docs/decode.md. The caller adds the ports it was given
 * (cap_config_add_port), then cap_config_default_ports for the protocols it was given none:
 * a port on the command line replaces the default, it does not add to it. */
void cap_config_default(struct cap_config *cfg);
BMS_WUR int cap_config_add_port(struct cap_config *cfg, enum bms_proto proto, uint16_t port);
/* Modbus/TCP on CAP_MODBUS_PORT and BACnet/IP on CAP_BACNET_PORT, each only if it has no port
 * yet: the one definition of the defaults that `decode` and `replay` share. */
BMS_WUR int cap_config_default_ports(struct cap_config *cfg);

/* `sink` NULL: PDUs are decoded, paired and counted (cap_engine_stats) but not reported; what
 * `decode --count` needs, without building a record per PDU. */
BMS_WUR int cap_engine_new(const struct cap_config *cfg, cap_sink_fn sink, void *user, struct cap_engine **out);
/* Feeds one captured packet. Returns 0, or -ENOMEM when reassembly could not allocate a flow. */
BMS_WUR int cap_engine_packet(struct cap_engine *e, int dlt, int64_t ts_sec, int32_t ts_usec,
			      const uint8_t *buf, size_t caplen);
/* Flushes every stream (partial PDUs at the end are reported truncated). */
void cap_engine_finish(struct cap_engine *e);
void cap_engine_free(struct cap_engine *e);
const struct cap_stats *cap_engine_stats(const struct cap_engine *e);
const struct reasm_stats *cap_engine_reasm_stats(const struct cap_engine *e);

/* Name of one CAP_AN_* bit, or NULL. */
const char *cap_anomaly_name(unsigned bit);

#endif
