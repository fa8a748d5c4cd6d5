"""A bitmap font: 5 × 9 glyphs for the digits, the Latin letters and common signs.

Enough to label plots and pictures without a font library. Each glyph is 5 pixels wide
and up to 9 rows tall (7 above the baseline, 2 for the descenders of g j p q y).
"""
import numpy as np

__all__ = ["text_size", "draw_text", "GLYPH_WIDTH", "GLYPH_HEIGHT"]

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
