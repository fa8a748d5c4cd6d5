"""Hostile files for the tests, made in milliseconds: deflate streams that inflate to gigabytes,
inside a zip member or a gzip file, and a child process that reports its peak memory.

A deflate block of zeros flushed with Z_FULL_FLUSH stands on its own (byte-aligned, no
back-references across it), so repeating its bytes gives a valid stream of any length without
compressing that length.  The checksums of such a stream are not computed (that would mean
reading gigabytes): a reader that stops where it should never reaches them.
"""
import struct
import subprocess
import sys
import textwrap
import zlib

import numpy as np

MiB = 2**20


def zeros_stream(n_mib):
    """Raw deflate bytes that inflate to ``n_mib`` MiB of zeros (about 1 KB per MiB)."""
    block = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = block.compress(bytes(MiB)) + block.flush(zlib.Z_FULL_FLUSH)
    end = zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)  # an empty final block
    return piece * n_mib + end


def byte_flips(original, folder, name, trials, seed=0):
    """``trials`` files in ``folder``, each the bytes ``original`` with 1 to 3 of them changed
    at random (seeded), named ``name.format(trial)``: yields their paths."""
    rng = np.random.default_rng(seed)
    for trial in range(trials):
        damaged = bytearray(original)
        for at in rng.integers(0, len(damaged), size=rng.integers(1, 4)):
            damaged[at] ^= int(rng.integers(1, 256))
        path = folder / name.format(trial)
        path.write_bytes(bytes(damaged))
        yield path


def npy_header(shape, descr="<f4"):
    """The ``.npy`` (version 1.0) header of an array of ``shape`` and ``descr``."""
    text = repr({"descr": descr, "fortran_order": False, "shape": tuple(shape)})
    text += " " * ((64 - (10 + len(text) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


def add_deflated_member(zip_path, name, header, n_mib):
    """Append to the zip at ``zip_path`` a deflated member ``name``: ``header`` then ``n_mib`` MiB
    of zeros, its sizes declared honestly (the CRC is left 0: never reached by a careful reader)."""
    with open(zip_path, "rb") as f:
        data = f.read()
    end = data.rindex(b"PK\x05\x06")
    count, size, offset = struct.unpack("<HII", data[end + 10:end + 20])
    entries, body = data[offset:offset + size], data[:offset]
    head = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = head.compress(header) + head.flush(zlib.Z_FULL_FLUSH) + zeros_stream(n_mib)
    raw_name, plain = name.encode(), len(header) + n_mib * MiB
    local = struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, 8, 0, 0, 0, len(stream), plain,
                        len(raw_name), 0) + raw_name
    central = struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, 0, len(stream), plain,
                          len(raw_name), 0, 0, 0, 0, 0, len(body)) + raw_name
    new_offset = len(body) + len(local) + len(stream)
    entries += central
    tail = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, count + 1, count + 1, len(entries),
                       new_offset, 0)
    with open(zip_path, "wb") as f:
        f.write(body + local + stream + entries + tail)


def gzip_file(path, head, n_mib):
    """A gzip file of ``head`` followed by ``n_mib`` MiB of zeros (trailer checksums left 0)."""
    start = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = start.compress(head) + start.flush(zlib.Z_FULL_FLUSH) + zeros_stream(n_mib)
    with open(path, "wb") as f:
        f.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + stream + bytes(8))


PEAK = textwrap.dedent("""
    import sys, time
    {setup}
    started = time.perf_counter()
    try:
        {call}
        outcome = "no error"
    except Exception as exc:  # a ValueError subclass is reported as ValueError
        kind = "ValueError" if isinstance(exc, ValueError) else type(exc).__name__
        outcome = f"{{kind}}: {{exc}}"
    seconds = time.perf_counter() - started
    peak = [int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")][0]
    print(peak * 1024, seconds)
    print(outcome)
""")


def in_child(call, setup="import npae"):
    """Run ``call`` in a fresh Python: ``(peak resident bytes, seconds, outcome line)``."""
    code = PEAK.format(setup=setup, call=call)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    numbers, outcome = result.stdout.strip().split("\n", 1)
    peak, seconds = numbers.split()
    return int(peak), float(seconds), outcome
