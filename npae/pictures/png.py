"""Pictures as arrays, and PNG files without an imaging library: the PNG writer and image grids.

Every picture is a NumPy array, indexed ``picture[y, x]`` with ``y`` growing downwards:
grey pictures are ``(h, w)``, colour pictures ``(h, w, 3)``. Grey values are floats in
``[0, 1]`` (0 black, 1 white); colour canvases are ``uint8`` RGB, 255 being white.
Only NumPy and the standard library (``zlib``, ``struct``) are used.  Text and plots are
drawn by :mod:`npae.pictures.font` and :mod:`npae.pictures.plots`.
"""
import math
import struct
import zlib

import numpy as np

from .. import checks
from ..files import atomic

__all__ = ["write_png", "image_grid", "stack_rows"]

# --------------------------------------------------------------------------- PNG files

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunk(kind, data):
    """One chunk: length (4 bytes, big-endian), kind, data, CRC-32 of kind + data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _as_uint8(image):
    """uint8 pixels as they are; floats clipped to [0, 1] and rounded to 0..255."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    if not np.issubdtype(image.dtype, np.floating):
        raise TypeError(f"image must be uint8 or float in [0, 1], got dtype {image.dtype}")
    if np.isnan(image).any():
        raise ValueError("image contains NaN")
    return np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def write_png(path, image):
    """Write ``image`` to ``path`` as an 8-bit PNG, atomically.

    ``image`` is ``(h, w)`` grey (PNG colour type 0) or ``(h, w, 3)`` RGB (colour type 2);
    ``uint8`` is written as it is, floats are clipped to ``[0, 1]`` and rounded to 0..255.
    The file holds the signature, IHDR, one IDAT (the zlib stream of the ``h`` scanlines,
    each a filter byte 0 followed by ``w * channels`` bytes) and IEND. It is written to a
    temporary file in the same folder and moved into place, so ``path`` never holds half
    a picture.
    """
    pixels = _as_uint8(image)
    if pixels.ndim == 2:
        colour_type = 0
    elif pixels.ndim == 3 and pixels.shape[2] == 3:
        colour_type = 2
    else:
        raise ValueError(f"image must have shape (h, w) or (h, w, 3), got {pixels.shape}")
    height, width = pixels.shape[:2]
    if height == 0 or width == 0:
        raise ValueError(f"image must not be empty, got shape {pixels.shape}")
    scanlines = np.zeros((height, 1 + pixels[0].size), dtype=np.uint8)  # column 0: filter byte 0
    scanlines[:, 1:] = pixels.reshape(height, -1)
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    png = (PNG_SIGNATURE + _png_chunk(b"IHDR", header)
           + _png_chunk(b"IDAT", zlib.compress(scanlines.tobytes(), 9)) + _png_chunk(b"IEND", b""))
    atomic.write_bytes(path, png)


# --------------------------------------------------------------------------- grids of images

def image_grid(images, image_shape, *, ncols=None, pad=1, scale=1, normalize=False, background=1.0):
    """Lay ``n`` small grey images out in a grid: one 2-D float picture in ``[0, 1]``.

    ``images`` is ``(n, h * w)`` or ``(n, h, w)`` with ``image_shape = (h, w)``: floats are
    clipped to ``[0, 1]``, uint8 is read as ``0..255``. With ``normalize=True`` each tile is
    instead mapped to ``[0, 1]`` by its own min and max (a constant tile becomes 0.5), which
    suits weight filters of any range. Tiles fill ``ncols`` columns (default
    ``ceil(sqrt(n))``) row by row, each pixel enlarged to a ``scale x scale`` block, with
    ``pad`` pixels of ``background`` between and around them: the result has shape
    ``(rows * h * scale + (rows + 1) * pad, ncols * w * scale + (ncols + 1) * pad)``.
    """
    if np.shape(image_shape) != (2,):
        raise ValueError(f"image_shape must be a pair (h, w), got {image_shape!r}")
    height, width = image_shape
    for name, value, minimum in (("image_shape[0]", height, 1), ("image_shape[1]", width, 1),
                                 ("pad", pad, 0), ("scale", scale, 1)):
        at_least(name, value, minimum)
    images = np.asarray(images)
    if images.dtype != np.uint8 and not np.issubdtype(images.dtype, np.floating):
        raise TypeError(f"images must be float or uint8, got dtype {images.dtype}")
    if images.shape[1:] not in ((height * width,), (height, width)) or len(images) == 0:
        raise ValueError(f"images must have shape (n, {height * width}) or (n, {height}, {width}) "
                         f"with n >= 1, got {images.shape}")
    tiles = images.reshape(-1, height, width) / (255.0 if images.dtype == np.uint8 else 1.0)
    if not np.isfinite(tiles).all():
        raise ValueError("images contain NaN or infinite values")
    ncols = math.ceil(math.sqrt(len(tiles))) if ncols is None else ncols
    at_least("ncols", ncols, 1)
    if normalize:
        low = tiles.min(axis=(1, 2), keepdims=True)
        span = tiles.max(axis=(1, 2), keepdims=True) - low
        tiles = np.where(span > 0, (tiles - low) / np.where(span > 0, span, 1.0), 0.5)
    tiles = np.clip(tiles, 0.0, 1.0).repeat(scale, axis=1).repeat(scale, axis=2)
    nrows = math.ceil(len(tiles) / ncols)
    tile_h, tile_w = height * scale, width * scale
    grid = np.full((nrows * (tile_h + pad) + pad, ncols * (tile_w + pad) + pad), float(background))
    for index, tile in enumerate(tiles):
        row, col = divmod(index, ncols)
        top, left = pad + row * (tile_h + pad), pad + col * (tile_w + pad)
        grid[top:top + tile_h, left:left + tile_w] = tile
    return grid


def stack_rows(*pictures, pad=1):
    """Stack pictures one above the other, e.g. originals above their reconstructions.

    All pictures are 2-D grey or all ``(h, w, 3)`` colour. Narrower ones are widened on the
    right with white (1.0 for floats, 255 for integers), and ``pad`` white rows separate them:
    the result is as wide as the widest and ``sum(h) + (len(pictures) - 1) * pad`` tall.
    """
    pictures = [np.asarray(picture) for picture in pictures]
    if not pictures or len({picture.shape[2:] + (picture.ndim,) for picture in pictures}) != 1 \
            or pictures[0].ndim not in (2, 3):
        raise ValueError("pictures must be one or more arrays, all (h, w) or all (h, w, 3)")
    at_least("pad", pad, 0)
    dtype = np.result_type(*pictures)
    width = max(picture.shape[1] for picture in pictures)
    height = sum(picture.shape[0] for picture in pictures) + pad * (len(pictures) - 1)
    white = 255 if dtype.kind in "iu" else 1.0
    stacked = np.full((height, width) + pictures[0].shape[2:], white, dtype)
    top = 0
    for picture in pictures:
        stacked[top:top + picture.shape[0], :picture.shape[1]] = picture
        top += picture.shape[0] + pad
    return stacked


def at_least(name, value, minimum):
    """An int ≥ ``minimum`` (sizes of pictures and their parts)."""
    value = checks.integer(name, value)
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value
