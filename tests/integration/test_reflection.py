"""Server reflection (grpc.reflection.v1 and v1alpha) against a real corepiped, driven by a client
built only from the official reflection.proto (protoc-generated reflection_pb2): list the
services, describe symbols and files, errors in band for unknown names, and an Execute call
whose request and response classes are built from the fetched descriptors alone (no corepipe
proto on the client side: descriptor_pool + message_factory). test_reflection_js.py does the
same with a reflection client nobody here wrote (npm grpc-reflection-js)."""
import unittest

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

import reflection_pb2 as rpb
from serverlib import RPC_TIMEOUT_S as T, module_server

SERVICES = ["corepipe.v1.Admin", "corepipe.v1.Pipeline", "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]

srv = None
setUpModule, tearDownModule = module_server(globals(), "pipelines:\n  crc:\n    - type: crc32c\n")


def reflect(requests, version="v1", channel=None):
    """One ServerReflectionInfo stream: send every request, return every response."""
    ch = channel or srv.channel
    call = ch.stream_stream(f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
                            request_serializer=rpb.ServerReflectionRequest.SerializeToString,
                            response_deserializer=rpb.ServerReflectionResponse.FromString)
    return list(call(iter(requests), timeout=T))


def files_of(resp):
    out = []
    for b in resp.file_descriptor_response.file_descriptor_proto:
        fd = descriptor_pb2.FileDescriptorProto()
        fd.ParseFromString(b)
        out.append(fd)
    return out


class ReflectionTest(unittest.TestCase):
    def test_list_services_v1_and_v1alpha(self):
        for v in ("v1", "v1alpha"):
            (r,) = reflect([rpb.ServerReflectionRequest(host="h", list_services="")], v)
            self.assertEqual(r.WhichOneof("message_response"), "list_services_response")
            self.assertEqual(sorted(s.name for s in r.list_services_response.service), SERVICES)
            self.assertEqual(r.valid_host, "h")
            self.assertEqual(r.original_request.WhichOneof("message_request"), "list_services")

    def test_one_stream_answers_every_request_in_order(self):
        reqs = [rpb.ServerReflectionRequest(list_services=""),
                rpb.ServerReflectionRequest(file_containing_symbol="corepipe.v1.Pipeline"),
                rpb.ServerReflectionRequest(file_containing_symbol="no.such.Thing"),
                rpb.ServerReflectionRequest(file_by_filename="grpc/health/v1/health.proto"),
                rpb.ServerReflectionRequest()]
        rs = reflect(reqs)
        self.assertEqual([r.original_request for r in rs], reqs)
        self.assertEqual([r.WhichOneof("message_response") for r in rs],
                         ["list_services_response", "file_descriptor_response", "error_response",
                          "file_descriptor_response", "error_response"])
        self.assertEqual(rs[2].error_response.error_code, grpc.StatusCode.NOT_FOUND.value[0])
        self.assertIn("no.such.Thing", rs[2].error_response.error_message)
        self.assertEqual(rs[4].error_response.error_code,
                         grpc.StatusCode.INVALID_ARGUMENT.value[0])

    def test_describe_symbols(self):
        # Service, method, message, nested field, enum value: each found in corepipe.proto.
        for sym in ("corepipe.v1.Pipeline", "corepipe.v1.Pipeline.ExecuteStream",
                    "corepipe.v1.Stats", "corepipe.v1.WorkerStats.busy_ratio",
                    "corepipe.v1.SAMPLE_FORMAT_F32LE", ".corepipe.v1.PipelineSpec"):
            (r,) = reflect([rpb.ServerReflectionRequest(file_containing_symbol=sym)])
            fds = files_of(r)
            self.assertEqual(fds[0].name, "corepipe/v1/corepipe.proto", sym)
        fd = fds[0]
        svc = {s.name: s for s in fd.service}
        self.assertEqual([m.name for m in svc["Pipeline"].method], ["Execute", "ExecuteStream"])
        es = svc["Pipeline"].method[1]
        self.assertTrue(es.client_streaming and es.server_streaming)
        self.assertEqual(es.input_type, ".corepipe.v1.StreamRequest")
        self.assertIn("ReloadConfig", [m.name for m in svc["Admin"].method])
        # Comments are kept (--include_source_info): describe shows the proto's docs.
        self.assertTrue(any("frame" in (l.leading_comments + l.trailing_comments)
                            for l in fd.source_code_info.location))
        # The language options are there for generated code in other languages.
        self.assertEqual(fd.options.java_package, "io.corepipe.v1")
        self.assertTrue(fd.options.go_package)
        self.assertEqual(fd.options.csharp_namespace, "Corepipe.V1")

    def test_file_by_filename_and_unknown_file(self):
        (r,) = reflect([rpb.ServerReflectionRequest(
            file_by_filename="grpc/reflection/v1alpha/reflection.proto")])
        self.assertEqual(files_of(r)[0].package, "grpc.reflection.v1alpha")
        (r,) = reflect([rpb.ServerReflectionRequest(file_by_filename="nope.proto")])
        self.assertEqual(r.error_response.error_code, grpc.StatusCode.NOT_FOUND.value[0])

    def test_extensions(self):
        (r,) = reflect([rpb.ServerReflectionRequest(
            all_extension_numbers_of_type="corepipe.v1.Stats")])
        self.assertEqual(r.all_extension_numbers_response.base_type_name, "corepipe.v1.Stats")
        self.assertEqual(list(r.all_extension_numbers_response.extension_number), [])
        (r,) = reflect([rpb.ServerReflectionRequest(
            file_containing_extension=rpb.ExtensionRequest(containing_type="corepipe.v1.Stats",
                                                           extension_number=100))])
        self.assertEqual(r.error_response.error_code, grpc.StatusCode.NOT_FOUND.value[0])

    def test_malformed_request_ends_the_stream_invalid_argument(self):
        call = srv.channel.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=lambda b: b, response_deserializer=lambda b: b)
        with self.assertRaises(grpc.RpcError) as cm:
            list(call(iter([b"\xff\xff\xff"]), timeout=T))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        # The server is fine afterwards.
        (r,) = reflect([rpb.ServerReflectionRequest(list_services="")])
        self.assertEqual(len(r.list_services_response.service), len(SERVICES))

    def test_call_by_reflection_alone(self):
        """What grpcurl does: find the method, build the messages from the descriptors."""
        (r,) = reflect([rpb.ServerReflectionRequest(
            file_containing_symbol="corepipe.v1.Pipeline.Execute")])
        pool = descriptor_pool.DescriptorPool()
        for fd in reversed(files_of(r)):  # dependencies first
            pool.Add(fd)
        method = pool.FindMethodByName("corepipe.v1.Pipeline.Execute")
        if hasattr(message_factory, "GetMessageClass"):
            req_cls = message_factory.GetMessageClass(method.input_type)
            resp_cls = message_factory.GetMessageClass(method.output_type)
        else:
            f = message_factory.MessageFactory(pool)
            req_cls, resp_cls = f.GetPrototype(method.input_type), f.GetPrototype(
                method.output_type)
        path = f"/{method.containing_service.full_name}/{method.name}"
        self.assertEqual(path, "/corepipe.v1.Pipeline/Execute")
        req = req_cls()
        req.name = "crc"
        req.input.data = b"123456789"
        call = srv.channel.unary_unary(path, request_serializer=req_cls.SerializeToString,
                                       response_deserializer=resp_cls.FromString)
        resp = call(req, timeout=T)
        self.assertEqual(dict(resp.annotations), {"crc32c": "e3069283"})


if __name__ == "__main__":
    unittest.main()
