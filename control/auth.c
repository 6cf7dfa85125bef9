/*
 * Bearer-token authentication (see auth.h).
 */
#include "control/auth.h"

#include "control/file.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int
cp_auth_add(struct cp_auth *a, const char *name, const char *sha256_hex, const char *perm,
	    char *err, size_t errlen)
{
	struct cp_auth_token t, *grown;
	size_t bin_len = 0;

	memset(&t, 0, sizeof(t));
	if (name == NULL || name[0] == '\0' || strlen(name) >= CP_AUTH_NAME_MAX ||
	    strpbrk(name, ": \t\r\n\"") != NULL)
		return snprintf(err, errlen,
				"token name must be 1..63 characters without ':', "
				"spaces or quotes"),
		       -EINVAL;
	for (unsigned i = 0; i < a->n; i++)
		if (strcmp(a->tokens[i].name, name) == 0)
			return snprintf(err, errlen, "token '%s' is defined twice", name), -EINVAL;
	if (sha256_hex == NULL || strlen(sha256_hex) != 2 * CP_AUTH_DIGEST ||
	    sodium_hex2bin(t.digest, sizeof(t.digest), sha256_hex, strlen(sha256_hex), NULL,
			   &bin_len, NULL) != 0 ||
	    bin_len != CP_AUTH_DIGEST)
		return snprintf(err, errlen,
				"token '%s': sha256 must be 64 hex digits (the SHA-256 of the "
				"token, e.g. from `printf %%s TOKEN | sha256sum`), not the token",
				name),
		       -EINVAL;
	if (perm == NULL || strcmp(perm, "execute") == 0)
		t.perm = CP_PERM_EXECUTE;
	else if (strcmp(perm, "admin") == 0)
		t.perm = CP_PERM_ADMIN;
	else
		return snprintf(err, errlen,
				"token '%s': permission must be execute or admin, got "
				"'%.20s'",
				name, perm),
		       -EINVAL;
	snprintf(t.name, sizeof(t.name), "%s", name);
	grown = realloc(a->tokens, (a->n + 1) * sizeof(*grown));
	if (grown == NULL)
		return snprintf(err, errlen, "out of memory"), -ENOMEM;
	a->tokens = grown;
	a->tokens[a->n++] = t;
	sodium_memzero(&t, sizeof(t));
	return 0;
}

int
cp_auth_load_file(struct cp_auth *a, const char *path, char *err, size_t errlen)
{
	char *buf, line[512], msg[256];
	size_t len, off = 0;
	unsigned lineno = 0;
	int rc;

	/* Read without blocking (a FIFO is refused) and with a bound, like the config file. */
	rc = cp_file_read(path, CP_AUTH_FILE_MAX, &buf, &len, err, errlen);
	if (rc != 0)
		return rc == -EFBIG || rc == -EAGAIN ? -EINVAL : rc;
	while (off < len && rc == 0) {
		const char *nl = memchr(buf + off, '\n', len - off);
		size_t n = (nl ? (size_t)(nl - buf) : len) - off;
		char *p = line, *name, *hex, *perm, *save = NULL;

		lineno++;
		if (n >= sizeof(line)) {
			snprintf(err, errlen, "%s:%u: line longer than %zu bytes", path, lineno,
				 sizeof(line) - 1);
			rc = -EINVAL;
			break;
		}
		/* A NUL would end the C string early: "name\0junk" must not become "name". */
		if (memchr(buf + off, '\0', n) != NULL) {
			snprintf(err, errlen, "%s:%u: a NUL byte in the line", path, lineno);
			rc = -EINVAL;
			break;
		}
		memcpy(line, buf + off, n);
		line[n] = '\0';
		off += n + 1;
		line[strcspn(line, "\r")] = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0' || *p == '#')
			continue;
		name = strtok_r(p, ":", &save);
		hex = strtok_r(NULL, ":", &save);
		perm = strtok_r(NULL, ":", &save);
		if (strtok_r(NULL, ":", &save) != NULL) {
			snprintf(err, errlen, "%s:%u: expected name:sha256hex[:permission]", path,
				 lineno);
			rc = -EINVAL;
			break;
		}
		rc = cp_auth_add(a, name, hex, perm, msg, sizeof(msg));
		if (rc != 0)
			snprintf(err, errlen, "%s:%u: %s", path, lineno, msg);
	}
	sodium_memzero(line, sizeof(line));
	sodium_memzero(buf, len);
	free(buf);
	return rc;
}

enum cp_auth_result
cp_auth_check(const struct cp_auth *a, const char *value, size_t len, enum cp_perm need,
	      const char **who)
{
	static const char prefix[] = "Bearer ";
	uint8_t digest[CP_AUTH_DIGEST];
	const struct cp_auth_token *match = NULL;

	*who = NULL;
	if (value == NULL || len <= sizeof(prefix) - 1 ||
	    strncasecmp(value, prefix, sizeof(prefix) - 1) != 0)
		return CP_AUTH_UNAUTHENTICATED;
	crypto_hash_sha256(digest, (const unsigned char *)value + sizeof(prefix) - 1,
			   len - (sizeof(prefix) - 1));
	/* Every entry, constant time each, no early exit. */
	for (unsigned i = 0; i < a->n; i++) {
		bool eq = sodium_memcmp(digest, a->tokens[i].digest, CP_AUTH_DIGEST) == 0;

		if (eq && match == NULL)
			match = &a->tokens[i];
	}
	sodium_memzero(digest, sizeof(digest));
	if (match == NULL)
		return CP_AUTH_UNAUTHENTICATED;
	*who = match->name;
	return match->perm >= need ? CP_AUTH_OK : CP_AUTH_DENIED;
}

void
cp_auth_free(struct cp_auth *a)
{
	if (a->tokens != NULL)
		sodium_memzero(a->tokens, a->n * sizeof(*a->tokens));
	free(a->tokens);
	memset(a, 0, sizeof(*a));
}

int
cp_auth_copy(struct cp_auth *dst, const struct cp_auth *src)
{
	struct cp_auth_token *t = NULL;

	if (src->n != 0) {
		t = malloc(src->n * sizeof(*t));
		if (t == NULL)
			return -ENOMEM;
		memcpy(t, src->tokens, src->n * sizeof(*t));
	}
	cp_auth_free(dst);
	*dst = *src;
	dst->tokens = t;
	return 0;
}

bool
cp_auth_may_high(const struct cp_auth *a, const char *who)
{
	const char *p = a->high_priority;
	size_t wl;

	if (!a->enabled || strcmp(p, "*") == 0)
		return true;
	if (who == NULL)
		return false;
	wl = strlen(who);
	while (*p != '\0') {
		const char *e = strchr(p, ',');
		size_t n = e != NULL ? (size_t)(e - p) : strlen(p);

		while (n > 0 && *p == ' ')
			p++, n--;
		while (n > 0 && p[n - 1] == ' ')
			n--;
		if (n == wl && memcmp(p, who, n) == 0)
			return true;
		if (e == NULL)
			break;
		p = e + 1;
	}
	return false;
}
