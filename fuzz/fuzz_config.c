/* fuzz/fuzz_config.c: the guard/tunnel configuration grammar (proxy/config.c) over
 * arbitrary text, parsed as a guard and as a tunnel. Whatever parses is routed for
 * every unit id and its bounded tables are checked, so a parser that lets an
 * out-of-range count through is caught here, not in the guard. Under BMS_FUZZING
 * host names are not resolved (numeric addresses only), so no input waits on DNS. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/route.h"
#include "proxy/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct proxy_config *cfg)
{
	if (cfg->nlisteners > PROXY_MAX_LISTENERS || cfg->ndevices > PROXY_MAX_DEVICES ||
	    cfg->npolicies > PROXY_MAX_POLICIES)
		abort();
	for (unsigned i = 0; i < cfg->nlisteners; i++)
		if (cfg->listeners[i].nnets > PROXY_MAX_NETS)
			abort();
	/* the route table the guard builds: every unit routed to one of the config's devices */
	static struct engine_routes rt;
	proxy_config_routes(cfg, &rt);
	if (rt.n != cfg->ndevices)
		abort();
	for (unsigned u = 0; u < 256; u++) {
		const struct engine_route *r = engine_route_modbus(&rt, (uint8_t)u);
		if (r && (r < rt.routes || r >= rt.routes + rt.n || r->index >= cfg->ndevices))
			abort();
	}
	if (cfg->limits.frame_size < 12 || cfg->limits.frame_size > 260)
		abort();
	/* every string the parser filled must still be terminated inside its field */
	if (!memchr(cfg->node, '\0', sizeof(cfg->node)) || !memchr(cfg->user, '\0', sizeof(cfg->user)) ||
	    !memchr(cfg->audit.file, '\0', sizeof(cfg->audit.file)) ||
	    !memchr(cfg->server_name, '\0', sizeof(cfg->server_name)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	static struct proxy_config cfg;
	if (size > 1 << 16)
		return 0;
	if (!devnull && !(devnull = fopen("/dev/null", "w")))
		abort();
	/* proxy_config_parse takes a C string: what follows a NUL is simply not seen */
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (proxy_config_parse("fuzz.conf", text, PROXY_GUARD, &cfg, devnull) == 0)
		check(&cfg);
	if (proxy_config_parse("fuzz.conf", text, PROXY_TUNNEL, &cfg, devnull) == 0)
		check(&cfg);
	free(text);
	return 0;
}
