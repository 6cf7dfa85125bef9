"""Independent reference implementations of node semantics, written from docs/api.md, used to
compute expected outputs in the tests (never copied from server output)."""
import math
import struct


def _crc32c_table():
    poly = 0x82F63B78  # Castagnoli, reflected
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_T = _crc32c_table()


def crc32c(data: bytes) -> str:
    c = 0xFFFFFFFF
    for b in data:
        c = _T[(c ^ b) & 0xFF] ^ (c >> 8)
    return "%08x" % (c ^ 0xFFFFFFFF)


def round_half_even(x: float) -> int:
    return int(round(x))  # Python's round() is ties-to-even


def sat16(v: int) -> int:
    return max(-32768, min(32767, v))


def f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


def gain_s16(samples, db):
    factor = f32(10 ** (db / 20))
    return [sat16(round_half_even(f32(s * factor))) for s in samples]


def gain_f32(samples, db):
    factor = f32(10 ** (db / 20))
    return [f32(s * factor) for s in samples]


def s16_to_f32(samples):
    return [s / 32768.0 for s in samples]


def f32_to_s16(samples):
    out = []
    for x in samples:
        if math.isnan(x):
            out.append(0)
            continue
        v = f32(x * 32768.0)
        out.append(sat16(round_half_even(v)) if abs(v) < 1e9 else (32767 if v > 0 else -32768))
    return out


def pack_s16(v):
    return struct.pack("<%dh" % len(v), *v)


def unpack_s16(b):
    return list(struct.unpack("<%dh" % (len(b) // 2), b))


def pack_f32(v):
    return struct.pack("<%df" % len(v), *v)


def unpack_f32(b):
    return list(struct.unpack("<%df" % (len(b) // 4), b))
