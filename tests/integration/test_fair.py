"""Fair execution (issue 14): a large request runs in the worker's bulk lane one quantum at a
time, so a small call finishes while a big one is still running; a running request whose
deadline passes, or whose client cancels, is stopped between quanta (DEADLINE_EXCEEDED naming
how far it got), counted (rejected deadline_running / cancelled_running) and every pool returns
to its starting count; a stream whose frames go through the bulk lane keeps their order.
Orderings and counts only, never wall-clock thresholds."""
import hashlib
import threading
import unittest

import grpc

import corepipe_pb2 as pb
from reference import crc32c
from serverlib import RPC_TIMEOUT_S as T, Server, wait_until

STEP = "    - type: test_delay\n      params: { us: 1000000 }\n"
CONFIG = ("limits: { default_timeout_ms: 400 }\n"
          "pipelines:\n"
          "  slow:\n" + STEP * 10 +  # 10 s of work, in 100 us slices
          "  pass:\n    - type: passthrough\n"
          "  mid:\n    - type: test_delay\n      params: { us: 20000 }\n"
          "  crc:\n    - type: crc32c\n")
BIG = bytes(range(256)) * 512  # 128 KiB: the bulk lane even before its cost is known
LONG = 60  # client deadline of the calls that must not expire on their own


def rejected(st, key):
    return st.rejected.get(key, 0)


class FairTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(CONFIG).start()

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        assert code == 0, "exit code %r\n%s" % (code, cls.srv.log())

    def stats(self):
        return self.srv.stub.stats(pb.GetStatsRequest(), timeout=T)

    def pools(self, st):
        return {p.name: p.in_use for p in st.pools}

    def quanta(self):
        return sum(w.quanta for w in self.stats().workers)

    def idle(self):
        return wait_until(lambda: sum(w.in_flight for w in self.stats().workers) == 0, 30)

    def start_slow(self):
        """A 10 s call, running in the bulk lane when this returns."""
        q0 = self.quanta()
        fut = self.srv.stub.execute.future(
            pb.ExecuteRequest(name="slow", input=pb.Payload(data=BIG)), timeout=LONG)
        # Running: quanta move (nothing else runs in the lane here).
        self.assertTrue(wait_until(lambda: self.quanta() > q0 + 2, 30), self.srv.log())
        return fut

    def test_small_call_finishes_while_big_runs(self):
        self.assertTrue(self.idle())
        fut = self.start_slow()
        for _ in range(20):
            r = self.srv.stub.execute(pb.ExecuteRequest(name="pass",
                                                        input=pb.Payload(data=b"x" * 64)),
                                      timeout=T)
            self.assertEqual(r.output.data, b"x" * 64)
        self.assertFalse(fut.done())  # 20 small answers while the big one still runs
        fut.cancel()
        self.assertTrue(self.idle())

    def test_deadline_stops_running_work(self):
        self.assertTrue(self.idle())
        before = self.stats()
        # No client deadline: the server's default (400 ms) is the call's deadline.
        with self.assertRaises(grpc.RpcError) as cm:
            self.srv.stub.execute(pb.ExecuteRequest(name="slow", input=pb.Payload(data=BIG)))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertRegex(cm.exception.details(),
                         r"deadline passed while running, after \d+ of 131072 bytes "
                         r"\(node \d, test_delay\)")
        self.assertTrue(self.idle())
        after = self.stats()
        self.assertEqual(rejected(after, "deadline_running"),
                         rejected(before, "deadline_running") + 1)
        self.assertEqual(rejected(after, "deadline"), rejected(before, "deadline"))
        self.assertEqual(self.pools(after), self.pools(before))

    def test_cancel_stops_running_work(self):
        self.assertTrue(self.idle())
        before = self.stats()
        fut = self.start_slow()
        fut.cancel()
        self.assertTrue(wait_until(lambda: rejected(self.stats(), "cancelled_running") ==
                                   rejected(before, "cancelled_running") + 1, 30),
                        self.srv.log())
        self.assertTrue(self.idle())
        after = self.stats()
        self.assertEqual(self.pools(after), self.pools(before))
        self.assertEqual(rejected(after, "deadline_running"),
                         rejected(before, "deadline_running"))

    def test_stream_frames_keep_order_through_bulk_lane(self):
        sizes = [BIG if i % 3 == 0 else b"%d" % i * 10 for i in range(12)]

        def reqs():
            yield pb.StreamRequest(open=pb.StreamOpen(name="crc"))
            for b in sizes:
                yield pb.StreamRequest(frame=pb.Payload(data=b))

        bulk0 = sum(w.bulk_runs for w in self.stats().workers)
        out = list(self.srv.stub.stream(reqs(), timeout=LONG))
        self.assertEqual([r.seq for r in out], list(range(13)))
        for r, b in zip(out, sizes):
            self.assertEqual(r.annotations["crc32c"], crc32c(b))
        self.assertGreaterEqual(sum(w.bulk_runs for w in self.stats().workers) - bulk0, 4)

    def test_priorities_order_bulk_work(self):
        """While a big call runs, a low then a high priority call queue in the bulk lane: the
        high one runs first."""
        self.assertTrue(self.idle())
        fut = self.start_slow()
        done, lock = [], threading.Lock()

        def call(tag, prio):
            f = self.srv.stub.execute.future(
                pb.ExecuteRequest(name="mid", input=pb.Payload(data=BIG)), timeout=LONG,
                metadata=(("corepipe-priority", prio),))
            f.add_done_callback(lambda _f: (lock.acquire(), done.append(tag), lock.release()))
            return f

        low = call("low", "low")
        self.assertTrue(wait_until(
            lambda: sum(w.in_flight for w in self.stats().workers) >= 2, 30))
        high = call("high", "high")
        self.assertTrue(wait_until(
            lambda: sum(w.in_flight for w in self.stats().workers) >= 3, 30))
        fut.cancel()
        self.assertEqual(high.result().output.data, BIG)
        self.assertEqual(low.result().output.data, BIG)
        self.assertEqual(done, ["high", "low"])
        self.assertTrue(self.idle())

    def test_bad_priority_refused(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.srv.stub.execute(pb.ExecuteRequest(name="pass", input=pb.Payload(data=b"x")),
                                  timeout=T, metadata=(("corepipe-priority", "urgent"),))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("expected high, normal or low, got 'urgent'", cm.exception.details())
        r = self.srv.stub.execute(pb.ExecuteRequest(name="pass", input=pb.Payload(data=b"x")),
                                  timeout=T, metadata=(("corepipe-priority", "low"),))
        self.assertEqual(r.output.data, b"x")

    def test_stream_priority(self):
        """A stream's corepipe-priority applies to its frames: low ones all go through the
        bulk lane, in order; a bad value ends the stream at open."""
        def reqs():
            yield pb.StreamRequest(open=pb.StreamOpen(name="crc"))
            for i in range(6):
                yield pb.StreamRequest(frame=pb.Payload(data=b"%d" % i))

        bulk0 = sum(w.bulk_runs for w in self.stats().workers)
        out = list(self.srv.stub.stream(reqs(), timeout=LONG,
                                        metadata=(("corepipe-priority", "low"),)))
        self.assertEqual([r.seq for r in out], list(range(7)))
        self.assertEqual(sum(w.bulk_runs for w in self.stats().workers) - bulk0, 7)
        with self.assertRaises(grpc.RpcError) as cm:
            list(self.srv.stub.stream(reqs(), timeout=T,
                                      metadata=(("corepipe-priority", "urgent"),)))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("open: metadata corepipe-priority: expected high, normal or low",
                      cm.exception.details())


class HighPriorityTokensTest(unittest.TestCase):
    """Only the tokens in auth.high_priority_tokens may ask for high priority."""

    def test_only_listed_tokens_may_ask_high(self):
        def tok(name, secret):
            return ("    - { name: %s, sha256: %s, permission: execute }\n"
                    % (name, hashlib.sha256(secret.encode()).hexdigest()))
        cfg = ("auth:\n  enabled: true\n  high_priority_tokens: \"ops, batch\"\n  tokens:\n"
               + tok("ops", "s-ops") + tok("web", "s-web") +
               "pipelines:\n  pass:\n    - type: passthrough\n")
        srv = Server(cfg).start()
        try:
            def call(secret, prio):
                return srv.stub.execute(
                    pb.ExecuteRequest(name="pass", input=pb.Payload(data=b"y")), timeout=T,
                    metadata=(("authorization", "Bearer " + secret),
                              ("corepipe-priority", prio)))
            self.assertEqual(call("s-ops", "high").output.data, b"y")
            self.assertEqual(call("s-web", "normal").output.data, b"y")
            with self.assertRaises(grpc.RpcError) as cm:
                call("s-web", "high")
            self.assertEqual(cm.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
            self.assertIn("token 'web' may not ask for corepipe-priority: high",
                          cm.exception.details())
        finally:
            code = srv.stop()
        self.assertEqual(code, 0, srv.log())


MEM_CONFIG = ("limits: { max_request_memory_mb: 3, memory_budget_mb: 2 }\n"
              "pipelines:\n"
              "  slow:\n" + STEP * 10 +
              "  pass:\n    - type: passthrough\n"
              "  widen:\n    - type: convert\n      params: { format: f32le }\n"
              "    - type: channels\n      params: { count: \"2\" }\n")


class MemoryBudgetTest(unittest.TestCase):
    """Each request's memory is estimated at admission (input x the pipeline's growth) and
    checked against limits.max_request_memory_mb and, with what is out, memory_budget_mb."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(MEM_CONFIG).start()

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        assert code == 0, "exit code %r\n%s" % (code, cls.srv.log())

    def stats(self):
        return self.srv.stub.stats(pb.GetStatsRequest(), timeout=T)

    def test_request_over_its_limit_is_refused(self):
        # 900 KiB s16 mono -> f32 (x2) -> stereo (x2): 5.3 MiB at the last node's peak.
        samples = b"\x01\x02" * (900 * 512)
        with self.assertRaises(grpc.RpcError) as cm:
            self.srv.stub.execute(pb.ExecuteRequest(name="widen", input=pb.Payload(
                audio=pb.AudioBuffer(format=pb.SAMPLE_FORMAT_S16LE, sample_rate=16000,
                                     channels=1, samples=samples))), timeout=T)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertRegex(cm.exception.details(),
                         r"request needs an estimated 5\.3 MiB \(921600 input bytes .*\), "
                         r"over limits\.max_request_memory_mb \(3 MiB\)")
        self.assertEqual(self.stats().rejected["request_memory"], 1)
        # A quarter of it fits.
        r = self.srv.stub.execute(pb.ExecuteRequest(name="widen", input=pb.Payload(
            audio=pb.AudioBuffer(format=pb.SAMPLE_FORMAT_S16LE, sample_rate=16000, channels=1,
                                 samples=samples[:len(samples) // 4]))), timeout=T)
        self.assertEqual(len(r.output.audio.samples), len(samples) * 4 // 4)

    def test_budget_refuses_with_pushback_while_memory_is_held(self):
        big = b"m" * (600 * 1024)  # 1.2 MiB estimated (input + output of a node)
        fut = self.srv.stub.execute.future(pb.ExecuteRequest(name="slow",
                                                             input=pb.Payload(data=big)),
                                           timeout=LONG)
        self.assertTrue(wait_until(lambda: self.stats().memory_in_use_bytes > 0, 30))
        st = self.stats()
        self.assertEqual(st.memory_budget_bytes, 2 << 20)
        with self.assertRaises(grpc.RpcError) as cm:
            self.srv.stub.execute(pb.ExecuteRequest(name="pass", input=pb.Payload(data=big)),
                                  timeout=T)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertRegex(cm.exception.details(),
                         r"memory budget: 1\.2 MiB of limits\.memory_budget_mb \(2 MiB\) in use, "
                         r"this request needs an estimated 1\.2 MiB")
        trailers = dict(cm.exception.trailing_metadata() or ())
        self.assertIn("grpc-retry-pushback-ms", trailers)
        self.assertEqual(self.stats().rejected["memory_budget"], 1)
        fut.cancel()
        self.assertTrue(wait_until(lambda: self.stats().memory_in_use_bytes == 0, 30))
        r = self.srv.stub.execute(pb.ExecuteRequest(name="pass", input=pb.Payload(data=big)),
                                  timeout=T)
        self.assertEqual(len(r.output.data), len(big))


if __name__ == "__main__":
    unittest.main()
