/* fuzz/fuzz_config.c: the guard/tunnel configuration grammar (proxy/config.c) over
 * arbitrary bytes (NULs included), parsed as a guard and as a tunnel. Whatever parses is
 * routed for every unit id and its bounded tables are checked, so a parser that lets an
 * out-of-range count through is caught here, not in the guard; and the error records must
 * agree with the result and point inside the text. The parse is given no resolver
 * (numeric addresses only): no input waits on DNS, and the grammar touches no file. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/route.h"
#include "base/diag.h"
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

/* Every record is at a line and column inside the text (or of the file as a whole), and the
 * result says there was an error exactly when a record was made. */
static void check_diag(const struct bms_diag *d, int rc, const uint8_t *data, size_t size)
{
	if (rc == -ENOMEM)
		return; /* a record could not be stored: nothing to check it against */
	if ((rc == 0) != (d->errors == 0) || (rc != 0 && rc != -EINVAL))
		abort();
	size_t lines = 1;
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	for (size_t i = 0; i < d->n; i++) {
		const struct bms_diag_entry *e = &d->v[i];
		if (e->line > lines || (e->line && e->col == 0) || e->tok_at > e->src_len || e->src_len > BMS_DIAG_SRC_MAX)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct proxy_config cfg;
	static const struct proxy_config_env env = { .node = "fuzz" };
	if (size > 1 << 16)
		return 0;
	for (int kind = PROXY_GUARD; kind <= PROXY_TUNNEL; kind++) {
		struct bms_diag d;
		bms_diag_init(&d);
		int rc = proxy_config_parse_text("fuzz.conf", (const char *)data, size, (enum proxy_kind)kind, &env,
						 &cfg, &d);
		check_diag(&d, rc, data, size);
		if (rc == 0)
			check(&cfg);
		bms_diag_free(&d);
	}
	return 0;
}
