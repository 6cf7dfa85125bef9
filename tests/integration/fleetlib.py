"""A fleet of corepiped instances as its tests see it: a channel with the tree's service
config (clients/service-config.json: round_robin, health checking, retries) over their ports,
and a load of client threads calling Execute("p") on it that count what they get; the etcd
member a fleet shares its registry in; and what every instance shows of a pipeline.

    with FleetLoad(fleet_channel(ports)) as load:
        assert load.more(150), load.errors   # 150 more good answers, within LOAD_WAIT_S
    assert load.errors == []

    etcd = start_etcd(self)                  # stopped and removed at the test's cleanup
    info = servers[0].stub.put(...)
    self.assertEqual(converged(servers, "p", info.version), [info.version] * 3)
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import urllib.request

import grpc

import corepipe_pb2 as pb
from serverlib import RPC_TIMEOUT_S as T, wait_until

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SERVICE_CONFIG_PATH = os.path.join(ROOT, "clients", "service-config.json")
CLIENTS = 4
LOAD_WAIT_S = 60  # for more(): a hang guard, not a rate
CONVERGE_S = 10   # for converged(): a hang guard; a Put reaches every watch in milliseconds
ETCD = shutil.which("etcd")  # Debian's etcd-server (scripts/deps.sh test); None: tests skip


def fleet_channel(ports):
    """An insecure channel over 127.0.0.1:port for every port, with the service config."""
    with open(SERVICE_CONFIG_PATH) as f:
        sc = f.read()
    target = "ipv4:" + ",".join(f"127.0.0.1:{p}" for p in ports)
    return grpc.insecure_channel(target, options=[("grpc.service_config", sc),
                                                  ("grpc.enable_retries", 1)])


class FleetLoad:
    """CLIENTS threads calling Execute("p") in a loop on @channel until the block ends, each
    with its own payloads; an answer that is not the payload, and every RpcError, goes to
    errors. The block closes the channel."""

    def __init__(self, channel, wait_for_ready=None):
        self.channel = channel
        self.wait_for_ready = wait_for_ready
        self.ex = channel.unary_unary("/corepipe.v1.Pipeline/Execute",
                                      request_serializer=pb.ExecuteRequest.SerializeToString,
                                      response_deserializer=pb.ExecuteResponse.FromString)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.errors = []
        self.threads = [threading.Thread(target=self._client, args=(i,), daemon=True)
                        for i in range(CLIENTS)]

    def _client(self, i):
        n = 0
        while not self.stop.is_set():
            data = b"%d-%d" % (i, n)
            try:
                r = self.ex(pb.ExecuteRequest(name="p", input=pb.Payload(data=data)),
                            timeout=T, wait_for_ready=self.wait_for_ready)
                with self.lock:
                    if r.output.data == data:
                        self.ok += 1
                    else:
                        self.errors.append(("wrong answer", data))
            except grpc.RpcError as e:
                with self.lock:
                    self.errors.append((e.code(), e.details()))
            n += 1

    def more(self, k):
        """Wait for @k more good answers than now (False after LOAD_WAIT_S)."""
        start = self.ok
        return wait_until(lambda: self.ok >= start + k, timeout_s=LOAD_WAIT_S)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(30)
        self.channel.close()
        return False


# ---- The registry a fleet shares: etcd ----------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def etcd_healthy(client_port):
    """The etcd member on loopback @client_port answers /health true: it is up and its
    cluster has a leader."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{client_port}/health", timeout=2) as r:
            return json.loads(r.read()).get("health") == "true"
    except (OSError, ValueError):
        return False


class Etcd:
    """One etcd member on free loopback ports, data in a temporary directory (kept over a
    stop and start). A subclass serves its clients otherwise: scheme and client_args()."""

    scheme = "http"

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory(prefix="corepipe-etcd-")
        self.client_port, self.peer_port = free_port(), free_port()
        self.proc = None

    def client_args(self):
        """etcd's options for its client side beyond the URLs (TLS: certificates)."""
        return []

    def start(self):
        c = f"{self.scheme}://127.0.0.1:{self.client_port}"
        p = f"http://127.0.0.1:{self.peer_port}"
        self.log = open(os.path.join(self.dir.name, "etcd.log"), "ab")
        self.proc = subprocess.Popen(
            [ETCD, "--name", "t", "--data-dir", os.path.join(self.dir.name, "data"),
             "--listen-client-urls", c, "--advertise-client-urls", c,
             "--listen-peer-urls", p, "--initial-advertise-peer-urls", p,
             "--initial-cluster", f"t={p}", *self.client_args()],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        if not wait_until(self.ready, timeout_s=30):
            self.stop()
            raise RuntimeError("etcd did not start")
        return self

    def ready(self):
        return etcd_healthy(self.client_port)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc is not None:
            self.log.close()
        self.proc = None


def start_etcd(test, etcd=None):
    """Start @etcd (a new Etcd when None) for the TestCase @test: stopped and its directory
    removed at the test's cleanup, a failed start included."""
    etcd = etcd or Etcd()
    test.addCleanup(etcd.dir.cleanup)
    test.addCleanup(etcd.stop)
    return etcd.start()


# ---- What every instance shows ---------------------------------------------------------------


def everywhere(servers, name, field="version"):
    """GetPipeline(@name).@field on each of @servers, or the status code it answered."""
    out = []
    for s in servers:
        try:
            out.append(getattr(s.stub.get(pb.GetPipelineRequest(name=name), timeout=T), field))
        except grpc.RpcError as e:
            out.append(e.code())
    return out


def converged(servers, name, want, field="version", timeout_s=CONVERGE_S):
    """Wait until every one of @servers shows @want as @name's @field (a value, or a status
    code such as NOT_FOUND): what they showed last, [@want] * len(@servers) once converged."""
    seen = [None]

    def agree():
        seen[0] = everywhere(servers, name, field)
        return seen[0] == [want] * len(servers)

    wait_until(agree, timeout_s=timeout_s)
    return seen[0]


def put_when_available(server, pipeline, timeout_s=30):
    """Put @pipeline through @server, again while it answers UNAVAILABLE (its store, etcd,
    coming back): the PipelineInfo, or None after @timeout_s; and the details of every
    UNAVAILABLE before it. Any other status raises."""
    info = [None]
    refusals = []

    def put():
        try:
            info[0] = server.stub.put(pb.PutPipelineRequest(pipeline=pipeline), timeout=T)
            return True
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            refusals.append(e.details())
            return False

    wait_until(put, timeout_s=timeout_s)
    return info[0], refusals
