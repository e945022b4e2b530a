/* proxy/preflight.c: the checks `guard -n` and the guard's start-up share (see preflight.h).
 *
 * The guard starts as root, binds, opens its audit log and then becomes `user`. After that it
 * re-reads the policy (SIGHUP), the certificate, key, CA and CRL (SIGHUP, a changed CRL) and
 * creates files in the audit directory (rotation) as that user. A file that root could read
 * but the user cannot is a reload that fails long after start-up: the CRL case is a revoked
 * certificate that keeps working. So these are tried now, by a child process that takes the
 * user's ids exactly as the drop does (proxy_become_user) and opens each file.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "load/policy_files.h"
#include "audit/audit.h"
#include "proxy/privs.h"
#include "proxy/preflight.h"

__attribute__((format(printf, 4, 5))) static void say(FILE *out, const struct proxy_config *cfg, unsigned line,
						      const char *fmt, ...)
{
	va_list ap;
	if (line)
		fprintf(out, "%s:%u: ", cfg->path, line);
	else
		fprintf(out, "%s: ", cfg->path);
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fputc('\n', out);
}

static bool has_tls(const struct proxy_config *cfg)
{
	for (unsigned i = 0; i < cfg->nlisteners; i++)
		if (cfg->listeners[i].kind == PROXY_LISTEN_TLS)
			return true;
	return false;
}

/* ---- files the guard re-reads after the drop ---- */

struct file_ref {
	const char *kw;
	const char *path; /* borrowed from cfg */
	unsigned line;
	const char *when; /* when the guard reads it again */
};

static size_t reread_files(const struct proxy_config *cfg, struct file_ref *v)
{
	size_t n = 0;
	if (has_tls(cfg)) {
		v[n++] = (struct file_ref){ "certificate", cfg->certificate, cfg->lines.certificate, "on SIGHUP" };
		v[n++] = (struct file_ref){ "key", cfg->key, cfg->lines.key, "on SIGHUP and whenever the CRL changes" };
		v[n++] = (struct file_ref){ "ca", cfg->ca, cfg->lines.ca, "on SIGHUP and whenever the CRL changes" };
		if (cfg->crl[0])
			v[n++] = (struct file_ref){ "crl", cfg->crl, cfg->lines.crl, "whenever it changes and on SIGHUP" };
	}
	for (unsigned i = 0; i < cfg->npolicies; i++)
		v[n++] = (struct file_ref){ "policy", cfg->policies[i], cfg->lines.policies[i], "on SIGHUP" };
	return n;
}

static void dir_of(const char *path, char *dir, size_t cap)
{
	char tmp[PROXY_PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s", path);
	snprintf(dir, cap, "%s", dirname(tmp));
}

/* ---- private keys ---- */

/* PostgreSQL's rule for its server key, which a guard is in the same position to need: the
 * key is 0600 and belongs to the user that reads it, or it is root's, 0640, in the primary
 * group of the service user (`pki --group` lays guard keys out so): the user can read it and
 * never change it. Anything else others or another group may read is refused, with the fix. */
static unsigned check_key_mode(FILE *out, const struct proxy_config *cfg, const char *kw, const char *path,
			       unsigned line)
{
	struct stat sb;
	if (stat(path, &sb) < 0)
		return 0; /* loading it says why */
	if (!(sb.st_mode & 077))
		return 0;
	const struct passwd *pw = cfg->user[0] ? getpwnam(cfg->user) : NULL;
	bool shared = (sb.st_mode & 077) == 040 && sb.st_uid == 0 && pw && pw->pw_uid != 0 && sb.st_gid == pw->pw_gid;
	if (shared)
		return 0;
	if (sb.st_mode & 007)
		say(out, cfg, line, "%s %s: refusing a private key that anyone may read or write (mode %04o); run: chmod 600 %s",
		    kw, path, (unsigned)(sb.st_mode & 07777), path);
	else if (pw && pw->pw_uid != 0 && !(sb.st_mode & 020))
		say(out, cfg, line,
		    "%s %s: refusing a private key that its group may read (mode %04o, owner uid %u, group gid %u): "
		    "make it root's in group %u of user %s (chown 0:%u), or run: chmod 600 %s",
		    kw, path, (unsigned)(sb.st_mode & 07777), (unsigned)sb.st_uid, (unsigned)sb.st_gid,
		    (unsigned)pw->pw_gid, cfg->user, (unsigned)pw->pw_gid, path);
	else
		say(out, cfg, line, "%s %s: refusing a private key that its group may read or write (mode %04o); run: chmod 600 %s",
		    kw, path, (unsigned)(sb.st_mode & 07777), path);
	return 1;
}

static unsigned check_keys(FILE *out, const struct proxy_config *cfg)
{
	unsigned bad = 0;
	if (has_tls(cfg) && cfg->key[0])
		bad += check_key_mode(out, cfg, "key", cfg->key, cfg->lines.key);
	if (cfg->audit.key[0]) {
		char err[512];
		if (audit_key_check(cfg->audit.key, err, sizeof(err)) < 0) {
			say(out, cfg, cfg->lines.audit_key, "audit key: %s", err);
			bad++;
		}
	}
	return bad;
}

/* ---- the audit directory ---- */

static unsigned check_audit_dir(FILE *out, const struct proxy_config *cfg, const char *user)
{
	struct {
		const char *kw, *path;
		unsigned line;
	} f[2] = { { "audit file", cfg->audit.file, cfg->lines.audit_file },
		   { "checkpoint-copy", cfg->audit.checkpoint_copy, cfg->lines.checkpoint_copy } };
	unsigned bad = 0;
	for (unsigned i = 0; i < 2; i++) {
		if (!f[i].path[0])
			continue;
		char dir[PROXY_PATH_MAX];
		struct stat sb;
		dir_of(f[i].path, dir, sizeof(dir));
		if (stat(dir, &sb) < 0) {
			say(out, cfg, f[i].line, "%s %s: its directory %s: %s", f[i].kw, f[i].path, dir, strerror(errno));
			bad++;
			continue;
		}
		if (!S_ISDIR(sb.st_mode)) {
			say(out, cfg, f[i].line, "%s %s: %s is not a directory", f[i].kw, f[i].path, dir);
			bad++;
			continue;
		}
		/* the active log is renamed and a new one created there at every rotation */
		if (i == 0 && access(dir, W_OK | X_OK) < 0) {
			say(out, cfg, f[i].line,
			    "audit file %s: %s%s cannot create files in %s (%s): the guard rotates the log there after "
			    "dropping privileges",
			    f[i].path, user ? "user " : "this user", user ? user : "", dir, strerror(errno));
			bad++;
		}
	}
	return bad;
}

/* ---- as the user ---- */

static unsigned child_checks(FILE *out, const struct proxy_config *cfg, const char *user, bool policy_ok)
{
	struct file_ref files[4 + PROXY_MAX_POLICIES];
	size_t n = reread_files(cfg, files);
	unsigned bad = 0;
	bool policies_open = true;
	for (size_t i = 0; i < n; i++) {
		int fd = open(files[i].path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		if (fd >= 0) {
			close(fd);
			continue;
		}
		say(out, cfg, files[i].line,
		    "%s %s: user %s cannot read it (%s): the guard re-reads it as that user %s, after dropping "
		    "privileges",
		    files[i].kw, files[i].path, user, strerror(errno), files[i].when);
		bad++;
		if (strcmp(files[i].kw, "policy") == 0)
			policies_open = false;
	}
	bad += check_audit_dir(out, cfg, user);
	/* included files, and the compiler's own ownership rule, which depends on who runs it */
	if (policy_ok && policies_open && cfg->npolicies) {
		struct bms_diag diags;
		struct bms_policy *p = NULL;
		const char *pf[PROXY_MAX_POLICIES];
		for (unsigned i = 0; i < cfg->npolicies; i++)
			pf[i] = cfg->policies[i];
		bms_diag_init(&diags);
		if (bms_policy_load(pf, cfg->npolicies, &p, &diags) < 0) {
			say(out, cfg, cfg->lines.policies[0],
			    "policy: does not load as user %s, who reloads it on SIGHUP after dropping privileges:", user);
			bms_diag_print(&diags, out);
			bad++;
		}
		bms_policy_free(p);
		bms_diag_free(&diags);
	}
	return bad;
}

static int check_as_user(FILE *out, const struct proxy_config *cfg, const struct passwd *pw, bool policy_ok)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0) {
		say(out, cfg, cfg->lines.user, "user %s: cannot check files as that user: pipe: %s", pw->pw_name,
		    strerror(errno));
		return -1;
	}
	uid_t uid = pw->pw_uid;
	gid_t gid = pw->pw_gid;
	char user[PROXY_NAME_MAX];
	snprintf(user, sizeof(user), "%s", pw->pw_name);
	fflush(out);
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		say(out, cfg, cfg->lines.user, "user %s: cannot check files as that user: fork: %s", user, strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		close(fds[0]);
		FILE *o = fdopen(fds[1], "w");
		if (!o)
			_exit(2);
		int e = proxy_become_user(uid, gid);
		unsigned bad;
		if (e < 0) {
			say(o, cfg, cfg->lines.user, "user %s: cannot become that user: %s", user, strerror(-e));
			bad = 1;
		} else {
			bad = child_checks(o, cfg, user, policy_ok);
		}
		fclose(o);
		_exit(bad ? 1 : 0);
	}
	close(fds[1]);
	char buf[4096];
	ssize_t r;
	bool said = false;
	while ((r = read(fds[0], buf, sizeof(buf))) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		fwrite(buf, 1, (size_t)r, out);
		said = true;
	}
	close(fds[0]);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (!said)
		say(out, cfg, cfg->lines.user, "user %s: the check of its files did not finish (status %d)", user, st);
	return -1;
}

/* ---- devices ---- */

static void append(char *buf, size_t cap, size_t *off, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t cap, size_t *off, const char *fmt, ...)
{
	if (*off >= cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(buf + *off, cap - *off, fmt, ap);
	va_end(ap);
	if (w > 0)
		*off += (size_t)w;
}

unsigned proxy_preflight_devices(const struct proxy_config *cfg, const struct bms_policy *policy, FILE *out)
{
	unsigned bad = 0;
	if (!policy)
		return 0;
	for (unsigned i = 0; i < cfg->ndevices; i++) {
		const struct proxy_device *d = &cfg->devices[i];
		const struct sockaddr *sa = (const struct sockaddr *)&d->addr.ss;
		char where[96], units[200], hint[400];
		size_t uo = 0, ho = 0;
		unsigned missing = 0, found = 0;
		if (d->addr.len == 0)
			continue;
		engine_addr_words(sa, where, sizeof(where));
		units[0] = '\0';
		/* as engine_inspect looks each request up: this address, this port, this unit */
		for (unsigned u = 0; u < 256; u++) {
			if (!d->any_unit && !(d->units[u / 8] & (1u << (u % 8))))
				continue;
			if (bms_policy_find_device(policy, BMS_PROTO_MODBUS, sa, u)) {
				found++;
				continue;
			}
			if (d->any_unit)
				continue;
			missing++;
			unsigned v = u;
			while (v + 1 < 256 && (d->units[(v + 1) / 8] & (1u << ((v + 1) % 8))) &&
			       !bms_policy_find_device(policy, BMS_PROTO_MODBUS, sa, v + 1))
				v++;
			if (v > u)
				append(units, sizeof(units), &uo, "%s%u-%u", uo ? ", " : "", u, v);
			else
				append(units, sizeof(units), &uo, "%s%u", uo ? ", " : "", u);
			missing += v - u;
			u = v;
		}
		if (missing == 0 && (!d->any_unit || found))
			continue;
		hint[0] = '\0';
		unsigned shown = 0;
		for (size_t k = 0; k < bms_policy_device_count(policy); k++) {
			const struct bms_policy_device *pd = bms_policy_device_at(policy, k);
			if (bms_policy_device_proto(pd) != BMS_PROTO_MODBUS)
				continue;
			if (shown == 4) {
				append(hint, sizeof(hint), &ho, ", ...");
				break;
			}
			struct sockaddr_storage ss;
			socklen_t len = 0;
			char pw[96];
			bms_policy_device_addr(pd, &ss, &len);
			engine_addr_words((const struct sockaddr *)&ss, pw, sizeof(pw));
			append(hint, sizeof(hint), &ho, "%s%s at %s", shown ? ", " : "; the policy's Modbus devices: ",
			       bms_policy_device_name(pd), pw);
			shown++;
		}
		if (!shown)
			append(hint, sizeof(hint), &ho, "; the policy declares no Modbus device");
		if (d->any_unit)
			say(out, cfg, d->addr_line ? d->addr_line : d->line,
			    "device '%s': no device in the policy is declared at %s (any unit): every request routed to it "
			    "would be denied%s",
			    d->name, where, hint);
		else
			say(out, cfg, d->addr_line ? d->addr_line : d->line,
			    "device '%s': no device in the policy is declared at %s unit%s %s: every request for %s "
			    "would be denied%s",
			    d->name, where, missing > 1 ? "s" : "", units, missing > 1 ? "them" : "it", hint);
		bad++;
	}
	return bad;
}

/* ---- revocation freshness ---- */

int proxy_crl_next_update(const char *path, int64_t *out)
{
	FILE *f = fopen(path, "re");
	int n = 0;
	*out = 0;
	if (!f)
		return -1;
	X509_CRL *crl;
	while ((crl = PEM_read_X509_CRL(f, NULL, NULL, NULL)) != NULL) {
		const ASN1_TIME *t = X509_CRL_get0_nextUpdate(crl);
		struct tm tm;
		if (t && ASN1_TIME_to_tm(t, &tm) == 1) {
			int64_t s = (int64_t)timegm(&tm);
			if (*out == 0 || s < *out)
				*out = s;
		}
		X509_CRL_free(crl);
		n++;
	}
	ERR_clear_error();
	fclose(f);
	return n ? 0 : -1;
}

static unsigned check_crl_fresh(FILE *out, const struct proxy_config *cfg)
{
	int64_t next;
	if (!has_tls(cfg) || !cfg->crl[0] || cfg->crl_stale != PROXY_CRL_STALE_REFUSE)
		return 0;
	if (proxy_crl_next_update(cfg->crl, &next) < 0 || next == 0 || next > (int64_t)time(NULL))
		return 0; /* an unreadable CRL: loading it says why */
	char when[32];
	time_t tt = (time_t)next;
	struct tm tm;
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tt, &tm));
	say(out, cfg, cfg->lines.crl,
	    "crl %s: its nextUpdate (%s) has passed: every TLS client would be refused (crl-stale refuse); issue a "
	    "fresh CRL ('bmsgate pki crl DIR')",
	    cfg->crl, when);
	return 1;
}

/* ---- all of it ---- */

int proxy_preflight(const struct proxy_config *cfg, const struct bms_policy *policy, FILE *out)
{
	unsigned bad = 0;
	const struct passwd *pw = NULL;
	if (cfg->user[0]) {
		errno = 0;
		pw = getpwnam(cfg->user);
		if (!pw) {
			say(out, cfg, cfg->lines.user,
			    "user: no such user '%s'%s%s (create it: useradd --system --user-group --no-create-home "
			    "--shell /usr/sbin/nologin %s)",
			    cfg->user, errno ? ": " : "", errno ? strerror(errno) : "", cfg->user);
			bad++;
		}
	}
	bad += check_keys(out, cfg);
	bad += check_crl_fresh(out, cfg);
	bad += proxy_preflight_devices(cfg, policy, out);
	/* As root with a user to become: try the files as that user. Otherwise the guard stays
	 * who it is (proxy_drop_privileges), and what it loaded now it can load again. */
	if (pw && geteuid() == 0 && pw->pw_uid != 0) {
		/* getpwnam's result lives in static storage: copy what the child needs before forking */
		struct passwd copy = *pw;
		char name[PROXY_NAME_MAX];
		snprintf(name, sizeof(name), "%s", pw->pw_name);
		copy.pw_name = name;
		if (check_as_user(out, cfg, &copy, policy != NULL) < 0)
			bad++;
	} else {
		bad += check_audit_dir(out, cfg, NULL);
	}
	return bad ? -1 : 0;
}
