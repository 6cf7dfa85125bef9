#!/usr/bin/python3
"""Fleet numbers (issue 18), a benchmark, not a test: one etcd (Debian's etcd-server) and three
corepiped instances with registry.store: etcd on loopback.

  - Admin write latency: PutPipeline through etcd vs. through memory (one instance);
  - propagation: from the PutPipeline call on instance A to every instance answering
    GetPipeline with the new version (polled back to back), p50/p99 over N puts.

On a 2-CPU machine three servers, etcd and the client share the CPUs: this shows overhead, not
scaling. Run from the source tree after `make`:

    PYTHONPATH=build/gen/python:tests/integration perf/fleet_propagation.py [N]
"""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))

import corepipe_pb2 as pb  # noqa: E402
from serverlib import Server, spec  # noqa: E402
from fleetlib import Etcd  # noqa: E402
from test_registry_etcd import CONFIG, PREFIX  # noqa: E402

T = 10


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    etcd = Etcd().start()
    servers = []
    try:
        cfg = CONFIG.format(port=etcd.client_port, prefix=PREFIX)
        servers = [Server(cfg).start() for _ in range(3)]
        mem = Server("").start()
        servers.append(mem)
        a = servers[0]
        put_etcd, put_mem, prop = [], [], []
        for i in range(n):
            s = spec("bench", ("passthrough", {}), *([("passthrough", {})] * (i % 2)))
            t0 = time.perf_counter()
            info = a.stub.put(pb.PutPipelineRequest(pipeline=s), timeout=T)
            t1 = time.perf_counter()
            put_etcd.append(t1 - t0)
            pending = set(range(3))
            while pending:
                for k in list(pending):
                    got = servers[k].stub.get(pb.GetPipelineRequest(name="bench"), timeout=T)
                    if got.version >= info.version:
                        pending.discard(k)
            prop.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            mem.stub.put(pb.PutPipelineRequest(pipeline=s), timeout=T)
            put_mem.append(time.perf_counter() - t0)
        for name, xs in (("PutPipeline via etcd", put_etcd), ("PutPipeline in memory", put_mem),
                         ("propagation to all 3", prop)):
            print(f"{name:24s} p50 {statistics.median(xs) * 1e3:7.2f} ms   "
                  f"p99 {pct(xs, 99) * 1e3:7.2f} ms   (n={len(xs)})")
    finally:
        for s in servers:
            s.stop()
        etcd.stop()
        etcd.dir.cleanup()


if __name__ == "__main__":
    main()
