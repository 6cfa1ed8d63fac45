#!/usr/bin/env python3
"""Collapsed stacks (inferno-collapse-perf --pid output) for scripts/flamegraphs.sh.

  flame-shares.py --rename "PID=NAME\\n..."   stdin -> stdout: the first frame of each stack
                                              (`thread-name-PID`) becomes the process's NAME
  flame-shares.py --summary                   stdin: a folded file; prints where the CPU went:
                                              by process, by part (the innermost frame that
                                              names a known library) and inclusive shares of
                                              the protocol libraries
"""
import re
import sys

# The innermost frame that matches one of these names the part a sample is counted in (checked
# from the leaf outward, first pattern first).
PARTS = [
    ("kernel", re.compile(r".*_\[k\]$")),
    ("allocation and copies (libc)",
     re.compile(r"^(_int_|__libc_)?(malloc|free|realloc|calloc|cfree)|^__mem|^malloc_|^unlink_chunk|^tcache")),
    ("Curve25519 arithmetic (FROST, Ed25519)", re.compile(r"curve25519_dalek::")),
    ("secp256k1 arithmetic (k256)", re.compile(r"(k256|elliptic_curve|primeorder)::")),
    ("SHA-2", re.compile(r"sha2::")),
    ("XChaCha20-Poly1305", re.compile(r"(chacha20|poly1305)")),
    ("DKLs23 own code", re.compile(r"dkls23")),
    ("FROST own code", re.compile(r"frost_")),
    ("Ed25519 own code", re.compile(r"ed25519_dalek::")),
    ("JSON, base64, hex", re.compile(r"(serde_json|base64|hex)::")),
    ("redb", re.compile(r"redb::")),
    ("async-nats", re.compile(r"async_nats::")),
    ("tokio", re.compile(r"tokio::")),
    ("mpcium (own code)", re.compile(r"mpcium_")),
]
# A sample is counted for each of these whose frames are on its stack.
INCLUSIVE = [
    ("DKLs23 (dkls23 and all it calls)", re.compile(r"dkls23")),
    ("FROST (frost_core and all it calls)", re.compile(r"frost_(core|ed25519|secp256k1)")),
    ("Ed25519 signatures and verifications (ed25519_dalek)", re.compile(r"ed25519_dalek::")),
    ("envelopes (mpcium_node::envelope)", re.compile(r"mpcium_node::envelope")),
    ("redb (the share store)", re.compile(r"redb::")),
    ("JSON (serde_json)", re.compile(r"serde_json::")),
]


def parse(line):
    stack, _, count = line.rstrip("\n").rpartition(" ")
    return stack.split(";"), int(count)


def rename(mapping):
    names = dict(pair.split("=", 1) for pair in mapping.split() if "=" in pair)
    for line in sys.stdin:
        frames, count = parse(line)
        pid = frames[0].rsplit("-", 1)[-1]
        frames[0] = names.get(pid, frames[0])
        print(f"{';'.join(frames)} {count}")


def own(frame):
    """The frame's own path: `<&a::B as c::D>::f` is a function of crate `a`; generic arguments
    (`poll<a::B>`) do not count, they are not where the time is spent."""
    return frame.lstrip("<&*").replace("mut ", "", 1)


def part_of(frames):
    for frame in reversed(frames[1:]):
        for name, pattern in PARTS:
            if pattern.match(own(frame)):
                return name
    return "other"


def summary():
    total = 0
    by_process, by_part, inclusive = {}, {}, {}
    for line in sys.stdin:
        frames, count = parse(line)
        total += count
        by_process[frames[0]] = by_process.get(frames[0], 0) + count
        part = "nats-server" if frames[0] == "nats-server" else part_of(frames)
        by_part[part] = by_part.get(part, 0) + count
        for name, pattern in INCLUSIVE:
            if any(pattern.match(own(f)) for f in frames[1:]):
                inclusive[name] = inclusive.get(name, 0) + count
    if not total:
        print("no samples")
        return
    pct = lambda n: f"{100 * n / total:.1f} %"
    print(f"samples: {total}")
    print("| process | share |")
    print("|---|---|")
    for name, n in sorted(by_process.items(), key=lambda kv: -kv[1]):
        print(f"| {name} | {pct(n)} |")
    print("| part (innermost known frame) | share |")
    print("|---|---|")
    for name, n in sorted(by_part.items(), key=lambda kv: -kv[1]):
        print(f"| {name} | {pct(n)} |")
    print("| inclusive | share |")
    print("|---|---|")
    for name, _ in INCLUSIVE:
        print(f"| {name} | {pct(inclusive.get(name, 0))} |")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--rename":
        rename(sys.argv[2])
    elif sys.argv[1:] == ["--summary"]:
        summary()
    else:
        sys.exit(__doc__)
