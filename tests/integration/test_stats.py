"""Admin/GetStats against a started corepiped with two workers: work spreads over both (least
loaded), per-status counts move, buffers and descriptors return to their pools once everything is
answered, and a flood past a tiny in-flight limit is refused with RESOURCE_EXHAUSTED (counted),
never anything else, and the server serves normally right after."""
import threading
import time
import unittest

import grpc

import corepipe_pb2 as pb
from reference import crc32c
from serverlib import MODE, RPC_TIMEOUT_S as T, Server, Stubs, unary, wait_until

CONFIG = """
pipelines:
  crc:
    - type: crc32c
  slowcrc:
    - type: test_delay
      params: { us: 5000 }
    - type: crc32c
"""

# A tiny in-flight limit and a pipeline that takes 5 ms on the worker (test_delay, a test-only
# node), so a burst of calls must outrun it.
TINY = """
dataplane: { ring_size: 64, max_in_flight: 16 }
pipelines:
  crc:
    - type: crc32c
  slow:
    - type: test_delay
      params: { us: 5000 }
"""
SMALL = b"0123456789abcdef" * 64

BIG = bytes(range(256)) * 4096  # 1 MiB: long enough on a worker that calls overlap


def stats(srv):
    return unary(srv.channel, "/corepipe.v1.Admin/GetStats", pb.GetStatsRequest,
                 pb.Stats)(pb.GetStatsRequest(), timeout=T)


class StatsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(CONFIG, workers=2).start()

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        assert code == 0, "exit code %r\n%s" % (code, cls.srv.log())

    def test_work_spreads_and_pools_return(self):
        before = stats(self.srv)
        roles = [w.roles.split("+")[0] for w in before.workers]
        # The front ends' lcores, then the two worker-only lcores (none with one lcore).
        fes = {"default": 1, "frontends2": 2, "one-lcore": 1}[MODE]
        self.assertEqual(roles, ["frontend"] * fes + ["worker"] * (0 if MODE == "one-lcore"
                                                                     else 2))
        base_pools = {p.name: p.in_use for p in before.pools}
        want = crc32c(BIG)
        errors = []

        def client():
            ch = grpc.insecure_channel(f"127.0.0.1:{self.srv.port}",
                                       options=[("grpc.use_local_subchannel_pool", 1)])
            st = Stubs(ch)
            for _ in range(15):
                try:
                    # 5 ms of work each: handed over (too long to run inline), to the
                    # worker with the least estimated work in flight, ties going round: both
                    # workers get work whether or not the calls overlap.
                    r = st.execute(pb.ExecuteRequest(name="slowcrc",
                                                     input=pb.Payload(data=BIG)), timeout=T)
                    if r.annotations["crc32c"] != want:
                        errors.append("bad crc")
                except grpc.RpcError as e:
                    errors.append((e.code(), e.details()))
            ch.close()

        threads = [threading.Thread(target=client) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
            self.assertFalse(t.is_alive())
        self.assertEqual(errors, [])
        self.assertTrue(wait_until(lambda: stats(self.srv).in_flight == 0, 10))
        after = stats(self.srv)
        done = [a.requests - b.requests for a, b in zip(after.workers, before.workers)]
        self.assertEqual(sum(done), 120)
        if MODE == "one-lcore":
            self.assertEqual(done, [120])  # the lone lcore's own queue ran them all
        else:
            self.assertEqual(done[:fes], [0] * fes,
                             "5 ms calls never run on a front end: %r" % done)
            self.assertTrue(all(d > 0 for d in done[fes:]), "both workers got work: %r" % done)
        self.assertEqual(after.answered - before.answered, 120)
        self.assertEqual({p.name: p.in_use for p in after.pools}, base_pools)
        for w in after.workers:
            self.assertEqual(w.queue_depth, 0)
            self.assertGreaterEqual(w.busy_ratio, 0.0)
            self.assertLessEqual(w.busy_ratio, 1.0)

    def test_status_counts_move(self):
        def count(code):
            return sum(w.by_code.get(code, 0) for w in stats(self.srv).workers)

        nf, ok = stats(self.srv).rejected["not_found"], count("OK")
        with self.assertRaises(grpc.RpcError):
            self.srv.stub.execute(pb.ExecuteRequest(name="ghost", input=pb.Payload(data=b"x")),
                                  timeout=T)
        self.srv.stub.execute(pb.ExecuteRequest(name="crc", input=pb.Payload(data=b"x")),
                              timeout=T)
        # An unknown name is refused before any worker sees it; the run counts on the worker.
        self.assertTrue(wait_until(lambda: stats(self.srv).rejected["not_found"] == nf + 1 and
                                   count("OK") == ok + 1, 5))
        # A node failure is counted by the worker under its status.
        bad = count("INVALID_ARGUMENT")
        with self.assertRaises(grpc.RpcError):
            self.srv.stub.execute(pb.ExecuteRequest(
                inline=pb.PipelineSpec(nodes=[pb.NodeSpec(type="zstd_decompress")]),
                input=pb.Payload(data=b"not zstd")), timeout=T)
        self.assertTrue(wait_until(lambda: count("INVALID_ARGUMENT") == bad + 1, 5))


class OverloadTest(unittest.TestCase):
    def test_flood_past_inflight_limit_is_refused_cleanly(self):
        srv = Server(TINY).start()
        try:
            futures = [srv.stub.execute.future(
                pb.ExecuteRequest(name="slow", input=pb.Payload(data=SMALL)), timeout=30)
                for _ in range(120)]
            ok = refused = 0
            for f in futures:
                try:
                    self.assertEqual(f.result(timeout=60).output.data, SMALL)
                    ok += 1
                except grpc.RpcError as e:
                    self.assertEqual(e.code(), grpc.StatusCode.RESOURCE_EXHAUSTED, e.details())
                    self.assertIn("in-flight limit reached (16 requests)", e.details())
                    # The gRPC retry-pushback convention: how long to wait, from the backlog.
                    trailers = dict(e.trailing_metadata() or ())
                    self.assertIn("grpc-retry-pushback-ms", trailers)
                    self.assertGreaterEqual(int(trailers["grpc-retry-pushback-ms"]), 1)
                    self.assertLessEqual(int(trailers["grpc-retry-pushback-ms"]), 5000)
                    refused += 1
            self.assertEqual(ok + refused, 120)
            self.assertGreater(ok, 0)
            self.assertGreater(refused, 0, "the flood never reached the limit")
            st = stats(srv)
            rej = dict(st.rejected)
            self.assertEqual(rej["inflight_limit"], refused)
            self.assertEqual(rej["ring_full"] + rej["pool_empty"] + rej["too_large"], 0)
            # Normal service right after.
            r = srv.stub.execute(pb.ExecuteRequest(name="crc", input=pb.Payload(data=b"abc")),
                                 timeout=T)
            self.assertEqual(r.annotations["crc32c"], crc32c(b"abc"))
            self.assertTrue(wait_until(lambda: stats(srv).in_flight == 0, 10))
            self.assertTrue(all(p.in_use == 0 for p in stats(srv).pools))
        finally:
            code = srv.stop()
        self.assertEqual(code, 0, srv.log())


class SkipTest(unittest.TestCase):
    """Queued work whose caller is gone (deadline passed, or cancelled) is answered without
    being run, and the stats say so."""

    @classmethod
    def setUpClass(cls):
        # "slower" (50 ms): 40 calls queue for long enough to be seen queued, however the
        # workers are laid out (with three, 5 ms calls could drain between two polls).
        cls.srv = Server(TINY.replace("max_in_flight: 16", "max_in_flight: 1024") +
                         "  slower:\n    - type: test_delay\n      params: { us: 50000 }\n"
                         ).start()

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        assert code == 0, "exit code %r\n%s" % (code, cls.srv.log())

    def ran(self):
        return sum(w.by_code.get("OK", 0) for w in stats(self.srv).workers)

    def test_expired_work_is_skipped_not_run(self):
        before, ok0 = stats(self.srv), self.ran()
        futures = [self.srv.stub.execute.future(
            pb.ExecuteRequest(name="slow", input=pb.Payload(data=SMALL)), timeout=0.05)
            for _ in range(40)]
        codes = {}
        for f in futures:
            try:
                f.result(timeout=60)
                codes["OK"] = codes.get("OK", 0) + 1
            except grpc.RpcError as e:
                self.assertEqual(e.code(), grpc.StatusCode.DEADLINE_EXCEEDED, e.details())
                codes["DEADLINE_EXCEEDED"] = codes.get("DEADLINE_EXCEEDED", 0) + 1
        self.assertTrue(wait_until(lambda: stats(self.srv).in_flight == 0, 30))
        after = stats(self.srv)
        skipped = (after.rejected["deadline"] + after.rejected["cancelled"]) - \
            (before.rejected["deadline"] + before.rejected["cancelled"])
        # 40 calls of 5 ms each with a 50 ms budget: many expire in the queue and are not
        # run. (A call that expires before it even reaches the server is answered by gRPC
        # itself and counted nowhere here, hence <= 40.)
        ran = self.ran() - ok0
        self.assertGreater(skipped, 0, codes)
        self.assertLessEqual(ran + skipped, 40)
        self.assertLess(ran, 40)
        self.assertLessEqual(codes.get("OK", 0), ran)

    def test_cancelled_work_is_skipped(self):
        before = stats(self.srv)
        futures = [self.srv.stub.execute.future(
            pb.ExecuteRequest(name="slower", input=pb.Payload(data=SMALL)), timeout=30)
            for _ in range(40)]
        # Cancel them all once many are queued on the workers (50 ms each there): those still
        # queued when the cancellation arrives are skipped.
        self.assertTrue(wait_until(lambda: stats(self.srv).in_flight >= 20, 30, 0.001))
        for f in futures:
            f.cancel()
        for f in futures:
            try:
                f.result(timeout=60)
            except grpc.FutureCancelledError:
                pass
            except grpc.RpcError as e:
                self.assertEqual(e.code(), grpc.StatusCode.CANCELLED, e.details())
        self.assertTrue(wait_until(lambda: stats(self.srv).in_flight == 0, 30))
        after = stats(self.srv)
        self.assertGreater(after.rejected["cancelled"] - before.rejected["cancelled"], 0)
        self.assertTrue(all(p.in_use == 0 for p in after.pools))
        # Still serving.
        r = self.srv.stub.execute(pb.ExecuteRequest(name="crc", input=pb.Payload(data=b"ok")),
                                  timeout=T)
        self.assertEqual(r.annotations["crc32c"], crc32c(b"ok"))



SHED = """
dataplane: { ring_size: 64, max_in_flight: 1024 }
limits: { shed_high_water_pct: 50, shed_low_water_pct: 10, shed_window_ms: 100 }
pipelines:
  slow:
    - type: test_delay
      params: { us: 20000 }
"""


class SheddingTest(unittest.TestCase):
    def test_overload_sheds_new_work_then_recovers(self):
        srv = Server(SHED).start()
        try:
            req = pb.ExecuteRequest(name="slow", input=pb.Payload(data=b"x"))
            shed = ok = 0
            # Each round: wave 1 fills the loaded worker's queue (64 x 20 ms = 1.3 s of work)
            # and keeps it above the high-water mark (32) for longer than the 100 ms window;
            # once that worker sheds, wave 2 arrives. A slow client (a busy machine) can send
            # wave 2 after the queue has drained below the low-water mark and shedding has
            # stopped: then another round, at most five.
            for _ in range(5):
                wave1 = [srv.stub.execute.future(req, timeout=60) for _ in range(100)]
                # The worker the calls queue on, not any worker: another lcore's busy ratio
                # (a spinning front end) may make it shed while the loaded one does not yet.
                self.assertTrue(wait_until(lambda: max(
                    stats(srv).workers, key=lambda w: w.in_flight).shedding, 10, 0.02),
                    "shedding never started")
                wave2 = [srv.stub.execute.future(req, timeout=60) for _ in range(20)]
                for f in wave1 + wave2:
                    try:
                        self.assertEqual(f.result(timeout=60).output.data, b"x")
                        ok += 1
                    except grpc.RpcError as e:
                        self.assertEqual(e.code(), grpc.StatusCode.RESOURCE_EXHAUSTED,
                                         e.details())
                        trailers = dict(e.trailing_metadata() or ())
                        self.assertGreaterEqual(int(trailers["grpc-retry-pushback-ms"]), 1)
                        shed += "load shedding" in e.details()
                if shed:
                    break
            self.assertGreater(ok, 0)
            self.assertGreater(shed, 0)
            self.assertEqual(stats(srv).rejected["shedding"], shed)
            # Once the queue drains below the low-water mark, shedding stops and work runs.
            self.assertTrue(wait_until(lambda: stats(srv).in_flight == 0, 30))
            self.assertTrue(wait_until(
                lambda: not any(w.shedding for w in stats(srv).workers), 10, 0.05))
            r = srv.stub.execute(pb.ExecuteRequest(
                inline=pb.PipelineSpec(nodes=[pb.NodeSpec(type="crc32c")]),
                input=pb.Payload(data=b"abc")), timeout=T)
            self.assertEqual(r.annotations["crc32c"], crc32c(b"abc"))
            # The workers decide; the control poller logs what they decided, on its tick.
            self.assertTrue(wait_until(lambda: "load shedding off" in
                                       [l.get("msg") for l in srv.logs_json()], 10), srv.log())
            self.assertIn("load shedding on", [l.get("msg") for l in srv.logs_json()])
        finally:
            code = srv.stop()
        self.assertEqual(code, 0, srv.log())


if __name__ == "__main__":
    unittest.main()
