"""A client fleet's view of several corepiped instances: a channel with the tree's service
config (clients/service-config.json: round_robin, health checking, retries) over their ports,
and a load of client threads calling Execute("p") on it that count what they get.

    with FleetLoad(fleet_channel(ports)) as load:
        assert load.more(150), load.errors   # 150 more good answers, within LOAD_WAIT_S
    assert load.errors == []
"""
import os
import threading

import grpc

import corepipe_pb2 as pb
from serverlib import RPC_TIMEOUT_S as T, wait_until

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SERVICE_CONFIG_PATH = os.path.join(ROOT, "clients", "service-config.json")
CLIENTS = 4
LOAD_WAIT_S = 60  # for more(): a hang guard, not a rate


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
