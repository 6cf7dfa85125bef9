"""The vad node on real speech: a sentence synthesised at test time with espeak-ng, converted
to 16 kHz mono with sox, mixed with white noise and padded with noise before and after and
digital silence at the end, then streamed in 10 ms frames through ExecuteStream, and sent whole through one Execute (which
must make the same decisions: same summary, same gated samples).

Ground truth comes from the clean signal, not from the node: a frame is "voiced" when the clean
speech alone has an RMS within 30 dB of the loudest clean frame, and "padding" when it lies
outside the spoken segment by more than the hangover. The test reports both rates and requires
>= 95% of voiced frames detected and <= 5% of padding frames flagged."""
import math
import os
import random
import shutil
import struct
import subprocess
import tempfile
import unittest
import wave

import corepipe_pb2 as pb
from serverlib import S16, Server, audio

TEXT = ("The quick brown fox jumps over the lazy dog. "
        "Voice activity detection finds speech in noise.")
RATE = 16000
FRAME = 160  # 10 ms
NOISE_DB = -40.0  # white noise under everything, 5 dB above the node's -45 dB threshold
HANGOVER_FRAMES = 20  # the node's default 200 ms


def synthesize():
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise AssertionError(f"{tool} is not installed (make deps installs it)")
    with tempfile.TemporaryDirectory() as d:
        raw, out = os.path.join(d, "raw.wav"), os.path.join(d, "16k.wav")
        subprocess.run(["espeak-ng", "-v", "en", "-s", "150", "-w", raw, TEXT], check=True,
                       timeout=60)
        subprocess.run(["sox", raw, "-r", str(RATE), "-c", "1", "-b", "16", out], check=True,
                       timeout=60)
        with wave.open(out, "rb") as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2)
            data = w.readframes(w.getnframes())
    return list(struct.unpack(f"<{len(data) // 2}h", data))


def rms_db(x):
    if not x:
        return -120.0
    p = sum(v * v for v in x) / len(x) / (32768.0 * 32768.0)
    return 10 * math.log10(p) if p > 1e-12 else -120.0


def build_signal():
    """The mixed signal and its ground truth (voiced and padding frame indices)."""
    speech = synthesize()
    speech += [0] * ((-len(speech)) % FRAME)
    # Scale the speech to a -20 dBFS RMS over its voiced part, independent of espeak's level.
    gain = 10 ** ((-20 - rms_db([v for v in speech if abs(v) > 100])) / 20)
    speech = [int(max(-32768, min(32767, v * gain))) for v in speech]
    lead, tail, silence = 150, 150, 100  # frames of noise, noise, digital silence
    clean = [0] * (lead * FRAME) + speech + [0] * ((tail + silence) * FRAME)
    rnd = random.Random(7)
    amp = 10 ** (NOISE_DB / 20) * 32768 * math.sqrt(3)
    noisy_end = len(clean) - silence * FRAME
    mixed = [int(max(-32768, min(32767, clean[i] + (rnd.uniform(-amp, amp)
                                                      if i < noisy_end else 0))))
             for i in range(len(clean))]
    n_frames = len(mixed) // FRAME
    s_first, s_last = lead, lead + len(speech) // FRAME - 1
    clean_db = [rms_db(clean[i * FRAME:(i + 1) * FRAME]) for i in range(n_frames)]
    loudest = max(clean_db)
    voiced = [i for i in range(n_frames) if clean_db[i] > loudest - 30]
    padding = [i for i in range(n_frames)
               if i < s_first or i > s_last + HANGOVER_FRAMES]
    return mixed, n_frames, voiced, padding, silence


class VadSpeechTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mixed, cls.n_frames, cls.voiced, cls.padding, cls.silence = build_signal()
        cls.pcm = struct.pack(f"<{len(cls.mixed)}h", *cls.mixed)
        cls.srv = Server("pipelines:\n  vad16k:\n    - type: vad\n"
                         "  gate16k:\n    - type: vad\n      params: {mode: gate}\n").start()

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        assert code == 0, cls.srv.log()

    def stream_decisions(self, name="vad16k"):
        def reqs():
            yield pb.StreamRequest(open=pb.StreamOpen(name=name))
            for i in range(self.n_frames):
                yield pb.StreamRequest(frame=audio(S16, self.pcm[i * 2 * FRAME:
                                                                  (i + 1) * 2 * FRAME]))

        decisions, outputs = {}, {}
        for r in self.srv.stub.stream(reqs(), timeout=60):
            decisions[r.seq] = r.annotations["vad.speech"] == "true"
            outputs[r.seq] = r.output.audio.samples
        self.assertEqual(len(decisions), self.n_frames + 1)
        return [decisions[i] for i in range(self.n_frames)], outputs

    def test_vad_finds_espeak_speech_in_noise(self):
        decisions, _ = self.stream_decisions()
        voiced, padding, n_frames = self.voiced, self.padding, self.n_frames
        hit = sum(decisions[i] for i in voiced) / len(voiced)
        false_pos = sum(decisions[i] for i in padding) / len(padding)
        print(f"\nvad on espeak-ng speech at -20 dBFS in {NOISE_DB} dBFS white noise: "
              f"{hit:.1%} of {len(voiced)} voiced frames detected, "
              f"{false_pos:.1%} of {len(padding)} padding frames flagged")
        self.assertGreaterEqual(hit, 0.95)
        self.assertLessEqual(false_pos, 0.05)
        # The trailing digital silence is never speech.
        self.assertFalse(any(decisions[i] for i in range(n_frames - self.silence + 1,
                                                          n_frames)))

    def test_unary_execute_equals_stream(self):
        """One Execute over the whole file finds the speech, and its summary is exactly the
        streamed decisions'; gating keeps exactly the streamed speech frames' samples."""
        decisions, _ = self.stream_decisions()
        r = self.srv.stub.execute(pb.ExecuteRequest(name="vad16k", input=audio(S16, self.pcm)),
                                  timeout=60)
        a = r.annotations
        speech = [i for i, d in enumerate(decisions) if d]
        runs = sum(1 for i in speech if i == 0 or not decisions[i - 1])
        self.assertEqual(a["vad.speech"], "true")
        self.assertEqual(a["vad.frames"], str(self.n_frames))
        self.assertEqual(a["vad.speech_ratio"], f"{len(speech) / self.n_frames:.4f}")
        self.assertEqual(a["vad.speech_span"], f"{speech[0]}-{speech[-1]}")
        self.assertEqual(a["vad.segments"], str(runs))
        hit = sum(1 for i in self.voiced if speech[0] <= i <= speech[-1]) / len(self.voiced)
        print(f"\nunary vad: {a['vad.speech_ratio']} speech, frames {a['vad.speech_span']}, "
              f"{a['vad.segments']} segments; span covers {hit:.1%} of voiced frames")
        self.assertGreaterEqual(hit, 0.95)
        _, gated = self.stream_decisions("gate16k")
        g = self.srv.stub.execute(pb.ExecuteRequest(name="gate16k",
                                                    input=audio(S16, self.pcm)), timeout=60)
        self.assertEqual(g.output.audio.samples,
                         b"".join(gated[i] for i in range(self.n_frames)))
        self.assertEqual(len(g.output.audio.samples), len(speech) * FRAME * 2)


if __name__ == "__main__":
    unittest.main()
