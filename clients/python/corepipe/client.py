"""The typed client (see the package README)."""
from __future__ import annotations

import json
import os
import random
import struct
import time
import wave
from dataclasses import dataclass, field
from typing import Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool

try:  # protobuf >= 4.21.8
    from google.protobuf.message_factory import GetMessageClass as _message_class
except ImportError:  # pragma: no cover - older protobuf
    from google.protobuf import message_factory as _mf

    def _message_class(desc):
        return _mf.MessageFactory(desc.file.pool).GetPrototype(desc)

from .v1 import corepipe_pb2 as pb
from .v1 import corepipe_pb2_grpc as pbg

__version__ = "0.3.0"

S16LE = "s16le"
F32LE = "f32le"
_FORMATS = {S16LE: pb.SAMPLE_FORMAT_S16LE, F32LE: pb.SAMPLE_FORMAT_F32LE}
_FORMAT_NAMES = {v: k for k, v in _FORMATS.items()}
_SAMPLE_BYTES = {S16LE: 2, F32LE: 4}
# Statuses that mean "not run": safe to send again.
_RETRYABLE = (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE)


# Client-side load balancing over a fleet of corepiped instances: round_robin over every
# address the target resolves to, instances that answer grpc.health.v1 NOT_SERVING (draining)
# or do not answer taken out, and calls refused before they ran (UNAVAILABLE: an instance
# killed or draining; RESOURCE_EXHAUSTED: shedding, with grpc-retry-pushback-ms) retried on
# another instance by gRPC itself. The same document as clients/service-config.json (a test
# checks that they are equal). Admin writes are left out: a retried DeletePipeline could
# answer NOT_FOUND for a delete that happened.
SERVICE_CONFIG = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "healthCheckConfig": {"serviceName": ""},
    "methodConfig": [
        {
            "name": [
                {"service": "corepipe.v1.Pipeline"},
                {"service": "corepipe.v1.Admin", "method": "GetPipeline"},
                {"service": "corepipe.v1.Admin", "method": "ListPipelines"},
                {"service": "corepipe.v1.Admin", "method": "ListNodeTypes"},
                {"service": "corepipe.v1.Admin", "method": "GetStats"},
            ],
            "retryPolicy": {
                "maxAttempts": 5,
                "initialBackoff": "0.05s",
                "maxBackoff": "1s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE", "RESOURCE_EXHAUSTED"],
            },
        }
    ],
}


def fleet_target(addresses: Sequence[str]) -> str:
    """One target for several "a.b.c.d:port" instances (gRPC's ipv4: resolver). For a DNS name
    with one A record per instance (a Kubernetes headless Service) use "dns:///name:port"."""
    return "ipv4:" + ",".join(addresses)


def fleet_options() -> List[Tuple[str, object]]:
    """Channel options for a fleet: SERVICE_CONFIG, retries on."""
    return [("grpc.service_config", json.dumps(SERVICE_CONFIG)), ("grpc.enable_retries", 1)]


class CorepipeError(Exception):
    """A call ended with a non-OK status.

    code: grpc.StatusCode; details: the server's message; pushback_ms: the server's
    grpc-retry-pushback-ms (how long to wait before retrying), or None.
    """

    def __init__(self, code: grpc.StatusCode, details: str, pushback_ms: Optional[int] = None):
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details
        self.pushback_ms = pushback_ms


@dataclass
class Audio:
    """Interleaved PCM: s16le or f32le samples, a rate, channels."""

    samples: bytes
    sample_rate: int
    channels: int = 1
    format: str = S16LE

    @property
    def frame_bytes(self) -> int:
        return self.channels * _SAMPLE_BYTES[self.format]

    @property
    def frames_count(self) -> int:
        return len(self.samples) // self.frame_bytes

    @property
    def duration_s(self) -> float:
        return self.frames_count / self.sample_rate

    def frames(self, ms: float) -> Iterator["Audio"]:
        """Cut into pieces of `ms` milliseconds (the last may be shorter)."""
        step = max(1, round(self.sample_rate * ms / 1000)) * self.frame_bytes
        for off in range(0, len(self.samples), step):
            yield Audio(self.samples[off:off + step], self.sample_rate, self.channels,
                        self.format)

    @classmethod
    def from_wav(cls, path: Union[str, os.PathLike]) -> "Audio":
        """A 16-bit PCM or 32-bit float WAV file."""
        with open(path, "rb") as f:
            data = f.read()
        if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
            raise ValueError(f"{path}: not a WAV file")
        off, fmt, rate, ch = 12, None, 0, 0
        while off + 8 <= len(data):
            cid, n = data[off:off + 4], struct.unpack_from("<I", data, off + 4)[0]
            body = data[off + 8:off + 8 + n]
            if cid == b"fmt ":
                tag, ch, rate = struct.unpack_from("<HHI", body)
                bits = struct.unpack_from("<H", body, 14)[0]
                if tag == 0xFFFE and len(body) >= 26:
                    tag = struct.unpack_from("<H", body, 24)[0]
                fmt = {(1, 16): S16LE, (3, 32): F32LE}.get((tag, bits))
                if fmt is None:
                    raise ValueError(f"{path}: only 16-bit PCM and 32-bit float WAV")
            elif cid == b"data" and fmt is not None:
                a = cls(body, rate, ch, fmt)
                return cls(body[:a.frames_count * a.frame_bytes], rate, ch, fmt)
            off += 8 + n + (n & 1)
        raise ValueError(f"{path}: no fmt/data chunk")

    def to_wav(self, path: Union[str, os.PathLike]) -> None:
        if self.format == S16LE:
            with wave.open(str(path), "wb") as w:
                w.setnchannels(self.channels)
                w.setsampwidth(2)
                w.setframerate(self.sample_rate)
                w.writeframes(self.samples)
            return
        n = len(self.samples)
        hdr = struct.pack("<4sI4s4sIHHIIHHH4sII4sI", b"RIFF", 50 + n, b"WAVE", b"fmt ", 18, 3,
                          self.channels, self.sample_rate, self.sample_rate * self.frame_bytes,
                          self.frame_bytes, 32, 0, b"fact", 4, self.frames_count, b"data", n)
        with open(path, "wb") as f:
            f.write(hdr + self.samples)


Payload = Union[bytes, bytearray, memoryview, Audio]


@dataclass
class Node:
    type: str
    params: Dict[str, str] = field(default_factory=dict)


NodeLike = Union[str, Node, Tuple[str, Mapping[str, object]]]
PipelineLike = Union[str, Sequence[NodeLike]]


@dataclass
class Result:
    output: Union[bytes, Audio]
    annotations: Dict[str, str]
    dataplane_ns: int = 0


@dataclass
class StreamResult:
    seq: int
    output: Union[bytes, Audio]
    annotations: Dict[str, str]
    final: bool  # the flush after the last frame


@dataclass
class PipelineInfo:
    name: str
    nodes: List[Node]
    id: int
    version: int


def _node(n: NodeLike) -> pb.NodeSpec:
    if isinstance(n, str):
        return pb.NodeSpec(type=n)
    if isinstance(n, Node):
        return pb.NodeSpec(type=n.type, params={k: str(v) for k, v in n.params.items()})
    t, params = n
    return pb.NodeSpec(type=t, params={k: str(v) for k, v in params.items()})


def _spec(name: str, nodes: Sequence[NodeLike]) -> pb.PipelineSpec:
    return pb.PipelineSpec(name=name, nodes=[_node(n) for n in nodes])


def _payload(data: Payload) -> pb.Payload:
    if isinstance(data, Audio):
        return pb.Payload(audio=pb.AudioBuffer(format=_FORMATS[data.format],
                                               sample_rate=data.sample_rate,
                                               channels=data.channels, samples=data.samples))
    return pb.Payload(data=bytes(data))


def _output(p: pb.Payload) -> Union[bytes, Audio]:
    if p.WhichOneof("kind") == "audio":
        a = p.audio
        return Audio(a.samples, a.sample_rate, a.channels, _FORMAT_NAMES.get(a.format, S16LE))
    return p.data


def _info(i: pb.PipelineInfo) -> PipelineInfo:
    return PipelineInfo(i.spec.name, [Node(n.type, dict(n.params)) for n in i.spec.nodes], i.id,
                        i.version)


def _pushback(err: grpc.RpcError) -> Optional[int]:
    for k, v in (err.trailing_metadata() or ()):
        if k == "grpc-retry-pushback-ms":
            try:
                return int(v)
            except ValueError:
                return None
    return None


def _error(err: grpc.RpcError) -> CorepipeError:
    return CorepipeError(err.code(), err.details() or "", _pushback(err))


def _read(path: Optional[str]) -> Optional[bytes]:
    if path is None:
        return None
    with open(path, "rb") as f:
        return f.read()


class Client:
    """A connection to corepiped.

    target: "host:port" (or any gRPC target; default $COREPIPE_TARGET, else 127.0.0.1:50051);
    token: bearer token (auth.tokens; default $COREPIPE_TOKEN);
    cacert/cert/key: PEM files for TLS and mTLS (root_certificates etc. as bytes also work);
    server_name: name to verify in the server certificate; timeout: default deadline per
    call in seconds (streams: none unless given); retries: extra attempts for calls refused for
    load or not delivered (honouring grpc-retry-pushback-ms); fleet: balance over every
    instance the target names (round_robin, health-checked, retried by gRPC: SERVICE_CONFIG,
    fleet_target()).
    """

    def __init__(self, target: Optional[str] = None, *, token: Optional[str] = None,
                 cacert: Optional[str] = None, cert: Optional[str] = None,
                 key: Optional[str] = None, root_certificates: Optional[bytes] = None,
                 certificate_chain: Optional[bytes] = None, private_key: Optional[bytes] = None,
                 server_name: Optional[str] = None, timeout: float = 10.0, retries: int = 3,
                 fleet: bool = False, options: Sequence[Tuple[str, object]] = ()):
        target = target or os.environ.get("COREPIPE_TARGET") or "127.0.0.1:50051"
        if token is None:
            token = os.environ.get("COREPIPE_TOKEN") or None
        opts = [("grpc.max_receive_message_length", -1), *(fleet_options() if fleet else ()),
                *options]
        root = root_certificates or _read(cacert)
        chain = certificate_chain or _read(cert)
        pkey = private_key or _read(key)
        if root or chain:
            if server_name:
                opts.append(("grpc.ssl_target_name_override", server_name))
            creds = grpc.ssl_channel_credentials(root, pkey, chain)
            self._channel = grpc.secure_channel(target, creds, options=opts)
        else:
            self._channel = grpc.insecure_channel(target, options=opts)
        self._md = (("authorization", f"Bearer {token}"),) if token else ()
        self.timeout = timeout
        self.retries = retries
        self.pipeline = pbg.PipelineStub(self._channel)
        self.admin = pbg.AdminStub(self._channel)
        self._health = None

    # ---- plumbing ------------------------------------------------------------------------------

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, fn, req, timeout: Optional[float]):
        """A unary call with retries of refusals (RESOURCE_EXHAUSTED, UNAVAILABLE)."""
        attempt = 0
        while True:
            try:
                return fn(req, timeout=timeout or self.timeout, metadata=self._md)
            except grpc.RpcError as e:
                if e.code() not in _RETRYABLE or attempt >= self.retries:
                    raise _error(e) from None
                pb_ms = _pushback(e)
                if pb_ms is not None and pb_ms < 0:
                    raise _error(e) from None  # the server says: do not retry
                wait = pb_ms / 1000 if pb_ms is not None else \
                    min(1.0, 0.05 * 2 ** attempt) * random.uniform(0.5, 1.0)
                time.sleep(wait)
                attempt += 1

    # ---- Pipeline ------------------------------------------------------------------------------

    def execute(self, pipeline: PipelineLike, data: Payload, *,
                timeout: Optional[float] = None) -> Result:
        """Run `data` through a registered pipeline (by name) or an inline one (a node list)."""
        if isinstance(pipeline, str):
            req = pb.ExecuteRequest(name=pipeline, input=_payload(data))
        else:
            req = pb.ExecuteRequest(inline=_spec("", pipeline), input=_payload(data))
        r = self._call(self.pipeline.Execute, req, timeout)
        return Result(_output(r.output), dict(r.annotations), r.dataplane_ns)

    def stream(self, pipeline: PipelineLike, frames: Iterable[Payload], *, realtime: bool = False,
               frame_ms: Optional[float] = None,
               timeout: Optional[float] = None) -> Iterator[StreamResult]:
        """ExecuteStream over `frames`, yielding one result per frame and then the flush.

        realtime: send each frame when it is due, as a live source would (an Audio frame
        lasts its own duration; bytes frames last `frame_ms`)."""

        sent = [0, False]  # frames sent, all sent

        def requests():
            if isinstance(pipeline, str):
                yield pb.StreamRequest(open=pb.StreamOpen(name=pipeline))
            else:
                yield pb.StreamRequest(open=pb.StreamOpen(inline=_spec("", pipeline)))
            due = time.monotonic()
            for f in frames:
                if realtime:
                    delay = due - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    if isinstance(f, Audio):
                        due += f.duration_s
                    elif frame_ms is not None:
                        due += frame_ms / 1000
                    else:
                        raise ValueError("realtime bytes frames need frame_ms")
                yield pb.StreamRequest(frame=_payload(f))
                sent[0] += 1
            sent[1] = True

        call = self.pipeline.ExecuteStream(requests(), timeout=timeout, metadata=self._md)
        try:
            for r in call:
                # The flush answers after the half-close, with seq = the number of frames.
                final = sent[1] and r.seq == sent[0]
                yield StreamResult(r.seq, _output(r.output), dict(r.annotations), final)
        except grpc.RpcError as e:
            raise _error(e) from None
        finally:
            call.cancel()  # no-op once the call ended; ends it if the caller stopped early

    # ---- Admin ---------------------------------------------------------------------------------

    def put_pipeline(self, name: str, nodes: Sequence[NodeLike], *,
                     timeout: Optional[float] = None) -> PipelineInfo:
        r = self._call(self.admin.PutPipeline, pb.PutPipelineRequest(pipeline=_spec(name, nodes)),
                       timeout)
        return _info(r)

    def get_pipeline(self, name: str, *, timeout: Optional[float] = None) -> PipelineInfo:
        return _info(self._call(self.admin.GetPipeline, pb.GetPipelineRequest(name=name), timeout))

    def list_pipelines(self, *, timeout: Optional[float] = None) -> List[PipelineInfo]:
        r = self._call(self.admin.ListPipelines, pb.ListPipelinesRequest(), timeout)
        return [_info(i) for i in r.pipelines]

    def delete_pipeline(self, name: str, *, timeout: Optional[float] = None) -> None:
        self._call(self.admin.DeletePipeline, pb.DeletePipelineRequest(name=name), timeout)

    def list_node_types(self, *, timeout: Optional[float] = None) -> List[pb.NodeType]:
        return list(self._call(self.admin.ListNodeTypes, pb.ListNodeTypesRequest(),
                               timeout).types)

    def stats(self, *, timeout: Optional[float] = None) -> pb.Stats:
        return self._call(self.admin.GetStats, pb.GetStatsRequest(), timeout)

    def reload_config(self, *, timeout: Optional[float] = None) -> pb.ReloadConfigResponse:
        return self._call(self.admin.ReloadConfig, pb.ReloadConfigRequest(), timeout)

    def health(self, service: str = "", *, timeout: Optional[float] = None) -> str:
        """grpc.health.v1 Check: "SERVING", "NOT_SERVING", ... (NOT_FOUND raises)."""
        if self._health is None:
            self._health = _health_stub(self._channel)
        req_cls, resp_cls, call = self._health
        r = self._call(call, req_cls(service=service), timeout)
        return resp_cls.ServingStatus.Name(r.status)


def _health_stub(channel):
    """Health messages from the package's descriptor set, in a private pool."""
    fds = descriptor_pb2.FileDescriptorSet()
    with open(os.path.join(os.path.dirname(__file__), "health.desc"), "rb") as f:
        fds.ParseFromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    req = _message_class(pool.FindMessageTypeByName("grpc.health.v1.HealthCheckRequest"))
    resp = _message_class(pool.FindMessageTypeByName("grpc.health.v1.HealthCheckResponse"))
    call = channel.unary_unary("/grpc.health.v1.Health/Check",
                               request_serializer=req.SerializeToString,
                               response_deserializer=resp.FromString)
    return req, resp, call
