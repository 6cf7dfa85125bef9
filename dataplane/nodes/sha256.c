/*
 * sha256: the SHA-256 digest (FIPS 180-4) of the payload's bytes, as the annotation "sha256"
 * (64 lowercase hex digits), computed with libsodium. For audio it hashes the sample bytes as
 * they are. The payload passes through unchanged.
 */
#include "dataplane/node.h"

#include <errno.h>
#include <sodium.h>

static int
sha256_compile(void *conf, const struct dp_node_args *args, struct dp_err *err)
{
	(void)conf;
	(void)args;
	/* Picks the fastest implementation once; idempotent and thread-safe. */
	if (sodium_init() < 0)
		return dp_err_set(err, DP_INTERNAL, "libsodium failed to initialise"), -EINVAL;
	return 0;
}

/* Hot path: per buffer, worker lcores. No locks, syscalls, allocation or logging. */

static int
sha256_process(const void *conf, struct dp_exec *x)
{
	unsigned char md[crypto_hash_sha256_BYTES];
	char hex[2 * crypto_hash_sha256_BYTES + 1];

	(void)conf;
	crypto_hash_sha256(md, x->buf->data, x->buf->len);
	sodium_bin2hex(hex, sizeof(hex), md, sizeof(md));
	return dp_exec_annotate(x, "sha256", hex);
}

/* Sliced (bulk lane): libsodium's incremental init/update/final, the state in the slice area. */
_Static_assert(sizeof(crypto_hash_sha256_state) <= DP_SLICE_MAX, "sha256 state fits a slice");

static int
sha256_slice(const void *conf, struct dp_exec *x, void *sl, uint32_t *pos, uint32_t budget)
{
	crypto_hash_sha256_state *st = sl;
	unsigned char md[crypto_hash_sha256_BYTES];
	char hex[2 * crypto_hash_sha256_BYTES + 1];
	uint32_t n = x->buf->len - *pos;

	(void)conf;
	if (*pos == 0)
		crypto_hash_sha256_init(st);
	if (n > budget)
		n = budget;
	crypto_hash_sha256_update(st, x->buf->data + *pos, n);
	*pos += n;
	if (*pos < x->buf->len)
		return DP_PENDING;
	crypto_hash_sha256_final(st, md);
	sodium_bin2hex(hex, sizeof(hex), md, sizeof(md));
	return dp_exec_annotate(x, "sha256", hex);
}

/* Named by the node table (dataplane/node_table.c). */
const struct dp_node_type dp_node_sha256 = {
    .name = "sha256",
    .summary = "Annotate the SHA-256 of the payload bytes (sha256 = 64 lowercase hex digits).",
    .accepts = DP_ACCEPT_ANY,
    .compile = sha256_compile,
    .process = sha256_process,
    .slice = sha256_slice,
};
