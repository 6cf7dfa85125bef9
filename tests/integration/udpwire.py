"""The corepipe UDP wire protocol v1 in pure Python, written from the layout tables in
dataplane/wire.h (and docs/wire-protocol.md), independently of the C code, so that tests can
check the C side byte for byte against a second implementation.

    encode_request(pipeline_id, request_id, payload, deadline_us=0, audio=None) -> bytes
    parse_response(datagram) -> Response   (raises WireError when malformed)
    encode_response(...) -> bytes          (what a server sends; used by the self-check)

audio is an Audio(fmt, channels, rate) or a (fmt, channels, rate) tuple; fmt 1 = s16le,
2 = f32le. All integers are little endian.
"""
import struct
from collections import namedtuple

MAGIC = b"CP"
VERSION = 1
F_RESPONSE = 0x01
F_AUDIO = 0x02
HDR_LEN = 22
AUDIO_LEN = 8
S16LE, F32LE = 1, 2
SAMPLE_SIZE = {S16LE: 2, F32LE: 4}

# Request header:  magic 2s, version B, flags B, pipeline_id I, request_id Q, deadline_us I,
#                  reserved H                                            = 22 bytes
REQ_HDR = struct.Struct("<2sBBIQIH")
# Response header: magic 2s, version B, flags B, status B, n_annot B, hint I, request_id Q,
#                  output_len I                                          = 22 bytes
RESP_HDR = struct.Struct("<2sBBBBIQI")
# Audio header:    format B, reserved B, channels H, rate I              = 8 bytes
AUDIO_HDR = struct.Struct("<BBHI")
assert REQ_HDR.size == HDR_LEN and RESP_HDR.size == HDR_LEN and AUDIO_HDR.size == AUDIO_LEN

STATUS = {0: "OK", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND",
          8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION", 11: "OUT_OF_RANGE",
          13: "INTERNAL", 14: "UNAVAILABLE"}

Audio = namedtuple("Audio", "fmt channels rate")


class WireError(ValueError):
    """A datagram that is not a valid v1 response."""


class Response:
    """A parsed response: status, hint, request_id, flags, output (bytes), audio (Audio or
    None) and annotations (dict of bytes key -> bytes value, in order; also as a list)."""

    def __init__(self, flags, status, hint, request_id, output, audio, annotations):
        self.flags = flags
        self.status = status
        self.hint = hint
        self.request_id = request_id
        self.output = output
        self.audio = audio
        self.annotation_list = annotations
        self.annotations = dict(annotations)

    @property
    def status_name(self):
        return STATUS.get(self.status, "UNKNOWN")

    def __repr__(self):
        return (f"Response(status={self.status_name}, request_id={self.request_id:#x}, "
                f"hint={self.hint}, output={len(self.output)} bytes, audio={self.audio}, "
                f"annotations={self.annotations})")


def _audio(audio):
    return audio if audio is None or isinstance(audio, Audio) else Audio(*audio)


def encode_request(pipeline_id, request_id, payload, deadline_us=0, audio=None, flags=0,
                   version=VERSION, reserved=0):
    """The request datagram. flags/version/reserved exist to build invalid requests."""
    audio = _audio(audio)
    if audio is not None:
        flags |= F_AUDIO
    out = REQ_HDR.pack(MAGIC, version, flags, pipeline_id, request_id, deadline_us, reserved)
    if audio is not None:
        out += AUDIO_HDR.pack(audio.fmt, 0, audio.channels, audio.rate)
    return out + bytes(payload)


def encode_response(request_id, status=0, output=b"", annotations=(), hint=0, audio=None,
                    flags=0):
    """A response datagram, as a v1 server writes it."""
    audio = _audio(audio)
    flags |= F_RESPONSE | (F_AUDIO if audio is not None else 0)
    annotations = list(annotations.items()) if isinstance(annotations, dict) else annotations
    out = RESP_HDR.pack(MAGIC, VERSION, flags, status, len(annotations), hint, request_id,
                        len(output))
    if audio is not None:
        out += AUDIO_HDR.pack(audio.fmt, 0, audio.channels, audio.rate)
    out += bytes(output)
    for k, v in annotations:
        k, v = _b(k), _b(v)
        if len(k) > 255 or len(v) > 255:
            raise ValueError("annotation key and value are at most 255 bytes")
        out += bytes([len(k), len(v)]) + k + v
    return out


def _b(s):
    return s.encode() if isinstance(s, str) else bytes(s)


def parse_response(datagram):
    """Parse a response strictly: every byte must be accounted for."""
    d = bytes(datagram)
    if len(d) < HDR_LEN:
        raise WireError("shorter than the 22-byte header")
    magic, version, flags, status, n_annot, hint, request_id, output_len = \
        RESP_HDR.unpack_from(d, 0)
    if magic != MAGIC:
        raise WireError("bad magic")
    if version != VERSION:
        raise WireError("unsupported version")
    if not flags & F_RESPONSE:
        raise WireError("not a response")
    off = HDR_LEN
    audio = None
    if flags & F_AUDIO:
        if len(d) < HDR_LEN + AUDIO_LEN:
            raise WireError("audio header truncated")
        fmt, _reserved, channels, rate = AUDIO_HDR.unpack_from(d, HDR_LEN)
        audio = Audio(fmt, channels, rate)
        off += AUDIO_LEN
    if off + output_len > len(d):
        raise WireError("output runs past the end of the datagram")
    output = d[off:off + output_len]
    pos = off + output_len
    annotations = []
    for _ in range(n_annot):
        if pos + 2 > len(d):
            raise WireError("annotations truncated")
        kl, vl = d[pos], d[pos + 1]
        if pos + 2 + kl + vl > len(d):
            raise WireError("annotations truncated")
        annotations.append((d[pos + 2:pos + 2 + kl], d[pos + 2 + kl:pos + 2 + kl + vl]))
        pos += 2 + kl + vl
    if pos != len(d):
        raise WireError("trailing bytes after the annotations")
    return Response(flags, status, hint, request_id, output, audio, annotations)


def echo_response(request):
    """What the passthrough pipeline answers to a valid request: the response header over the
    request header, output = payload, status OK, no annotations (same length as the request).
    Computed from the layout tables, to check servers against."""
    _magic, _version, flags, _pid, request_id, _dl, _res = REQ_HDR.unpack_from(request, 0)
    audio = None
    off = HDR_LEN
    if flags & F_AUDIO:
        fmt, _reserved, channels, rate = AUDIO_HDR.unpack_from(request, HDR_LEN)
        audio = Audio(fmt, channels, rate)
        off += AUDIO_LEN
    return encode_response(request_id, 0, request[off:], audio=audio)


def _crc32c(data):
    """CRC-32C (Castagnoli), bitwise: for the worked example only."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def _self_check():
    # Request: pipeline 7, id 0x0102030405060708, deadline 1000 us, payload "abc" (wire.h table)
    req = encode_request(7, 0x0102030405060708, b"abc", deadline_us=1000)
    assert req.hex() == ("43500100" "07000000" "0807060504030201" "e8030000" "0000"
                         "616263"), req.hex()
    # Audio: s16le, 2 channels, 16000 Hz, 2 frames
    areq = encode_request(2, 5, bytes(8), audio=(S16LE, 2, 16000))
    assert areq[:4] == b"CP\x01\x02" and areq[22:30] == bytes.fromhex("01000200803e0000")
    assert len(areq) == 38
    # The docs' worked example: crc32c("123456789") = e3069283
    assert "%08x" % _crc32c(b"123456789") == "e3069283"
    resp = encode_response(0x0102030405060708, 0, b"123456789", {"crc32c": "e3069283"})
    assert resp.hex() == ("43500101" "00" "01" "00000000" "0807060504030201" "09000000"
                          "313233343536373839" "0608" "637263333263"
                          "6533303639323833"), resp.hex()
    r = parse_response(resp)
    assert (r.status, r.request_id, r.output) == (0, 0x0102030405060708, b"123456789")
    assert r.annotations == {b"crc32c": b"e3069283"}
    # Every truncation and a trailing byte fail; a request is not a response
    for n in range(len(resp)):
        try:
            parse_response(resp[:n])
        except WireError:
            continue
        raise AssertionError(f"truncation to {n} bytes parsed")
    for bad in (resp + b"\0", req, b"XP" + resp[2:], resp[:2] + b"\x02" + resp[3:]):
        try:
            parse_response(bad)
        except WireError:
            continue
        raise AssertionError("malformed response parsed")
    # Echo of a request has the request's length and parses back to the payload
    for q in (req, areq):
        e = echo_response(q)
        assert len(e) == len(q)
        p = parse_response(e)
        assert p.output == q[30 if p.audio else 22:]
    assert parse_response(echo_response(areq)).audio == Audio(S16LE, 2, 16000)
    # Error with pushback
    e = parse_response(encode_response(9, 8, hint=250))
    assert (e.status_name, e.hint, e.output, e.annotations) == ("RESOURCE_EXHAUSTED", 250,
                                                                b"", {})
    print("udpwire: self-check ok")


if __name__ == "__main__":
    _self_check()
