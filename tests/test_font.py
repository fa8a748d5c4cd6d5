"""Tests of npae.font: every glyph distinct, text inside its measured box."""
import string

import numpy as np

from npae.pictures.font import draw_text, text_size

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


