/*
 * corepipectl pipelines, nodes, stats, health, reload: one unary call each.
 */
#include "client/ctl/ctl.h"
#include "client/ctl/pbjson.h"
#include "client/ctl/pipefile.h"
#include "grpc/health/v1/health.pb-c.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADMIN "/corepipe.v1.Admin/"

/* Connect, call, and on a non-OK status print it; @return 0 with *resp set, or the exit code. */
static int
call(const struct ctl_opts *o, struct ctl_conn *c, const char *method, const ProtobufCMessage *rq,
     const ProtobufCMessageDescriptor *d, ProtobufCMessage **resp)
{
	struct ctl_status st;
	int rc = ctl_connect(c, o);

	if (rc != 0)
		return rc;
	if (ctl_unary(c, method, rq, d, resp, &st) != 0) {
		ctl_disconnect(c);
		return ctl_err(o, CTL_EXIT_CONNECT, "%s: the call could not be started", method);
	}
	if (st.code != GRPC_STATUS_OK) {
		ctl_disconnect(c);
		return ctl_status_fail(o, strrchr(method, '/') + 1, &st);
	}
	return 0;
}

static void
done(struct ctl_conn *c, ProtobufCMessage *resp)
{
	if (resp != NULL)
		protobuf_c_message_free_unpacked(resp, NULL);
	ctl_disconnect(c);
}

/* "gain(db=6) -> crc32c" */
static void
print_chain(FILE *out, const Corepipe__V1__PipelineSpec *s)
{
	for (size_t i = 0; i < s->n_nodes; i++) {
		fprintf(out, "%s%s", i ? " -> " : "", s->nodes[i]->type);
		if (s->nodes[i]->n_params) {
			fputc('(', out);
			for (size_t k = 0; k < s->nodes[i]->n_params; k++)
				fprintf(out, "%s%s=%s", k ? "," : "", s->nodes[i]->params[k]->key,
					s->nodes[i]->params[k]->value);
			fputc(')', out);
		}
	}
}

static int
pipelines_list(const struct ctl_opts *o)
{
	Corepipe__V1__ListPipelinesRequest rq = COREPIPE__V1__LIST_PIPELINES_REQUEST__INIT;
	Corepipe__V1__ListPipelinesResponse *r;
	struct ctl_conn c;
	int rc = call(o, &c, ADMIN "ListPipelines", &rq.base,
		      &corepipe__v1__list_pipelines_response__descriptor, (ProtobufCMessage **)&r);

	if (rc != 0)
		return rc;
	if (o->json) {
		ctl_json_print(ctl_pb_to_json(&r->base));
	} else {
		printf("%-24s %5s %8s  %s\n", "NAME", "ID", "VERSION", "NODES");
		for (size_t i = 0; i < r->n_pipelines; i++) {
			const Corepipe__V1__PipelineInfo *p = r->pipelines[i];

			printf("%-24s %5u %8llu  ", p->spec ? p->spec->name : "?", p->id,
			       (unsigned long long)p->version);
			if (p->spec)
				print_chain(stdout, p->spec);
			putchar('\n');
		}
	}
	done(&c, &r->base);
	return 0;
}

static int
pipelines_get(const struct ctl_opts *o, const char *name)
{
	Corepipe__V1__GetPipelineRequest rq = COREPIPE__V1__GET_PIPELINE_REQUEST__INIT;
	Corepipe__V1__PipelineInfo *r;
	struct ctl_conn c;
	int rc;

	rq.name = (char *)name;
	rc = call(o, &c, ADMIN "GetPipeline", &rq.base, &corepipe__v1__pipeline_info__descriptor,
		  (ProtobufCMessage **)&r);
	if (rc != 0)
		return rc;
	if (o->json) {
		ctl_json_print(ctl_pb_to_json(&r->base));
	} else if (r->spec != NULL) {
		printf("# id %u, version %llu\n", r->id, (unsigned long long)r->version);
		ctl_pipefile_write_yaml(stdout, &r->spec, 1);
	}
	done(&c, &r->base);
	return 0;
}

static int
pipelines_put(const struct ctl_opts *o, const char *file)
{
	struct ctl_pipefile pf;
	struct ctl_conn c;
	uint8_t *text;
	size_t len;
	char err[512];
	json_t *out;
	int rc = ctl_read_file(file, &text, &len);

	if (rc != 0)
		return ctl_err(o, CTL_EXIT_INPUT, "%s: %s", file, strerror(-rc));
	rc = ctl_pipefile_parse(strcmp(file, "-") ? file : "<stdin>", text, len, true, &pf, err,
				sizeof(err));
	free(text);
	if (rc != 0)
		return ctl_err(o, CTL_EXIT_INPUT, "%s", err);
	out = json_array();
	rc = ctl_connect(&c, o);
	for (size_t i = 0; rc == 0 && i < pf.n; i++) {
		Corepipe__V1__PutPipelineRequest rq = COREPIPE__V1__PUT_PIPELINE_REQUEST__INIT;
		Corepipe__V1__PipelineInfo *r;
		struct ctl_status st;

		rq.pipeline = pf.specs[i];
		if (ctl_unary(&c, ADMIN "PutPipeline", &rq.base,
			      &corepipe__v1__pipeline_info__descriptor, (ProtobufCMessage **)&r,
			      &st) != 0) {
			rc = ctl_err(o, CTL_EXIT_CONNECT, "PutPipeline could not be started");
			break;
		}
		if (st.code != GRPC_STATUS_OK) {
			char what[128];

			snprintf(what, sizeof(what), "PutPipeline %s", pf.specs[i]->name);
			if (i > 0 && !o->json)
				fprintf(stderr,
					"%s: %zu of %zu pipelines were put before this one\n",
					o->progname, i, pf.n);
			rc = ctl_status_fail(o, what, &st);
			break;
		}
		if (o->json)
			json_array_append_new(out, ctl_pb_to_json(&r->base));
		else
			printf("put %s: id %u, version %llu\n", r->spec ? r->spec->name : "?",
			       r->id, (unsigned long long)r->version);
		protobuf_c_message_free_unpacked(&r->base, NULL);
	}
	if (rc == 0 && o->json)
		ctl_json_print(json_pack("{s:o}", "put", out));
	else
		json_decref(out);
	if (c.ch != NULL)
		ctl_disconnect(&c);
	ctl_pipefile_free(&pf);
	return rc;
}

static int
pipelines_delete(const struct ctl_opts *o, const char *name)
{
	Corepipe__V1__DeletePipelineRequest rq = COREPIPE__V1__DELETE_PIPELINE_REQUEST__INIT;
	ProtobufCMessage *r;
	struct ctl_conn c;
	int rc;

	rq.name = (char *)name;
	rc = call(o, &c, ADMIN "DeletePipeline", &rq.base,
		  &corepipe__v1__delete_pipeline_response__descriptor, &r);
	if (rc != 0)
		return rc;
	if (o->json)
		ctl_json_print(json_pack("{s:s}", "deleted", name));
	else
		printf("deleted %s\n", name);
	done(&c, r);
	return 0;
}

int
ctl_cmd_pipelines(const struct ctl_opts *o, int argc, char **argv)
{
	const char *sub = argc > 0 ? argv[0] : "list";

	if (strcmp(sub, "list") == 0 && argc <= 1)
		return pipelines_list(o);
	if (strcmp(sub, "get") == 0 && argc == 2)
		return pipelines_get(o, argv[1]);
	if (strcmp(sub, "put") == 0 && argc == 2)
		return pipelines_put(o, argv[1]);
	if ((strcmp(sub, "delete") == 0 || strcmp(sub, "rm") == 0) && argc == 2)
		return pipelines_delete(o, argv[1]);
	return ctl_err(o, CTL_EXIT_USAGE,
		       "usage: pipelines list | get NAME | put FILE | delete NAME");
}

int
ctl_cmd_nodes(const struct ctl_opts *o, int argc, char **argv)
{
	Corepipe__V1__ListNodeTypesRequest rq = COREPIPE__V1__LIST_NODE_TYPES_REQUEST__INIT;
	Corepipe__V1__ListNodeTypesResponse *r;
	struct ctl_conn c;
	int rc;

	(void)argv;
	if (argc != 0)
		return ctl_err(o, CTL_EXIT_USAGE, "usage: nodes");
	rc = call(o, &c, ADMIN "ListNodeTypes", &rq.base,
		  &corepipe__v1__list_node_types_response__descriptor, (ProtobufCMessage **)&r);
	if (rc != 0)
		return rc;
	if (o->json) {
		ctl_json_print(ctl_pb_to_json(&r->base));
	} else {
		for (size_t i = 0; i < r->n_types; i++) {
			const Corepipe__V1__NodeType *t = r->types[i];

			printf("%s\n    %s\n", t->type, t->summary);
			for (size_t k = 0; k < t->n_params; k++) {
				const Corepipe__V1__ParamInfo *p = t->params[k];

				printf("    %-14s %s", p->name, p->required ? "(required)" : "");
				if (!p->required && p->default_value[0])
					printf("(default %s)", p->default_value);
				printf(" %s\n", p->summary);
			}
		}
	}
	done(&c, &r->base);
	return 0;
}

static void
print_map_u64(const char *title, Corepipe__V1__Stats__RejectedEntry **e, size_t n)
{
	printf("%s", title);
	if (n == 0)
		printf(" none");
	for (size_t i = 0; i < n; i++)
		printf(" %s=%llu", e[i]->key, (unsigned long long)e[i]->value);
	putchar('\n');
}

int
ctl_cmd_stats(const struct ctl_opts *o, int argc, char **argv)
{
	Corepipe__V1__GetStatsRequest rq = COREPIPE__V1__GET_STATS_REQUEST__INIT;
	Corepipe__V1__Stats *s;
	struct ctl_conn c;
	int rc;

	(void)argv;
	if (argc != 0)
		return ctl_err(o, CTL_EXIT_USAGE, "usage: stats");
	rc = call(o, &c, ADMIN "GetStats", &rq.base, &corepipe__v1__stats__descriptor,
		  (ProtobufCMessage **)&s);
	if (rc != 0)
		return rc;
	if (o->json) {
		ctl_json_print(ctl_pb_to_json(&s->base));
		done(&c, &s->base);
		return 0;
	}
	printf("connections %llu (refused %llu), calls %llu, streams %llu, in flight %llu, "
	       "answered %llu\n",
	       (unsigned long long)s->connections, (unsigned long long)s->connections_refused,
	       (unsigned long long)s->streams, (unsigned long long)s->pipeline_streams,
	       (unsigned long long)s->in_flight, (unsigned long long)s->answered);
	printf("\n%-6s %5s %6s %6s %9s %7s %9s %12s  %s\n", "WORKER", "LCORE", "BUSY%", "QUEUE",
	       "IN-FLIGHT", "STREAMS", "SHEDDING", "REQUESTS", "BY CODE");
	for (size_t i = 0; i < s->n_workers; i++) {
		const Corepipe__V1__WorkerStats *w = s->workers[i];

		printf("%-6u %5u %6.1f %6llu %9llu %7llu %9s %12llu  ", w->index, w->lcore,
		       100 * w->busy_ratio, (unsigned long long)w->queue_depth,
		       (unsigned long long)w->in_flight, (unsigned long long)w->streams_open,
		       w->shedding ? "yes" : "no", (unsigned long long)w->requests);
		for (size_t k = 0; k < w->n_by_code; k++)
			printf("%s%s=%llu", k ? " " : "", w->by_code[k]->key,
			       (unsigned long long)w->by_code[k]->value);
		putchar('\n');
	}
	printf("\n%-16s %12s %9s %9s %6s\n", "POOL", "BUFFER", "CAPACITY", "IN USE", "USE%");
	for (size_t i = 0; i < s->n_pools; i++) {
		const Corepipe__V1__PoolStats *p = s->pools[i];

		printf("%-16s %12u %9u %9u %6.1f\n", p->name, p->buffer_bytes, p->capacity,
		       p->in_use, p->capacity ? 100.0 * p->in_use / p->capacity : 0.0);
	}
	putchar('\n');
	print_map_u64("rejected:", s->rejected, s->n_rejected);
	for (size_t i = 0; i < s->n_udp_ports; i++) {
		const Corepipe__V1__UdpPortStats *u = s->udp_ports[i];

		printf("udp port %s (%s, %s) %s:%u link %s rx %llu tx %llu\n", u->name, u->driver,
		       u->mac, u->address, u->udp_port, u->link_up ? "up" : "down",
		       (unsigned long long)u->rx_packets, (unsigned long long)u->tx_packets);
	}
	done(&c, &s->base);
	return 0;
}

int
ctl_cmd_health(const struct ctl_opts *o, int argc, char **argv)
{
	Grpc__Health__V1__HealthCheckRequest rq = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	Grpc__Health__V1__HealthCheckResponse *r;
	const ProtobufCEnumValue *ev;
	struct ctl_conn c;
	int rc;

	if (argc > 1)
		return ctl_err(o, CTL_EXIT_USAGE, "usage: health [SERVICE]");
	rq.service = argc == 1 ? argv[0] : (char *)"";
	rc = call(o, &c, "/grpc.health.v1.Health/Check", &rq.base,
		  &grpc__health__v1__health_check_response__descriptor, (ProtobufCMessage **)&r);
	if (rc != 0)
		return rc;
	ev = protobuf_c_enum_descriptor_get_value(
	    &grpc__health__v1__health_check_response__serving_status__descriptor, r->status);
	if (o->json)
		ctl_json_print(json_pack("{s:s,s:s}", "service", rq.service, "status",
					 ev ? ev->name : "UNKNOWN"));
	else
		printf("%s\n", ev ? ev->name : "UNKNOWN");
	rc = r->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
		 ? CTL_EXIT_OK
		 : CTL_EXIT_FAILURE;
	done(&c, &r->base);
	return rc;
}

static void
print_list(const char *title, char **v, size_t n)
{
	if (n == 0)
		return;
	printf("%s:", title);
	for (size_t i = 0; i < n; i++)
		printf(" %s", v[i]);
	putchar('\n');
}

int
ctl_cmd_reload(const struct ctl_opts *o, int argc, char **argv)
{
	Corepipe__V1__ReloadConfigRequest rq = COREPIPE__V1__RELOAD_CONFIG_REQUEST__INIT;
	Corepipe__V1__ReloadConfigResponse *r;
	struct ctl_conn c;
	int rc;

	(void)argv;
	if (argc != 0)
		return ctl_err(o, CTL_EXIT_USAGE, "usage: reload");
	rc = call(o, &c, ADMIN "ReloadConfig", &rq.base,
		  &corepipe__v1__reload_config_response__descriptor, (ProtobufCMessage **)&r);
	if (rc != 0)
		return rc;
	if (o->json) {
		ctl_json_print(ctl_pb_to_json(&r->base));
	} else {
		printf("reloaded %s\n", r->path);
		print_list("added", r->added, r->n_added);
		print_list("replaced", r->replaced, r->n_replaced);
		print_list("removed", r->removed, r->n_removed);
		print_list("applied", r->applied, r->n_applied);
		print_list("needs restart", r->needs_restart, r->n_needs_restart);
		if (r->n_added + r->n_replaced + r->n_removed + r->n_applied + r->n_needs_restart ==
		    0)
			printf("nothing changed\n");
	}
	done(&c, &r->base);
	return 0;
}
