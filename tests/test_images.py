"""Tests of npae.images: PNG files checked byte by byte, and grids of images."""
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from npae.pictures.png import image_grid, stack_rows, write_png
from pngs import crc32, read_png

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


