"""The access log of a real corepiped: one JSON line per call with the request id, method,
pipeline, status, sizes and times; x-request-id taken from the client or generated, and
returned in trailing metadata; the modes (off by default, all, errors, sampled 1/N, switched by
a reload); and boundedness: with stderr not read at all, a flood of calls is answered in full
while the log drops and counts, and every call is either logged or counted as dropped."""
import json
import os
import re
import signal
import threading
import unittest

import grpc

import corepipe_pb2 as pb
from serverlib import RPC_TIMEOUT_S as T, Server, wait_until
from test_metrics import scrape, value

PIPES = """
pipelines:
  crc:
    - type: crc32c
"""


def access_lines(srv):
    return [o for o in srv.logs_json() if o.get("msg") == "access"]


def trailer(call, key):
    return dict(call.trailing_metadata() or ()).get(key)


class PausableServer(Server):
    """A server whose stderr this test can stop reading, so the pipe fills up."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.reading = threading.Event()
        self.reading.set()

    def _reader(self):
        for raw in iter(self.proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            try:
                obj = json.loads(line)
            except ValueError:
                obj = {}
            if obj.get("msg") == "serving":
                self.port = int(obj["grpc_port"])
                self.metrics_port = int(obj.get("metrics_port", 0)) or None
                self._ready.set()
            self.reading.wait()
        self._ready.set()


class AccessLogTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(PIPES + "logging: { access_log: all }\n").start()

    @classmethod
    def tearDownClass(cls):
        assert cls.srv.stop() == 0, cls.srv.log()

    def wait_line(self, rid):
        found = []
        self.assertTrue(wait_until(lambda: found.extend(
            o for o in access_lines(self.srv) if o["request_id"] == rid) or found, 10),
            self.srv.log())
        self.assertEqual(len(found), 1)
        return found[0]

    def test_fields_and_client_request_id_round_trip(self):
        req = pb.ExecuteRequest(name="crc", input=pb.Payload(data=b"123456789"))
        resp, call = self.srv.stub.execute.with_call(
            req, metadata=[("x-request-id", "trace-42-abc")], timeout=T)
        self.assertEqual(trailer(call, "x-request-id"), "trace-42-abc")
        line = self.wait_line("trace-42-abc")
        self.assertEqual(line["method"], "/corepipe.v1.Pipeline/Execute")
        self.assertEqual(line["pipeline"], "crc")
        self.assertEqual((line["code"], line["status"]), ("OK", 0))
        self.assertEqual(line["request_bytes"], req.ByteSize())
        self.assertEqual(line["response_bytes"], resp.ByteSize())
        self.assertGreaterEqual(line["queue_us"], 0)
        self.assertGreater(line["worker_us"], 0)
        self.assertGreaterEqual(line["duration_us"], line["worker_us"])
        self.assertEqual(line["level"], "info")

    def test_generated_request_id_returned_and_logged(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.srv.stub.execute(pb.ExecuteRequest(name="missing", input=pb.Payload(data=b"x")),
                                  timeout=T)
        rid = trailer(cm.exception, "x-request-id")
        self.assertRegex(rid or "", r"^[0-9a-f]{16}$")
        line = self.wait_line(rid)
        self.assertEqual((line["code"], line["pipeline"]), ("NOT_FOUND", "missing"))
        self.assertEqual(line["response_bytes"], 0)
        # Two calls, two different ids.
        _, c2 = self.srv.stub.execute.with_call(
            pb.ExecuteRequest(name="crc", input=pb.Payload(data=b"y")), timeout=T)
        self.assertNotEqual(trailer(c2, "x-request-id"), rid)

    def test_admin_and_validation_errors_are_logged(self):
        _, call = self.srv.stub.list.with_call(pb.ListPipelinesRequest(),
                                               metadata=[("x-request-id", "admin-1")], timeout=T)
        self.assertEqual(self.wait_line("admin-1")["method"],
                         "/corepipe.v1.Admin/ListPipelines")
        with self.assertRaises(grpc.RpcError):
            self.srv.stub.execute(pb.ExecuteRequest(name="crc"),
                                  metadata=[("x-request-id", "bad-1")], timeout=T)
        self.assertEqual(self.wait_line("bad-1")["code"], "INVALID_ARGUMENT")


class AccessLogModesTest(unittest.TestCase):
    def run_calls(self, srv, n, **kw):
        for i in range(n):
            srv.stub.execute(pb.ExecuteRequest(name="crc", input=pb.Payload(data=b"m")),
                             timeout=T, **kw)

    def test_off_by_default_echoes_client_ids_only(self):
        srv = Server(PIPES).start()
        try:
            _, call = srv.stub.execute.with_call(
                pb.ExecuteRequest(name="crc", input=pb.Payload(data=b"m")), timeout=T)
            self.assertIsNone(trailer(call, "x-request-id"))
            _, call = srv.stub.execute.with_call(
                pb.ExecuteRequest(name="crc", input=pb.Payload(data=b"m")),
                metadata=[("x-request-id", "mine")], timeout=T)
            self.assertEqual(trailer(call, "x-request-id"), "mine")
        finally:
            self.assertEqual(srv.stop(), 0)
        self.assertEqual(access_lines(srv), [])

    def test_errors_only_and_sampled(self):
        srv = Server(PIPES + "logging: { access_log: errors }\n").start()
        try:
            self.run_calls(srv, 5)
            for _ in range(3):
                with self.assertRaises(grpc.RpcError):
                    srv.stub.execute(pb.ExecuteRequest(name="crc"), timeout=T)
        finally:
            self.assertEqual(srv.stop(), 0)  # the logger drains before exit
        self.assertEqual([o["code"] for o in access_lines(srv)], ["INVALID_ARGUMENT"] * 3)

        srv = Server(PIPES + "logging: { access_log: sampled, access_log_sample: 4 }\n").start()
        try:
            self.run_calls(srv, 20)
        finally:
            self.assertEqual(srv.stop(), 0)
        self.assertEqual(len(access_lines(srv)), 5)  # calls 0, 4, 8, 12, 16

    def test_reload_switches_the_log_on(self):
        srv = Server(PIPES).start()
        try:
            self.run_calls(srv, 3)
            with open(srv.config, "a") as f:
                f.write("logging: { access_log: all }\n")
            srv.proc.send_signal(signal.SIGHUP)
            self.assertTrue(wait_until(lambda: any(o.get("msg") == "config reloaded"
                                                   for o in srv.logs_json()), 10))
            self.run_calls(srv, 4, metadata=[("x-request-id", "after-reload")])
        finally:
            self.assertEqual(srv.stop(), 0)
        self.assertEqual([o["request_id"] for o in access_lines(srv)], ["after-reload"] * 4)


class AccessLogBoundedTest(unittest.TestCase):
    def test_flood_with_stderr_blocked_keeps_answering_and_counts_drops(self):
        calls = 3000
        srv = PausableServer(PIPES + "logging: { access_log: all, access_log_ring: 64 }\n")
        srv.start()
        try:
            srv.reading.clear()  # nobody reads stderr from now on: its pipe fills up
            self.run_flood(srv, calls)
            m = scrape(srv)
            self.assertGreater(value(m, "corepipe_access_log_dropped_total"), 0)
            srv.reading.set()
            # Every call is accounted for: written or dropped, none lost.
            self.assertTrue(wait_until(lambda: sum(
                value(scrape(srv), n) for n in ("corepipe_access_log_lines_total",
                                                "corepipe_access_log_dropped_total"))
                == calls, 20))
            m = scrape(srv)
            written = value(m, "corepipe_access_log_lines_total")
            self.assertTrue(wait_until(lambda: len(access_lines(srv)) == written, 20))
            self.assertEqual(value(m, "grpc_server_handled_total",
                                   grpc_service="corepipe.v1.Pipeline", grpc_method="Execute",
                                   grpc_code="OK", grpc_type="unary"), calls)
        finally:
            srv.reading.set()
            self.assertEqual(srv.stop(), 0, srv.log())
        self.assertTrue(any(o.get("msg") == "access log: ring full, records dropped"
                            for o in srv.logs_json()))

    def run_flood(self, srv, n):
        futs = []
        for i in range(n):
            futs.append(srv.stub.execute.future(
                pb.ExecuteRequest(name="crc", input=pb.Payload(data=b"f")), timeout=60))
            if len(futs) >= 64:
                for f in futs:
                    f.result()  # every call answered while the log is blocked
                futs = []
        for f in futs:
            f.result()


if __name__ == "__main__":
    unittest.main()
