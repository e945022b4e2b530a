/* bench/pcap_count.c: the reference for bench_decode: a plain libpcap loop that only counts
 * packets and bytes. Whatever `bmsgate decode` costs beyond this is decoding. */
#include <inttypes.h>
#include <pcap/pcap.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *data;
	uint64_t packets = 0, bytes = 0;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: pcap_count CAPTURE\n");
		return 1;
	}
	pcap_t *p = pcap_open_offline(argv[1], errbuf);
	if (p == NULL) {
		fprintf(stderr, "pcap_count: %s: %s\n", argv[1], errbuf);
		return 2;
	}
	while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
		packets++;
		bytes += h->caplen;
	}
	if (rc == PCAP_ERROR) {
		fprintf(stderr, "pcap_count: %s: %s\n", argv[1], pcap_geterr(p));
		pcap_close(p);
		return 2;
	}
	pcap_close(p);
	printf("packets %" PRIu64 " bytes %" PRIu64 "\n", packets, bytes);
	return 0;
}
