"""corepipectl against a real corepiped: every command with --json parsed, the text output of
each, pipeline files in YAML and JSON (and `get` read back by `put`), a WAV round trip through a
resampler checked by frequency and length (exec and stream), per-frame VAD decisions with
timestamps, --realtime pacing, exit codes for every kind of failure, bearer tokens, TLS, and
`top` run under tmux for a few refreshes with its screen captured and checked.
The binary is build/<variant>/corepipectl, next to $COREPIPED."""
import json
import math
import os
import shutil
import struct
import subprocess
import tempfile
import time
import unittest
import wave

from serverlib import COREPIPED, Server, lcore_count, wait_until

CTL = os.path.join(os.path.dirname(os.path.abspath(COREPIPED)), "corepipectl")
CONFIG = """
pipelines:
  crc:
    - type: crc32c
  passthrough:
    - type: passthrough
  rs16k:
    - type: convert
      params: { format: f32le }
    - type: resample
      params: { rate: "16000" }
    - type: convert
      params: { format: s16le }
  vad:
    - type: convert
      params: { format: f32le }
    - type: vad
      params: { threshold_db: "-40", hangover_ms: "0", mode: annotate }
"""


def sine_wav(path, rate=48000, seconds=0.5, freq=1000.0, channels=1, silence_s=0.0, amp=0.5):
    """A 16-bit WAV: silence_s of silence, then a sine."""
    n_sil = int(rate * silence_s)
    n = int(rate * seconds)
    frames = bytearray()
    for i in range(n_sil + n):
        v = 0 if i < n_sil else int(amp * 32767 * math.sin(2 * math.pi * freq * (i - n_sil) / rate))
        frames += struct.pack("<h", v) * channels
    with wave.open(path, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))


def read_s16(path):
    with wave.open(path, "rb") as w:
        rate, ch, n = w.getframerate(), w.getnchannels(), w.getnframes()
        data = w.readframes(n)
    return rate, ch, list(struct.unpack("<%dh" % (len(data) // 2), data))


def zero_crossing_freq(samples, rate):
    """Frequency from rising zero crossings over the middle of the signal (edges skipped)."""
    s = samples[len(samples) // 10: -len(samples) // 10]
    ups = [i for i in range(1, len(s)) if s[i - 1] < 0 <= s[i]]
    return (len(ups) - 1) * rate / (ups[-1] - ups[0])


class CliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(CONFIG).start()
        cls.target = f"127.0.0.1:{cls.srv.port}"
        cls.tmp = tempfile.TemporaryDirectory(prefix="corepipe-cli-")
        cls.d = cls.tmp.name

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        cls.tmp.cleanup()
        assert code == 0, cls.srv.log()

    def run_ctl(self, *args, rc=0, target=None, env=None, timeout=60):
        p = subprocess.run([CTL, "-t", target or self.target, *args], capture_output=True,
                           text=True, timeout=timeout, env=env)
        self.assertEqual(p.returncode, rc, f"{args}: {p.stdout}\n{p.stderr}")
        return p

    def js(self, *args, rc=0, **kw):
        p = self.run_ctl("--json", *args, rc=rc, **kw)
        return json.loads(p.stdout)

    def path(self, name):
        return os.path.join(self.d, name)

    # ---- pipelines, nodes, stats, health, reload ---------------------------------------------

    def test_pipelines_list_get_put_delete_json(self):
        names = {p["spec"]["name"]: p for p in self.js("pipelines", "list")["pipelines"]}
        self.assertTrue({"crc", "passthrough", "rs16k", "vad"} <= set(names))
        self.assertEqual(names["crc"]["spec"]["nodes"], [{"type": "crc32c", "params": {}}])
        with open(self.path("p.json"), "w") as f:
            json.dump({"name": "cli_j", "nodes": [{"type": "gain", "params": {"db": 6}},
                                                  {"type": "crc32c"}]}, f)
        put = self.js("pipelines", "put", self.path("p.json"))["put"]
        self.assertEqual(len(put), 1)
        self.assertEqual(put[0]["spec"]["nodes"][0]["params"], {"db": "6"})
        got = self.js("pipelines", "get", "cli_j")
        self.assertEqual(got["id"], put[0]["id"])
        self.assertEqual(got["version"], put[0]["version"])
        # What `get --json` prints is a file `put` takes (a new version of the same pipeline).
        with open(self.path("got.json"), "w") as f:
            json.dump(got, f)
        again = self.js("pipelines", "put", self.path("got.json"))["put"][0]
        self.assertEqual(again["id"], got["id"])
        self.assertGreater(again["version"], got["version"])
        self.assertEqual(self.js("pipelines", "delete", "cli_j"), {"deleted": "cli_j"})
        err = self.js("pipelines", "delete", "cli_j", rc=64 + 5)["error"]
        self.assertEqual(err["code"], "NOT_FOUND")
        self.assertIn("cli_j", err["message"])
        err = self.js("pipelines", "get", "cli_j", rc=69)["error"]
        self.assertEqual(err["call"], "GetPipeline")

    def test_pipelines_text_get_is_yaml_that_put_reads_back(self):
        with open(self.path("two.yaml"), "w") as f:
            f.write("pipelines:\n  cli_a:\n    - type: gain\n      params: { db: \"-3\" }\n"
                    "  cli_b:\n    - type: sha256\n")
        p = self.run_ctl("pipelines", "put", self.path("two.yaml"))
        self.assertRegex(p.stdout, r"put cli_a: id \d+, version \d+\nput cli_b: id \d+")
        text = self.run_ctl("pipelines", "get", "cli_a").stdout
        self.assertIn("pipelines:\n  cli_a:\n    - type: gain", text)
        with open(self.path("back.yaml"), "w") as f:
            f.write(text.replace("cli_a", "cli_c"))
        self.run_ctl("pipelines", "put", self.path("back.yaml"))
        c = self.js("pipelines", "get", "cli_c")["spec"]
        self.assertEqual(c["nodes"], [{"type": "gain", "params": {"db": "-3"}}])
        listing = self.run_ctl("pipelines", "list").stdout
        self.assertRegex(listing, r"cli_c +\d+ +\d+  gain\(db=-3\)")
        for n in ("cli_a", "cli_b", "cli_c"):
            self.run_ctl("pipelines", "delete", n)

    def test_put_errors(self):
        with open(self.path("bad.yaml"), "w") as f:
            f.write("name: x\nnodes:\n  - type: gain\n    parms: {db: 1}\n")
        p = self.run_ctl("pipelines", "put", self.path("bad.yaml"), rc=3)
        self.assertIn("bad.yaml:4:5: nodes[0]: unknown key 'parms'", p.stderr)
        with open(self.path("unknown.yaml"), "w") as f:
            f.write("name: x\nnodes: [{type: no_such_node}]\n")
        err = self.js("pipelines", "put", self.path("unknown.yaml"), rc=64 + 3)["error"]
        self.assertEqual(err["code"], "INVALID_ARGUMENT")
        self.assertIn("no_such_node", err["message"])
        self.run_ctl("pipelines", "put", self.path("missing.yaml"), rc=3)
        # From stdin.
        p = subprocess.run([CTL, "-t", self.target, "pipelines", "put", "-"], input=
                           '{"name": "cli_stdin", "nodes": [{"type": "passthrough"}]}',
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.run_ctl("pipelines", "delete", "cli_stdin")

    def test_nodes_stats_health(self):
        types = {t["type"]: t for t in self.js("nodes")["types"]}
        db = [p for p in types["gain"]["params"] if p["name"] == "db"][0]
        self.assertTrue(db["required"])
        self.assertIn("resample", types)
        text = self.run_ctl("nodes").stdout
        self.assertIn("gain\n", text)
        self.assertIn("(required)", text)
        st = self.js("stats")
        self.assertEqual(len(st["workers"]), lcore_count())
        self.assertIn("descriptors", [p["name"] for p in st["pools"]])
        self.assertIn("not_found", st["rejected"])
        text = self.run_ctl("stats").stdout
        self.assertIn("WORKER", text)
        self.assertIn("descriptors", text)
        self.assertEqual(self.js("health"), {"service": "", "status": "SERVING"})
        self.assertEqual(self.run_ctl("health", "corepipe.v1.Pipeline").stdout, "SERVING\n")
        self.assertEqual(self.js("health", "no.Such", rc=69)["error"]["code"], "NOT_FOUND")

    def test_reload_reports_what_changed(self):
        with open(self.srv.config, "a") as f:
            f.write("  cli_reloaded:\n    - type: passthrough\n")
        r = self.js("reload")
        self.assertEqual(r["added"], ["cli_reloaded"])
        self.assertEqual(r["path"], self.srv.config)
        self.assertIn("nothing changed", self.run_ctl("reload").stdout)
        self.js("pipelines", "get", "cli_reloaded")

    # ---- exec and stream -----------------------------------------------------------------------

    def test_exec_bytes_and_annotations(self):
        with open(self.path("in.bin"), "wb") as f:
            f.write(b"123456789")
        r = self.js("exec", "crc", self.path("in.bin"))
        self.assertEqual(r["annotations"], {"crc32c": "e3069283"})
        self.assertEqual(r["output"], {"kind": "bytes", "bytes": 9})
        self.assertIn("crc32c: e3069283", self.run_ctl("exec", "crc", self.path("in.bin")).stdout)
        blob = os.urandom(100000)
        with open(self.path("blob"), "wb") as f:
            f.write(blob)
        self.js("exec", "passthrough", self.path("blob"), self.path("blob.out"))
        with open(self.path("blob.out"), "rb") as f:
            self.assertEqual(f.read(), blob)
        # Output to stdout: the bytes on stdout, the rest on stderr.
        p = subprocess.run([CTL, "-t", self.target, "exec", "passthrough", self.path("in.bin"),
                            "-"], capture_output=True, timeout=30)
        self.assertEqual(p.stdout, b"123456789")
        self.assertIn(b"output: 9 bytes", p.stderr)
        # Inline pipeline from a file.
        with open(self.path("inl.yaml"), "w") as f:
            f.write("nodes:\n  - type: crc32c\n")
        r = self.js("exec", "--inline", self.path("inl.yaml"), self.path("in.bin"))
        self.assertEqual(r["pipeline"], "(inline)")
        self.assertEqual(r["annotations"]["crc32c"], "e3069283")

    def check_resampled(self, path, want_frames, tol_frames):
        rate, ch, s = read_s16(path)
        self.assertEqual((rate, ch), (16000, 1))
        self.assertLessEqual(abs(len(s) - want_frames), tol_frames, len(s))
        f = zero_crossing_freq(s, rate)
        self.assertAlmostEqual(f, 1000.0, delta=10.0)

    def test_exec_wav_round_trip_through_resample(self):
        sine_wav(self.path("tone48k.wav"), rate=48000, seconds=0.5, freq=1000)
        r = self.js("exec", "rs16k", self.path("tone48k.wav"), self.path("tone16k.wav"))
        self.assertEqual(r["output"]["kind"], "audio")
        self.assertEqual(r["output"]["format"], "s16le")
        self.assertEqual(r["output"]["sample_rate"], 16000)
        # 0.5 s at 16 kHz; the resampler keeps a few samples of delay (flushed on streams).
        self.check_resampled(self.path("tone16k.wav"), 8000, 64)
        self.assertEqual(r["output"]["frames"], read_s16(self.path("tone16k.wav"))[2].__len__())
        text = self.run_ctl("exec", "rs16k", self.path("tone48k.wav"), self.path("t2.wav")).stdout
        self.assertRegex(text, r"output: audio s16le 16000 Hz 1 ch, \d+ frames")

    def test_stream_wav_round_trip_through_resample(self):
        sine_wav(self.path("tone.wav"), rate=48000, seconds=0.6, freq=1000)
        p = self.run_ctl("--json", "stream", "rs16k", self.path("tone.wav"), self.path("s.wav"),
                         "--frame-ms", "20")
        lines = [json.loads(l) for l in p.stdout.splitlines()]
        frames, summary = lines[:-1], lines[-1]["summary"]
        self.assertEqual(summary["frames"], 30)
        self.assertEqual(summary["responses"], 31)  # every frame, then the flush
        self.assertEqual([f["seq"] for f in frames], list(range(31)))
        self.assertEqual([f["flush"] for f in frames], [False] * 30 + [True])
        self.assertEqual(sum(f["output_bytes"] for f in frames), summary["output"]["bytes"])
        # With the flush, exactly the input's length at the new rate.
        self.check_resampled(self.path("s.wav"), 9600, 2)

    def test_stream_vad_decisions_with_timestamps(self):
        sine_wav(self.path("sv.wav"), rate=16000, seconds=0.3, freq=440, silence_s=0.3)
        p = self.run_ctl("--json", "stream", "vad", self.path("sv.wav"), "--frame-ms", "100")
        lines = [json.loads(l) for l in p.stdout.splitlines()][:-1]
        frames = [l for l in lines if not l["flush"]]
        self.assertEqual([(f["audio_start_s"], f["audio_end_s"]) for f in frames],
                         [(round(0.1 * i, 10), round(0.1 * (i + 1), 10)) for i in range(6)])
        decisions = [f["annotations"].get("vad.speech") for f in frames]
        self.assertEqual(decisions[:3], ["false"] * 3)
        self.assertEqual(decisions[3:], ["true"] * 3)
        text = self.run_ctl("stream", "vad", self.path("sv.wav"), "--frame-ms", "100").stdout
        self.assertRegex(text, r"frame 3 +0\.300- 0\.400 s .*vad\.speech=true")
        self.assertRegex(text, r"6 frames of 100\.0 ms, 7 responses in [0-9.]+ s, status OK")

    def test_stream_realtime_paces_frames(self):
        sine_wav(self.path("rt.wav"), rate=16000, seconds=0.4)
        lines = [json.loads(l) for l in self.run_ctl(
            "--json", "stream", "passthrough", self.path("rt.wav"), "--frame-ms", "100",
            "--realtime").stdout.splitlines()]
        frames = [l for l in lines[:-1] if not l["flush"]]
        self.assertTrue(lines[-1]["summary"]["realtime"])
        # Frame i is not sent before i x 100 ms: its answer cannot come earlier.
        for f in frames:
            self.assertGreaterEqual(f["arrival_s"], f["audio_start_s"])
        arrivals = [f["arrival_s"] for f in frames]
        self.assertEqual(arrivals, sorted(arrivals))

    def test_stream_errors(self):
        sine_wav(self.path("e.wav"), rate=16000, seconds=0.1)
        err = self.js("stream", "nope", self.path("e.wav"), rc=69)["error"]
        self.assertEqual(err["call"], "ExecuteStream")
        with open(self.path("notwav"), "wb") as f:
            f.write(b"hello")
        p = self.run_ctl("stream", "passthrough", self.path("notwav"), rc=3)
        self.assertIn("not a WAV file", p.stderr)

    # ---- exit codes ------------------------------------------------------------------------------

    def test_exit_codes(self):
        self.run_ctl("frobnicate", rc=2)
        self.run_ctl("--bogus", "stats", rc=2)
        self.run_ctl("pipelines", "get", rc=2)
        self.run_ctl("exec", "crc", "/no/such/file", rc=3)
        with open(self.path("x.bin"), "wb") as f:
            f.write(b"x")
        self.run_ctl("exec", "passthrough", self.path("x.bin"), "/no/such/dir/out", rc=4)
        p = self.run_ctl("stats", rc=5, target="127.0.0.1:1")
        self.assertIn("cannot connect to 127.0.0.1:1", p.stderr)
        err = self.js("stats", rc=5, target="127.0.0.1:1")["error"]
        self.assertEqual(err["code"], "CONNECT")
        p = subprocess.run([CTL, "--help"], capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 0)
        for word in ("pipelines put FILE", "stream PIPELINE", "top", "--token", "--cacert",
                     "64+N"):
            self.assertIn(word, p.stdout)

    # ---- top ---------------------------------------------------------------------------------------

    def test_top_json_refreshes(self):
        with open(self.path("t.bin"), "wb") as f:
            f.write(b"123456789")
        for _ in range(5):
            self.run_ctl("exec", "crc", self.path("t.bin"))
        p = self.run_ctl("--json", "top", "--count", "2", "--interval", "0.3", "--metrics",
                         f"127.0.0.1:{self.srv.metrics_port}")
        a, b = [json.loads(l) for l in p.stdout.splitlines()]
        self.assertIsNone(a["metrics_error"])
        self.assertGreater(b["interval_s"], 0)
        self.assertGreater(b["server"]["rss_bytes"], 1 << 20)
        crc = [x for x in b["pipelines"] if x["name"] == "crc"][0]
        self.assertGreaterEqual(crc["requests"], 5)
        self.assertIsNotNone(a["pipelines"][0]["p50_ms"])  # since start on the first screen
        self.assertEqual(len(b["workers"]), lcore_count())
        self.assertIn("descriptors", [x["name"] for x in b["pools"]])
        # Without /metrics, top still runs on GetStats and says why the rest is missing.
        p = self.run_ctl("--json", "top", "--count", "1", "--metrics", "127.0.0.1:1")
        self.assertIn("127.0.0.1:1", json.loads(p.stdout)["metrics_error"])


class CliPackagingTest(unittest.TestCase):
    """The man page renders cleanly and covers every command; make install-cli stages the
    binary, the man page and the Python package (what issue 15's make install will take)."""

    ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

    def test_man_page(self):
        page = os.path.join(self.ROOT, "docs", "corepipectl.1")
        p = subprocess.run(["groff", "-man", "-Tascii", "-ww", "-P-cbou", page],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual((p.returncode, p.stderr), (0, ""))
        for cmd in ("pipelines list", "pipelines put", "exec", "stream", "stats", "health",
                    "reload", "top", "--json", "--token", "--cacert", "EXIT STATUS", "64+N"):
            self.assertIn(cmd, p.stdout)

    def test_install_cli_stages_everything(self):
        variant = os.path.basename(os.path.dirname(os.path.abspath(COREPIPED)))
        with tempfile.TemporaryDirectory(prefix="corepipe-install-") as d:
            p = subprocess.run(["make", "--no-print-directory", f"VARIANT={variant}",
                                "install-cli", f"DESTDIR={d}", "PREFIX=/usr"],
                               capture_output=True, text=True, timeout=600, cwd=self.ROOT)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            ctl = os.path.join(d, "usr/bin/corepipectl")
            self.assertTrue(os.access(ctl, os.X_OK))
            self.assertTrue(os.path.exists(os.path.join(d, "usr/share/man/man1/corepipectl.1")))
            site = os.path.join(d, "usr/lib/python3/dist-packages")
            self.assertTrue(any(n.startswith("corepipe-") and n.endswith(".dist-info")
                                for n in os.listdir(site)))
            q = subprocess.run(["/usr/bin/python3", "-c", "import corepipe, corepipe.v1."
                                "corepipe_pb2_grpc; print(corepipe.__file__)"],
                               capture_output=True, text=True, timeout=60,
                               env=dict(os.environ, PYTHONPATH=site))
            self.assertEqual(q.returncode, 0, q.stderr)
            self.assertTrue(q.stdout.startswith(site))
            self.assertEqual(subprocess.run([ctl, "--help"], capture_output=True,
                                            timeout=10).returncode, 0)


@unittest.skipIf(shutil.which("tmux") is None, "tmux is not installed (make deps installs it)")
class TopUnderTmuxTest(unittest.TestCase):
    """`top` in a real terminal: tmux runs it, capture-pane reads the screen, q quits."""

    def test_top_screen_refreshes_and_q_quits(self):
        srv = Server(CONFIG).start()
        sock = f"corepipe-top-{os.getpid()}"
        tmux = ["tmux", "-L", sock]
        tmp = tempfile.TemporaryDirectory(prefix="corepipe-top-")
        try:
            marker = os.path.join(tmp.name, "exit")
            cmd = (f"{CTL} -t 127.0.0.1:{srv.port} --metrics 127.0.0.1:{srv.metrics_port} top "
                   f"--interval 0.3; echo $? > {marker}")
            subprocess.run([*tmux, "new-session", "-d", "-x", "120", "-y", "45", cmd],
                           check=True, timeout=30)

            def screen():
                return subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True,
                                      text=True, timeout=10).stdout

            # Load while it runs; the crc row must come to show a request rate.
            inp = os.path.join(tmp.name, "in.bin")
            with open(inp, "wb") as f:
                f.write(b"123456789")
            seen = []

            def busy_screen():
                subprocess.run([CTL, "-t", f"127.0.0.1:{srv.port}", "exec", "crc", inp],
                               capture_output=True, timeout=30)
                s = screen()
                seen.append(s)
                return any(l.startswith("crc ") and l.split()[1] not in ("-", "0.0")
                           for l in s.splitlines())

            self.assertTrue(wait_until(busy_screen, timeout_s=30, step_s=0.1),
                            seen[-1] if seen else "no screen")
            s = seen[-1]
            for word in ("corepipectl top", "RSS", "PIPELINE", "REQ/S", "P99 ms", "WORKER",
                         "BUSY%", "QUEUE", "POOL", "descriptors", "connections", "(q quits)"):
                self.assertIn(word, s)
            # A later screen is a new one (the clock line changes or the counts do).
            self.assertTrue(wait_until(lambda: screen() != s, timeout_s=10))
            subprocess.run([*tmux, "send-keys", "q"], check=True, timeout=10)
            self.assertTrue(wait_until(lambda: os.path.exists(marker), timeout_s=10))
            with open(marker) as f:
                self.assertEqual(f.read().strip(), "0")
        finally:
            subprocess.run([*tmux, "kill-server"], capture_output=True, timeout=10)
            tmp.cleanup()
            self.assertEqual(srv.stop(), 0)


class CliAuthTlsTest(unittest.TestCase):
    def test_token_flag_and_env(self):
        import hashlib
        tok = "cli-admin-Zx81"
        srv = Server(f"""
auth:
  enabled: true
  tokens:
    - {{ name: op, sha256: "{hashlib.sha256(tok.encode()).hexdigest()}", permission: admin }}
""").start()
        try:
            t = f"127.0.0.1:{srv.port}"
            p = subprocess.run([CTL, "-t", t, "stats"], capture_output=True, text=True,
                               timeout=30)
            self.assertEqual(p.returncode, 64 + 16, p.stderr)
            self.assertIn("UNAUTHENTICATED", p.stderr)
            self.assertIn("--token", p.stderr)
            p = subprocess.run([CTL, "-t", t, "--token", tok, "--json", "stats"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
            env = dict(os.environ, COREPIPE_TOKEN=tok, COREPIPE_TARGET=t)
            p = subprocess.run([CTL, "pipelines", "list"], capture_output=True, text=True,
                               timeout=30, env=env)
            self.assertEqual(p.returncode, 0, p.stderr)
        finally:
            self.assertEqual(srv.stop(), 0)

    def test_tls_cacert(self):
        from test_tls import make_pki
        tmp = tempfile.TemporaryDirectory(prefix="corepipe-cli-tls-")
        d = tmp.name
        make_pki(d)
        srv = Server(f"""
tls:
  cert_file: {d}/server.pem
  key_file: {d}/server.key
""").start()
        try:
            t = f"127.0.0.1:{srv.port}"
            p = subprocess.run([CTL, "-t", t, "--cacert", f"{d}/ca.pem", "health"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual((p.returncode, p.stdout), (0, "SERVING\n"), p.stderr)
            p = subprocess.run([CTL, "-t", t, "--cacert", f"{d}/evil.pem", "health"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 5, p.stderr)
            p = subprocess.run([CTL, "-t", t, "--connect-timeout", "2000", "health"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 5, p.stderr)
        finally:
            self.assertEqual(srv.stop(), 0)
            tmp.cleanup()


if __name__ == "__main__":
    unittest.main()
