/* proxy/config_file.c: the readers around the configuration grammar (see config.h): the
 * system's resolver and node name, and the file read that hands text to the pure parser
 * (proxy/config.c). Apart, so that the grammar touches nothing and the fuzzer runs exactly it. */
#include <errno.h>
#include <stdarg.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/diag.h"
#include "proxy/config.h"

static int system_resolve(void *ctx, const char *host, unsigned port, struct proxy_addr *out, const char **why)
{
	(void)ctx;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	char pbuf[8];
	snprintf(pbuf, sizeof(pbuf), "%u", port);
	int rc = getaddrinfo(host, pbuf, &hints, &res);
	if (rc != 0 || !res) {
		*why = gai_strerror(rc);
		return -1;
	}
	memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
	out->len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

void proxy_config_env_system(struct proxy_config_env *env)
{
	memset(env, 0, sizeof(*env));
	env->resolve = system_resolve;
	if (gethostname(env->node, sizeof(env->node)) != 0)
		env->node[0] = '\0';
	env->node[sizeof(env->node) - 1] = '\0';
}

__attribute__((format(printf, 3, 4))) static void file_err(struct bms_diag *d, const char *path, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	/* not stored (-ENOMEM) is still counted in d->errors, and the load fails all the same */
	int rc = bms_diag_vadd(d, BMS_DIAG_ERROR, &(struct bms_diag_loc){ .file = path }, fmt, ap);
	(void)rc;
	va_end(ap);
}

int proxy_config_load(const char *path, enum proxy_kind kind, struct proxy_config *cfg, struct bms_diag *d)
{
	struct proxy_config_env env;
	proxy_config_env_system(&env);
	proxy_config_defaults(cfg, kind, &env);
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	int rc = -EINVAL;
	if (!f) {
		rc = -errno;
		file_err(d, path, "cannot open: %s", strerror(errno));
		return rc;
	}
	/* config files are small; a bound keeps a wrong path (a device, a log) from eating memory */
	const size_t cap = 1 << 20;
	buf = malloc(cap + 1);
	if (!buf) {
		file_err(d, path, "out of memory");
		rc = -ENOMEM;
		goto fail;
	}
	size_t n = fread(buf, 1, cap + 1, f);
	if (ferror(f)) {
		rc = -EIO;
		file_err(d, path, "cannot read: %s", strerror(errno));
		goto fail;
	}
	if (n > cap) {
		file_err(d, path, "larger than %zu bytes: not a configuration file?", cap);
		goto fail;
	}
	/* a NUL byte is the grammar's to report, at its line and column */
	rc = proxy_config_parse_text(path, buf, n, kind, &env, cfg, d);
fail:
	free(buf);
	fclose(f);
	return rc;
}

int proxy_config_parse(const char *name, const char *text, enum proxy_kind kind, struct proxy_config *cfg, FILE *err)
{
	struct proxy_config_env env;
	struct bms_diag d;
	proxy_config_env_system(&env);
	bms_diag_init(&d);
	int rc = proxy_config_parse_text(name, text, strlen(text), kind, &env, cfg, &d);
	bms_diag_print(&d, err);
	bms_diag_free(&d);
	return rc;
}
