"""Scatter and line plots drawn on uint8 RGB canvases, with round ticks, grid lines and a legend,
and the words around pictures: titles, row labels, axes and a colour scale.

The codes of held-out data coloured by label, and loss curves per epoch: the two plots
``python -m npae train`` writes; its grids of images get their titles, labels, axes and
colour scale here. Text is drawn with :mod:`npae.pictures.font`.
"""
import math

import numpy as np

from .font import draw_text, text_size
from .png import at_least

__all__ = ["scatter_plot", "line_plot", "PALETTE", "as_rgb", "diverging", "titled", "on_axes",
           "beside_colour_scale"]

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


def scatter_plot(points, labels=None, *, size=480, title=None, label_names=None, xlabel="",
                 ylabel=""):
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
    at_least("size", size, 120)
    xlim, ylim = (_limits(np.percentile(points[:, axis], [0.5, 99.5])) for axis in (0, 1))
    classes = [] if labels is None else np.unique(labels).tolist()
    names = (lambda label: str(label)) if label_names is None else (lambda label: str(label_names[label]))
    entries = [(names(label), PALETTE[label % len(PALETTE)]) for label in classes]
    canvas, to_pixels = _new_plot(size, size, xlim, ylim, entries, title=title, line=False,
                                  xlabel=xlabel, ylabel=ylabel)
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
    at_least("size[0]", size[0], 200)
    at_least("size[1]", size[1], 150)
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


# -- words around pictures: titles, row labels, axes, a colour scale ---------------------
BLUE, RED = np.array((33, 102, 172)), np.array((178, 24, 43))  # the ends of the diverging scale
_MARGIN = 10


def as_rgb(picture):
    """A grey picture (floats in [0, 1], or uint8) or an RGB uint8 picture as RGB uint8."""
    picture = np.asarray(picture)
    if picture.dtype != np.uint8:
        picture = np.rint(np.clip(picture, 0.0, 1.0) * 255).astype(np.uint8)
    return picture if picture.ndim == 3 else np.repeat(picture[:, :, None], 3, axis=2)


def diverging(values, limit):
    """Values as RGB uint8 on one diverging scale: −limit blue, 0 white, +limit red (clipped)."""
    t = np.clip(np.asarray(values, dtype=float) / limit, -1.0, 1.0)[..., None]
    end = np.where(t < 0, BLUE, RED)
    return np.rint(255 + np.abs(t) * (end - 255)).astype(np.uint8)


def _title_scale(title, width):
    return 2 if text_size(title, 2)[0] <= width - 2 * _MARGIN else 1


def titled(picture, title, *, row_labels=()):
    """``picture`` under a ``title``, with ``row_labels`` — ``(text, top, bottom)``, the rows of
    the picture each names — written to its left: an RGB uint8 canvas."""
    picture = as_rgb(picture)
    height, width = picture.shape[:2]
    label_scale = 2 if all(bottom - top >= 24 for _, top, bottom in row_labels) else 1
    labels = max((text_size(text, label_scale)[0] for text, _, _ in row_labels), default=-_MARGIN)
    left = _MARGIN + labels + _MARGIN
    full = max(left + width + _MARGIN, text_size(title)[0] + 2 * _MARGIN)  # the title fits
    left = (full - width - _MARGIN) if row_labels else (full - width) // 2
    scale = _title_scale(title, full)
    top = _MARGIN + text_size(title, scale)[1] + _MARGIN
    canvas = np.full((top + height + _MARGIN, full, 3), 255, dtype=np.uint8)
    canvas[top:top + height, left:left + width] = picture
    draw_text(canvas, (full - text_size(title, scale)[0]) // 2, _MARGIN, title, _INK, scale=scale)
    for text, row_top, row_bottom in row_labels:
        text_width, text_height = text_size(text, label_scale)
        middle = top + (row_top + row_bottom) // 2 - 7 * label_scale // 2  # capitals stand 7 rows
        draw_text(canvas, left - _MARGIN - text_width, middle, text, _INK, scale=label_scale)
    return canvas


def on_axes(picture, extent, *, title, xlabel, ylabel):
    """``picture`` in a frame whose edges are the coordinates ``extent = (x0, x1, y0, y1)``
    (x to the right, y upwards), with round tick values, axis labels and a title."""
    picture = as_rgb(picture)
    height, width = picture.shape[:2]
    x0, x1, y0, y1 = extent
    xticks, yticks = _ticks(x0, x1, count=5), _ticks(y0, y1, count=5)
    left = _MARGIN + max([text_size(label)[0] for _, label in yticks] + [text_size(ylabel)[0] // 2]) + 10
    full = left + width + 2 * _MARGIN
    scale = _title_scale(title, full)
    top = _MARGIN + text_size(title, scale)[1] + _MARGIN + 16
    canvas = np.full((top + height + 44, full, 3), 255, dtype=np.uint8)
    canvas[top:top + height, left:left + width] = picture
    bottom, right = top + height, left + width
    canvas[top - 1, left - 1:right + 1] = canvas[bottom, left - 1:right + 1] = _FRAME
    canvas[top - 1:bottom + 1, left - 1] = canvas[top - 1:bottom + 1, right] = _FRAME
    for value, label in xticks:
        x = left + int(round((value - x0) / (x1 - x0) * (width - 1)))
        canvas[bottom:bottom + 5, x] = _FRAME
        draw_text(canvas, x - text_size(label)[0] // 2, bottom + 8, label, _INK)
    for value, label in yticks:
        y = top + int(round((y1 - value) / (y1 - y0) * (height - 1)))
        canvas[y, left - 5:left] = _FRAME
        draw_text(canvas, left - 8 - text_size(label)[0], y - 3, label, _INK)
    draw_text(canvas, (left + right - text_size(xlabel)[0]) // 2, bottom + 24, xlabel, _INK)
    draw_text(canvas, max(left - text_size(ylabel)[0] // 2, 2), top - 16, ylabel, _INK)
    draw_text(canvas, (full - text_size(title, scale)[0]) // 2, _MARGIN, title, _INK, scale=scale)
    return canvas


def beside_colour_scale(picture, limit, label):
    """An RGB ``picture`` drawn on the :func:`diverging` scale, with that scale beside it: a
    bar from −limit (bottom) to +limit (top) with round tick values, and its ``label``."""
    picture = as_rgb(picture)
    height, width = picture.shape[:2]
    ticks = _ticks(-limit, limit, count=4)
    bar_left = width + 3 * _MARGIN
    full = bar_left + 16 + 8 + max(text_size(tick)[0] for _, tick in ticks) + _MARGIN
    full = max(full, bar_left + text_size(label)[0] // 2 + 8 + _MARGIN)
    canvas = np.full((height + 20, full, 3), 255, dtype=np.uint8)
    canvas[20:, :width] = picture
    levels = np.linspace(limit, -limit, height)
    canvas[20:, bar_left:bar_left + 16] = diverging(levels, limit)[:, None, :]
    for value, tick in ticks:
        y = 20 + int(round((limit - value) / (2 * limit) * (height - 1)))
        canvas[y, bar_left + 16:bar_left + 20] = _FRAME
        draw_text(canvas, bar_left + 24, y - 3, tick, _INK)
    draw_text(canvas, bar_left + 8 - text_size(label)[0] // 2, 4, label, _INK)
    return canvas
