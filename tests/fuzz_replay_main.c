/* Replays fuzz inputs through a libFuzzer target without libFuzzer, under ASan/UBSan.
 * Usage: fuzz-replay/NAME FILE... ; prints TAP, one test per file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
	static uint8_t buf[1 << 20];

	printf("1..%d\n", argc - 1);
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		if (f == NULL) {
			printf("not ok %d - %s: cannot open\n", i, argv[i]);
			continue;
		}
		size_t n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		/* A private copy of exactly n bytes, so ASan sees reads past the end. */
		uint8_t *copy = malloc(n ? n : 1);
		if (copy == NULL)
			return 2;
		for (size_t j = 0; j < n; j++)
			copy[j] = buf[j];
		LLVMFuzzerTestOneInput(copy, n);
		free(copy);
		printf("ok %d - %s\n", i, argv[i]);
	}
	return 0;
}
