/* load/policy_files.c: the policy source that reads the file system.
 *
 * The compiler (compile.c) and the time-zone parser (tz.c) are pure; this is
 * where policy files are opened, checked (regular file, owner, mode, size),
 * include names resolved against the including file's folder, and zoneinfo
 * read. The gateway, `policy` and `replay` compile through bms_policy_load;
 * the fuzzers hand the compiler a source over memory instead.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "load/policy_files.h"

struct files_source {
	unsigned flags;
	const char *mem_name, *mem_text; /* bms_policy_load_string: the one file, in memory */
	size_t mem_len;
};

/* Reads a whole regular policy file, NUL-terminated for the lexer's sake. A file that
 * cannot be opened sets *open_errno and leaves the message to the caller. */
static int read_policy_file(const char *path, bool check_owner, struct bms_policy_text *out, int *open_errno,
			    char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		*open_errno = errno;
		return BMS_POLICY_SOURCE_MISSING;
	}
	struct stat sb;
	if (fstat(fileno(f), &sb) < 0 || !S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "not a regular file");
		fclose(f);
		return BMS_POLICY_SOURCE_REFUSED;
	}
	if (check_owner) {
		/* A policy decides who may move a building's equipment: only its owner may change it. */
		if (sb.st_mode & (S_IWGRP | S_IWOTH)) {
			snprintf(err, errlen, "refusing a policy file that %s may write (mode %04o); run: chmod go-w %s",
				 (sb.st_mode & S_IWOTH) ? "anyone" : "its group", (unsigned)(sb.st_mode & 07777), path);
			fclose(f);
			return BMS_POLICY_SOURCE_REFUSED;
		}
		if (sb.st_uid != geteuid() && sb.st_uid != 0) {
			snprintf(err, errlen,
				 "refusing a policy file owned by uid %u while running as uid %u; it must belong to "
				 "this user or to root",
				 (unsigned)sb.st_uid, (unsigned)geteuid());
			fclose(f);
			return BMS_POLICY_SOURCE_REFUSED;
		}
	}
	if (sb.st_size > (off_t)BMS_POLICY_FILE_MAX) {
		snprintf(err, errlen, "file of %lld bytes is larger than the limit of %u", (long long)sb.st_size,
			 BMS_POLICY_FILE_MAX);
		fclose(f);
		return BMS_POLICY_SOURCE_REFUSED;
	}
	char *buf = malloc((size_t)sb.st_size + 1);
	if (buf == NULL) {
		fclose(f);
		return BMS_POLICY_SOURCE_NOMEM;
	}
	out->len = fread(buf, 1, (size_t)sb.st_size, f);
	buf[out->len] = '\0';
	fclose(f);
	out->text = buf;
	out->handle = buf;
	return BMS_POLICY_SOURCE_OK;
}

static int files_read(void *ctx, const char *from, const char *name, struct bms_policy_text *out, char *err,
		      size_t errlen)
{
	const struct files_source *fs = ctx;
	bool check_owner = !(fs->flags & BMS_POLICY_TRUST_ANY_OWNER);
	int open_errno = 0, rc;
	if (from == NULL && fs->mem_text != NULL) {
		snprintf(out->name, sizeof(out->name), "%s", name);
		out->text = fs->mem_text;
		out->len = fs->mem_len;
		return BMS_POLICY_SOURCE_OK;
	}
	if (from == NULL) {
		snprintf(out->name, sizeof(out->name), "%s", name);
		if (realpath(name, out->key) == NULL)
			snprintf(out->key, sizeof(out->key), "%s", name);
		rc = read_policy_file(name, check_owner, out, &open_errno, err, errlen);
		if (rc == BMS_POLICY_SOURCE_MISSING)
			snprintf(err, errlen, "cannot read: %s", strerror(open_errno));
		return rc;
	}
	if (fs->mem_text != NULL) {
		snprintf(err, errlen, "include is not available here (policy text given in memory)");
		return BMS_POLICY_SOURCE_MISSING;
	}
	/* Relative names are relative to the including file's folder. */
	char path[PATH_MAX];
	const char *slash = strrchr(from, '/');
	if (name[0] == '/' || slash == NULL)
		snprintf(path, sizeof(path), "%s", name);
	else
		snprintf(path, sizeof(path), "%.*s/%s", (int)(slash - from), from, name);
	if (realpath(path, out->key) == NULL) {
		snprintf(err, errlen, "cannot read included file '%s': %s", path, strerror(errno));
		return BMS_POLICY_SOURCE_MISSING;
	}
	/* Diagnostics and the policy hash name files by this path: never cut it. */
	size_t plen = strlen(path);
	if (plen >= sizeof(out->name)) {
		snprintf(err, errlen, "included file name of %zu bytes is longer than %zu: '%.60s...'", plen,
			 sizeof(out->name) - 1, path);
		return BMS_POLICY_SOURCE_MISSING;
	}
	memcpy(out->name, path, plen + 1);
	rc = read_policy_file(path, check_owner, out, &open_errno, err, errlen);
	if (rc == BMS_POLICY_SOURCE_MISSING)
		snprintf(err, errlen, "cannot read included file '%s': %s", path, strerror(open_errno));
	return rc;
}

static int files_zone(void *ctx, const char *zone, struct bms_policy_text *out, char *err, size_t errlen)
{
	(void)ctx;
	const char *dir = getenv("TZDIR");
	snprintf(out->name, sizeof(out->name), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", zone);
	FILE *f = fopen(out->name, "rb");
	if (f == NULL) {
		snprintf(err, errlen, "unknown time zone '%s' (no %s; is tzdata installed?)", zone, out->name);
		return BMS_POLICY_SOURCE_MISSING;
	}
	/* System data, not policy: no owner check. What is not TZif (a folder reads as
	 * nothing) is for the parser to refuse, naming the file. */
	char *buf = malloc(BMS_POLICY_ZONE_MAX);
	if (buf == NULL) {
		fclose(f);
		return BMS_POLICY_SOURCE_NOMEM;
	}
	out->len = fread(buf, 1, BMS_POLICY_ZONE_MAX, f);
	fclose(f);
	out->text = buf;
	out->handle = buf;
	return BMS_POLICY_SOURCE_OK;
}

static void files_release(void *ctx, struct bms_policy_text *t)
{
	(void)ctx;
	free(t->handle);
	t->handle = NULL;
	t->text = NULL;
}

static int load(const char *const *files, size_t nfiles, const struct files_source *fs, struct bms_policy **out,
		struct bms_diag *diags)
{
	struct bms_policy_source src = {
		.ctx = (void *)fs,
		.read = files_read,
		.zone = files_zone,
		.release = files_release,
	};
	return bms_policy_compile(&src, files, nfiles, out, diags);
}

int bms_policy_load_flags(const char *const *files, size_t nfiles, unsigned flags, struct bms_policy **out,
			  struct bms_diag *diags)
{
	struct files_source fs = { .flags = flags };
	return load(files, nfiles, &fs, out, diags);
}

int bms_policy_load(const char *const *files, size_t nfiles, struct bms_policy **out, struct bms_diag *diags)
{
	return bms_policy_load_flags(files, nfiles, 0, out, diags);
}

int bms_policy_load_string(const char *name, const char *text, size_t len, struct bms_policy **out,
			   struct bms_diag *diags)
{
	struct files_source fs = { .flags = BMS_POLICY_TRUST_ANY_OWNER, .mem_name = name, .mem_text = text,
				   .mem_len = len };
	return load(&name, 1, &fs, out, diags);
}
