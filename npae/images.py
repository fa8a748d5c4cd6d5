"""Pictures without a plotting library: PNG files, image grids, a bitmap font, scatter and line plots.

Every picture is a NumPy array, indexed ``picture[y, x]`` with ``y`` growing downwards:
grey pictures are ``(h, w)``, colour pictures ``(h, w, 3)``. Grey values are floats in
``[0, 1]`` (0 black, 1 white); plots are drawn on ``uint8`` RGB canvases, 255 being white.
Only NumPy and the standard library (``zlib``, ``struct``) are used, so a bare install can
still draw its digits, filters, latent spaces and loss curves.
"""
import math
import os
import struct
import tempfile
import zlib

import numpy as np

__all__ = ["write_png", "image_grid", "stack_rows", "text_size", "draw_text",
           "scatter_plot", "line_plot", "PALETTE"]

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
    _write_atomically(path, png)


def _write_atomically(path, data):
    """Write ``data`` to a temporary file beside ``path``, then rename it onto ``path``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


# --------------------------------------------------------------------------- grids of images

def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")


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
        _check_int(name, value, minimum)
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
    _check_int("ncols", ncols, 1)
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
    _check_int("pad", pad, 0)
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


# --------------------------------------------------------------------------- bitmap font

# Each glyph is 5 pixels wide and up to 9 rows tall (7 above the baseline, 2 for the
# descenders of g j p q y), written as one hex byte per row, top row first, bit 4 the
# leftmost pixel; missing rows at the bottom are blank. Unknown characters print as "?".
_FONT = {
    "0": "0E11131519110E", "1": "040C040404040E", "2": "0E11010204081F", "3": "1F02040201110E",
    "4": "02060A121F0202", "5": "1F101E0101110E", "6": "0608101E11110E", "7": "1F010204080808",
    "8": "0E11110E11110E", "9": "0E11110F01020C", "A": "0E11111F111111", "B": "1E11111E11111E",
    "C": "0E11101010110E", "D": "1C12111111121C", "E": "1F10101E10101F", "F": "1F10101E101010",
    "G": "0E11101711110F", "H": "1111111F111111", "I": "0E04040404040E", "J": "0702020202120C",
    "K": "11121418141211", "L": "1010101010101F", "M": "111B1515111111", "N": "11111915131111",
    "O": "0E11111111110E", "P": "1E11111E101010", "Q": "0E11111115120D", "R": "1E11111E141211",
    "S": "0F10100E01011E", "T": "1F040404040404", "U": "1111111111110E", "V": "11111111110A04",
    "W": "1111111515150A", "X": "11110A040A1111", "Y": "11110A04040404", "Z": "1F01020408101F",
    "a": "00000E010F110F", "b": "10101E1111111E", "c": "00000E1010110E", "d": "01010F1111110F",
    "e": "00000E111F100E", "f": "0609081C080808", "g": "00000F1111110F010E", "h": "10101619111111",
    "i": "04000C0404040E", "j": "02000602020202120C", "k": "10101214181412", "l": "0C04040404040E",
    "m": "00001A15151515", "n": "00001619111111", "o": "00000E1111110E", "p": "00001E1111111E1010",
    "q": "00000F1111110F0101", "r": "00001619101010", "s": "00000F100E011E", "t": "08081C08080906",
    "u": "0000111111130D", "v": "00001111110A04", "w": "0000111115150A", "x": "0000110A040A11",
    "y": "0000111111110F010E", "z": "00001F0204081F", " ": "", ".": "00000000000C0C",
    ",": "00000000000C0C0408", "-": "0000001F", "+": "0004041F0404", "=": "00001F001F",
    ":": "000C0C000C0C", "(": "02040808080402", ")": "08040202020408", "[": "0E08080808080E",
    "]": "0E02020202020E", "/": "000102040810", "_": "000000000000001F", "%": "18190204081303",
    "'": "040408", "!": "04040404040004", "?": "0E110102040004", "*": "0004150E1504",
    "<": "02040810080402", ">": "08040201020408", "#": "0A0A1F0A1F0A0A",
}
GLYPH_WIDTH, GLYPH_HEIGHT = 5, 9


def _unpack(code):
    """Hex rows -> a ``(GLYPH_HEIGHT, GLYPH_WIDTH)`` boolean bitmap."""
    rows = np.frombuffer(bytes.fromhex(code.ljust(2 * GLYPH_HEIGHT, "0")), dtype=np.uint8)
    return np.unpackbits(rows[:, None], axis=1)[:, 8 - GLYPH_WIDTH:].astype(bool)


_GLYPHS = {char: _unpack(code) for char, code in _FONT.items()}


def text_size(text, scale=1):
    """``(width, height)`` in pixels of ``text`` drawn by :func:`draw_text` (6 px per character)."""
    return max((GLYPH_WIDTH + 1) * len(text) - 1, 0) * scale, GLYPH_HEIGHT * scale


def draw_text(canvas, x, y, text, color, *, scale=1):
    """Draw ``text`` on ``canvas`` in place, its top-left corner at pixel ``(x, y)``.

    ``canvas`` is ``(H, W, 3)`` with ``color`` an RGB triple, or ``(H, W)`` with a scalar
    ``color``. Characters are 5 x 9 glyphs enlarged by the integer ``scale``, one blank
    column apart; capitals stand 7 rows tall. Pixels off the canvas are dropped.
    """
    for index, char in enumerate(str(text)):
        glyph = _GLYPHS.get(char, _GLYPHS["?"]).repeat(scale, axis=0).repeat(scale, axis=1)
        _paint(canvas, x + index * (GLYPH_WIDTH + 1) * scale, y, glyph, color)


def _paint(canvas, x, y, mask, color):
    """Set the pixels of ``canvas`` under the boolean ``mask`` placed with its corner at (x, y)."""
    y0, x0 = max(y, 0), max(x, 0)
    y1, x1 = min(y + mask.shape[0], canvas.shape[0]), min(x + mask.shape[1], canvas.shape[1])
    if y0 < y1 and x0 < x1:
        canvas[y0:y1, x0:x1][mask[y0 - y:y1 - y, x0 - x:x1 - x]] = color


# --------------------------------------------------------------------------- plots

# The ten qualitative colours of matplotlib's "tab10"; label k is drawn in PALETTE[k % 10].
PALETTE = np.array([(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
                    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)],
                   dtype=np.uint8)
_INK, _FRAME, _GRIDLINE = (40, 40, 40), (110, 110, 110), (232, 232, 232)
_INSET = 6  # pixels between the frame and the data limits, so dots on the limits clear the frame


def _stamp(canvas, xs, ys, radius, colors):
    """A filled disc of ``radius`` px (0: one pixel) at each point; ``colors`` is (3,) or (n, 3)."""
    xs, ys = np.rint(xs).astype(int), np.rint(ys).astype(int)
    colors = np.broadcast_to(np.asarray(colors, dtype=np.uint8), (len(xs), 3))
    offsets = np.mgrid[-radius:radius + 1, -radius:radius + 1].reshape(2, -1).T
    for dy, dx in offsets[(offsets ** 2).sum(axis=1) <= radius * (radius + 0.8)]:
        row, col = ys + dy, xs + dx
        inside = (row >= 0) & (row < canvas.shape[0]) & (col >= 0) & (col < canvas.shape[1])
        canvas[row[inside], col[inside]] = colors[inside]


def _polyline(canvas, xs, ys, color):
    """Join the points ``(xs[i], ys[i])`` by straight 2-px lines, sampled at most 1 px apart."""
    steps = np.maximum(np.ceil(np.maximum(abs(np.diff(xs)), abs(np.diff(ys)))).astype(int), 1)
    segment = np.repeat(np.arange(len(steps)), steps)
    t = (np.arange(steps.sum()) - np.repeat(np.cumsum(steps) - steps, steps)) / steps[segment]
    px = np.append(xs[segment] + t * (xs[segment + 1] - xs[segment]), xs[-1])
    py = np.append(ys[segment] + t * (ys[segment + 1] - ys[segment]), ys[-1])
    _stamp(canvas, px, py, 1, color)


def _limits(values):
    """``(low, high)`` of the values, widened around a constant so the span is never zero."""
    low, high = float(np.min(values)), float(np.max(values))
    if high - low <= 1e-12 * max(1.0, abs(low)):
        half = 0.1 * abs(low) if low != 0 else 0.5
        low, high = low - half, high + half
    return low, high


def _ticks(low, high, count=5, integer=False):
    """About ``count`` round values in ``[low, high]``, 1, 2 or 5 times a power of ten apart,
    as ``(value, label)`` pairs."""
    power = 10.0 ** math.floor(math.log10((high - low) / count))
    step = min((m * power for m in (1, 2, 5, 10)), key=lambda step: abs((high - low) / step - count))
    step = max(step, 1.0) if integer else step
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    ticks = []
    for k in range(math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9) + 1):
        label = f"{k * step:.{decimals}f}"
        ticks.append((k * step, label if len(label) <= 7 else f"{k * step:.2g}"))
    return ticks


def _axes(canvas, box, xlim, ylim, xticks, yticks):
    """Draw grid lines, frame, tick marks and tick labels around ``box = (left, top, right,
    bottom)``; return ``to_pixels(x, y)``, mapping data inside the limits into the frame."""
    left, top, right, bottom = box

    def to_pixels(x, y):
        fx = (np.asarray(x, float) - xlim[0]) / (xlim[1] - xlim[0])   # 0 at the low limit, 1 at high
        fy = (np.asarray(y, float) - ylim[0]) / (ylim[1] - ylim[0])
        return (left + _INSET + fx * (right - left - 2 * _INSET),
                bottom - _INSET - fy * (bottom - top - 2 * _INSET))

    for value, label in xticks:
        x = int(round(float(to_pixels(value, ylim[0])[0])))
        canvas[top:bottom + 5, x] = _GRIDLINE
        canvas[bottom:bottom + 5, x] = _FRAME
        draw_text(canvas, x - text_size(label)[0] // 2, bottom + 8, label, _INK)
    for value, label in yticks:
        y = int(round(float(to_pixels(xlim[0], value)[1])))
        canvas[y, left - 4:right] = _GRIDLINE
        canvas[y, left - 4:left] = _FRAME
        draw_text(canvas, left - 8 - text_size(label)[0], y - 3, label, _INK)
    canvas[top, left:right + 1] = canvas[bottom, left:right + 1] = _FRAME
    canvas[top:bottom + 1, left] = canvas[top:bottom + 1, right] = _FRAME
    return to_pixels


def _legend(canvas, x, y, entries, bottom, line):
    """List ``(name, colour)`` entries downwards from (x, y), each a short line (or a dot)
    then the name; entries that would pass ``bottom`` are summed up as "+k"."""
    rows = max((bottom - y) // 16, 1)
    if len(entries) > rows:
        entries = entries[:rows - 1] + [(f"+{len(entries) - rows + 1}", None)]
    for row, (name, color) in enumerate(entries):
        middle = y + 16 * row + 3
        if color is not None and line:
            canvas[middle - 1:middle + 1, x:x + 14] = color
        elif color is not None:
            _stamp(canvas, [x + 4], [middle], 4, color)
        draw_text(canvas, x + 20, middle - 3, name, _INK)


def _new_plot(width, height, xlim, ylim, entries, *, title, line, xlabel="", ylabel="",
              integer_x=False):
    """A white ``(height, width, 3)`` canvas with the title on top, the axes below it (round
    ticks, grid lines, frame, axis labels) and the legend of ``(name, colour)`` entries to
    their right. Returns the canvas and ``to_pixels(x, y)`` of its axes."""
    yticks = _ticks(*ylim)
    names = [name for name, _ in entries]
    left = max([text_size(label)[0] for _, label in yticks] + [text_size(ylabel)[0] // 2]) + 14
    top = (30 if title else 0) + (30 if ylabel else 16)
    right = width - (48 + max(text_size(name)[0] for name in names) if names else 16)
    bottom = height - (42 if xlabel else 28)
    for count in (6, 5, 4, 3, 2):                     # fewer x ticks until their labels fit
        xticks = _ticks(*xlim, count=count, integer=integer_x)
        widest = max((text_size(label)[0] for _, label in xticks), default=0)
        if (right - left) / max(len(xticks), 1) > widest + 12:
            break
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    to_pixels = _axes(canvas, (left, top, right, bottom), xlim, ylim, xticks, yticks)
    _legend(canvas, right + 16, top, entries, bottom, line)
    draw_text(canvas, max(left - text_size(ylabel)[0] // 2, 2), top - 16, ylabel, _INK)
    draw_text(canvas, (left + right - text_size(xlabel)[0]) // 2, bottom + 24, xlabel, _INK)
    if title:
        scale = 2 if text_size(title, 2)[0] <= width - 20 else 1      # large when it fits
        draw_text(canvas, (width - text_size(title, scale)[0]) // 2, 12, title, _INK, scale=scale)
    return canvas, to_pixels


def scatter_plot(points, labels=None, *, size=480, title=None, label_names=None):
    """A ``(size, size, 3)`` uint8 RGB picture of 2-D ``points`` ``(n, 2)``, e.g. codes z.

    Axes run from the 0.5th to the 99.5th percentile of each coordinate, so a few far
    outliers cannot squash the rest; points beyond are drawn on the edge. With integer
    ``labels`` ``(n,)`` each point is coloured ``PALETTE[label % 10]`` and a legend lists
    the labels (or ``label_names[label]``) to the right of the axes; without labels all
    points share the first colour.
    """
    points = np.asarray(points)
    if not np.issubdtype(points.dtype, np.number):
        raise TypeError(f"points must be numeric, got dtype {points.dtype}")
    if points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
        raise ValueError(f"points must have shape (n, 2) with n >= 1, got {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("points contain NaN or infinite values")
    if labels is not None:
        labels = np.asarray(labels)
        if not np.issubdtype(labels.dtype, np.integer):
            raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
        if labels.shape != (len(points),):
            raise ValueError(f"labels must have shape ({len(points)},), got {labels.shape}")
    _check_int("size", size, 120)
    xlim, ylim = (_limits(np.percentile(points[:, axis], [0.5, 99.5])) for axis in (0, 1))
    classes = [] if labels is None else np.unique(labels).tolist()
    names = (lambda label: str(label)) if label_names is None else (lambda label: str(label_names[label]))
    entries = [(names(label), PALETTE[label % len(PALETTE)]) for label in classes]
    canvas, to_pixels = _new_plot(size, size, xlim, ylim, entries, title=title, line=False)
    px, py = to_pixels(np.clip(points[:, 0], *xlim), np.clip(points[:, 1], *ylim))
    colors = PALETTE[0] if labels is None else PALETTE[labels % len(PALETTE)]
    _stamp(canvas, px, py, 3 if len(points) <= 500 else 2 if len(points) <= 5000 else 1, colors)
    return canvas


def line_plot(series, *, size=(640, 400), title=None, xlabel="epoch", ylabel="loss"):
    """A uint8 RGB picture ``(height, width, 3)`` of curves, ``size = (width, height)``.

    ``series`` maps a name to a 1-D sequence of numbers, e.g. ``{"loss": [...],
    "val_loss": [...]}``; value ``i`` is drawn at ``x = i + 1`` (epochs count from 1).
    Curve ``k`` is a 2-px line in ``PALETTE[k % 10]``, with a dot on each point when it has
    at most 40; non-finite values leave a gap. Round tick values label the axes and a legend
    sits to their right.
    """
    if not isinstance(series, dict) or not series:
        raise ValueError("series must be a non-empty dict mapping names to sequences of numbers")
    curves = {str(name): np.asarray(values) for name, values in series.items()}
    for name, values in curves.items():
        if not np.issubdtype(values.dtype, np.number) or values.ndim != 1 or len(values) == 0:
            raise ValueError(f"series[{name!r}] must be a non-empty 1-D sequence of numbers")
    if np.shape(size) != (2,):
        raise ValueError(f"size must be a (width, height) pair, got {size!r}")
    _check_int("size[0]", size[0], 200)
    _check_int("size[1]", size[1], 150)
    finite = np.concatenate([values[np.isfinite(values)] for values in curves.values()])
    if len(finite) == 0:
        raise ValueError("series hold no finite values")
    xlim, ylim = _limits([1, max(map(len, curves.values()))]), _limits(finite)
    entries = [(name, PALETTE[index % len(PALETTE)]) for index, name in enumerate(curves)]
    canvas, to_pixels = _new_plot(*size, xlim, ylim, entries, title=title, line=True,
                                  xlabel=xlabel or "", ylabel=ylabel or "", integer_x=True)
    for (_, color), values in zip(entries, curves.values()):
        px, py = to_pixels(np.arange(1, len(values) + 1), values)
        finite = np.isfinite(py)
        for run in np.split(np.arange(len(values)), np.flatnonzero(~finite)):  # runs between gaps
            if finite[run].any():
                _polyline(canvas, px[run[finite[run]]], py[run[finite[run]]], color)
        if len(values) <= 40:
            _stamp(canvas, px[finite], py[finite], 2, color)
    return canvas
