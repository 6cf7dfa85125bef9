/**
 * @file
 * What was built: the version (from the VERSION file), the source revision (git describe at
 * build time, "unknown" outside a git checkout) and the compiled-in configuration directory
 * ($(SYSCONFDIR), /etc unless the build says otherwise). The Makefile writes them into a
 * generated header that only version.c includes, so a new commit rebuilds one object.
 *
 * Context: any thread. Ownership: every string is static.
 */
#ifndef COREPIPE_CP_VERSION_H
#define COREPIPE_CP_VERSION_H

#include <stdio.h>

/** The release version, e.g. "0.3.0". */
const char *cp_version(void);

/** The source revision (git describe --always --dirty), or "unknown". */
const char *cp_revision(void);

/** The installed default configuration file: "$(SYSCONFDIR)/corepipe/corepipe.yaml". */
const char *cp_default_config_path(void);

/**
 * Print the `corepiped --version` text: the version line, then the revision, the libraries
 * it runs on (DPDK, gRPC core) and the default configuration path.
 */
void cp_version_print(FILE *out);

#endif
