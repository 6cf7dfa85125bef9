"""Streams never fail for an empty buffer pool: a frame takes every buffer its nodes will take
before it is submitted (all or none), and one that cannot have them waits unrun.

Issue 12, finding 5: 8 streams of 640 kB s16 frames widened to f32 (1.28 MB answers) ended
RESOURCE_EXHAUSTED "node 0 (convert): no free buffer of 1280000 bytes (pool empty)". Here the
class those answers need has 2 buffers, and a test_delay node after the convert holds each
frame's buffer while it runs, so 8 streams cannot all have one at once: frames must wait, and
every frame of every stream must still be answered, in order, with the right bytes."""
import struct
import threading
import unittest

import corepipe_pb2 as pb
from serverlib import F32, RPC_TIMEOUT_S as T, frame_s16, module_server, open_named, pool_usage

STREAMS = 8
FRAMES = 5
SAMPLES = 320000  # 640 kB of s16: the 1 MiB class; widened to 1.28 MB: the 2 MiB class

CONFIG = """
logging: { level: info }
limits: { stream_window: 8 }
dataplane:
  pools:
    - { size: 512, count: 8192 }
    - { size: 8192, count: 2048 }
    - { size: 65536, count: 512 }
    - { size: 1048576, count: 64 }
    - { size: 2097152, count: 2 }
pipelines:
  widen:
    - type: convert
      params: { format: f32le }
    - type: test_delay
      params: { us: 20000 }
"""

srv = None
setUpModule, tearDownModule = module_server(globals(), CONFIG)


def frame_samples(stream, i):
    """Samples that differ per stream and frame, so a misplaced answer shows."""
    base = (stream * 1000 + i * 37) % 30000
    return [(base + k) % 32768 - 16384 for k in range(0, SAMPLES)]


def pools_in_use():
    return pool_usage(srv.stub.stats(pb.GetStatsRequest(), timeout=T))


class StreamBufferWaitTest(unittest.TestCase):
    def run_stream(self, k, out, errors):
        frames = [frame_samples(k, i) for i in range(FRAMES)]

        def reqs():
            yield open_named("widen")
            for s in frames:
                yield frame_s16(s)

        try:
            got = []
            for r in srv.stub.stream(reqs(), timeout=600):
                got.append(r.seq)
                if r.seq == FRAMES:
                    continue  # the end of the stream (its flush): nothing held back here
                # Check as they come (1.28 MB each): first, middle and last sample.
                s = frames[r.seq]
                b = r.output.audio.samples
                self.assertEqual(r.output.audio.format, F32)
                self.assertEqual(len(b), SAMPLES * 4)
                for j in (0, SAMPLES // 2, SAMPLES - 1):
                    v = struct.unpack_from("<f", b, 4 * j)[0]
                    self.assertEqual(v, s[j] / 32768.0)
            out[k] = got
        except Exception as e:  # noqa: BLE001 (reported below, per stream)
            errors[k] = e

    def test_streams_wait_for_buffers_and_lose_nothing(self):
        before = pools_in_use()
        waits0 = srv.metric("corepipe_grpc_stream_buffer_waits_total")
        out, errors = {}, {}
        threads = [threading.Thread(target=self.run_stream, args=(k, out, errors))
                   for k in range(STREAMS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(660)
        self.assertFalse(any(t.is_alive() for t in threads), "a stream never ended")
        self.assertEqual(errors, {})
        # Every frame answered, once, in order, then the stream's end.
        for k in range(STREAMS):
            self.assertEqual(out[k], list(range(FRAMES + 1)), k)
        # The 2 MiB class (2 buffers) cannot hold 8 streams' answers at once: frames waited.
        self.assertGreater(srv.metric("corepipe_grpc_stream_buffer_waits_total"), waits0)
        # Kits are returned: the pools are back where they were.
        self.assertEqual(pools_in_use(), before)


if __name__ == "__main__":
    unittest.main()
