/* capture/link.h: link-layer, IP and TCP/UDP header parsing of one captured packet.
 *
 * Pure: no libpcap call, no I/O, no allocation. The caller passes the link
 * type (a DLT_ value from <pcap/dlt.h>) and the captured bytes; every header
 * read goes through the bounds-checked cursor. The result borrows from the
 * packet buffer.
 */
#ifndef BMS_CAP_LINK_H
#define BMS_CAP_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "parsers/cursor.h"

/* Why a packet yields no TCP/UDP payload (negative return values). */
enum cap_link_err {
	CAP_LINK_LINKTYPE = -1,  /* link type not supported */
	CAP_LINK_NOT_IP = -2,    /* not IPv4/IPv6 (ARP, LLC, ...) */
	CAP_LINK_NOT_L4 = -3,    /* IP, but neither TCP nor UDP (ICMP, ESP, ...) */
	CAP_LINK_FRAGMENT = -4,  /* IP fragment: flagged, not reassembled */
	CAP_LINK_MALFORMED = -5, /* a header is truncated or inconsistent */
};
#define CAP_LINK_NERR 6

/* Packet flags. */
#define CAP_PKT_TRUNCATED 0x01u /* the IP/UDP length says more bytes than were captured */
#define CAP_PKT_VLAN 0x02u      /* carried at least one 802.1Q/802.1ad tag */
#define CAP_PKT_IP_PADDED 0x04u /* the link frame held bytes beyond the IP length (padding) */

#define CAP_MAX_VLAN_TAGS 8 /* stacked tags followed before giving up */
#define CAP_MAX_IPV6_EXT 16 /* IPv6 extension headers followed before giving up */

#define CAP_TCP_FIN 0x01u
#define CAP_TCP_SYN 0x02u
#define CAP_TCP_RST 0x04u
#define CAP_TCP_PSH 0x08u
#define CAP_TCP_ACK 0x10u

struct cap_packet {
	uint8_t ipver;          /* 4 or 6 */
	uint8_t l4;             /* 6 = TCP, 17 = UDP */
	uint8_t tcp_flags;      /* CAP_TCP_* */
	uint8_t vlan_depth;
	uint16_t vlan;          /* outermost VLAN id, 0 when untagged */
	uint16_t sport, dport;
	uint32_t flags;         /* CAP_PKT_* */
	uint32_t seq, ack;      /* TCP only */
	uint8_t src[16], dst[16]; /* IPv4 addresses use the first 4 bytes; the rest is zero */
	const uint8_t *payload; /* borrowed from the packet */
	size_t payload_len;
};

/* Parse one packet of link type `dlt`. 0 with *out filled for TCP and UDP;
 * a negative enum cap_link_err otherwise (*out then holds what was read). */
BMS_WUR int cap_link_parse(int dlt, const uint8_t *buf, size_t len, struct cap_packet *out);

/* Short name of a negative cap_link_parse result ("fragment"...). */
const char *cap_link_err_name(int err);

/* Writes "a.b.c.d" or an RFC 5952 IPv6 text into out (at least 46 bytes); returns its length. */
size_t cap_addr_str(uint8_t ipver, const uint8_t addr[static 16], char *out);

#endif
