"""perf/udp_echo (the kernel-socket wire v1 passthrough server) against udpwire.py, the
independent Python encoding: every answer must equal, byte for byte, the passthrough response
computed from the layout tables; invalid datagrams are never answered; SIGTERM prints the counts
and exits 0.

The binary is build/<variant>/perf/udp_echo, found next to $COREPIPED (build/<variant>/corepiped).
It is started on 127.0.0.1 port 0 (it prints the port it got) and stopped by its PID. Every wait
is bounded.
"""
import os
import re
import signal
import socket
import subprocess
import threading
import unittest

import udpwire as w

COREPIPED = os.environ.get("COREPIPED", os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "release", "corepiped"))
UDP_ECHO = os.path.join(os.path.dirname(os.path.abspath(COREPIPED)), "perf", "udp_echo")
START_TIMEOUT_S = 10
STOP_TIMEOUT_S = 10
RECV_TIMEOUT_S = 2.0
SILENCE_S = 0.3  # how long we wait to be sure a datagram is not answered


class Echo:
    """A udp_echo process; its stderr is collected line by line."""

    def __init__(self, bind="127.0.0.1:0", extra=()):
        if not os.access(UDP_ECHO, os.X_OK):
            raise RuntimeError(f"{UDP_ECHO} is not built (make all)")
        self.args = [UDP_ECHO, "--bind", bind, *extra]
        self.lines = []
        self.addr = None
        self._ready = threading.Event()

    def _reader(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            m = re.match(r"udp_echo: listening on \[?([^\]]+)\]?:(\d+)$", line)
            if m:
                self.addr = (m.group(1), int(m.group(2)))
                self._ready.set()
        self._ready.set()

    def start(self):
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._thread = threading.Thread(target=self._reader, daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S) or self.addr is None:
            self.kill()
            raise RuntimeError("udp_echo did not start:\n" + "\n".join(self.lines))
        return self

    def stop(self):
        """SIGTERM to our PID; returns the exit code (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        self._thread.join(STOP_TIMEOUT_S)
        self.proc.stderr.close()
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT_S)
        self.proc.stderr.close()

    def counts(self):
        for line in reversed(self.lines):
            m = re.match(r"udp_echo: rx (\d+) tx (\d+) drop (\d+)$", line)
            if m:
                return tuple(int(x) for x in m.groups())
        return None


def client(addr, family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.settimeout(RECV_TIMEOUT_S)
    s.connect(addr)
    return s


def assert_silent(tc, sock):
    sock.settimeout(SILENCE_S)
    try:
        data = sock.recv(70000)
    except socket.timeout:
        return
    finally:
        sock.settimeout(RECV_TIMEOUT_S)
    tc.fail(f"an invalid datagram was answered: {data.hex()}")


INVALID = {
    "empty": b"",
    "short": w.encode_request(1, 1, b"")[:21],
    "bad magic": b"XP" + w.encode_request(1, 2, b"abc")[2:],
    "response": w.encode_response(3, 0, b"abc"),
    "request with the response bit": w.encode_request(1, 4, b"abc", flags=w.F_RESPONSE),
    "version 2": w.encode_request(1, 5, b"abc", version=2),
    "unknown flag": w.encode_request(1, 6, b"abc", flags=0x80),
    "reserved": w.encode_request(1, 7, b"abc", reserved=1),
    "pipeline 0": w.encode_request(0, 8, b"abc"),
    "audio header truncated": w.encode_request(1, 9, b"", audio=(w.S16LE, 1, 8000))[:26],
    "bad sample format": w.encode_request(1, 10, b"abcd", audio=(3, 1, 8000)),
    "rate 0": w.encode_request(1, 11, b"abcd", audio=(w.S16LE, 1, 0)),
    "channels 0": w.encode_request(1, 12, b"abcd", audio=(w.S16LE, 0, 8000)),
    "partial frame": w.encode_request(1, 13, b"abcde", audio=(w.F32LE, 1, 8000)),
}


class UdpEchoTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.echo = Echo().start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.echo.stop()
        assert rc == 0, f"udp_echo exit code {rc}:\n" + "\n".join(cls.echo.lines)

    def setUp(self):
        self.sock = client(self.echo.addr)

    def tearDown(self):
        self.sock.close()

    def roundtrip(self, req):
        self.sock.send(req)
        data = self.sock.recv(70000)
        self.assertEqual(data.hex(), w.echo_response(req).hex())
        return w.parse_response(data)

    def test_bytes_request_is_echoed_byte_for_byte(self):
        req = w.encode_request(7, 0x0102030405060708, b"hello, wire", deadline_us=1000)
        r = self.roundtrip(req)
        self.assertEqual((r.status, r.request_id, r.output, r.audio, r.annotations),
                         (0, 0x0102030405060708, b"hello, wire", None, {}))
        self.assertEqual(r.flags, w.F_RESPONSE)

    def test_hand_written_request_gets_hand_written_response(self):
        # From the tables: request pipeline 7, id 0x0102030405060708, deadline 1000, "abc"
        req = bytes.fromhex("43500100" "07000000" "0807060504030201" "e8030000" "0000" "616263")
        want = bytes.fromhex("43500101" "00" "00" "00000000" "0807060504030201" "03000000"
                             "616263")
        self.sock.send(req)
        self.assertEqual(self.sock.recv(70000).hex(), want.hex())

    def test_audio_request_keeps_its_format(self):
        pcm = bytes(range(48))  # s16le x 2 channels: 12 frames
        r = self.roundtrip(w.encode_request(2, 99, pcm, audio=(w.S16LE, 2, 16000)))
        self.assertEqual(r.audio, w.Audio(w.S16LE, 2, 16000))
        self.assertEqual(r.flags, w.F_RESPONSE | w.F_AUDIO)
        self.assertEqual(r.output, pcm)
        r = self.roundtrip(w.encode_request(2, 100, bytes(8), audio=(w.F32LE, 1, 48000)))
        self.assertEqual(r.audio, w.Audio(w.F32LE, 1, 48000))

    def test_empty_and_large_payloads(self):
        self.assertEqual(self.roundtrip(w.encode_request(1, 1, b"")).output, b"")
        self.assertEqual(self.roundtrip(w.encode_request(1, 2, b"", audio=(1, 1, 8000))).output,
                         b"")
        big = bytes(i & 0xFF for i in range(60000))
        self.assertEqual(self.roundtrip(w.encode_request(1, 3, big)).output, big)

    def test_pipelined_requests_all_answered(self):
        n = 64
        reqs = {1000 + i: w.encode_request(1 + i % 5, 1000 + i, os.urandom(i)) for i in range(n)}
        for r in reqs.values():
            self.sock.send(r)
        got = {}
        for _ in range(n):
            data = self.sock.recv(70000)
            rid = w.parse_response(data).request_id
            self.assertNotIn(rid, got)
            got[rid] = data
        self.assertEqual(sorted(got), sorted(reqs))
        for rid, data in got.items():
            self.assertEqual(data, w.echo_response(reqs[rid]))

    def test_invalid_datagrams_are_never_answered(self):
        for name, dgram in INVALID.items():
            with self.subTest(name):
                self.sock.send(dgram)
                assert_silent(self, self.sock)
        # still serving
        self.roundtrip(w.encode_request(1, 42, b"alive"))


class UdpEchoLifecycleTest(unittest.TestCase):
    def test_counts_at_sigterm(self):
        echo = Echo(extra=("--batch", "4")).start()
        try:
            sock = client(echo.addr)
            for i in range(3):
                sock.send(w.encode_request(1, i, b"x" * i))
                self.assertEqual(w.parse_response(sock.recv(70000)).request_id, i)
            sock.send(INVALID["bad magic"])
            sock.send(INVALID["version 2"])
            # a valid request after them proves both were read before we stop
            sock.send(w.encode_request(1, 77, b""))
            self.assertEqual(w.parse_response(sock.recv(70000)).request_id, 77)
            sock.close()
        finally:
            rc = echo.stop()
        self.assertEqual(rc, 0, "\n".join(echo.lines))
        self.assertEqual(echo.counts(), (6, 4, 2), "\n".join(echo.lines))

    def test_ipv6_loopback(self):
        try:
            probe = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            probe.bind(("::1", 0))
            probe.close()
        except OSError:
            self.skipTest("no IPv6 loopback here")
        echo = Echo(bind="[::1]:0").start()
        try:
            self.assertEqual(echo.addr[0], "::1")
            sock = client(echo.addr, socket.AF_INET6)
            req = w.encode_request(9, 9, b"six")
            sock.send(req)
            self.assertEqual(sock.recv(70000), w.echo_response(req))
            sock.close()
        finally:
            self.assertEqual(echo.stop(), 0)

    def test_bad_arguments_exit_nonzero(self):
        for args in (["--bind", "nonsense"], ["--batch", "0"], ["--bogus"]):
            with self.subTest(args):
                p = subprocess.run([UDP_ECHO, *args], stdin=subprocess.DEVNULL,
                                   capture_output=True, timeout=STOP_TIMEOUT_S)
                self.assertNotEqual(p.returncode, 0)


if __name__ == "__main__":
    unittest.main()
