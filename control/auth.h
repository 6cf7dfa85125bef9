/**
 * @file
 * Bearer-token authentication for the gRPC API (and the TLS settings struct).
 *
 * The configuration holds, per token, a name, the SHA-256 of the token (64 hex digits; the
 * token itself is never stored, logged or echoed) and a permission: `execute` (Pipeline RPCs)
 * or `admin` (Pipeline and Admin RPCs). Tokens come from the config file's `auth.tokens` list
 * and/or a `auth.token_file` of `name:sha256hex[:permission]` lines (for secrets mounted from
 * elsewhere). A call presents `authorization: Bearer <token>`; the server hashes the token with
 * libsodium and compares the digest with every configured one using sodium_memcmp (constant
 * time, and always the whole list, so timing says nothing about which entry matched or how
 * much of a digest did). A missing, malformed or unknown token gets one and the same answer.
 *
 * Context: cp_auth_load on the control thread at start; cp_auth_check on the CQ thread per
 * call. Ownership: struct cp_auth is a value; cp_auth_free releases its table.
 */
#ifndef COREPIPE_CP_AUTH_H
#define COREPIPE_CP_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CP_AUTH_NAME_MAX 64
#define CP_AUTH_DIGEST	 32
/** Largest token file read (100,000 lines of name:digest:permission fit easily). */
#define CP_AUTH_FILE_MAX (16u << 20)

/** TLS on the gRPC port (config section tls; used by grpc_server.c). */
struct cp_tls_conf {
	char cert_file[256];	    /**< PEM certificate chain; "" = no TLS */
	char key_file[256];	    /**< PEM private key */
	char client_ca_file[256];   /**< PEM CA bundle that client certificates chain to */
	bool require_client_cert;   /**< mTLS: refuse clients without a valid certificate */
	bool required;		    /**< no plaintext listener at all (default true) */
	char plaintext_listen[128]; /**< also serve plaintext here (required: false) */
};

enum cp_perm {
	CP_PERM_EXECUTE = 1, /**< corepipe.v1.Pipeline */
	CP_PERM_ADMIN = 2,   /**< corepipe.v1.Pipeline and corepipe.v1.Admin */
};

struct cp_auth_token {
	char name[CP_AUTH_NAME_MAX];
	uint8_t digest[CP_AUTH_DIGEST];
	enum cp_perm perm;
};

/** Longest auth.high_priority_tokens text. */
#define CP_AUTH_HIGH_MAX 512

struct cp_auth {
	bool enabled;
	bool health_open; /**< grpc.health.v1.Health without a token */
	bool metrics;	  /**< /metrics needs a bearer token too (any valid one) */
	unsigned n;
	struct cp_auth_token *tokens;
	/** auth.high_priority_tokens: comma-separated token names that may ask for
	 * corepipe-priority: high, "*" for every caller; "" for none. With auth off, anyone may. */
	char high_priority[CP_AUTH_HIGH_MAX];
};

/** May the caller with token @p who (NULL: none) ask for high priority? */
bool cp_auth_may_high(const struct cp_auth *a, const char *who);

/**
 * Add one token entry: @p name, @p sha256_hex (64 hex digits, any case) and @p perm
 * ("execute", "admin", or NULL for execute).
 * @return 0, or -EINVAL with @p err saying which field is wrong (never echoing the digest).
 */
int cp_auth_add(struct cp_auth *a, const char *name, const char *sha256_hex, const char *perm,
		char *err, size_t errlen);

/**
 * Read a token file: one `name:sha256hex[:permission]` per line; blank lines and `#` comments
 * are skipped. Read like the config file (control/file.h: never blocks, regular files only,
 * at most CP_AUTH_FILE_MAX bytes); a NUL byte in a line is an error.
 * @return 0, or -errno / -EINVAL with @p err = "path:line: what is wrong".
 */
int cp_auth_load_file(struct cp_auth *a, const char *path, char *err, size_t errlen);

/** Outcome of a check. */
enum cp_auth_result {
	CP_AUTH_OK = 0,
	CP_AUTH_UNAUTHENTICATED, /**< no, malformed or unknown token */
	CP_AUTH_DENIED,		 /**< a valid token without the permission */
};

/**
 * Check the `authorization` metadata value @p value (NULL when absent; @p len bytes) for a call
 * needing @p need. On success or denial *who is the token's name.
 */
enum cp_auth_result cp_auth_check(const struct cp_auth *a, const char *value, size_t len,
				  enum cp_perm need, const char **who);

/** Free the token table and reset @p a to disabled. */
void cp_auth_free(struct cp_auth *a);

/** Replace @p dst (freed first) with a deep copy of @p src. @return 0 or -ENOMEM. */
int cp_auth_copy(struct cp_auth *dst, const struct cp_auth *src);

#endif
