"""Bearer-token authentication against a started corepiped: missing, malformed and wrong tokens
get the same UNAUTHENTICATED answer; an execute token may run pipelines but not Admin RPCs
(PERMISSION_DENIED); an admin token may do both; health stays open by default; streams and
unknown methods are guarded too; tokens never appear in the log; failures are counted."""
import hashlib
import unittest
import urllib.error
import urllib.request

import grpc

import corepipe_pb2 as pb
import health_pb2 as hpb
from serverlib import RPC_TIMEOUT_S as T, Server, Stubs

EXEC_TOKEN = "exec-Zq8w1n0Pq"
ADMIN_TOKEN = "admin-7fK2mXv9"


def digest(t):
    return hashlib.sha256(t.encode()).hexdigest()


CONFIG = f"""
auth:
  enabled: true
  tokens:
    - {{ name: runner, sha256: "{digest(EXEC_TOKEN)}", permission: execute }}
    - {{ name: operator, sha256: "{digest(ADMIN_TOKEN)}", permission: admin }}
pipelines:
  crc:
    - type: crc32c
"""


def md(token):
    return (("authorization", f"Bearer {token}"),)


class AuthTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(CONFIG).start()
        cls.st = Stubs(cls.srv.channel)

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        log = "\n".join(cls.srv.lines)
        assert code == 0, cls.srv.log()
        # The tokens never reach the log, in any form.
        for t in (EXEC_TOKEN, ADMIN_TOKEN):
            assert t not in log, "token leaked into the log"

    def execute(self, metadata=None):
        return self.st.execute(pb.ExecuteRequest(name="crc", input=pb.Payload(data=b"a")),
                               timeout=T, metadata=metadata)

    def assert_code(self, fn, code):
        with self.assertRaises(grpc.RpcError) as cm:
            fn()
        self.assertEqual(cm.exception.code(), code, cm.exception.details())
        return cm.exception.details()

    def test_missing_malformed_wrong_all_look_the_same(self):
        answers = set()
        for m in (None, (("authorization", "Basic abc"),), md("nope"), md(EXEC_TOKEN + "x"),
                  (("authorization", EXEC_TOKEN),)):
            answers.add(self.assert_code(lambda: self.execute(m),
                                         grpc.StatusCode.UNAUTHENTICATED))
        self.assertEqual(len(answers), 1, answers)
        msg = answers.pop()
        self.assertNotIn(EXEC_TOKEN, msg)

    def test_execute_token(self):
        self.assertEqual(self.execute(md(EXEC_TOKEN)).annotations["crc32c"], "c1d04330")
        details = self.assert_code(
            lambda: self.st.list(pb.ListPipelinesRequest(), timeout=T, metadata=md(EXEC_TOKEN)),
            grpc.StatusCode.PERMISSION_DENIED)
        self.assertIn("runner", details)
        self.assertNotIn(EXEC_TOKEN, details)

    def test_admin_token(self):
        self.assertEqual(self.execute(md(ADMIN_TOKEN)).annotations["crc32c"], "c1d04330")
        r = self.st.list(pb.ListPipelinesRequest(), timeout=T, metadata=md(ADMIN_TOKEN))
        self.assertEqual([p.spec.name for p in r.pipelines], ["crc"])

    def test_streams_and_unknown_methods_are_guarded(self):
        self.assert_code(lambda: list(self.st.stream(
            iter([pb.StreamRequest(open=pb.StreamOpen(name="crc"))]), timeout=T)),
            grpc.StatusCode.UNAUTHENTICATED)
        rs = list(self.st.stream(iter([pb.StreamRequest(open=pb.StreamOpen(name="crc")),
                                       pb.StreamRequest(frame=pb.Payload(data=b"a"))]),
                                 timeout=T, metadata=md(EXEC_TOKEN)))
        self.assertEqual(rs[0].annotations["crc32c"], "c1d04330")
        raw = self.srv.channel.unary_unary("/corepipe.v1.Secret/Probe")
        self.assert_code(lambda: raw(b"", timeout=T), grpc.StatusCode.UNAUTHENTICATED)
        self.assert_code(lambda: raw(b"", timeout=T, metadata=md(EXEC_TOKEN)),
                         grpc.StatusCode.UNIMPLEMENTED)

    def test_health_open_and_failures_counted(self):
        r = self.st.health(hpb.HealthCheckRequest(service=""), timeout=T)
        self.assertEqual(r.status, hpb.HealthCheckResponse.SERVING)
        with urllib.request.urlopen(f"http://127.0.0.1:{self.srv.metrics_port}/metrics",
                                    timeout=T) as f:
            text = f.read().decode()
        before = [l for l in text.splitlines()
                  if l.startswith('corepipe_auth_failures_total{reason="unauthenticated"}')]
        self.assertEqual(len(before), 1)
        n0 = float(before[0].split()[-1])
        self.assert_code(lambda: self.execute(md("wrong")), grpc.StatusCode.UNAUTHENTICATED)
        with urllib.request.urlopen(f"http://127.0.0.1:{self.srv.metrics_port}/metrics",
                                    timeout=T) as f:
            text = f.read().decode()
        after = [l for l in text.splitlines()
                 if l.startswith('corepipe_auth_failures_total{reason="unauthenticated"}')]
        self.assertEqual(float(after[0].split()[-1]), n0 + 1)


class HealthClosedTest(unittest.TestCase):
    def test_health_needs_a_token_when_closed(self):
        s = Server(CONFIG.replace("  enabled: true", "  enabled: true\n  health_open: false"))
        s.start()
        try:
            with self.assertRaises(grpc.RpcError) as cm:
                s.stub.health(hpb.HealthCheckRequest(service=""), timeout=T)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
            r = s.stub.health(hpb.HealthCheckRequest(service=""), timeout=T,
                              metadata=md(EXEC_TOKEN))
            self.assertEqual(r.status, hpb.HealthCheckResponse.SERVING)
        finally:
            self.assertEqual(s.stop(), 0, s.log())


class MetricsTokenTest(unittest.TestCase):
    def test_metrics_needs_a_token_when_protected(self):
        s = Server(CONFIG.replace("  enabled: true", "  enabled: true\n  metrics: true")).start()
        try:
            url = f"http://127.0.0.1:{s.metrics_port}"
            with self.assertRaises(urllib.error.HTTPError) as cm:
                urllib.request.urlopen(url + "/metrics", timeout=T)
            self.assertEqual(cm.exception.code, 401)
            req = urllib.request.Request(url + "/metrics",
                                         headers={"Authorization": f"Bearer {EXEC_TOKEN}"})
            with urllib.request.urlopen(req, timeout=T) as r:
                self.assertEqual(r.status, 200)
                self.assertIn("corepipe_requests_total", r.read().decode())
            with urllib.request.urlopen(url + "/healthz", timeout=T) as r:
                self.assertEqual(r.status, 200)  # probes stay open
        finally:
            self.assertEqual(s.stop(), 0, s.log())


if __name__ == "__main__":
    unittest.main()
