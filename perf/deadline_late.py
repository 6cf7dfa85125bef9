#!/usr/bin/python3
"""perf/deadline_late.py: how late a running request is stopped by its deadline (issue 14).

Starts a corepiped of its own (limits.default_timeout_ms: 150, the bulk lane's default quantum)
and sends N Execute calls without a client deadline, each 3 MiB of noisy audio through
zstd_compress level 19 (about 0.5-1 s of work), one at a time; each must answer
DEADLINE_EXCEEDED ("deadline passed while running"). Prints the distribution of (answer time -
150 ms). usage: PYTHONPATH=build/gen/python perf/deadline_late.py [BUILD_DIR] [N]"""
import math
import os
import random
import re
import struct
import subprocess
import sys
import tempfile
import time

import grpc

import corepipe_pb2 as pb

B = sys.argv[1] if len(sys.argv) > 1 else "build/release"
N = int(sys.argv[2]) if len(sys.argv) > 2 else 20
CFG = """logging: { level: warn }
server: { max_message_bytes: 8388608 }
limits: { default_timeout_ms: 150 }
pipelines:
  z19:
    - type: zstd_compress
      params: { level: "19" }
"""
with tempfile.TemporaryDirectory() as d:
    with open(os.path.join(d, "c.yaml"), "w") as f:
        f.write(CFG)
    log = open(os.path.join(d, "log"), "w+")
    srv = subprocess.Popen([os.path.join(B, "corepiped"), "--config", os.path.join(d, "c.yaml"),
                            "--grpc-listen", "127.0.0.1:0", "--log-level", "info"], stderr=log)
    try:
        port = None
        for _ in range(300):
            log.seek(0)
            m = re.search(r'"grpc_port":(\d+)', log.read())
            if m:
                port = m.group(1)
                break
            time.sleep(0.05)
        ch = grpc.insecure_channel("127.0.0.1:" + port,
                                   options=[("grpc.max_send_message_length", 8 << 20)])
        ex = ch.unary_unary("/corepipe.v1.Pipeline/Execute",
                            request_serializer=pb.ExecuteRequest.SerializeToString,
                            response_deserializer=pb.ExecuteResponse.FromString)
        r = random.Random(14)
        n = 3 * 1024 * 1024 // 2
        pcm = struct.pack(f"<{n}h", *(int(8000 * math.sin(i * 0.0575) + r.gauss(0, 900))
                                      for i in range(n)))
        req = pb.ExecuteRequest(name="z19", input=pb.Payload(audio=pb.AudioBuffer(
            format=pb.SAMPLE_FORMAT_S16LE, sample_rate=48000, channels=1, samples=pcm)))
        late, codes = [], {}
        for _ in range(N):
            t0 = time.monotonic()
            try:
                ex(req)
                code, det = "OK", ""
            except grpc.RpcError as e:
                code, det = e.code().name, e.details()
            late.append((time.monotonic() - t0) * 1000 - 150)
            key = code + (" while running" if "while running" in det else "")
            codes[key] = codes.get(key, 0) + 1
        late.sort()
        q = lambda p: late[min(len(late) - 1, int(p * len(late)))]
        print(f"deadline 150 ms on 3 MiB zstd-19 calls, {N} calls: {codes}; answer - deadline: "
              f"min {late[0]:.1f} p50 {q(0.5):.1f} p90 {q(0.9):.1f} max {late[-1]:.1f} ms; "
              f"load {open('/proc/loadavg').read().split()[0]}")
    finally:
        srv.terminate()
        srv.wait(30)
