"""Tests of npae.images: PNG files checked byte by byte, grids, the font and the plots."""
import os
import string
import struct
import warnings
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from npae.images import (PALETTE, draw_text, image_grid, line_plot, scatter_plot, stack_rows,
                         text_size, write_png)

# ----------------------------------------------------------------------------- a PNG reader

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


def test_crc32_matches_the_check_value_of_the_standard():
    assert crc32(b"123456789") == 0xCBF43926


# ----------------------------------------------------------------------------- write_png

@settings(max_examples=40, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12))))
def test_grey_uint8_round_trips_exactly(tmp_path_factory, image):
    path = tmp_path_factory.mktemp("png") / "grey.png"
    write_png(path, image)
    header, pixels = read_png(path)
    assert (header["height"], header["width"], header["colour_type"]) == image.shape + (0,)
    np.testing.assert_array_equal(pixels, image)


@settings(max_examples=40, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12), st.just(3))))
def test_rgb_uint8_round_trips_exactly(tmp_path_factory, image):
    path = tmp_path_factory.mktemp("png") / "rgb.png"
    write_png(str(path), image)
    header, pixels = read_png(path)
    assert (header["height"], header["width"], header["colour_type"]) == image.shape[:2] + (2,)
    np.testing.assert_array_equal(pixels, image)


def test_float_input_is_clipped_then_rounded(tmp_path):
    image = np.array([[-0.5, 0.0, 0.2, 0.5, 1.0, 2.0]])
    write_png(tmp_path / "f.png", image)
    # 0.2 * 255 = 51; 0.5 * 255 = 127.5 rounds to the even 128
    np.testing.assert_array_equal(read_png(tmp_path / "f.png")[1], [[0, 0, 51, 128, 255, 255]])
    rgb = np.stack([image, 1 - image, np.full_like(image, 0.5)], axis=-1).astype(np.float32)
    write_png(tmp_path / "c.png", rgb)
    header, pixels = read_png(tmp_path / "c.png")
    assert header["colour_type"] == 2
    np.testing.assert_array_equal(pixels[0, :, 0], [0, 0, 51, 128, 255, 255])
    np.testing.assert_array_equal(pixels[0, :, 1], [255, 255, 204, 128, 0, 0])
    np.testing.assert_array_equal(pixels[0, :, 2], [128] * 6)


def test_a_picture_that_is_wider_than_tall_keeps_its_orientation(tmp_path):
    image = np.zeros((2, 5), dtype=np.uint8)
    image[0, 4] = 200                                      # top-right corner
    write_png(tmp_path / "o.png", image)
    header, pixels = read_png(tmp_path / "o.png")
    assert (header["width"], header["height"]) == (5, 2)
    assert pixels[0, 4] == 200 and pixels.sum() == 200


@pytest.mark.parametrize("image, error", [
    (np.zeros(5), ValueError),                             # 1-D
    (np.zeros((2, 2, 3, 1)), ValueError),                  # 4-D
    (np.zeros((2, 2, 4)), ValueError),                     # four channels
    (np.zeros((2, 2, 1)), ValueError),                     # one channel in a third axis
    (np.zeros((0, 3)), ValueError),                        # empty
    (np.array([[0.1, np.nan]]), ValueError),
    (np.zeros((2, 2), dtype=np.int64), TypeError),         # ambiguous: 0..1 or 0..255?
    (np.array([["a", "b"]]), TypeError),
    (np.array([[None, 1]], dtype=object), TypeError),
])
def test_bad_images_are_refused_by_name_and_nothing_is_written(tmp_path, image, error):
    with pytest.raises(error, match="image"):
        write_png(tmp_path / "bad.png", image)
    assert os.listdir(tmp_path) == []


def test_the_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "pic.png"
    write_png(path, np.zeros((3, 4), dtype=np.uint8))
    write_png(path, np.full((2, 2), 7, dtype=np.uint8))    # replacing an existing file
    assert os.listdir(tmp_path) == ["pic.png"]
    np.testing.assert_array_equal(read_png(path)[1], np.full((2, 2), 7))
    before = path.read_bytes()

    def fail(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_png(path, np.full((5, 5), 99, dtype=np.uint8))
    assert os.listdir(tmp_path) == ["pic.png"]             # no temporary file left behind
    assert path.read_bytes() == before                     # the old picture is intact


# ----------------------------------------------------------------------------- image_grid

def grid_by_blocks(tiles, ncols, pad, scale, background):
    """The expected grid built another way: pad every scaled tile, then concatenate."""
    n, h, w = tiles.shape
    nrows = -(-n // ncols)
    blank = np.full((h, w), background)
    padded = list(tiles) + [blank] * (nrows * ncols - n)
    scaled = [np.kron(tile, np.ones((scale, scale))) for tile in padded]
    cells = [np.pad(cell, ((pad, 0), (pad, 0)), constant_values=background) for cell in scaled]
    grid = np.block([[cells[r * ncols + c] for c in range(ncols)] for r in range(nrows)])
    return np.pad(grid, ((0, pad), (0, pad)), constant_values=background)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 12), h=st.integers(1, 5), w=st.integers(1, 5), pad=st.integers(0, 2),
       scale=st.integers(1, 3), ncols=st.one_of(st.none(), st.integers(1, 5)),
       seed=st.integers(0, 2 ** 16))
def test_grid_places_each_tile_in_its_cell(n, h, w, pad, scale, ncols, seed):
    tiles = np.random.default_rng(seed).random((n, h, w))
    grid = image_grid(tiles.reshape(n, h * w), (h, w), ncols=ncols, pad=pad, scale=scale,
                      background=0.25)
    columns = ncols or int(np.ceil(np.sqrt(n)))
    rows = -(-n // columns)
    assert grid.shape == (rows * h * scale + (rows + 1) * pad,
                          columns * w * scale + (columns + 1) * pad)
    np.testing.assert_array_equal(grid, grid_by_blocks(tiles, columns, pad, scale, 0.25))
    np.testing.assert_array_equal(image_grid(tiles, (h, w), ncols=ncols, pad=pad, scale=scale,
                                             background=0.25), grid)


def test_grid_default_layout_is_nearly_square():
    grid = image_grid(np.zeros((10, 4)), (2, 2), pad=1)
    assert grid.shape == (3 * 2 + 4, 4 * 2 + 5)            # 10 tiles: 4 columns, 3 rows
    assert grid[1:3, 1:3].max() == 0 and grid[0].min() == 1.0   # tiles black, padding white


def test_grid_clips_values_to_the_unit_interval():
    grid = image_grid(np.array([[-3.0, 0.5, 7.0, 1.0]]), (2, 2), pad=0)
    np.testing.assert_array_equal(grid, [[0.0, 0.5], [1.0, 1.0]])


def test_grid_reads_uint8_as_0_to_255_and_refuses_other_integers():
    grid = image_grid(np.array([[0, 51, 255, 255]], dtype=np.uint8), (2, 2), pad=0)
    np.testing.assert_allclose(grid, [[0.0, 0.2], [1.0, 1.0]])
    with pytest.raises(TypeError, match="images"):
        image_grid(np.zeros((1, 4), dtype=np.int64), (2, 2))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2 ** 16), offset=st.floats(-1e3, 1e3), spread=st.floats(1e-3, 1e3))
def test_normalize_maps_each_tile_onto_the_unit_interval(seed, offset, spread):
    tiles = offset + spread * np.random.default_rng(seed).normal(size=(5, 3, 4))
    tiles[2] *= 100.0                                      # tiles of very different ranges
    grid = image_grid(tiles, (3, 4), ncols=5, pad=0, normalize=True)
    for k, tile in enumerate(tiles):
        shown = grid[:, 4 * k:4 * k + 4]
        np.testing.assert_allclose(shown, (tile - tile.min()) / (tile.max() - tile.min()), atol=1e-9)
        assert shown.min() == pytest.approx(0.0, abs=1e-12) and shown.max() == pytest.approx(1.0)


def test_normalize_shows_a_constant_tile_as_mid_grey():
    grid = image_grid(np.full((1, 4), -3.0), (2, 2), pad=0, normalize=True)
    np.testing.assert_array_equal(grid, np.full((2, 2), 0.5))


@pytest.mark.parametrize("call, name", [
    (lambda: image_grid(np.zeros((3, 10)), (3, 3)), "images"),
    (lambda: image_grid(np.zeros((0, 9)), (3, 3)), "images"),
    (lambda: image_grid(np.zeros(9), (3, 3)), "images"),
    (lambda: image_grid(np.array([[np.nan] * 9]), (3, 3)), "images"),
    (lambda: image_grid(np.array([["a"] * 9]), (3, 3)), "images"),
    (lambda: image_grid(np.zeros((2, 9)), (9,)), "image_shape"),
    (lambda: image_grid(np.zeros((2, 9)), (3, 3), ncols=0), "ncols"),
    (lambda: image_grid(np.zeros((2, 9)), (3, 3), pad=-1), "pad"),
    (lambda: image_grid(np.zeros((2, 9)), (3, 3), scale=0), "scale"),
    (lambda: image_grid(np.zeros((2, 9)), (3, 3), scale=1.5), "scale"),
    (lambda: stack_rows(np.zeros((2, 2)), np.zeros((2, 2, 3))), "pictures"),
    (lambda: stack_rows(), "pictures"),
])
def test_bad_grid_arguments_are_refused_by_name(call, name):
    with pytest.raises((ValueError, TypeError), match=name):
        call()


def test_stack_rows_puts_pictures_one_above_the_other():
    top, bottom = np.zeros((2, 3)), np.full((1, 5), 0.5)
    stacked = stack_rows(top, bottom, pad=2)
    assert stacked.shape == (2 + 2 + 1, 5)
    np.testing.assert_array_equal(stacked[:2, :3], top)
    np.testing.assert_array_equal(stacked[:2, 3:], 1.0)    # widened with white
    np.testing.assert_array_equal(stacked[2:4], 1.0)       # the padding rows
    np.testing.assert_array_equal(stacked[4], bottom[0])
    rgb = stack_rows(np.zeros((1, 1, 3), np.uint8), np.zeros((1, 2, 3), np.uint8), pad=0)
    assert rgb.dtype == np.uint8 and rgb[0, 1].tolist() == [255, 255, 255]


# ----------------------------------------------------------------------------- the font

CHARACTERS = string.digits + string.ascii_letters + " .,-+=:()[]/_%'!?*<>#"


def rendered(text, scale=1):
    width, height = text_size(text, scale)
    canvas = np.zeros((height + 4, width + 4), dtype=np.uint8)
    draw_text(canvas, 2, 2, text, 255, scale=scale)
    return canvas


def test_every_glyph_is_distinct_and_only_space_is_blank():
    bitmaps = {char: rendered(char).tobytes() for char in CHARACTERS}
    assert len(set(bitmaps.values())) == len(CHARACTERS)
    assert [char for char in CHARACTERS if rendered(char).max() == 0] == [" "]


def test_text_stays_inside_its_measured_box_and_uses_the_colour():
    canvas = np.zeros((40, 80, 3), dtype=np.uint8)
    draw_text(canvas, 10, 5, "Ag0.5", (200, 10, 30), scale=2)
    width, height = text_size("Ag0.5", scale=2)
    assert (width, height) == ((5 * 6 - 1) * 2, 18)
    inked = canvas.any(axis=2)
    assert inked[5:5 + height, 10:10 + width].sum() == inked.sum() > 0
    assert {tuple(pixel) for pixel in canvas[inked]} == {(200, 10, 30)}
    rows, cols = np.nonzero(inked)                          # the glyphs reach the box edges
    assert (cols.min(), cols.max(), rows.max()) == (10, 10 + width - 1, 5 + height - 1)


def test_unknown_characters_print_as_a_question_mark_and_text_clips_at_the_edges():
    np.testing.assert_array_equal(rendered("~"), rendered("?"))
    canvas = np.zeros((5, 5), dtype=np.uint8)
    draw_text(canvas, -3, -2, "HELLO", 1)                 # partly off the canvas: no error
    assert canvas.any()


def test_scaled_text_is_the_plain_text_enlarged():
    plain = rendered("x=1")[2:-2, 2:-2]
    np.testing.assert_array_equal(rendered("x=1", scale=3)[2:-2, 2:-2], np.kron(plain, np.ones((3, 3))))


# ----------------------------------------------------------------------------- scatter_plot

def colours(canvas):
    return {tuple(pixel) for pixel in canvas.reshape(-1, 3)}


def frame_right_edge(canvas):
    """Column of the plot's right frame line: the last column mostly in the frame grey."""
    frame = (canvas == (110, 110, 110)).all(axis=2)
    return np.flatnonzero(frame.sum(axis=0) > canvas.shape[0] // 2).max()


def test_scatter_colours_points_by_label_and_lists_them_in_a_legend():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 30)
    points = rng.normal(size=(10, 2))[labels] * 5 + rng.normal(size=(300, 2))
    canvas = scatter_plot(points, labels, size=400, title="codes")
    assert canvas.shape == (400, 400, 3) and canvas.dtype == np.uint8
    assert (canvas == 255).all(axis=2).mean() > 0.5        # mostly white background
    right = frame_right_edge(canvas)
    for colour in PALETTE:
        present = (canvas == colour).all(axis=2)
        assert present[:, :right].any()                    # its points
        assert present[:, right + 1:].any()                # its legend swatch


def test_scatter_without_labels_uses_one_colour_and_no_legend():
    canvas = scatter_plot(np.random.default_rng(1).normal(size=(50, 2)))
    found = colours(canvas)
    assert tuple(PALETTE[0]) in found
    assert not any(tuple(colour) in found for colour in PALETTE[1:])
    assert frame_right_edge(canvas) > 480 - 30             # the axes take the room a legend would


def test_scatter_axes_point_right_and_up():
    canvas = scatter_plot([[0.0, 0.0], [1.0, 1.0]], [0, 1])
    right = frame_right_edge(canvas)
    rows0, cols0 = np.nonzero((canvas[:, :right] == PALETTE[0]).all(axis=2))
    rows1, cols1 = np.nonzero((canvas[:, :right] == PALETTE[1]).all(axis=2))
    assert cols1.mean() > cols0.mean() + 100 and rows1.mean() < rows0.mean() - 100


def test_scatter_is_not_squashed_by_a_far_outlier():
    points = np.random.default_rng(2).normal(size=(1000, 2))
    points[0] = [1e6, -1e6]
    rows, cols = np.nonzero((scatter_plot(points, size=400) == PALETTE[0]).all(axis=2))
    assert len(rows) > 5000                                # a spread-out cloud, not one blob of dots
    for axis in (rows, cols):                              # the middle 90 % spans over half the axes
        assert np.percentile(axis, 95) - np.percentile(axis, 5) > 150


def test_scatter_of_identical_points_draws_them():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        canvas = scatter_plot(np.ones((5, 2)), [3] * 5)
    assert (canvas == PALETTE[3]).all(axis=2).sum() > 20


@pytest.mark.parametrize("size, scale, at_least", [
    (160, 1e-3, 1), (240, 1e-3, 1), (480, 1e-3, 3), (160, 1e5, 1), (300, 1e5, 1), (480, 7.0, 4)])
def test_x_tick_labels_never_run_into_each_other(size, scale, at_least):
    points = np.random.default_rng(4).random((200, 2)) * scale + 0.5 * scale
    canvas = scatter_plot(points, np.arange(200) % 10, size=size)
    frame = (canvas == (110, 110, 110)).all(axis=2)
    bottom = np.flatnonzero(frame.sum(axis=1) > size // 3).max()         # the frame's bottom line
    ticks = np.flatnonzero(frame[bottom + 2])
    inked = np.flatnonzero((canvas[bottom + 8:bottom + 17] < 100).all(axis=2).any(axis=0))
    labels = 1 + np.count_nonzero(np.diff(inked) > 6)     # characters sit at most 4 px apart
    assert len(ticks) >= at_least and labels == len(ticks)


@pytest.mark.parametrize("call, name", [
    (lambda: scatter_plot(np.zeros((5, 3))), "points"),
    (lambda: scatter_plot(np.zeros(5)), "points"),
    (lambda: scatter_plot(np.zeros((0, 2))), "points"),
    (lambda: scatter_plot([[0.0, np.nan]]), "points"),
    (lambda: scatter_plot([["a", "b"]]), "points"),
    (lambda: scatter_plot(np.zeros((3, 2)), [0, 1]), "labels"),
    (lambda: scatter_plot(np.zeros((2, 2)), [0.5, 1.0]), "labels"),
    (lambda: scatter_plot(np.zeros((2, 2)), size=10), "size"),
    (lambda: scatter_plot(np.zeros((2, 2)), size=300.0), "size"),
])
def test_bad_scatter_arguments_are_refused_by_name(call, name):
    with pytest.raises((ValueError, TypeError), match=name):
        call()


# ----------------------------------------------------------------------------- line_plot

def test_line_plot_draws_each_series_in_its_colour():
    epochs = np.arange(30)
    loss = np.exp(-epochs / 8)
    canvas = line_plot({"loss": loss, "val_loss": loss + 0.1}, title="fit")
    assert canvas.shape == (400, 640, 3) and canvas.dtype == np.uint8
    assert len(colours(canvas)) >= 5
    for colour in PALETTE[:2]:
        assert (canvas == colour).all(axis=2).sum() > 200  # a line, not just a legend swatch
    assert not (canvas == PALETTE[2]).all(axis=2).any()


def test_a_long_curve_is_one_unbroken_line():
    canvas = line_plot({"loss": np.sin(np.linspace(0, 6, 300))})   # over 40 points: no dots
    inked = (canvas[:, :frame_right_edge(canvas)] == PALETTE[0]).all(axis=2)
    cols = np.flatnonzero(inked.any(axis=0))
    assert cols.max() - cols.min() > 450
    np.testing.assert_array_equal(cols, np.arange(cols.min(), cols.max() + 1))   # no missing column
    thickness = inked[:, cols.min() + 5:cols.max() - 5].sum(axis=0)
    assert thickness.min() >= 2                             # 2 px thick even where the line is flat


def test_a_falling_curve_falls_on_the_picture():
    canvas = line_plot({"loss": np.linspace(5.0, 1.0, 20)}, size=(300, 200))
    assert canvas.shape == (200, 300, 3)
    rows, cols = np.nonzero((canvas[:, :frame_right_edge(canvas)] == PALETTE[0]).all(axis=2))
    left, right = rows[cols < np.percentile(cols, 20)], rows[cols > np.percentile(cols, 80)]
    assert left.mean() < right.mean() - 50                 # high on the left, low on the right


def test_lines_stay_inside_the_frame():
    canvas = line_plot({"wild": [1e6, -1e6, 0.0, 3e5]})
    frame = (canvas == (110, 110, 110)).all(axis=2)
    right = frame_right_edge(canvas)
    top, bottom = np.flatnonzero(frame[:, right - 1]).min(), np.flatnonzero(frame[:, right - 1]).max()
    left = np.flatnonzero(frame[top]).min()
    rows, cols = np.nonzero((canvas[:, :right] == PALETTE[0]).all(axis=2))
    assert rows.min() > top and rows.max() < bottom and cols.min() > left


@pytest.mark.parametrize("series", [
    {"single": [0.7]},
    {"flat": [2.0] * 6},
    {"zero": [0.0, 0.0]},
    {"single": [0.7], "flat": [0.1] * 3},
    {"gap": [3.0, 2.0, np.nan, 1.5, 1.0]},
])
def test_short_constant_and_gapped_series_draw_without_warnings(series):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        canvas = line_plot(series, size=(320, 240))
    for index in range(len(series)):
        assert (canvas == PALETTE[index]).all(axis=2).sum() >= 9


def test_round_trip_of_a_plot_through_a_png_file(tmp_path):
    canvas = line_plot({"loss": [3.0, 2.0, 1.5]}, xlabel="step", ylabel="nats")
    write_png(tmp_path / "plot.png", canvas)
    header, pixels = read_png(tmp_path / "plot.png")
    assert (header["width"], header["height"], header["colour_type"]) == (640, 400, 2)
    np.testing.assert_array_equal(pixels, canvas)


@pytest.mark.parametrize("call, name", [
    (lambda: line_plot({}), "series"),
    (lambda: line_plot([1.0, 2.0]), "series"),
    (lambda: line_plot({"loss": []}), "series"),
    (lambda: line_plot({"loss": [[1.0, 2.0]]}), "series"),
    (lambda: line_plot({"loss": ["a", "b"]}), "series"),
    (lambda: line_plot({"loss": [np.nan]}), "series"),
    (lambda: line_plot({"loss": [1.0]}, size=640), "size"),
    (lambda: line_plot({"loss": [1.0]}, size=(20, 20)), "size"),
])
def test_bad_line_plot_arguments_are_refused_by_name(call, name):
    with pytest.raises((ValueError, TypeError), match=name):
        call()


def test_scatter_legend_can_name_the_labels():
    rng = np.random.default_rng(0)
    points, labels = rng.normal(size=(50, 2)), rng.integers(0, 3, 50)
    numbered = scatter_plot(points, labels)
    named = scatter_plot(points, labels, label_names=["coat", "bag", "sandal"])
    assert numbered.shape == named.shape
    assert not np.array_equal(numbered, named)                       # the legend's text differs
    with pytest.raises(IndexError):
        scatter_plot(points, labels, label_names=["coat"])    # a label without a name
