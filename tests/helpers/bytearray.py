"""bytearray.py build|expect MIB: MIB MiB appended to a bytearray 1 MiB at a time, then read
back (sha256 over it, and a sum of one 8-byte word per 4 KiB page through a memoryview); expect:
the same figures from the chunks one at a time, in a few MiB. Prints
  python3: MIB MiB, sha256 HEX, page sum HEX
and, on stderr, "python3: appended N MiB" every 64 MiB (how far a killed run got)."""
import hashlib
import random
import sys

CHUNK = 1 << 20
WORDS_PER_PAGE = 4096 // 8
# Chunk i is a window of a fixed pseudo-random 2 MiB at an offset that is not a multiple of a
# page: different in every chunk and page, and only a memcpy to make (the run measures memory,
# not a random number generator).
BASE = random.Random(20261201).randbytes(2 * CHUNK)


def chunk(i):
    at = i * 4104 % CHUNK
    return BASE[at:at + CHUNK]


def page_sum(view):
    return sum(view.cast("Q")[::WORDS_PER_PAGE])


def build(mib):
    data = bytearray()
    for i in range(mib):
        data += chunk(i)  # grows by realloc, an eighth at a time
        if (i + 1) % 64 == 0:
            print(f"python3: appended {i + 1} MiB", file=sys.stderr, flush=True)
    with memoryview(data) as view:
        return hashlib.sha256(data).hexdigest(), page_sum(view)


def expect(mib):
    digest, total = hashlib.sha256(), 0
    for i in range(mib):
        c = chunk(i)
        digest.update(c)
        total += page_sum(memoryview(c))
    return digest.hexdigest(), total


mode, mib = sys.argv[1], int(sys.argv[2])
digest, total = (build if mode == "build" else expect)(mib)
print(f"python3: {mib} MiB, sha256 {digest}, page sum {total % 2**64:016x}")
