#!/usr/bin/env python3
"""Process a file through a corepipe pipeline with the Python client.

    PYTHONPATH=build/python/lib python3 examples/python/process_file.py PIPELINE IN [OUT]

A WAV input (16-bit PCM or 32-bit float) is sent as audio with its format, rate and channels,
and an audio answer is written as a WAV; anything else is sent and written as bytes. The
annotations are printed. Target: $COREPIPE_TARGET (default 127.0.0.1:50051); token:
$COREPIPE_TOKEN.
"""
import sys

import corepipe


def main(argv):
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    pipeline, src = argv[1], argv[2]
    dst = argv[3] if len(argv) == 4 else None
    with open(src, "rb") as f:
        head = f.read(12)
    data = corepipe.Audio.from_wav(src) if head[:4] == b"RIFF" and head[8:12] == b"WAVE" \
        else open(src, "rb").read()
    with corepipe.Client() as c:
        try:
            r = c.execute(pipeline, data)
        except corepipe.CorepipeError as e:
            print(f"process_file: {e}", file=sys.stderr)
            return 1
    for k, v in sorted(r.annotations.items()):
        print(f"{k}: {v}")
    if isinstance(r.output, corepipe.Audio):
        print(f"output: {r.output.format} {r.output.sample_rate} Hz {r.output.channels} ch, "
              f"{r.output.duration_s:.3f} s")
        if dst:
            r.output.to_wav(dst)
    else:
        print(f"output: {len(r.output)} bytes")
        if dst:
            with open(dst, "wb") as f:
                f.write(r.output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
