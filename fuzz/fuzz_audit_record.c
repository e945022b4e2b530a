/* fuzz/fuzz_audit_record.c: the record reader that verify, query and the
 * writer's recovery use: the bounded line reader, the jansson line parser
 * (records and checkpoints, with frontier), and verify's whole state machine
 * over the input as a log file. The input is the file's bytes. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <jansson.h>

#include "audit/audit_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static EVP_PKEY *key;
static FILE *devnull;
static int memfd = -1;
static volatile uint64_t keep;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!key) {
		key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		devnull = fopen("/dev/null", "w");
		memfd = memfd_create("fuzz-audit-log", MFD_CLOEXEC);
		if (!key || !devnull || memfd < 0)
			return 0;
	}
	/* 1: the whole input as one line */
	struct audit_line ln;
	json_t *o = NULL;
	audit_line_parse((const char *)data, size, &ln, &o);
	keep += ln.seq + ln.cp.size + ln.cp.nfrontier + ln.parsed + (uint64_t)ln.time_us;
	json_decref(o);

	/* 2: as a log file, through the reader and verify (with and without --strict) */
	if (ftruncate(memfd, 0) < 0 || pwrite(memfd, data, size, 0) != (ssize_t)size)
		return 0;
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	const char *paths[2] = { path, path };
	struct audit_verify_opts opts = { .key = key, .out = devnull, .quiet = size & 1, .strict = size & 2 };
	keep += (uint64_t)audit_verify(paths, 1, &opts);
	/* the same file twice: a rotated set whose second file must continue the first */
	if (size < 4096)
		keep += (uint64_t)audit_verify(paths, 2, &opts);
	return 0;
}
