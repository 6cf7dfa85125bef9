"""ExecuteStream against a started corepiped: a 30 s audio stream through
convert -> channels -> resample -> vad with every response checked, the error cases, cancel x200
without leaks (pool counts read from the server), 100 concurrent streams, pipeline replace and
delete while streams run, flow control for a client that does not read, stateful unary calls,
streams during load shedding, and SIGTERM with streams open."""
import math
import signal
import threading
import time
import unittest

import grpc

import corepipe_pb2 as pb
from reference import gain_s16, pack_s16, unpack_f32, unpack_s16
from serverlib import (F32, RPC_TIMEOUT_S as T, S16, Server, audio, frame_s16, module_server,
                       open_named, pool_usage, spec, wait_until)

CONFIG = """
logging: { level: info }
limits: { stream_window: 8 }
pipelines:
  speech16k:
    - type: convert
      params: { format: f32le }
    - type: channels
      params: { count: "1" }
    - type: resample
      params: { rate: "16000" }
    - type: vad
  pass:
    - type: passthrough
  loud:
    - type: gain
      params: { db: "6" }
  slow:
    - type: test_delay
      params: { us: 2000 }
"""

srv = None
setUpModule, tearDownModule = module_server(globals(), CONFIG)


def stereo_tone_frame(i, n=480, rate=48000, freq=440.0, amp=8000):
    """10 ms of stereo S16 at 48 kHz: a tone on the left, its negation/2 on the right."""
    out = []
    for k in range(n):
        v = int(amp * math.sin(2 * math.pi * freq * (i * n + k) / rate))
        out += [v, -v // 2]
    return out


class StreamBasicsTest(unittest.TestCase):
    def test_30s_of_10ms_frames_through_speech_chain(self):
        n = 3000  # 30 s of 10 ms frames
        frames = [stereo_tone_frame(i) for i in range(n)]

        def reqs():
            yield open_named("speech16k")
            for f in frames:
                yield frame_s16(f, rate=48000, channels=2)

        out = []
        seqs = []
        total = 0
        for r in srv.stub.stream(reqs(), timeout=120):
            seqs.append(r.seq)
            a = r.output.audio
            if len(a.samples):
                self.assertEqual((a.format, a.sample_rate, a.channels), (F32, 16000, 1))
            self.assertIn(r.annotations["vad.speech"], ("true", "false"))
            # libsoxr works in blocks (here ~490 samples every third 10 ms frame), so a
            # response holds 0 or about 3 frames' worth; what matters is that the output
            # keeps up: after frame k, at most 64 ms (1024 samples) behind (k + 1) * 160,
            # never ahead.
            n_out = len(a.samples) // 4
            total += n_out
            if r.seq < n:
                lag = (r.seq + 1) * 160 - total
                self.assertGreaterEqual(lag, 0, r.seq)
                self.assertLessEqual(lag, 1024, r.seq)
            out += unpack_f32(a.samples)
        # One response per frame in order, plus the flush.
        self.assertEqual(seqs, list(range(n + 1)))
        # 30 s at 16 kHz, within one output frame.
        self.assertLessEqual(abs(total - 30 * 16000), 160)
        # The mono mix is (l + r) / 2 = v / 4 at 440 Hz: check amplitude and frequency.
        mid = out[16000:16000 * 29]
        peak = max(abs(x) for x in mid)
        self.assertAlmostEqual(peak, 8000 / 4 / 32768, delta=0.002)
        rising = [i for i in range(1, len(mid)) if mid[i - 1] < 0 <= mid[i]]
        freq = (len(rising) - 1) * 16000 / (rising[-1] - rising[0])
        self.assertAlmostEqual(freq, 440, delta=1)

    def test_frames_match_unary_results(self):
        # A stateless pipeline: each frame's response equals Execute on the same frame.
        samples = [[(i * 37 + k * 11) % 20000 - 10000 for k in range(160)] for i in range(20)]

        def reqs():
            yield open_named("loud")
            for s in samples:
                yield frame_s16(s)

        rs = list(srv.stub.stream(reqs(), timeout=T))
        self.assertEqual([r.seq for r in rs], list(range(21)))
        for s, r in zip(samples, rs):
            self.assertEqual(unpack_s16(r.output.audio.samples), gain_s16(s, 6.0))
        self.assertEqual(len(rs[-1].output.audio.samples), 0)  # nothing held back

    def test_inline_pipeline_and_bytes(self):
        def reqs():
            yield pb.StreamRequest(open=pb.StreamOpen(inline=spec("", ("sha256", {}))))
            for i in range(5):
                yield pb.StreamRequest(frame=pb.Payload(data=b"frame %d" % i))

        import hashlib
        rs = list(srv.stub.stream(reqs(), timeout=T))
        self.assertEqual(len(rs), 6)
        for i in range(5):
            self.assertEqual(rs[i].annotations["sha256"],
                             hashlib.sha256(b"frame %d" % i).hexdigest())
            self.assertEqual(rs[i].output.data, b"frame %d" % i)

    def test_open_then_close_without_frames(self):
        rs = list(srv.stub.stream(iter([open_named("speech16k")]), timeout=T))
        self.assertEqual(len(rs), 1)
        self.assertEqual(rs[0].seq, 0)


class StreamErrorsTest(unittest.TestCase):
    def assert_status(self, reqs, code, text):
        with self.assertRaises(grpc.RpcError) as cm:
            list(srv.stub.stream(iter(reqs), timeout=T))
        self.assertEqual(cm.exception.code(), code, cm.exception.details())
        self.assertIn(text, cm.exception.details())

    def test_unknown_pipeline(self):
        self.assert_status([open_named("no-such")], grpc.StatusCode.NOT_FOUND,
                           "pipeline 'no-such' not found")

    def test_frame_before_open(self):
        self.assert_status([frame_s16([0] * 160)], grpc.StatusCode.INVALID_ARGUMENT,
                           "first message of a stream must be 'open'")

    def test_close_before_open(self):
        self.assert_status([], grpc.StatusCode.INVALID_ARGUMENT, "closed before an 'open'")

    def test_second_open(self):
        self.assert_status([open_named("pass"), open_named("pass")],
                           grpc.StatusCode.INVALID_ARGUMENT, "expected a frame")

    def test_bad_inline_pipeline(self):
        self.assert_status([pb.StreamRequest(open=pb.StreamOpen(
            inline=spec("", ("resample", {"rate": "fast"}))))],
            grpc.StatusCode.INVALID_ARGUMENT, "param rate")

    def test_vad_rejects_44k1_at_first_frame(self):
        self.assert_status([pb.StreamRequest(open=pb.StreamOpen(inline=spec("", ("vad", {})))),
                            frame_s16([0] * 441, rate=44100)],
                           grpc.StatusCode.INVALID_ARGUMENT, "44100 Hz")

    def test_mismatched_format_ends_stream_after_earlier_answers(self):
        reqs = [open_named("pass"), frame_s16([1] * 160), frame_s16([2] * 160),
                frame_s16([3] * 160, rate=8000)]
        got = []
        with self.assertRaises(grpc.RpcError) as cm:
            for r in srv.stub.stream(iter(reqs), timeout=T):
                got.append(r.seq)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("frame 2: format (audio s16le 8000 Hz 1 ch) differs", cm.exception.details())
        self.assertEqual(got, [0, 1])  # frames accepted before the bad one were answered

    def test_node_failure_names_frame(self):
        def reqs():
            yield pb.StreamRequest(open=pb.StreamOpen(inline=spec("", ("zstd_decompress", {}))))
            yield pb.StreamRequest(frame=pb.Payload(data=b"not zstd at all"))

        self.assert_status(list(reqs()), grpc.StatusCode.INVALID_ARGUMENT, "frame 0: node 0")

    def test_malformed_message(self):
        raw = srv.channel.stream_stream("/corepipe.v1.Pipeline/ExecuteStream")
        with self.assertRaises(grpc.RpcError) as cm:
            list(raw(iter([b"\xff\xff\xff"]), timeout=T))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("not a valid corepipe.v1.StreamRequest", cm.exception.details())


class StreamLifecycleTest(unittest.TestCase):
    def test_cancel_200_times_leaks_nothing(self):
        base = pool_usage(srv.stub.stats(pb.GetStatsRequest(), timeout=T))
        for i in range(200):
            stop = threading.Event()

            def reqs():
                yield open_named("speech16k")
                for k in range(1000):
                    if stop.is_set():
                        return
                    yield frame_s16(stereo_tone_frame(k), rate=48000, channels=2)
                    time.sleep(0.0005)

            call = srv.stub.stream(reqs(), timeout=30)
            got = 0
            for _ in call:
                got += 1
                if got == 1 + i % 5:
                    break
            call.cancel()
            stop.set()
        # Every slot, descriptor and buffer returns to its pool.
        self.assertTrue(wait_until(
            lambda: pool_usage(srv.stub.stats(pb.GetStatsRequest(), timeout=T)) == base, 10),
            (base, pool_usage(srv.stub.stats(pb.GetStatsRequest(), timeout=T))))
        st = srv.stub.stats(pb.GetStatsRequest(), timeout=T)
        self.assertEqual(st.pipeline_streams, 0)
        self.assertEqual(sum(w.streams_open for w in st.workers), 0)

    def test_100_concurrent_streams(self):
        errors = []
        results = {}

        def one(idx):
            try:
                samples = [[(idx * 100 + i) % 30000 - 15000] * 160 for i in range(30)]

                def reqs():
                    yield open_named("loud")
                    for s in samples:
                        yield frame_s16(s)
                        time.sleep(0.002)

                rs = list(srv.stub.stream(reqs(), timeout=60))
                self.assertEqual([r.seq for r in rs], list(range(31)))
                for s, r in zip(samples, rs):
                    self.assertEqual(unpack_s16(r.output.audio.samples), gain_s16(s, 6.0))
                results[idx] = True
            except Exception as e:  # collected and reported below
                errors.append(f"{idx}: {e!r}")

        peak = [0]

        def watch():
            for _ in range(200):
                n = srv.stub.stats(pb.GetStatsRequest(), timeout=T).pipeline_streams
                peak[0] = max(peak[0], n)
                if len(results) + len(errors) == 100:
                    return
                time.sleep(0.02)

        ts = [threading.Thread(target=one, args=(i,)) for i in range(100)]
        w = threading.Thread(target=watch)
        w.start()
        for t in ts:
            t.start()
        for t in ts:
            t.join(90)
        w.join(10)
        self.assertEqual(errors, [])
        self.assertEqual(len(results), 100)
        self.assertGreater(peak[0], 10, "streams did not overlap")

    def test_replace_and_delete_while_streams_run(self):
        srv.stub.put(pb.PutPipelineRequest(pipeline=spec("hot", ("gain", {"db": "6"}))),
                     timeout=T)
        gate = threading.Event()
        sent_after = threading.Event()
        v1 = [[1000] * 160]

        def reqs():
            yield open_named("hot")
            yield frame_s16(v1[0])
            gate.wait(10)
            for _ in range(5):
                yield frame_s16(v1[0])
            sent_after.set()

        call = srv.stub.stream(reqs(), timeout=30)
        first = next(call)
        self.assertEqual(unpack_s16(first.output.audio.samples), gain_s16(v1[0], 6.0))
        # Replace: new streams get v2, the open one keeps v1.
        srv.stub.put(pb.PutPipelineRequest(pipeline=spec("hot", ("gain", {"db": "-6"}))),
                     timeout=T)
        rs = list(srv.stub.stream(iter([open_named("hot"), frame_s16(v1[0])]), timeout=T))
        self.assertEqual(unpack_s16(rs[0].output.audio.samples), gain_s16(v1[0], -6.0))
        # Delete: the open stream still runs on its version.
        srv.stub.delete(pb.DeletePipelineRequest(name="hot"), timeout=T)
        gate.set()
        rest = list(call)
        self.assertEqual(len(rest), 6)
        for r in rest[:5]:
            self.assertEqual(unpack_s16(r.output.audio.samples), gain_s16(v1[0], 6.0))
        with self.assertRaises(grpc.RpcError) as cm:
            list(srv.stub.stream(iter([open_named("hot")]), timeout=T))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_client_that_does_not_read_is_flow_controlled(self):
        # 64 MiB each way: more than HTTP/2's windows can absorb however far gRPC's BDP
        # probing grows them (with 12 MiB, CI once saw every frame sent before the check).
        n = 1000
        payload = 65536
        window = 8  # CONFIG's limits.stream_window
        yielded = [0]
        frame = frame_s16([7] * (payload // 2))  # 64 KiB frames

        def reqs():
            yield open_named("pass")
            for _ in range(n):
                yielded[0] += 1
                yield frame

        self.assertTrue(wait_until(lambda: srv.metric("corepipe_grpc_reply_bytes_held") == 0))
        call = srv.stub.stream(reqs(), timeout=60)
        held = [None]

        def window_full_and_held():
            # The server reads frames as the window allows and holds their replies for the
            # client. Full: no frame in flight (no reservation counted) and at least the
            # window's replies held (each is the payload and a few header bytes). Held: no
            # frame answered between two looks, with the full window seen between them (a
            # window that fills while replies still go out is not the end state).
            before = srv.stub.stats(pb.GetStatsRequest(), timeout=T)
            held[0] = srv.metric("corepipe_grpc_reply_bytes_held")
            after = srv.stub.stats(pb.GetStatsRequest(), timeout=T)
            for st in (before, after):
                self.assertLessEqual(pool_usage(st)["descriptors"], window)
            return (before.answered == after.answered
                    and pool_usage(after)["descriptors"] == 0
                    and held[0] >= window * payload)

        # Not read: once the window is full the server stops reading this stream; the rest
        # waits in HTTP/2 flow control, which stops the client's sender. 60 s: a hang guard.
        self.assertTrue(wait_until(window_full_and_held, timeout_s=60), held[0])
        # The window's replies and not one more: an unbounded or wider window holds more.
        self.assertLess(held[0], (window + 1) * payload)
        self.assertLess(yielded[0], n, "the client was never held back")
        seqs = [r.seq for r in call]
        self.assertEqual(seqs, list(range(n + 1)))

    def test_unary_on_stateful_pipeline(self):
        # Execute = one frame + flush: 100 ms at 48 kHz gives 100 ms at 16 kHz.
        pcm = []
        for i in range(10):
            pcm += stereo_tone_frame(i)
        r = srv.stub.execute(pb.ExecuteRequest(name="speech16k", input=audio(
            S16, pack_s16(pcm), rate=48000, channels=2)), timeout=T)
        self.assertEqual(len(r.output.audio.samples) // 4, 1600)
        self.assertEqual(r.output.audio.sample_rate, 16000)
        self.assertIn(r.annotations["vad.speech"], ("true", "false"))
        st = srv.stub.stats(pb.GetStatsRequest(), timeout=T)
        self.assertTrue(wait_until(lambda: sum(
            p.in_use for p in srv.stub.stats(pb.GetStatsRequest(), timeout=T).pools
            if p.name.startswith("stream_slots")) == 0, 5))
        self.assertIsNotNone(st)


SHED = """
dataplane: { ring_size: 64, max_in_flight: 1024 }
limits: { shed_high_water_pct: 50, shed_low_water_pct: 10, shed_window_ms: 100 }
pipelines:
  slow:
    - type: test_delay
      params: { us: 20000 }
  pass:
    - type: passthrough
"""


class StreamsUnderSheddingTest(unittest.TestCase):
    def test_existing_streams_are_never_shed(self):
        s = Server(SHED).start()
        try:
            gate = threading.Event()

            def reqs():
                yield open_named("pass")
                yield frame_s16([5] * 160)
                gate.wait(30)
                for _ in range(20):
                    yield frame_s16([5] * 160)

            call = s.stub.stream(reqs(), timeout=60)
            self.assertEqual(next(call).seq, 0)
            req = pb.ExecuteRequest(name="slow", input=pb.Payload(data=b"x"))
            flood = [s.stub.execute.future(req, timeout=60) for _ in range(100)]
            self.assertTrue(wait_until(lambda: any(
                w.shedding for w in s.stub.stats(pb.GetStatsRequest(), timeout=T).workers),
                10, 0.02), "shedding never started")
            # While new unary work is shed, the open stream keeps being served.
            gate.set()
            rest = list(call)
            self.assertEqual([r.seq for r in rest], list(range(1, 22)))
            shed = 0
            for f in flood:
                try:
                    f.result(timeout=60)
                except grpc.RpcError as e:
                    self.assertEqual(e.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
                    shed += 1
            self.assertGreater(shed, 0)
        finally:
            code = s.stop()
        self.assertEqual(code, 0, s.log())


class StreamShutdownTest(unittest.TestCase):
    def test_sigterm_with_200_unary_and_20_streams(self):
        cfg = CONFIG.replace("logging: { level: info }",
                             "logging: { level: info }\nserver: { shutdown_grace_ms: 3000 }")
        s = Server(cfg).start()
        self.addCleanup(s.kill)  # a no-op once it has exited
        started = threading.Barrier(21)
        results = {}

        def streamer(idx, finish):
            def reqs():
                yield open_named("pass")
                yield frame_s16([idx] * 160)
                started.wait(10)
                # Keep sending for a while after the signal; "finish" streams then close.
                for _ in range(10):
                    time.sleep(0.05)
                    yield frame_s16([idx] * 160)
                if not finish:
                    time.sleep(20)

            try:
                rs = list(s.stub.stream(reqs(), timeout=60))
                results[idx] = ("OK", len(rs))
            except grpc.RpcError as e:
                results[idx] = (e.code().name, e.details())

        ts = [threading.Thread(target=streamer, args=(i, i < 16)) for i in range(20)]
        for t in ts:
            t.start()
        started.wait(10)
        req = pb.ExecuteRequest(name="slow", input=pb.Payload(data=b"u"))
        futures = [s.stub.execute.future(req, timeout=60) for _ in range(200)]
        # Signal once the server holds the 20 streams and unary calls too.
        self.assertTrue(wait_until(lambda: s.metric("corepipe_grpc_streams_active") >= 21, T))
        s.proc.send_signal(signal.SIGTERM)
        for t in ts:
            t.join(30)
        code = s.proc.wait(30)
        s.close()
        self.assertEqual(code, 0, s.log())
        # Streams that closed within the grace period finished normally, every frame answered
        # plus the flush; the four that never closed were ended with UNAVAILABLE.
        for i in range(16):
            self.assertEqual(results[i], ("OK", 12), (i, results[i]))
        for i in range(16, 20):
            self.assertEqual(results[i][0], "UNAVAILABLE", (i, results[i]))
        ok = unavailable = 0
        for f in futures:
            try:
                self.assertEqual(f.result(timeout=T).output.data, b"u")
                ok += 1
            except grpc.RpcError as e:
                self.assertEqual(e.code(), grpc.StatusCode.UNAVAILABLE, e.details())
                unavailable += 1
        self.assertEqual(ok + unavailable, 200)
        self.assertGreater(ok, 0)
        drained = [l for l in s.logs_json() if l.get("msg") == "drained"]
        self.assertEqual(len(drained), 1, s.log())
        self.assertEqual(drained[0]["cancelled_after_grace"], 4)


if __name__ == "__main__":
    unittest.main()
