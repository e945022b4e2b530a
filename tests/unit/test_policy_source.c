/* tests/unit/test_policy_source.c: the compiler reads only through its source.
 * A source over memory serves files and zones; the compiler must resolve
 * includes, detect loops, bound nesting and parse zones from what it is
 * handed, and say what the source said where it could not. Each property has
 * its negative beside it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "load/policy_files.h"
#include "policies/policy.h"

/* ---- a source over a table of named texts ---- */

struct mem_file {
	const char *name, *text;
};
struct mem_source {
	const struct mem_file *files;
	size_t nfiles;
	const uint8_t *zone;
	size_t zone_len;
	unsigned reads, zone_reads, releases;
};

static int mem_read(void *ctx, const char *from, const char *name, struct bms_policy_text *out, char *err,
		    size_t errlen)
{
	struct mem_source *m = ctx;
	(void)from;
	m->reads++;
	for (size_t i = 0; i < m->nfiles; i++)
		if (strcmp(m->files[i].name, name) == 0) {
			snprintf(out->name, sizeof(out->name), "mem:%s", name);
			snprintf(out->key, sizeof(out->key), "%s", name);
			out->text = m->files[i].text;
			out->len = strlen(m->files[i].text);
			return BMS_POLICY_SOURCE_OK;
		}
	snprintf(err, errlen, "no file '%s' in this table", name);
	return BMS_POLICY_SOURCE_MISSING;
}

static int mem_zone(void *ctx, const char *zone, struct bms_policy_text *out, char *err, size_t errlen)
{
	struct mem_source *m = ctx;
	m->zone_reads++;
	if (m->zone == NULL) {
		snprintf(err, errlen, "no zone '%s' in this table", zone);
		return BMS_POLICY_SOURCE_MISSING;
	}
	snprintf(out->name, sizeof(out->name), "table:%s", zone);
	out->text = (const char *)m->zone;
	out->len = m->zone_len;
	return BMS_POLICY_SOURCE_OK;
}

static void mem_release(void *ctx, struct bms_policy_text *t)
{
	struct mem_source *m = ctx;
	(void)t;
	m->releases++;
}

static int compile_mem(struct mem_source *m, const char *top, struct bms_policy **p, struct bms_diag *d)
{
	const struct bms_policy_source src = { .ctx = m, .read = mem_read, .zone = mem_zone, .release = mem_release };
	bms_diag_init(d);
	return bms_policy_compile(&src, &top, 1, p, d);
}

/* true when some diagnostic's "file:line: message" contains `want` */
static bool has_diag(const struct bms_diag *d, const char *file, uint32_t line, const char *want)
{
	for (size_t i = 0; i < d->n; i++)
		if (strcmp(d->v[i].file, file) == 0 && d->v[i].line == line && strstr(d->v[i].msg, want) != NULL)
			return true;
	return false;
}

#define DEVICE_B "device ahu modbus 10.0.0.1 port 502 unit 1 {\n  point sp holding 100\n}\n"
#define RULE_A "role ops { subject \"CN=ops\" }\nallow ops read ahu.sp\n"

/* ---- includes ---- */

static void include_from_memory(void **state)
{
	(void)state;
	const struct mem_file files[] = { { "a.policy", "include \"b.policy\"\n" RULE_A }, { "b.policy", DEVICE_B } };
	struct mem_source m = { .files = files, .nfiles = 2 };
	struct bms_policy *p = NULL;
	struct bms_diag d;
	int rc = compile_mem(&m, "a.policy", &p, &d);
	if (rc != 0)
		bms_diag_print(&d, stderr);
	assert_int_equal(rc, 0);
	assert_int_equal(m.reads, 2);
	assert_int_equal(m.releases, 2); /* every text handed out is handed back */
	assert_int_equal(bms_policy_device_count(p), 1);
	char hash[65];
	snprintf(hash, sizeof(hash), "%s", bms_policy_hash(p));
	bms_policy_free(p);
	bms_diag_free(&d);

	/* the hash covers the included text as the source served it */
	const struct mem_file changed[] = { { "a.policy", files[0].text },
					    { "b.policy", DEVICE_B "# a comment\n" } };
	struct mem_source m2 = { .files = changed, .nfiles = 2 };
	assert_int_equal(compile_mem(&m2, "a.policy", &p, &d), 0);
	assert_string_not_equal(hash, bms_policy_hash(p));
	bms_policy_free(p);
	bms_diag_free(&d);
}

static void include_missing_is_reported_at_the_include(void **state)
{
	(void)state;
	const struct mem_file files[] = { { "a.policy", "include \"nowhere.policy\"\n" RULE_A } };
	struct mem_source m = { .files = files, .nfiles = 1 };
	struct bms_policy *p = NULL;
	struct bms_diag d;
	assert_int_equal(compile_mem(&m, "a.policy", &p, &d), -22);
	assert_null(p);
	assert_true(has_diag(&d, "a.policy", 1, "no file 'nowhere.policy' in this table"));
	bms_diag_free(&d);
}

static void include_loop_by_key(void **state)
{
	(void)state;
	const struct mem_file files[] = { { "a.policy", "include \"b.policy\"\n" RULE_A },
					  { "b.policy", DEVICE_B "include \"a.policy\"\n" } };
	struct mem_source m = { .files = files, .nfiles = 2 };
	struct bms_policy *p = NULL;
	struct bms_diag d;
	assert_int_equal(compile_mem(&m, "a.policy", &p, &d), -22);
	assert_true(has_diag(&d, "mem:b.policy", 4, "include loop"));
	assert_int_equal(m.releases, m.reads); /* the looping text was handed back too */
	bms_diag_free(&d);
}

/* A chain of files, each including the next, through the file-system source:
 * eight levels of nesting compile; the ninth is refused, and nothing past the
 * include stack is written on the way (it once was, over the compiler's depth). */
static int chain(const char *dir, int levels)
{
	char path[512];
	for (int i = 0; i <= levels; i++) {
		snprintf(path, sizeof(path), "%s/p%d.policy", dir, i);
		FILE *f = fopen(path, "w");
		if (f == NULL)
			return -1;
		if (i < levels)
			fprintf(f, "include \"p%d.policy\"\n", i + 1);
		else
			fprintf(f, DEVICE_B RULE_A);
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/p0.policy", dir);
	const char *top = path;
	struct bms_policy *p = NULL;
	struct bms_diag d;
	bms_diag_init(&d);
	int rc = bms_policy_load_flags(&top, 1, BMS_POLICY_TRUST_ANY_OWNER, &p, &d);
	if (rc == 0 && bms_policy_device_count(p) != 1)
		rc = -1000;
	if (rc != 0 && d.n > 0 && strstr(d.v[0].msg, "includes nested deeper than 8") == NULL)
		rc = -2000;
	bms_policy_free(p);
	bms_diag_free(&d);
	return rc;
}

static void include_depth_bound(void **state)
{
	(void)state;
	char dir[] = "/tmp/bms-policy-chain-XXXXXX";
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chain(dir, 8), 0);
	assert_int_equal(chain(dir, 9), -22);
	assert_int_equal(chain(dir, 12), -22);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* ---- zones ---- */

static uint8_t *read_zoneinfo(const char *zone, size_t *len)
{
	char path[256];
	snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", zone);
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	uint8_t *buf = malloc(BMS_POLICY_ZONE_MAX);
	*len = buf ? fread(buf, 1, BMS_POLICY_ZONE_MAX, f) : 0;
	fclose(f);
	return buf;
}

static void zone_from_memory(void **state)
{
	(void)state;
	size_t len = 0;
	uint8_t *tz = read_zoneinfo("Europe/Berlin", &len);
	if (tz == NULL)
		skip(); /* tzdata is in deps/debian-packages.txt */
	const struct mem_file files[] = { { "a.policy", "timezone Europe/Berlin\n" DEVICE_B RULE_A } };
	struct mem_source m = { .files = files, .nfiles = 1, .zone = tz, .zone_len = len };
	struct bms_policy *p = NULL;
	struct bms_diag d;
	assert_int_equal(compile_mem(&m, "a.policy", &p, &d), 0);
	assert_int_equal(m.zone_reads, 1);
	assert_string_equal(bms_policy_timezone(p), "Europe/Berlin");
	bms_policy_free(p);
	bms_diag_free(&d);
	free(tz);
}

static void zone_garbage_names_the_source(void **state)
{
	(void)state;
	static const uint8_t junk[] = "TZif2 but nothing after it";
	const struct mem_file files[] = { { "a.policy", "timezone Europe/Berlin\n" DEVICE_B RULE_A } };
	struct mem_source m = { .files = files, .nfiles = 1, .zone = junk, .zone_len = sizeof(junk) };
	struct bms_policy *p = NULL;
	struct bms_diag d;
	assert_int_equal(compile_mem(&m, "a.policy", &p, &d), -22);
	assert_true(has_diag(&d, "a.policy", 1, "time zone file table:Europe/Berlin is not a TZif file"));
	assert_int_equal(m.releases, 2); /* the zone data was handed back too */
	bms_diag_free(&d);
}

static void zone_utc_and_bad_names_never_reach_the_source(void **state)
{
	(void)state;
	const struct mem_file files[] = { { "u.policy", "timezone UTC\n" DEVICE_B RULE_A },
					  { "x.policy", "timezone ../../etc/passwd\n" DEVICE_B RULE_A } };
	struct mem_source m = { .files = files, .nfiles = 2 };
	struct bms_policy *p = NULL;
	struct bms_diag d;
	assert_int_equal(compile_mem(&m, "u.policy", &p, &d), 0);
	bms_policy_free(p);
	bms_diag_free(&d);
	assert_int_equal(compile_mem(&m, "x.policy", &p, &d), -22);
	assert_true(has_diag(&d, "x.policy", 1, "is not a time zone name"));
	assert_int_equal(m.zone_reads, 0);
	bms_diag_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(include_from_memory),
		cmocka_unit_test(include_missing_is_reported_at_the_include),
		cmocka_unit_test(include_loop_by_key),
		cmocka_unit_test(include_depth_bound),
		cmocka_unit_test(zone_from_memory),
		cmocka_unit_test(zone_garbage_names_the_source),
		cmocka_unit_test(zone_utc_and_bad_names_never_reach_the_source),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
