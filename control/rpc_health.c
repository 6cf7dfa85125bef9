/*
 * grpc.health.v1.Health/Check: SERVING once every worker runs its loop, NOT_SERVING from the
 * first shutdown signal on. The empty service name and corepipe's own services are known;
 * any other name is NOT_FOUND, as the health protocol specifies. Watch is not served
 * (UNIMPLEMENTED through the generic slots); clients poll Check.
 */
#include "control/grpc_server.h"
#include "grpc/health/v1/health.pb-c.h"

#include <string.h>

static const char *const g_known[] = {"", "corepipe.v1.Pipeline", "corepipe.v1.Admin"};

static void
check(struct cp_server *srv, struct cp_call *c)
{
	Grpc__Health__V1__HealthCheckRequest *rq;
	Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	int known = 0;

	rq = (Grpc__Health__V1__HealthCheckRequest *)cp_call_unpack(
	    c, &grpc__health__v1__health_check_request__descriptor);
	if (rq == NULL)
		return;
	for (size_t i = 0; i < sizeof(g_known) / sizeof(g_known[0]); i++)
		known |= strcmp(rq->service, g_known[i]) == 0;
	if (!known) {
		cp_call_reply(c, GRPC_STATUS_NOT_FOUND, NULL, "unknown service '%.100s'",
			      rq->service);
	} else {
		bool up = atomic_load(&srv->serving) && dp_dataplane_running(srv->dp);

		resp.status =
		    up ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
		       : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
		cp_call_reply(c, GRPC_STATUS_OK, &resp.base, NULL);
	}
	protobuf_c_message_free_unpacked(&rq->base, NULL);
}

struct cp_method cp_health_methods[] = {
    {.path = "/grpc.health.v1.Health/Check", .handler = check, .prealloc = 4},
    {.path = NULL},
};
