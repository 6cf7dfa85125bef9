/*
 * Build identity (see version.h). The values come from build/gen/corepipe_build.h, written by
 * the Makefile from VERSION, git describe and SYSCONFDIR.
 */
#include "control/version.h"

#include "corepipe_build.h"

#include <grpc/grpc.h>
#include <rte_version.h>

const char *
cp_version(void)
{
	return COREPIPE_VERSION;
}

const char *
cp_revision(void)
{
	return COREPIPE_REVISION;
}

const char *
cp_default_config_path(void)
{
	return COREPIPE_SYSCONFDIR "/corepipe/corepipe.yaml";
}

void
cp_version_print(FILE *out)
{
	fprintf(out,
		"corepiped %s\n"
		"revision: %s\n"
		"dpdk: %s\n"
		"grpc core: %s\n"
		"default config: %s\n",
		cp_version(), cp_revision(), rte_version(), grpc_version_string(),
		cp_default_config_path());
}
