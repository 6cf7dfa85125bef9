"""TLS on the gRPC port, with a throw-away CA and certificates made by openssl at test time: a
TLS call works; a plaintext client is refused when TLS is required; with mTLS, a client without
a certificate (or with one from another CA) is refused and one with a good certificate works;
tls.required: false serves plaintext on a second port; bad TLS settings stop the server."""
import os
import shutil
import socket
import subprocess
import tempfile
import unittest

import grpc

import corepipe_pb2 as pb
from serverlib import COREPIPED, RPC_TIMEOUT_S as T, Server, Stubs, wait_until


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(d):
    """CA, server cert for 127.0.0.1/localhost, a client cert; and a second, unrelated CA."""
    if shutil.which("openssl") is None:
        raise AssertionError("openssl is not installed (make deps installs it)")
    for ca in ("ca", "evil"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", f"/CN=corepipe test {ca}", "-keyout", f"{ca}.key", "-out", f"{ca}.pem",
                cwd=d)
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, ca, ext in (("server", "ca", ["-extfile", "san.ext"]), ("client", "ca", []),
                          ("rogue", "evil", [])):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
                "-CAcreateserial", "-days", "2", "-out", f"{name}.pem", *ext, cwd=d)


def read(d, name):
    with open(os.path.join(d, name), "rb") as f:
        return f.read()


def crc(channel):
    return Stubs(channel).execute(pb.ExecuteRequest(name="crc", input=pb.Payload(
        data=b"123456789")), timeout=T).annotations["crc32c"]


class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="corepipe-tls-")
        cls.d = cls.tmp.name
        make_pki(cls.d)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def config(self, tls):
        return f"""
tls:
{tls}
pipelines:
  crc:
    - type: crc32c
"""

    def start(self, tls):
        # The port comes from the "serving" line; the calls use our own TLS channels.
        return Server(self.config(tls)).start()

    def tls_channel(self, port, client=None, ca="ca.pem"):
        kw = {"root_certificates": read(self.d, ca)}
        if client:
            kw["private_key"] = read(self.d, client + ".key")
            kw["certificate_chain"] = read(self.d, client + ".pem")
        return grpc.secure_channel(f"127.0.0.1:{port}", grpc.ssl_channel_credentials(**kw))

    def test_tls_required(self):
        srv = self.start(f"  cert_file: {self.d}/server.pem\n  key_file: {self.d}/server.key\n")
        try:
            with self.tls_channel(srv.port) as ch:
                self.assertEqual(crc(ch), "e3069283")
            # Plaintext on the TLS port: refused (the handshake never completes).
            with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
                with self.assertRaises(grpc.RpcError) as cm:
                    crc(ch)
                self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
            # A client that does not trust the server's CA refuses it.
            with self.tls_channel(srv.port, ca="evil.pem") as ch:
                with self.assertRaises(grpc.RpcError) as cm:
                    crc(ch)
                self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        finally:
            self.assertEqual(srv.stop(), 0, srv.log())

    def test_tls_connections_counted_and_bounded(self):
        """TLS connections are counted like any other (corepipe_grpc_connections) and
        server.max_connections refuses the one over the limit; a slot frees when one leaves."""
        srv = Server(self.config(f"  cert_file: {self.d}/server.pem\n"
                                 f"  key_file: {self.d}/server.key\n") +
                     "server: { max_connections: 3 }\n").start()
        opts = [("grpc.use_local_subchannel_pool", 1)]
        chans = []

        def own():
            return grpc.secure_channel(f"127.0.0.1:{srv.port}", grpc.ssl_channel_credentials(
                root_certificates=read(self.d, "ca.pem")), options=opts)

        try:
            for _ in range(3):
                chans.append(own())
                self.assertEqual(crc(chans[-1]), "e3069283")
            self.assertEqual(srv.metric("corepipe_grpc_connections"), 3)
            with own() as extra:
                with self.assertRaises(grpc.RpcError) as cm:
                    crc(extra)
                self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
            self.assertGreaterEqual(
                srv.metric("corepipe_grpc_connections_refused_total", reason="limit"), 1)
            chans.pop().close()
            self.assertTrue(wait_until(lambda: srv.metric("corepipe_grpc_connections") == 2, T))
            chans.append(own())
            self.assertEqual(crc(chans[-1]), "e3069283")
            self.assertEqual(srv.metric("corepipe_grpc_connections"), 3)
        finally:
            for ch in chans:
                ch.close()
            self.assertEqual(srv.stop(), 0, srv.log())

    def test_mtls(self):
        srv = self.start(f"  cert_file: {self.d}/server.pem\n  key_file: {self.d}/server.key\n"
                         f"  client_ca_file: {self.d}/ca.pem\n  require_client_cert: true\n")
        try:
            with self.tls_channel(srv.port, client="client") as ch:
                self.assertEqual(crc(ch), "e3069283")
            for client in (None, "rogue"):
                with self.tls_channel(srv.port, client=client) as ch:
                    with self.assertRaises(grpc.RpcError) as cm:
                        crc(ch)
                    self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE, client)
        finally:
            self.assertEqual(srv.stop(), 0, srv.log())

    def test_plaintext_alongside_when_not_required(self):
        srv = self.start(f"  cert_file: {self.d}/server.pem\n  key_file: {self.d}/server.key\n"
                         "  required: false\n  plaintext_listen: 127.0.0.1:0\n")
        try:
            serving = [l for l in srv.logs_json() if l.get("msg") == "serving"][0]
            self.assertTrue(serving["tls"])
            with self.tls_channel(srv.port) as ch:
                self.assertEqual(crc(ch), "e3069283")
            with grpc.insecure_channel(f"127.0.0.1:{serving['plaintext_port']}") as ch:
                self.assertEqual(crc(ch), "e3069283")
        finally:
            self.assertEqual(srv.stop(), 0, srv.log())

    def test_handshake_failures_rate_limited(self):
        """Finding 12: 300 plaintext connections to the TLS port log one line, not 300; the
        next line (a second later) carries how many were not logged."""
        srv = self.start(f"  cert_file: {self.d}/server.pem\n  key_file: {self.d}/server.key\n")

        def bad_handshake():
            with socket.create_connection(("127.0.0.1", srv.port), timeout=T) as s:
                s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
                try:
                    while s.recv(4096):
                        pass
                except OSError:
                    pass

        def handshake_lines():
            return [l for l in srv.logs_json() if l.get("component") == "grpc" and
                    "andshake failed" in l.get("msg", "")]

        try:
            for _ in range(300):
                bad_handshake()
            attempts = 300
            # More failures until the limiter lets the next line through (>= 1 s later).
            while len(handshake_lines()) < 2 and attempts < 300 + 200:
                bad_handshake()
                attempts += 1
                wait_until(lambda: len(handshake_lines()) >= 2, 0.1)
            lines = handshake_lines()
            self.assertEqual(len(lines), 2, [l["msg"] for l in lines[:3]])
            self.assertEqual(lines[0]["suppressed_since_last"], 0)
            self.assertGreaterEqual(lines[1]["suppressed_since_last"], 299)
            self.assertLessEqual(2 + lines[1]["suppressed_since_last"], attempts)
            with self.tls_channel(srv.port) as ch:  # still serving
                self.assertEqual(crc(ch), "e3069283")
        finally:
            self.assertEqual(srv.stop(), 0, srv.log())

    def test_bad_settings_stop_the_server(self):
        cases = [
            (f"  cert_file: {self.d}/server.pem\n", "go together"),
            (f"  cert_file: {self.d}/server.pem\n  key_file: {self.d}/server.key\n"
             "  require_client_cert: true\n", "needs tls.client_ca_file"),
            (f"  cert_file: {self.d}/server.pem\n  key_file: {self.d}/server.key\n"
             "  plaintext_listen: 127.0.0.1:0\n", "required is true"),
            (f"  cert_file: {self.d}/nope.pem\n  key_file: {self.d}/server.key\n",
             "tls: cannot read file"),
        ]
        for tls, text in cases:
            path = os.path.join(self.d, "bad.yaml")
            with open(path, "w") as f:
                f.write(self.config(tls))
            env = {k: v for k, v in os.environ.items() if not k.startswith("COREPIPE_")}
            env["COREPIPE_SERVER_METRICS_LISTEN"] = "127.0.0.1:0"
            r = subprocess.run([COREPIPED, "--config", path, "--grpc-listen", "127.0.0.1:0"],
                               env=env, capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL)
            self.assertNotEqual(r.returncode, 0, tls)
            self.assertIn(text, r.stderr, tls)


if __name__ == "__main__":
    unittest.main()
