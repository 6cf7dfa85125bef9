#!/usr/bin/env python3
"""Stream a live, microphone-like source through a pipeline in real time.

    PYTHONPATH=build/python/lib python3 examples/python/stream_live.py [--seconds S] [PIPELINE]

The "microphone" produces 20 ms of 16 kHz mono audio every 20 ms (silence, then a tone, then
silence: a speaker starting and stopping), and each frame is sent when it is "captured"
(Client.stream(realtime=True)). The VAD decisions print as they come back, with the audio time
they belong to and when they arrived. The pipeline defaults to an inline one (convert to f32,
vad); give a registered name (e.g. speech16k from config/corepipe.yaml) to use it instead.
Target: $COREPIPE_TARGET (default 127.0.0.1:50051).
"""
import argparse
import math
import struct
import sys
import time

import corepipe

RATE, FRAME_MS = 16000, 20


def microphone(seconds):
    """Frames as a capture callback would deliver them: speech between 1/3 and 2/3 of the time."""
    n = RATE * FRAME_MS // 1000
    for i in range(int(seconds * 1000 / FRAME_MS)):
        t = i * FRAME_MS / 1000
        talking = seconds / 3 <= t < 2 * seconds / 3
        amp = 0.4 if talking else 0.0
        yield corepipe.Audio(b"".join(
            struct.pack("<h", int(amp * 32767 * math.sin(2 * math.pi * 220 * (i * n + k) / RATE)))
            for k in range(n)), RATE)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pipeline", nargs="?")
    ap.add_argument("--seconds", type=float, default=1.2)
    a = ap.parse_args()
    pipeline = a.pipeline or [("convert", {"format": "f32le"}),
                              ("vad", {"threshold_db": "-40", "hangover_ms": "0",
                                       "mode": "annotate"})]
    t0 = time.monotonic()
    last = None
    with corepipe.Client() as c:
        for r in c.stream(pipeline, microphone(a.seconds), realtime=True):
            if r.final:
                break
            speech = r.annotations.get("vad.speech")
            if speech != last:
                print(f"{r.seq * FRAME_MS / 1000:6.2f} s  speech={speech}  "
                      f"(arrived at {time.monotonic() - t0:.2f} s)", flush=True)
                last = speech
    return 0


if __name__ == "__main__":
    sys.exit(main())
