/* audit/keys.c: Ed25519 signing keys and signed checkpoints (libcrypto EVP_PKEY).
 *
 * The signed message is text, one field per line, so that anyone can check a
 * checkpoint with stock tools (docs/audit-format.md shows how with openssl):
 *
 *   bmsgate-audit-checkpoint/1\n
 *   <node>\n
 *   <tree size, decimal>\n
 *   <root hash, 64 lower-case hex>\n
 *   <time, RFC 3339 UTC with microseconds>\n
 *
 * Version 2 (a checkpoint that records the writer's checkpoint policy) says
 * bmsgate-audit-checkpoint/2 and adds two lines: <every_records>\n<every_seconds>\n.
 * A line without the policy is checked as version 1, so logs written before
 * keep verifying, and stripping the policy from a line breaks its signature.
 *
 * The node name may not contain a newline (audit_open checks), so the
 * message cannot be read two ways.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "audit/audit_int.h"

static void ssl_err(char *err, size_t errlen, const char *what, const char *path)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "";
	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s %s%s%s", what, path, e ? ": " : "", buf);
	ERR_clear_error();
}

/* Creates path with mode, refusing to overwrite, and writes the key with write_fn. */
static int write_new_file(const char *path, mode_t mode, EVP_PKEY *key, bool priv, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot create %s: %s%s", path, strerror(e),
			 e == EEXIST ? " (refusing to overwrite a key)" : "");
		return -e;
	}
	/* the umask may have cleared bits but never adds any; make the mode exact */
	if (fchmod(fd, mode) < 0) {
		int e = errno;
		snprintf(err, errlen, "chmod %s: %s", path, strerror(e));
		close(fd);
		unlink(path);
		return -e;
	}
	FILE *f = fdopen(fd, "w");
	if (!f) {
		int e = errno;
		close(fd);
		unlink(path);
		snprintf(err, errlen, "fdopen %s: %s", path, strerror(e));
		return -e;
	}
	int ok = priv ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) : PEM_write_PUBKEY(f, key);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		ok = 0;
	if (fclose(f) != 0)
		ok = 0;
	if (!ok) {
		ssl_err(err, errlen, "cannot write", path);
		unlink(path);
		return -EIO;
	}
	return 0;
}

int audit_keygen(const char *priv_path, const char *pub_path, char *err, size_t errlen)
{
	int r;
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!key) {
		ssl_err(err, errlen, "Ed25519 key generation failed for", priv_path);
		return -EIO;
	}
	/* refuse early if the public key file exists, before creating the private one */
	if (access(pub_path, F_OK) == 0) {
		snprintf(err, errlen, "cannot create %s: File exists (refusing to overwrite a key)", pub_path);
		r = -EEXIST;
		goto fail;
	}
	r = write_new_file(priv_path, 0600, key, true, err, errlen);
	if (r < 0)
		goto fail;
	r = write_new_file(pub_path, 0644, key, false, err, errlen);
	if (r < 0) {
		unlink(priv_path);
		goto fail;
	}
fail:
	EVP_PKEY_free(key);
	return r;
}

int audit_key_load(const char *path, bool private_key, EVP_PKEY **out, char *err, size_t errlen)
{
	*out = NULL;
	FILE *f = fopen(path, "re");
	if (!f) {
		int e = errno;
		snprintf(err, errlen, "cannot open key %s: %s", path, strerror(e));
		return -e;
	}
	if (private_key) {
		struct stat st;
		/* a signing key others can read is not a signing key: refuse it (like ssh does) */
		if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077)) {
			snprintf(err, errlen, "private key %s is readable by others (mode %03o); chmod 600 it", path,
				 (unsigned)(st.st_mode & 0777));
			fclose(f);
			return -EPERM;
		}
	}
	EVP_PKEY *key = private_key ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	if (!key && !private_key) {
		/* a private key file also holds the public key: accept it for verification */
		f = fopen(path, "re");
		if (f) {
			key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
			fclose(f);
		}
	}
	if (!key) {
		ssl_err(err, errlen, private_key ? "cannot read private key" : "cannot read public key", path);
		return -EINVAL;
	}
	if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
		snprintf(err, errlen, "key %s is not an Ed25519 key", path);
		EVP_PKEY_free(key);
		return -EINVAL;
	}
	ERR_clear_error();
	*out = key;
	return 0;
}

int audit_key_check(const char *path, char *err, size_t errlen)
{
	EVP_PKEY *key = NULL;
	int r = audit_key_load(path, true, &key, err, errlen);
	EVP_PKEY_free(key);
	return r;
}

int audit_key_id(EVP_PKEY *key, char out[static AUDIT_KEYID_LEN + 1])
{
	uint8_t raw[32], md[32];
	size_t len = sizeof(raw);
	unsigned int mdlen = 0;
	if (EVP_PKEY_get_raw_public_key(key, raw, &len) != 1 || len != sizeof(raw) ||
	    EVP_Digest(raw, len, md, &mdlen, EVP_sha256(), NULL) != 1)
		return -EINVAL;
	audit_hex(md, AUDIT_KEYID_LEN / 2, out);
	return 0;
}

int audit_checkpoint_message(const struct audit_checkpoint *cp, char *out, size_t cap)
{
	char root[2 * AUDIT_HASH_LEN + 1];
	audit_hex(cp->root, AUDIT_HASH_LEN, root);
	if (strchr(cp->node, '\n'))
		return -EINVAL;
	int n = cp->has_policy
			? snprintf(out, cap, "bmsgate-audit-checkpoint/2\n%s\n%llu\n%s\n%s\n%u\n%u\n", cp->node,
				   (unsigned long long)cp->size, root, cp->time, (unsigned)cp->every_records,
				   (unsigned)cp->every_seconds)
			: snprintf(out, cap, "bmsgate-audit-checkpoint/1\n%s\n%llu\n%s\n%s\n", cp->node,
				   (unsigned long long)cp->size, root, cp->time);
	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	return n;
}

int audit_checkpoint_sign(EVP_PKEY *key, struct audit_checkpoint *cp)
{
	char msg[320];
	int n = audit_checkpoint_message(cp, msg, sizeof(msg));
	if (n < 0)
		return n;
	int r = audit_key_id(key, cp->key_id);
	if (r < 0)
		return r;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t siglen = AUDIT_SIG_LEN;
	/* Ed25519 is one-shot: no digest name, EVP_DigestSign over the whole message */
	if (!ctx || EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) != 1 ||
	    EVP_DigestSign(ctx, cp->sig, &siglen, (const unsigned char *)msg, (size_t)n) != 1 || siglen != AUDIT_SIG_LEN) {
		EVP_MD_CTX_free(ctx);
		ERR_clear_error();
		return -EIO;
	}
	EVP_MD_CTX_free(ctx);
	return 0;
}

int audit_checkpoint_verify(EVP_PKEY *key, const struct audit_checkpoint *cp)
{
	char msg[320];
	int n = audit_checkpoint_message(cp, msg, sizeof(msg));
	if (n < 0)
		return -EBADMSG;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1 &&
		 EVP_DigestVerify(ctx, cp->sig, AUDIT_SIG_LEN, (const unsigned char *)msg, (size_t)n) == 1;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return ok ? 0 : -EBADMSG;
}

int audit_checkpoint_format(const struct audit_checkpoint *cp, struct audit_buf *b)
{
	char root[2 * AUDIT_HASH_LEN + 1], sig[2 * AUDIT_SIG_LEN + 1];
	audit_hex(cp->root, AUDIT_HASH_LEN, root);
	audit_hex(cp->sig, AUDIT_SIG_LEN, sig);
	audit_buf_puts(b, "{\"kind\":\"checkpoint\",\"node\":");
	audit_buf_json_str(b, cp->node);
	audit_buf_printf(b, ",\"size\":%llu,\"root\":\"%s\",\"time\":\"%s\",\"key\":\"%s\",\"sig\":\"%s\"",
			 (unsigned long long)cp->size, root, cp->time, cp->key_id, sig);
	if (cp->has_policy)
		audit_buf_printf(b, ",\"every_records\":%u,\"every_seconds\":%u", (unsigned)cp->every_records,
				 (unsigned)cp->every_seconds);
	if (cp->has_frontier) {
		audit_buf_puts(b, ",\"frontier\":[");
		for (unsigned i = 0; i < cp->nfrontier; i++) {
			char h[2 * AUDIT_HASH_LEN + 1];
			audit_hex(cp->frontier[i], AUDIT_HASH_LEN, h);
			audit_buf_printf(b, "%s\"%s\"", i ? "," : "", h);
		}
		audit_buf_puts(b, "]");
		if (cp->has_prev) {
			char h[2 * AUDIT_PREV_BYTES + 1];
			audit_hex(cp->prev, AUDIT_PREV_BYTES, h);
			audit_buf_printf(b, ",\"prev\":\"%s\"", h);
		}
	}
	audit_buf_puts(b, "}");
	return b->overflow ? -ENOSPC : 0;
}
