"""registry.store: etcd reached over TLS with etcd auth, and over several endpoints, with a real
etcd (Debian's etcd-server and etcdctl, started and set up here on free loopback ports) and
certificates made by openssl in a temporary directory:
  - TLS with a client certificate (etcd --client-cert-auth) and a user and password (etcd auth
    enabled): two instances share a Put; etcd restarted (every token it gave is forgotten):
    writes and the watch authenticate again and both instances converge;
  - a CA that did not sign etcd's certificate, a wrong password, no user, a user without a
    role on the prefix refuse start with an error naming etcd and TLS, or etcd auth (the
    password itself is never logged); etcd coming back with a certificate the CA did not sign:
    Admin writes answer UNAVAILABLE naming etcd and the TLS handshake;
  - several endpoints: one that does not answer listed first is skipped at start; the endpoint
    in use failing mid-run (a TCP relay in front of etcd, closed) hands over to the next one:
    writes keep working and the watch resumes from the last revision seen."""
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import unittest
import urllib.request

import grpc

import corepipe_pb2 as pb
from fleetlib import (ETCD, Etcd, converged, everywhere, free_port, put_when_available,
                      start_etcd)
from serverlib import Server, spec, wait_until

T = 10
ETCDCTL = shutil.which("etcdctl")
PREFIX = "/corepipe-secure/pipelines/"
PASSWORD = "s3cret-etcd-pw"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(d):
    """A CA, etcd's server certificate (127.0.0.1, localhost, etcd.test), a client certificate;
    an unrelated CA and a server certificate of its own for the same names."""
    for ca in ("ca", "evil"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", f"/CN=corepipe etcd test {ca}", "-keyout", f"{ca}.key",
                "-out", f"{ca}.pem", cwd=d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:etcd.test\n"
                "extendedKeyUsage=serverAuth,clientAuth\n")
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    for name, ca, ext in (("server", "ca", "server"), ("client", "ca", "client"),
                          ("rogue", "evil", "server")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=corepipe-{name}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
                "-CAcreateserial", "-days", "2", "-out", f"{name}.pem",
                "-extfile", f"{ext}.ext", cwd=d)


class TlsEtcd(Etcd):
    """One etcd member serving its clients over TLS, client certificates required; its
    certificate is `server` (signed by `ca`) or, with rogue set, `rogue` (signed by `evil`)."""

    def __init__(self, pki):
        super().__init__()
        self.pki = pki
        self.rogue = False

    scheme = "https"

    def p(self, name):
        return os.path.join(self.pki, name)

    def client_args(self):
        return ["--cert-file", self.p(self.cert() + ".pem"),
                "--key-file", self.p(self.cert() + ".key"),
                "--trusted-ca-file", self.p("ca.pem"), "--client-cert-auth"]

    def cert(self):
        return "rogue" if self.rogue else "server"

    def ready(self):
        ctx = ssl.create_default_context(cafile=self.p("evil.pem" if self.rogue else "ca.pem"))
        ctx.load_cert_chain(self.p("client.pem"), self.p("client.key"))
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{self.client_port}/health",
                                        timeout=2, context=ctx) as r:
                return r.status == 200
        except (OSError, ValueError):
            return False

    def ctl(self, *args, user=None):
        cmd = [ETCDCTL, "--endpoints", f"https://127.0.0.1:{self.client_port}",
               "--cacert", self.p("ca.pem"), "--cert", self.p("client.pem"),
               "--key", self.p("client.key"), "--dial-timeout", "5s",
               "--command-timeout", "10s"]
        if user:
            cmd += ["--user", user]
        return subprocess.run(cmd + list(args), check=True, capture_output=True, timeout=60,
                              env=dict(os.environ, ETCDCTL_API="3")).stdout.decode()


class Relay:
    """A TCP relay on a free loopback port to @target; close() drops it and every connection
    through it (the endpoint "fails")."""

    def __init__(self, target_port):
        self.target = target_port
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.conns = []
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                a, _ = self.lsock.accept()
            except OSError:
                return
            try:
                b = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                a.close()
                continue
            with self.lock:
                if self.closed:
                    a.close()
                    b.close()
                    return
                self.conns += [a, b]
            for x, y in ((a, b), (b, a)):
                threading.Thread(target=self.pump, args=(x, y), daemon=True).start()

    @staticmethod
    def pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        with self.lock:
            self.closed = True
            conns, self.conns = self.conns, []
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.lsock.close()
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def refused(srv):
    """Start @srv expecting it to refuse: its exit code and whole log."""
    try:
        srv.start()
    except RuntimeError:
        pass
    else:
        srv.stop()
        raise AssertionError("corepiped started")
    code = srv.proc.wait(60)
    return code, "\n".join(srv.lines)


def start_error(log_lines):
    for line in log_lines:
        if '"registry store: cannot start"' in line:
            return line
    return None


@unittest.skipIf(ETCD is None, "etcd-server is not installed (scripts/deps.sh test)")
@unittest.skipIf(ETCDCTL is None, "etcd-client is not installed (scripts/deps.sh test)")
@unittest.skipIf(shutil.which("openssl") is None, "openssl is not installed")
class EtcdTlsAuthTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="corepipe-etcd-pki-")
        cls.d = cls.tmp.name
        make_pki(cls.d)
        for name, pw in (("right.pw", PASSWORD), ("wrong.pw", "not-the-password")):
            with open(os.path.join(cls.d, name), "w") as f:
                f.write(pw + "\n")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        self.etcd = start_etcd(self, TlsEtcd(self.d))
        self.etcd.ctl("user", "add", f"root:{PASSWORD}")
        self.etcd.ctl("auth", "enable")
        self.servers = []
        self.addCleanup(lambda: [s.stop() for s in self.servers])

    def config(self, ca="ca.pem", password="right.pw", server_name=None, user="root"):
        p = lambda n: os.path.join(self.d, n)  # noqa: E731
        out = f"""
registry:
  store: etcd
  etcd_endpoint: "127.0.0.1:{self.etcd.client_port}"
  etcd_prefix: "{PREFIX}"
  etcd_ca_file: "{p(ca)}"
  etcd_cert_file: "{p('client.pem')}"
  etcd_key_file: "{p('client.key')}"
  etcd_user: {user}
  etcd_password_file: "{p(password)}"
"""
        if server_name:
            out += f'  etcd_server_name: "{server_name}"\n'
        return out

    def test_tls_and_auth_shared_put_and_tokens_renewed_after_etcd_restart(self):
        a = Server(self.config()).start()
        self.servers.append(a)
        b = Server(self.config(server_name="etcd.test")).start()
        self.servers.append(b)
        for s in (a, b):
            read = [o for o in s.logs_json() if o.get("msg") == "registry store: etcd read"]
            self.assertEqual(len(read), 1, s.log())
            self.assertIs(read[0]["tls"], True)
            self.assertEqual(read[0]["user"], "root")
        info = a.stub.put(pb.PutPipelineRequest(pipeline=spec("p1", ("passthrough", {}))),
                          timeout=T)
        self.assertEqual(converged(self.servers, "p1", info.version), [info.version] * 2)
        # It is in etcd, under the prefix, for an etcdctl that authenticates too.
        self.assertIn(PREFIX + "p1", self.etcd.ctl("get", "--prefix", "--keys-only", PREFIX,
                                                   user=f"root:{PASSWORD}"))

        # etcd restarted: the tokens it gave are gone. A write authenticates again; so does
        # each watch (b's sees a's Put).
        self.etcd.stop()
        self.etcd.start()
        later, refusals = put_when_available(a, spec("p2", ("passthrough", {})))
        self.assertIsNotNone(later, refusals)
        self.assertEqual([d for d in refusals if "auth" in d], [])
        self.assertEqual(converged(self.servers, "p2", later.version, timeout_s=30),
                         [later.version] * 2)
        for s in self.servers:
            self.assertNotIn(PASSWORD, "\n".join(s.lines))
            self.assertNotIn("not-the-password", "\n".join(s.lines))

    def test_wrong_ca_refuses_start_naming_etcd_and_tls(self):
        code, log = refused(Server(self.config(ca="evil.pem")))
        self.assertEqual(code, 2, log)
        line = start_error(log.splitlines())
        self.assertIsNotNone(line, log)
        self.assertIn("etcd 127.0.0.1:%d (TLS)" % self.etcd.client_port, line)
        self.assertIn("the TLS handshake failed", line)
        self.assertIn("registry.etcd_ca_file", line)

    def test_handshake_refused_mid_run_answers_unavailable_naming_etcd_and_tls(self):
        a = Server(self.config()).start()
        self.servers.append(a)
        # etcd comes back with a certificate our CA did not sign.
        self.etcd.stop()
        self.etcd.rogue = True
        self.etcd.start()
        with self.assertRaises(grpc.RpcError) as cm:
            a.stub.put(pb.PutPipelineRequest(pipeline=spec("r1", ("passthrough", {}))),
                       timeout=T)
        # One CI run saw this put refused by a's own port (a gone): say so, with a's log.
        self.assertIsNone(a.proc.poll(), "corepiped exited:\n" + a.log())
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE, a.log())
        self.assertIn("registry store: etcd 127.0.0.1:%d (TLS): unavailable: the TLS handshake "
                      "failed" % self.etcd.client_port, cm.exception.details(), a.log())
        self.assertTrue(wait_until(lambda: any(
            o.get("msg") == "registry store: etcd unreachable, serving the last registry known"
            and o.get("tls") is True for o in a.logs_json())), a.log())
        self.assertEqual(everywhere([a], "r1"), [grpc.StatusCode.NOT_FOUND])
        # The right certificate again: writes work.
        self.etcd.stop()
        self.etcd.rogue = False
        self.etcd.start()
        info, refusals = put_when_available(a, spec("r1", ("passthrough", {})))
        self.assertIsNotNone(info, refusals)
        self.assertEqual(everywhere([a], "r1"), [info.version])

    def test_wrong_password_refuses_start_naming_etcd_auth(self):
        code, log = refused(Server(self.config(password="wrong.pw")))
        self.assertEqual(code, 2, log)
        line = start_error(log.splitlines())
        self.assertIsNotNone(line, log)
        self.assertIn("etcd auth: user 'root' refused", line)
        self.assertIn("authentication failed", line)
        self.assertNotIn("not-the-password", log)

    def test_user_without_a_role_on_the_prefix_refuses_start_naming_etcd_auth(self):
        self.etcd.ctl("user", "add", f"nobody:{PASSWORD}", user=f"root:{PASSWORD}")
        code, log = refused(Server(self.config(user="nobody")))
        self.assertEqual(code, 2, log)
        line = start_error(log.splitlines())
        self.assertIsNotNone(line, log)
        self.assertIn("etcd auth", line)
        self.assertIn("permission denied", line)
        self.assertIn("user 'nobody' needs a role granting readwrite", line)
        # With the role, it starts.
        self.etcd.ctl("role", "add", "corepipe", user=f"root:{PASSWORD}")
        self.etcd.ctl("role", "grant-permission", "corepipe", "readwrite", "--prefix=true",
                      PREFIX, user=f"root:{PASSWORD}")
        self.etcd.ctl("user", "grant-role", "nobody", "corepipe", user=f"root:{PASSWORD}")
        a = Server(self.config(user="nobody")).start()
        self.servers.append(a)
        info = a.stub.put(pb.PutPipelineRequest(pipeline=spec("n1", ("passthrough", {}))),
                          timeout=T)
        self.assertEqual(everywhere([a], "n1"), [info.version])

    def test_auth_enabled_but_no_user_refuses_start_naming_etcd_auth(self):
        cfg = "\n".join(l for l in self.config().splitlines()
                        if "etcd_user" not in l and "etcd_password_file" not in l)
        code, log = refused(Server(cfg))
        self.assertEqual(code, 2, log)
        line = start_error(log.splitlines())
        self.assertIsNotNone(line, log)
        self.assertIn("etcd auth", line)
        self.assertIn("registry.etcd_user", line)


@unittest.skipIf(ETCD is None, "etcd-server is not installed (scripts/deps.sh test)")
class EtcdEndpointsTest(unittest.TestCase):
    def setUp(self):
        self.etcd = start_etcd(self)
        self.servers = []
        self.addCleanup(lambda: [s.stop() for s in self.servers])

    def server(self, endpoints):
        s = Server(f"""
registry:
  store: etcd
  etcd_endpoint: "{endpoints}"
  etcd_prefix: "{PREFIX}"
""").start()
        self.servers.append(s)
        return s

    def test_unreachable_first_endpoint_skipped_and_failover_mid_run(self):
        direct = f"127.0.0.1:{self.etcd.client_port}"
        dead = f"127.0.0.1:{free_port()}"  # nothing listens there
        relay = Relay(self.etcd.client_port)
        self.addCleanup(relay.close)
        via_relay = f"127.0.0.1:{relay.port}"
        a = self.server(f"{via_relay},{direct}")
        b = self.server(f"{via_relay}, {direct}")
        c = self.server(f"{dead},{direct}")
        read = [o for o in c.logs_json() if o.get("msg") == "registry store: etcd read"]
        self.assertEqual(read[0]["endpoint"], direct, c.log())
        self.assertTrue(any(o.get("msg") == "registry store: etcd endpoint failed, using the "
                            "next one" and o.get("failed") == dead for o in c.logs_json()),
                        c.log())
        for s in (a, b):
            read = [o for o in s.logs_json() if o.get("msg") == "registry store: etcd read"]
            self.assertEqual(read[0]["endpoint"], via_relay, s.log())
        info = a.stub.put(pb.PutPipelineRequest(pipeline=spec("q1", ("passthrough", {}))),
                          timeout=T)
        self.assertEqual(converged(self.servers, "q1", info.version), [info.version] * 3)

        # The relay (a's and b's endpoint in use) fails: a's write goes to the next endpoint
        # at once; b's watch moves there too and resumes where it was.
        relay.close()
        info2 = a.stub.put(pb.PutPipelineRequest(pipeline=spec("q2", ("passthrough", {}))),
                           timeout=T)
        info3 = c.stub.put(pb.PutPipelineRequest(
            pipeline=spec("q1", ("passthrough", {}), ("passthrough", {}))), timeout=T)
        self.assertEqual(converged(self.servers, "q2", info2.version, timeout_s=30),
                         [info2.version] * 3)
        self.assertEqual(converged(self.servers, "q1", info3.version, timeout_s=30),
                         [info3.version] * 3)
        for s in (a, b):
            self.assertTrue(any(o.get("msg") == "registry store: etcd endpoint failed, using "
                                "the next one" and o.get("failed") == via_relay
                                and o.get("next") == direct for o in s.logs_json()), s.log())
        # b's watch came back on the direct endpoint from the revision it had (no re-read).
        watching = [o for o in b.logs_json() if o.get("msg") == "registry store: watching etcd"]
        self.assertTrue(watching and watching[-1]["endpoint"] == direct, b.log())
        self.assertFalse(any("re-reading" in o.get("msg", "") for o in b.logs_json()), b.log())


if __name__ == "__main__":
    unittest.main()
