"""Tests of npae.plots: scatter and line plots read back pixel by pixel."""
import warnings

import numpy as np
import pytest

from npae.pictures.plots import PALETTE, line_plot, scatter_plot
from pngs import read_png
from npae.pictures.png import write_png

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



# ----------------------------------------------------------------------------- words around pictures

import npae  # noqa: E402
from npae.pictures import model_pictures, plots  # noqa: E402
from npae.pictures.plots import (BLUE, RED, as_rgb, beside_colour_scale, diverging,  # noqa: E402
                                 on_axes, titled)

INK = (40, 40, 40)


def find(canvas, picture):
    """The (top, left) at which ``picture`` (RGB) sits inside ``canvas``: exactly once."""
    h, w = picture.shape[:2]
    spots = [(y, x) for y in range(canvas.shape[0] - h + 1) for x in range(canvas.shape[1] - w + 1)
             if (canvas[y, x] == picture[0, 0]).all() and np.array_equal(canvas[y:y + h, x:x + w], picture)]
    assert len(spots) == 1, spots
    return spots[0]


def inked(region):
    return (region == INK).all(axis=-1)


def test_a_titled_picture_has_its_title_above_and_each_label_beside_its_row():
    picture = np.random.default_rng(0).random((60, 80))
    picture[:, 0] = 0.0  # an unambiguous corner
    canvas = titled(picture, "a title", row_labels=[("top", 0, 30), ("bottom", 30, 60)])
    top, left = find(canvas, as_rgb(picture))
    assert inked(canvas[:top]).sum() > 30                       # the title, above the picture
    assert not inked(canvas[top + 60:]).any()                   # nothing below it
    for row_top, row_bottom in ((0, 30), (30, 60)):
        rows = np.flatnonzero(inked(canvas[top + row_top:top + row_bottom, :left]).any(axis=1))
        assert len(rows) > 5                                    # a label beside each row ...
        assert abs((rows.min() + rows.max()) / 2 - 15) <= 5     # ... in its middle


def test_a_picture_on_axes_has_ticks_where_its_coordinates_are():
    picture = np.full((51, 101), 0.5)
    canvas = on_axes(picture, (0.0, 10.0, -5.0, 0.0), title="t", xlabel="z1", ylabel="z2")
    top, left = find(canvas, as_rgb(picture))
    frame = (canvas == (110, 110, 110)).all(axis=-1)
    below = frame[top + 51 + 2]                                 # tick marks under the frame
    assert np.flatnonzero(below).tolist() == [left + 20 * k for k in range(6)]  # 0, 2, …, 10
    beside = frame[:, left - 3]                                 # tick marks left of the frame
    assert np.flatnonzero(beside).tolist() == [top + 10 * k for k in range(6)]  # 0, −1, …, −5
    assert inked(canvas[top + 51 + 8:, left:left + 101]).any()  # tick labels and the axis label


def test_the_traversal_puts_each_tile_at_its_z(monkeypatch):
    seen = {}
    monkeypatch.setattr(plots, "on_axes", lambda picture, extent, **words: seen.update(
        picture=picture, extent=extent, words=words) or picture)
    model = npae.VAE(64, hidden=(8,), latent=2, seed=0).built()
    model_pictures.latent_traversal(model, (8, 8), steps=12, span=2.5)
    x0, x1, y0, y1 = seen["extent"]
    width, tile = seen["picture"].shape[1], 8 * 7
    for k, z in enumerate(np.linspace(-2.5, 2.5, 12)):
        centre = 1 + k * (tile + 1) + (tile - 1) / 2            # pixels, from the left edge
        assert x0 + centre / (width - 1) * (x1 - x0) == pytest.approx(z, abs=(x1 - x0) / width)
    assert (y0, y1) == (x0, x1) and seen["words"]["xlabel"] == "z1" and seen["words"]["ylabel"] == "z2"


def test_the_diverging_scale_runs_blue_white_red_and_clips():
    colours = diverging([-3.0, -2.0, 0.0, 2.0, 5.0], 2.0)
    assert colours.dtype == np.uint8
    assert colours.tolist() == [BLUE.tolist(), BLUE.tolist(), [255] * 3, RED.tolist(), RED.tolist()]
    assert (diverging([-1.0], 2.0)[0] > BLUE).all() and (diverging([1.0], 2.0)[0] < 255).any()


def test_the_colour_scale_beside_a_picture_runs_from_minus_to_plus_the_limit():
    picture = diverging(np.linspace(-1, 1, 40 * 30).reshape(40, 30), 1.0)
    canvas = beside_colour_scale(picture, 0.8, "weight")
    top, left = find(canvas, picture)
    bar = next(x for x in range(left + 30, canvas.shape[1])
               if (canvas[top, x] == RED).all())                # the top of the bar: +limit
    assert (canvas[top + 39, bar] == BLUE).all()                 # its bottom: −limit
    assert (canvas[top + 20, bar] > 240).all()                   # its middle: about 0, white
    assert inked(canvas[:, bar + 16:]).sum() > 20                # tick labels: −0.8 … 0.8


def test_the_pictures_of_a_model_have_titles_and_the_filters_a_shared_scale():
    X, _ = npae.datasets.load_digits()
    model = npae.VAE(64, hidden=(16,), latent=2, seed=0).built()
    recon = model_pictures.reconstructions(model, X[:32], (8, 8))
    assert recon.shape[0] > 4 * 98 and recon.shape[1] > 16 * 98
    assert inked(recon[:30]).sum() > 100                         # the title
    assert inked(recon[40:, :150]).sum() > 100                   # the row labels
    W = next(iter(model.params.values()))
    picture = model_pictures.filters(model, (8, 8), n=4)
    assert picture.ndim == 3 and inked(picture[:30]).sum() > 100
    limit = np.percentile(np.abs(W.T[:4]), 99)
    assert tuple(diverging(W[0, 0], limit)) in {tuple(c) for c in picture.reshape(-1, 3)}
    samples = model_pictures.samples(model, (8, 8), 3, seed=0)
    assert inked(samples[:30]).sum() > 100


@pytest.mark.parametrize("model, name, unit", [
    (npae.VAE(), "-ELBO", "nats"), (npae.VAE(objective="iwae", k=3), "-IWAE bound", "nats"),
    (npae.VAE(beta=4.0), "-ELBO (KL weighted by beta)", "nats"),
    (npae.Autoencoder(), "cross-entropy", "nats"), (npae.Autoencoder(loss="mse"), "squared error", "squared units"),
    (npae.Autoencoder(sparsity="l1", sparsity_weight=0.1), "cross-entropy + penalty", "nats"),
    (npae.Autoencoder(contractive_weight=0.1), "cross-entropy + penalty", "nats")])
def test_the_loss_is_named_with_its_unit(model, name, unit):
    assert (model_pictures.loss_name(model), model_pictures.loss_unit(model)) == (name, unit)


def test_pictures_of_standard_scaled_data_show_it_in_its_own_units():
    from npae.data.datasets import Dataset
    from npae.data.scaling import Standard
    raw = np.array([[0.0, 16.0], [8.0, 4.0]])
    scaling = Standard(np.array([4.0, 10.0]), np.array([4.0, 6.0]))
    data = Dataset(None, None, None, None, (1, 2), "t.csv", scaling=scaling)
    view = model_pictures.unscaled(data, (raw - scaling.mean) / scaling.std)
    np.testing.assert_allclose(view((raw - scaling.mean) / scaling.std), raw / 16)
    plain = data._replace(scaling=None)
    assert model_pictures.unscaled(plain, raw)(raw) is raw


def test_a_title_wider_than_its_picture_widens_the_canvas_and_the_picture_stays_whole():
    picture = np.zeros((20, 30))
    canvas = titled(picture, "a title much wider than thirty pixels")
    assert canvas.shape[1] >= 37 * 6 - 1 + 20
    top, left = find(canvas, as_rgb(picture))
    assert abs(left - (canvas.shape[1] - 30 - left)) <= 1  # in the middle
    columns = np.flatnonzero(inked(canvas[:top]).any(axis=0))
    assert columns.min() >= 5 and columns.max() <= canvas.shape[1] - 5  # not cut at the edges
