"""corepiped under systemd's contract, checked without a running systemd (this machine has
none): the installed unit passes `systemd-analyze verify`; the sd_notify datagrams arrive on a
real NOTIFY_SOCKET in the order systemd expects (READY after serving, RELOADING then READY
around a SIGHUP reload, STOPPING at the drain); and the unit's hardening holds for a real
server: every system call it makes from start through a call, a reload and a drain is inside
SystemCallFilter=@system-service (traced with strace), and it serves under the kernel's
memory-deny-write-execute (PR_SET_MDWE, what MemoryDenyWriteExecute= enforces)."""
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import unittest

import corepipe_pb2 as pb
from serverlib import COREPIPED, RPC_TIMEOUT_S as T, START_TIMEOUT_S, Server, wait_until
from test_install import make

CONFIG = "pipelines:\n  crc:\n    - type: crc32c\n"


def expand_filter(group, seen=None):
    """The system calls of a systemd syscall-filter group, groups expanded."""
    seen = seen if seen is not None else set()
    out = subprocess.run(["systemd-analyze", "syscall-filter", group], capture_output=True,
                         text=True, check=True).stdout
    calls = set()
    for line in out.splitlines()[1:]:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            if line not in seen:
                seen.add(line)
                calls |= expand_filter(line, seen)
        else:
            calls.add(line)
    return calls


class UnitVerifyTest(unittest.TestCase):
    def test_systemd_analyze_verify(self):
        with tempfile.TemporaryDirectory(prefix="corepipe-unit-") as dest:
            r = make("install-server", f"DESTDIR={dest}", "PREFIX=/usr")
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(f"{dest}/usr/lib/systemd/system/corepiped.service") as f:
                unit = f.read()
            # The installed unit, its executable relocated to where it was staged (verify
            # checks that ExecStart= exists), its man page found there too.
            unit = unit.replace("/usr/sbin/corepiped", f"{dest}/usr/sbin/corepiped")
            path = os.path.join(dest, "corepiped.service")
            with open(path, "w") as f:
                f.write(unit)
            r = subprocess.run(["systemd-analyze", "verify", path], capture_output=True,
                               text=True, timeout=60,
                               env=dict(os.environ, MANPATH=f"{dest}/usr/share/man"))
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertEqual(r.stderr.strip(), "")
            # The properties operators rely on.
            for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID",
                         "LimitNOFILE=65536", "NoNewPrivileges=yes", "ProtectSystem=strict",
                         "MemoryDenyWriteExecute=yes", "SystemCallFilter=@system-service"):
                self.assertIn(line + "\n", unit)


class NotifyTest(unittest.TestCase):
    def test_ready_reloading_stopping(self):
        tmp = tempfile.TemporaryDirectory(prefix="corepipe-notify-")
        sock_path = os.path.join(tmp.name, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(sock_path)
        sock.settimeout(START_TIMEOUT_S)
        srv = Server(CONFIG)
        srv.env["NOTIFY_SOCKET"] = sock_path
        try:
            srv.start()

            def recv():
                return dict(l.split("=", 1) for l in sock.recv(4096).decode().splitlines())
            ready = recv()
            self.assertEqual(ready["READY"], "1")
            self.assertIn(f"(port {srv.port})", ready["STATUS"])
            # READY only after the serving line.
            self.assertTrue(any(o.get("msg") == "serving" for o in srv.logs_json()))
            srv.proc.send_signal(signal.SIGHUP)
            self.assertEqual(recv(), {"RELOADING": "1",
                                      "STATUS": "reloading the configuration"})
            self.assertEqual(recv(), {"READY": "1",
                                      "STATUS": "serving (configuration reloaded)"})
            # A reload that fails: READY again, STATUS says why, nothing changed.
            with open(srv.config, "a") as f:
                f.write("bogus: 1\n")
            srv.proc.send_signal(signal.SIGHUP)
            self.assertEqual(recv()["RELOADING"], "1")
            again = recv()
            self.assertEqual(again["READY"], "1")
            self.assertIn("reload rejected", again["STATUS"])
            self.assertIn("unknown section 'bogus'", again["STATUS"])
            srv.stub.execute(pb.ExecuteRequest(name="crc", input=pb.Payload(data=b"x")),
                             timeout=T)
            srv.proc.send_signal(signal.SIGTERM)
            stopping = recv()
            self.assertEqual(stopping["STOPPING"], "1")
            self.assertIn("draining", stopping["STATUS"])
            self.assertEqual(srv.proc.wait(START_TIMEOUT_S), 0)
        finally:
            srv.stop()
            sock.close()
            tmp.cleanup()


class HardeningTest(unittest.TestCase):
    def serve_and_exercise(self, srv):
        """Start, a call, GetStats, a reload, a drain. @return corepiped's exit code."""
        srv.start()
        pid = next(o["pid"] for o in srv.logs_json() if o.get("msg") == "serving")
        srv.stub.execute(pb.ExecuteRequest(name="crc", input=pb.Payload(data=b"123456789")),
                         timeout=T)
        srv.stub.stats(pb.GetStatsRequest(), timeout=T)
        os.kill(pid, signal.SIGHUP)  # the server, not strace
        self.assertTrue(wait_until(lambda: any(o.get("msg") == "config reloaded"
                                               for o in srv.logs_json()), 20))
        os.kill(pid, signal.SIGTERM)
        return srv.proc.wait(START_TIMEOUT_S)  # strace exits with its tracee's code

    def test_system_calls_inside_the_units_filter(self):
        strace = shutil.which("strace")
        self.assertIsNotNone(strace, "strace missing: scripts/deps.sh test installs it")
        allowed = expand_filter("@system-service")
        with tempfile.TemporaryDirectory(prefix="corepipe-strace-") as tmp:
            trace = os.path.join(tmp, "trace")
            srv = Server(CONFIG + "logging: { access_log: all }\n")
            srv.args = [strace, "-f", "-qq", "-o", trace, *srv.args]
            # LeakSanitizer cannot run under ptrace (make asan): no leak check for this run.
            srv.env["ASAN_OPTIONS"] = srv.env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
            try:
                self.assertEqual(self.serve_and_exercise(srv), 0, srv.log())
            finally:
                srv.stop()
            used = set()
            with open(trace) as f:
                for line in f:
                    m = re.match(r"^\d+\s+([a-z_0-9]+)\(", line)  # "<... resumed>" skipped
                    if m:
                        used.add(m.group(1))
        self.assertGreater(len(used), 30)  # the trace saw the server's work
        # iopl: the EAL probes it once for legacy virtio PCI ports and goes on without it
        # (EPERM under the filter, ENOSYS on some kernels).
        self.assertEqual(used - allowed - {"iopl"}, set())

    def test_serves_under_memory_deny_write_execute(self):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_mdwe, pr_get_mdwe, refuse_exec_gain = 65, 66, 1
        if libc.prctl(pr_get_mdwe, 0, 0, 0, 0) < 0:
            self.skipTest("kernel without PR_SET_MDWE (Linux < 6.3)")

        def mdwe():
            if libc.prctl(pr_set_mdwe, refuse_exec_gain, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "PR_SET_MDWE")
        srv = Server(CONFIG)
        srv.preexec = mdwe
        srv.start()
        try:
            r = srv.stub.execute(pb.ExecuteRequest(name="crc",
                                                   input=pb.Payload(data=b"123456789")),
                                 timeout=T)
            self.assertEqual(r.annotations["crc32c"], "e3069283")
        finally:
            self.assertEqual(srv.stop(), 0, srv.log())


if __name__ == "__main__":
    unittest.main()
