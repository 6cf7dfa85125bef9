/*
 * Bearer tokens: digests checked against SHA-256 computed here (libsodium), permissions,
 * malformed headers, the token file format, and config errors that never echo a digest.
 */
#include "control/auth.h"
#include "control/config.h"
#include "tests/fakes/cmocka_inc.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void
hex_of(const char *token, char out[65])
{
	unsigned char d[32];

	crypto_hash_sha256(d, (const unsigned char *)token, strlen(token));
	sodium_bin2hex(out, 65, d, 32);
}

static enum cp_auth_result
check(const struct cp_auth *a, const char *header, enum cp_perm need, const char **who)
{
	return cp_auth_check(a, header, header ? strlen(header) : 0, need, who);
}

static void
test_auth_tokens_and_permissions(void **state)
{
	struct cp_auth a = {.enabled = true};
	char h1[65], h2[65], err[256];
	const char *who;

	(void)state;
	hex_of("s3cret-exec", h1);
	hex_of("s3cret-admin", h2);
	assert_int_equal(cp_auth_add(&a, "ci", h1, "execute", err, sizeof(err)), 0);
	assert_int_equal(cp_auth_add(&a, "ops", h2, "admin", err, sizeof(err)), 0);
	assert_int_equal(check(&a, "Bearer s3cret-exec", CP_PERM_EXECUTE, &who), CP_AUTH_OK);
	assert_string_equal(who, "ci");
	assert_int_equal(check(&a, "bearer s3cret-exec", CP_PERM_EXECUTE, &who), CP_AUTH_OK);
	assert_int_equal(check(&a, "Bearer s3cret-exec", CP_PERM_ADMIN, &who), CP_AUTH_DENIED);
	assert_string_equal(who, "ci");
	assert_int_equal(check(&a, "Bearer s3cret-admin", CP_PERM_ADMIN, &who), CP_AUTH_OK);
	assert_string_equal(who, "ops");
	assert_int_equal(check(&a, "Bearer s3cret-admin", CP_PERM_EXECUTE, &who), CP_AUTH_OK);
	/* Missing, malformed, wrong, prefix of a token, token + extra: all the same answer. */
	const char *bad[] = {NULL,
			     "",
			     "Bearer",
			     "Bearer ",
			     "Basic s3cret-exec",
			     "s3cret-exec",
			     "Bearer s3cret-exe",
			     "Bearer s3cret-exec ",
			     "Bearer S3CRET-EXEC"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(check(&a, bad[i], CP_PERM_EXECUTE, &who), CP_AUTH_UNAUTHENTICATED);
		assert_null(who);
	}
	cp_auth_free(&a);
}

static void
test_auth_rejects_bad_entries_without_echo(void **state)
{
	struct cp_auth a = {0};
	char h[65], err[256];

	(void)state;
	hex_of("x", h);
	assert_int_equal(cp_auth_add(&a, "a", "plaintext-token", NULL, err, sizeof(err)), -EINVAL);
	assert_null(strstr(err, "plaintext-token"));
	assert_non_null(strstr(err, "64 hex digits"));
	assert_int_equal(cp_auth_add(&a, "a", h, "root", err, sizeof(err)), -EINVAL);
	assert_int_equal(cp_auth_add(&a, "", h, NULL, err, sizeof(err)), -EINVAL);
	assert_int_equal(cp_auth_add(&a, "a:b", h, NULL, err, sizeof(err)), -EINVAL);
	assert_int_equal(cp_auth_add(&a, "a", h, NULL, err, sizeof(err)), 0);
	assert_int_equal(cp_auth_add(&a, "a", h, NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "twice"));
	assert_int_equal(a.n, 1);
	cp_auth_free(&a);
}

static void
test_auth_token_file_and_config(void **state)
{
	char path[] = "/tmp/cp_test_tokens_XXXXXX", cfgp[] = "/tmp/cp_test_authcfg_XXXXXX";
	char h1[65], h2[65], text[512], err[512];
	struct cp_config c;
	const char *who;
	int fd;

	(void)state;
	hex_of("file-token", h1);
	hex_of("yaml-token", h2);
	fd = mkstemp(path);
	snprintf(text, sizeof(text), "# comment\n\nfromfile:%s:admin\n", h1);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	fd = mkstemp(cfgp);
	snprintf(text, sizeof(text),
		 "auth:\n  enabled: true\n  token_file: %s\n  tokens:\n"
		 "    - { name: inline, sha256: %s, permission: execute }\n",
		 path, h2);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	cp_config_init(&c);
	assert_int_equal(cp_config_load_file(&c, cfgp, err, sizeof(err)), 0);
	assert_true(c.auth.enabled);
	assert_true(c.auth.health_open);
	assert_int_equal(c.auth.n, 2);
	assert_int_equal(check(&c.auth, "Bearer file-token", CP_PERM_ADMIN, &who), CP_AUTH_OK);
	assert_string_equal(who, "fromfile");
	assert_int_equal(check(&c.auth, "Bearer yaml-token", CP_PERM_ADMIN, &who), CP_AUTH_DENIED);
	cp_config_free(&c);
	/* A bad line in the token file: path:line, and no digest in the message. */
	fd = open(path, O_WRONLY | O_TRUNC);
	snprintf(text, sizeof(text), "ok:%s\nbroken:%.10s\n", h1, h1);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	cp_config_init(&c);
	assert_int_equal(cp_config_load_file(&c, cfgp, err, sizeof(err)), -EINVAL);
	snprintf(text, sizeof(text), "%s:2: token 'broken'", path);
	assert_non_null(strstr(err, text));
	assert_null(strstr(err, h1));
	assert_int_equal(c.auth.n, 0); /* unchanged */
	cp_config_free(&c);
	/* Enabled without any token is refused. */
	fd = open(cfgp, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, "auth: { enabled: true }\n", 24), 24);
	close(fd);
	cp_config_init(&c);
	assert_int_equal(cp_config_load_file(&c, cfgp, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "no token"));
	cp_config_free(&c);
	unlink(path);
	unlink(cfgp);
}

/* Finding 16/7: a NUL inside a token file line is an error (it would cut the name short), and
 * a FIFO is refused at once instead of waiting for a writer. */
static void
test_auth_token_file_nul_and_fifo_refused(void **state)
{
	char path[] = "/tmp/cp_test_tokens_XXXXXX", h1[65], text[256], err[512];
	struct cp_auth a = {0};
	size_t n;
	int fd;

	(void)state;
	hex_of("t", h1);
	fd = mkstemp(path);
	n = (size_t)snprintf(text, sizeof(text), "ops\x01:%s:admin\n", h1);
	text[3] = '\0'; /* "ops\0:<digest>:admin" */
	assert_int_equal(write(fd, text, n), (ssize_t)n);
	close(fd);
	assert_int_equal(cp_auth_load_file(&a, path, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":1: a NUL byte"));
	assert_int_equal(a.n, 0);
	unlink(path);
	assert_int_equal(mkfifo(path, 0600), 0);
	alarm(20);
	assert_int_equal(cp_auth_load_file(&a, path, err, sizeof(err)), -EINVAL);
	alarm(0);
	assert_non_null(strstr(err, "a FIFO"));
	unlink(path);
	cp_auth_free(&a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_auth_tokens_and_permissions),
	    cmocka_unit_test(test_auth_rejects_bad_entries_without_echo),
	    cmocka_unit_test(test_auth_token_file_and_config),
	    cmocka_unit_test(test_auth_token_file_nul_and_fifo_refused),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
