"""Hot reload as a transaction, against a started corepiped: Admin/ReloadConfig and SIGHUP;
pipelines added, replaced, removed; API-defined pipelines surviving; the file winning for its
names; live settings applied and restart-only ones reported; invalid files changing nothing;
token rotation; and 32 clients calling Execute while the file is reloaded 10 times a second for
10 s, alternating valid and invalid files, with zero failed calls."""
import hashlib
import os
import signal
import threading
import time
import unittest

import grpc

import corepipe_pb2 as pb
from reference import gain_s16, pack_s16, unpack_s16
from serverlib import RPC_TIMEOUT_S as T, S16, Server, Stubs, audio, spec, wait_until

SAMPLES = [1000, -2000, 3000, 12345, -32768, 32767, 7]


def gain_cfg(db, extra_pipelines="", extra=""):
    return f"""
logging: {{ level: info }}
{extra}
pipelines:
  p:
    - type: gain
      params: {{ db: "{db}" }}
{extra_pipelines}
"""


class ReloadTest(unittest.TestCase):
    def setUp(self):
        self.srv = Server(gain_cfg(6, "  gone:\n    - type: passthrough\n")).start()
        self.st = self.srv.stub

    def tearDown(self):
        self.assertEqual(self.srv.stop(), 0, self.srv.log())

    def rewrite(self, text):
        tmp = self.srv.config + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.srv.config)  # atomic, as a config manager would

    def reload(self, metadata=None):
        return self.st_reload(pb.ReloadConfigRequest(), timeout=T, metadata=metadata)

    @property
    def st_reload(self):
        return self.srv.channel.unary_unary(
            "/corepipe.v1.Admin/ReloadConfig",
            request_serializer=pb.ReloadConfigRequest.SerializeToString,
            response_deserializer=pb.ReloadConfigResponse.FromString)

    def gain_of_p(self, metadata=None):
        r = self.st.execute(pb.ExecuteRequest(name="p", input=audio(S16, pack_s16(SAMPLES))),
                            timeout=T, metadata=metadata)
        return unpack_s16(r.output.audio.samples)

    def test_reload_adds_replaces_removes_and_reports(self):
        self.st.put(pb.PutPipelineRequest(pipeline=spec("mine", ("crc32c", {}))), timeout=T)
        self.assertEqual(self.gain_of_p(), gain_s16(SAMPLES, 6))
        self.rewrite(gain_cfg(-6, "  new:\n    - type: passthrough\n",
                              "limits: { max_nodes: 9 }\nserver: { max_connections: 100 }\n"))
        r = self.reload()
        self.assertEqual(list(r.added), ["new"])
        self.assertEqual(list(r.replaced), ["p"])
        self.assertEqual(list(r.removed), ["gone"])
        self.assertIn("limits.max_nodes", r.applied)
        self.assertIn("server.max_connections", r.needs_restart)
        self.assertEqual(r.path, self.srv.config)
        # The log line names what changed, as the answer does (docs/configuration.md).
        line = [l for l in self.srv.logs_json() if l.get("msg") == "config reloaded"][-1]
        self.assertEqual((line["added"], line["replaced"], line["removed"]), ("new", "p", "gone"))
        self.assertEqual(line["applied"].split(","), list(r.applied))
        self.assertEqual(line["needs_restart"].split(","), list(r.needs_restart))
        self.assertEqual(self.gain_of_p(), gain_s16(SAMPLES, -6))
        with self.assertRaises(grpc.RpcError) as cm:
            self.st.execute(pb.ExecuteRequest(name="gone", input=pb.Payload(data=b"x")),
                            timeout=T)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
        # API-defined pipelines survive reloads.
        self.assertEqual(self.st.execute(pb.ExecuteRequest(name="mine", input=pb.Payload(
            data=b"123456789")), timeout=T).annotations["crc32c"], "e3069283")
        # The new node limit is live: 10 inline nodes are now too many.
        with self.assertRaises(grpc.RpcError) as cm:
            self.st.execute(pb.ExecuteRequest(
                inline=pb.PipelineSpec(nodes=[pb.NodeSpec(type="passthrough")] * 10),
                input=pb.Payload(data=b"x")), timeout=T)
        self.assertIn("more than the limit 9", cm.exception.details())
        # Unchanged pipelines are not republished.
        v = self.st.get(pb.GetPipelineRequest(name="new"), timeout=T).version
        r = self.reload()
        self.assertEqual((list(r.added), list(r.replaced), list(r.removed)), ([], [], []))
        self.assertEqual(self.st.get(pb.GetPipelineRequest(name="new"), timeout=T).version, v)

    def test_invalid_file_changes_nothing(self):
        self.rewrite(gain_cfg(-6, "  bad:\n    - type: gain\n      params: { db: loud }\n"))
        with self.assertRaises(grpc.RpcError) as cm:
            self.reload()
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        d = cm.exception.details()
        self.assertIn("nothing changed", d)
        self.assertIn(f"{self.srv.config}:", d)
        self.assertIn("pipeline 'bad': node 0 (gain): param db: not a number: 'loud'", d)
        self.assertEqual(self.gain_of_p(), gain_s16(SAMPLES, 6))  # p not replaced
        self.rewrite("limits: { colour: red }\n")
        with self.assertRaises(grpc.RpcError) as cm:
            self.reload()
        self.assertIn("unknown key 'colour'", cm.exception.details())
        self.assertTrue(any(l.get("msg") == "config reload rejected: nothing changed"
                            for l in self.srv.logs_json()))

    def test_sighup_and_file_wins(self):
        self.st.put(pb.PutPipelineRequest(pipeline=spec("p", ("gain", {"db": "1"}))), timeout=T)
        self.assertEqual(self.gain_of_p(), gain_s16(SAMPLES, 1))
        self.rewrite(gain_cfg(-3))
        self.srv.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: self.gain_of_p() == gain_s16(SAMPLES, -3), 5))
        self.assertTrue(wait_until(lambda: any(l.get("msg") == "config reloaded"
                                               for l in self.srv.logs_json()), 5))

    def test_inflight_cap_applied_live(self):
        slow = "  slow:\n    - type: test_delay\n      params: { us: 200000 }\n"
        self.rewrite(gain_cfg(6, slow, "limits: { max_in_flight: 1 }\n"))
        r = self.reload()
        self.assertIn("limits.max_in_flight", r.applied)
        req = pb.ExecuteRequest(name="slow", input=pb.Payload(data=b"x"))
        futs = [self.st.execute.future(req, timeout=30) for _ in range(4)]
        codes = []
        for f in futs:
            try:
                f.result()
                codes.append("OK")
            except grpc.RpcError as e:
                self.assertIn("limits.max_in_flight", e.details())
                codes.append(e.code().name)
        self.assertIn("OK", codes)
        self.assertIn("RESOURCE_EXHAUSTED", codes)
        self.rewrite(gain_cfg(6, slow))
        self.reload()
        futs = [self.st.execute.future(req, timeout=30) for _ in range(4)]
        self.assertEqual([f.result().output.data for f in futs], [b"x"] * 4)

    def test_token_rotation(self):
        t1, t2 = "first-token-aaaa", "second-token-bbbb"

        def auth(tok):
            h = hashlib.sha256(tok.encode()).hexdigest()
            return (f"auth:\n  enabled: true\n  tokens:\n"
                    f"    - {{ name: ops, sha256: \"{h}\", permission: admin }}\n")

        md1, md2 = (("authorization", f"Bearer {t1}"),), (("authorization", f"Bearer {t2}"),)
        self.rewrite(gain_cfg(6, extra=auth(t1)))
        self.reload()  # auth was off until now
        self.assertEqual(self.gain_of_p(md1), gain_s16(SAMPLES, 6))
        with self.assertRaises(grpc.RpcError) as cm:
            self.gain_of_p()
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        self.rewrite(gain_cfg(6, extra=auth(t2)))
        r = self.reload(md1)
        self.assertIn("auth.tokens", r.applied)
        with self.assertRaises(grpc.RpcError) as cm:
            self.gain_of_p(md1)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        self.assertEqual(self.gain_of_p(md2), gain_s16(SAMPLES, 6))
        # Turning authentication off takes saying so (a file without auth: is refused).
        self.rewrite(gain_cfg(6))
        with self.assertRaises(grpc.RpcError) as cm:
            self.reload(md2)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.rewrite(gain_cfg(6, extra="auth: { enabled: false }\n"))
        self.reload(md2)
        self.assertEqual(self.gain_of_p(), gain_s16(SAMPLES, 6))


class ReloadUnderLoadTest(unittest.TestCase):
    def test_32_clients_while_reloading_10_per_second(self):
        srv = Server(gain_cfg(0)).start()
        stop = threading.Event()
        failures, counts = [], [0] * 32
        valid_dbs = [round(-12 + 0.5 * i, 1) for i in range(60)]
        expected = {db: gain_s16(SAMPLES, db) for db in valid_dbs + [0]}
        outputs = {tuple(v): db for db, v in expected.items()}

        def client(i):
            ch = grpc.insecure_channel(f"127.0.0.1:{srv.port}",
                                       options=[("grpc.use_local_subchannel_pool", 1)])
            st = Stubs(ch)
            req = pb.ExecuteRequest(name="p", input=audio(S16, pack_s16(SAMPLES)))
            while not stop.is_set():
                try:
                    out = tuple(unpack_s16(st.execute(req, timeout=T).output.audio.samples))
                    if out not in outputs:
                        failures.append(f"client {i}: output of no version: {out}")
                    counts[i] += 1
                except grpc.RpcError as e:
                    failures.append(f"client {i}: {e.code()} {e.details()}")
            ch.close()

        ts = [threading.Thread(target=client, args=(i,)) for i in range(32)]
        for t in ts:
            t.start()
        reload = srv.channel.unary_unary(
            "/corepipe.v1.Admin/ReloadConfig",
            request_serializer=pb.ReloadConfigRequest.SerializeToString,
            response_deserializer=pb.ReloadConfigResponse.FromString)
        ok = rejected = 0
        t_end = time.monotonic() + 10
        k = 0
        try:
            while time.monotonic() < t_end and k < 100:
                t0 = time.monotonic()
                valid = k % 2 == 0
                db = valid_dbs[(k // 2) % len(valid_dbs)]
                text = gain_cfg(db) if valid else gain_cfg("NaN-ish")
                tmp = srv.config + ".tmp"
                with open(tmp, "w") as f:
                    f.write(text)
                os.replace(tmp, srv.config)
                try:
                    reload(pb.ReloadConfigRequest(), timeout=T)
                    self.assertTrue(valid, "an invalid file was accepted")
                    ok += 1
                    # Visible to new requests at once.
                    r = srv.stub.execute(pb.ExecuteRequest(
                        name="p", input=audio(S16, pack_s16(SAMPLES))), timeout=T)
                    self.assertEqual(unpack_s16(r.output.audio.samples), expected[db])
                except grpc.RpcError as e:
                    self.assertFalse(valid, e.details())
                    self.assertEqual(e.code(), grpc.StatusCode.INVALID_ARGUMENT)
                    rejected += 1
                k += 1
                time.sleep(max(0.0, 0.1 - (time.monotonic() - t0)))
        finally:
            stop.set()
            for t in ts:
                t.join(30)
            code = srv.stop()
        self.assertEqual(code, 0, srv.log())
        self.assertEqual(failures[:5], [])
        self.assertGreaterEqual(ok, 30)
        self.assertGreaterEqual(rejected, 30)
        self.assertTrue(all(c > 0 for c in counts), counts)
        print(f"\nreload under load: {sum(counts)} calls by 32 clients, 0 failed; "
              f"{ok} valid reloads applied, {rejected} invalid rejected")


ADMIN = "admin-token-Zt7Qe"
ADMIN_MD = (("authorization", f"Bearer {ADMIN}"),)


def secure_cfg(extra_pipelines=""):
    h = hashlib.sha256(ADMIN.encode()).hexdigest()
    return f"""logging: {{ level: info }}
limits: {{ max_nodes: 16 }}
pipelines:
  p:
    - type: gain
      params: {{ db: "6" }}
{extra_pipelines}auth:
  enabled: true
  tokens:
    - {{ name: ops, sha256: "{h}", permission: admin }}
"""


class FailClosedReloadTest(unittest.TestCase):
    """Finding 3: with auth on, no bad file (empty, truncated, auth: missing, garbage, a FIFO,
    a directory) turns it off: every reload is refused, nothing changes, and an
    unauthenticated Admin call is still refused after each. Finding 7: a FIFO or directory
    at the path is an error at once, not a hung gRPC thread."""

    def setUp(self):
        self.srv = Server(secure_cfg()).start()
        self.st = self.srv.stub
        self.reload_rpc = self.srv.channel.unary_unary(
            "/corepipe.v1.Admin/ReloadConfig",
            request_serializer=pb.ReloadConfigRequest.SerializeToString,
            response_deserializer=pb.ReloadConfigResponse.FromString)

    def tearDown(self):
        self.assertEqual(self.srv.stop(), 0, self.srv.log())

    def put_path(self, text=None, kind="file"):
        path = self.srv.config
        if os.path.isdir(path) and not os.path.islink(path):
            os.rmdir(path)
        elif os.path.lexists(path):
            os.unlink(path)
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "dir":
            os.mkdir(path)
        else:
            with open(path, "wb") as f:
                f.write(text if isinstance(text, bytes) else text.encode())

    def assert_unauthenticated_refused(self, what):
        with self.assertRaises(grpc.RpcError) as cm:
            self.st.put(pb.PutPipelineRequest(pipeline=spec("intruder", ("passthrough", {}))),
                        timeout=T)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAUTHENTICATED, what)
        # The authorised path still works, and the pipelines are the old ones.
        r = self.st.execute(pb.ExecuteRequest(name="p", input=audio(S16, pack_s16(SAMPLES))),
                            timeout=T, metadata=ADMIN_MD)
        self.assertEqual(unpack_s16(r.output.audio.samples), gain_s16(SAMPLES, 6), what)

    def test_every_bad_reload_keeps_auth_on(self):
        good = secure_cfg()
        head = good[:good.index("auth:")]
        cases = [
            ("empty file", "", grpc.StatusCode.INVALID_ARGUMENT, "empty"),
            ("only comments", "# nothing here\n\n", grpc.StatusCode.INVALID_ARGUMENT, "empty"),
            ("truncated before auth:", head, grpc.StatusCode.FAILED_PRECONDITION,
             "turns authentication off"),
            ("auth: section missing", "logging: { level: info }\nlimits: { max_nodes: 9 }\n",
             grpc.StatusCode.FAILED_PRECONDITION, "turns authentication off"),
            ("auth: without enabled", head + "auth:\n  health_open: true\n",
             grpc.StatusCode.FAILED_PRECONDITION, "turns authentication off"),
            ("truncated inside auth:", good[:good.index("tokens:") + 5],
             grpc.StatusCode.INVALID_ARGUMENT, ""),
            ("cut mid-token", good[:-20], grpc.StatusCode.INVALID_ARGUMENT, ""),
            ("garbage", bytes(range(256)) * 4, grpc.StatusCode.INVALID_ARGUMENT, ""),
            ("NUL in a name", head.replace("type: gain", 'type: "gain\\0x"') +
             good[good.index("auth:"):], grpc.StatusCode.INVALID_ARGUMENT, "NUL"),
        ]
        for what, text, code, frag in cases:
            self.put_path(text)
            with self.assertRaises(grpc.RpcError) as cm:
                self.reload_rpc(pb.ReloadConfigRequest(), timeout=T, metadata=ADMIN_MD)
            self.assertEqual(cm.exception.code(), code, f"{what}: {cm.exception.details()}")
            self.assertIn("nothing changed", cm.exception.details(), what)
            self.assertIn(frag, cm.exception.details(), what)
            self.assert_unauthenticated_refused(what)
        for kind in ("fifo", "dir"):
            self.put_path(kind=kind)
            with self.assertRaises(grpc.RpcError) as cm:
                self.reload_rpc(pb.ReloadConfigRequest(), timeout=T, metadata=ADMIN_MD)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT, kind)
            self.assertIn("a FIFO" if kind == "fifo" else "a directory",
                          cm.exception.details())
            self.assertIn(self.srv.config, cm.exception.details())
            self.assert_unauthenticated_refused(kind)
        # SIGHUP takes the same path: count the rejections it logs.
        self.put_path(head)
        before = sum(1 for l in self.srv.logs_json()
                     if l.get("msg") == "config reload rejected: nothing changed")
        self.srv.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: sum(
            1 for l in self.srv.logs_json()
            if l.get("msg") == "config reload rejected: nothing changed") == before + 1, 10))
        self.assert_unauthenticated_refused("SIGHUP, truncated")
        # Saying it explicitly turns it off, with a warning.
        self.put_path(head + "auth:\n  enabled: false\n")
        r = self.reload_rpc(pb.ReloadConfigRequest(), timeout=T, metadata=ADMIN_MD)
        self.assertIn("auth.enabled", r.applied)
        warns = [l for l in self.srv.logs_json()
                 if l.get("msg") == "config reload weakens security, as the file says"]
        self.assertEqual([l["change"] for l in warns],
                         ["turns authentication off (auth.enabled: false)"])
        self.assertEqual(warns[0]["level"], "warn")
        self.st.put(pb.PutPipelineRequest(pipeline=spec("now_open", ("passthrough", {}))),
                    timeout=T)


class RegistryFullReloadTest(unittest.TestCase):
    """Finding 6: a reload that does not fit in the registry changes nothing: no pipeline
    published, none removed, no setting applied; and the answer says so."""

    def test_registry_full_changes_nothing(self):
        srv = Server(gain_cfg(6, "  gone:\n    - type: passthrough\n")).start()
        try:
            st = srv.stub
            futs = [st.put.future(pb.PutPipelineRequest(
                pipeline=spec(f"api{i}", ("passthrough", {}))), timeout=60)
                for i in range(4096 - 3)]
            for f in futs:
                f.result()
            # 4093 API + p + gone = 4095. The new file: p changed, gone removed, three new
            # names: 4095 - 1 + 3 = 4097 > 4096.
            v_p = st.get(pb.GetPipelineRequest(name="p"), timeout=T).version
            new = gain_cfg(-6, "  n1:\n    - type: passthrough\n  n2:\n    - type: crc32c\n"
                           "  n3:\n    - type: crc32c\n",
                           "limits: { max_nodes: 9 }\n").replace("level: info",
                                                                 "level: debug")
            tmp = srv.config + ".tmp"
            with open(tmp, "w") as f:
                f.write(new)
            os.replace(tmp, srv.config)
            reload = srv.channel.unary_unary(
                "/corepipe.v1.Admin/ReloadConfig",
                request_serializer=pb.ReloadConfigRequest.SerializeToString,
                response_deserializer=pb.ReloadConfigResponse.FromString)
            with self.assertRaises(grpc.RpcError) as cm:
                reload(pb.ReloadConfigRequest(), timeout=T)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
            self.assertIn("nothing changed", cm.exception.details())
            self.assertIn("registry full", cm.exception.details())
            # Truly nothing: gone still there, n1 not, p not replaced, limits not applied.
            st.get(pb.GetPipelineRequest(name="gone"), timeout=T)
            for n in ("n1", "n2", "n3"):
                with self.assertRaises(grpc.RpcError) as cm:
                    st.get(pb.GetPipelineRequest(name=n), timeout=T)
                self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
            self.assertEqual(st.get(pb.GetPipelineRequest(name="p"), timeout=T).version, v_p)
            st.execute(pb.ExecuteRequest(
                inline=pb.PipelineSpec(nodes=[pb.NodeSpec(type="passthrough")] * 12),
                input=pb.Payload(data=b"x")), timeout=T)  # max_nodes still 32
            self.assertFalse(any(l.get("level") == "debug" for l in srv.logs_json()))
            # With one API pipeline gone it fits: applied whole.
            st.delete(pb.DeletePipelineRequest(name="api0"), timeout=T)
            r = reload(pb.ReloadConfigRequest(), timeout=T)
            self.assertEqual(sorted(r.added), ["n1", "n2", "n3"])
            self.assertEqual(list(r.replaced), ["p"])
            self.assertEqual(list(r.removed), ["gone"])
            self.assertIn("limits.max_nodes", r.applied)
        finally:
            self.assertEqual(srv.stop(), 0, srv.log())


if __name__ == "__main__":
    unittest.main()
