"""A strict PNG reader for the tests: decodes what npae writes, asserting every rule it promises."""
import struct
import zlib

import numpy as np

def crc32(data):
    """CRC-32 as the PNG specification defines it (reflected polynomial 0xEDB88320), bit by bit."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def read_png(path):
    """Decode an 8-bit grey or RGB PNG, asserting every structural rule the writer promises.

    Returns ``(header, pixels)``: the IHDR fields as a dict and a uint8 array, ``(h, w)`` for
    grey or ``(h, w, 3)`` for RGB.
    """
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "bad signature"
    chunks, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        kind, body = data[offset + 4:offset + 8], data[offset + 8:offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length:offset + 12 + length])
        assert len(body) == length, f"{kind} chunk is truncated"
        assert crc == crc32(kind + body), f"{kind} chunk has a wrong CRC"
        chunks.append((kind, body))
        offset += 12 + length
    assert offset == len(data), "bytes after the last chunk"
    kinds = [kind for kind, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds, kinds
    assert len(chunks[0][1]) == 13 and chunks[-1][1] == b""
    fields = struct.unpack(">IIBBBBB", chunks[0][1])
    header = dict(zip(["width", "height", "bit_depth", "colour_type", "compression", "filter",
                       "interlace"], fields))
    assert header["bit_depth"] == 8 and header["colour_type"] in (0, 2)
    assert header["compression"] == header["filter"] == header["interlace"] == 0
    channels = 1 if header["colour_type"] == 0 else 3
    width, height = header["width"], header["height"]
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(raw) == height * (1 + width * channels), "wrong number of decoded bytes"
    scanlines = np.frombuffer(raw, dtype=np.uint8).reshape(height, 1 + width * channels)
    assert (scanlines[:, 0] == 0).all(), "every scanline must use filter type 0"
    pixels = scanlines[:, 1:].reshape(height, width, channels)
    return header, pixels[:, :, 0] if channels == 1 else pixels


