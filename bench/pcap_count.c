/* bench/pcap_count.c: the reference for bench_decode: a plain libpcap loop that only counts
 * packets and bytes. Whatever `bmsgate decode` costs beyond this is decoding.
 *   pcap_count CAPTURE              pcap_open_offline, as a plain program would
 *   pcap_count --buffered CAPTURE   the file read the way `bmsgate decode` reads it (a 256 KiB
 *                                   stdio buffer, no stream locking): the like-for-like floor */
#include <inttypes.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <string.h>

int main(int argc, char **argv)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *data;
	uint64_t packets = 0, bytes = 0;
	int rc;

	static char iobuf[256 * 1024];
	int buffered = argc == 3 && strcmp(argv[1], "--buffered") == 0;
	if (argc != 2 && !buffered) {
		fprintf(stderr, "usage: pcap_count [--buffered] CAPTURE\n");
		return 1;
	}
	const char *path = argv[argc - 1];
	pcap_t *p;
	if (buffered) {
		FILE *f = fopen(path, "rb");
		if (f == NULL) {
			perror(path);
			return 2;
		}
		__fsetlocking(f, FSETLOCKING_BYCALLER);
		setvbuf(f, iobuf, _IOFBF, sizeof(iobuf));
		p = pcap_fopen_offline(f, errbuf); /* owns f from here */
		if (p == NULL)
			fclose(f);
	} else {
		p = pcap_open_offline(path, errbuf);
	}
	if (p == NULL) {
		fprintf(stderr, "pcap_count: %s: %s\n", path, errbuf);
		return 2;
	}
	while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
		packets++;
		bytes += h->caplen;
	}
	if (rc == PCAP_ERROR) {
		fprintf(stderr, "pcap_count: %s: %s\n", path, pcap_geterr(p));
		pcap_close(p);
		return 2;
	}
	pcap_close(p);
	printf("packets %" PRIu64 " bytes %" PRIu64 "\n", packets, bytes);
	return 0;
}
