"""`default=identicon`: a deterministic picture for a number that has no avatar of its own.

A 5×5 grid, mirrored left to right, of cells switched on by bits of a hash of the number,
in one colour picked by the same hash, on a light background (the GitHub look). The same
number always gets the same picture, at any size, in any format.
"""

from __future__ import annotations

import colorsys
import hashlib

from PIL import Image

from .images import encode

GRID = 5
BACKGROUND = (240, 240, 240)


def pattern(seed: str) -> tuple[tuple[int, int, int], list[list[bool]]]:
    """The colour and the GRID×GRID cells (rows of columns) for `seed`."""
    digest = hashlib.blake2b(seed.encode(), digest_size=16).digest()
    hue = int.from_bytes(digest[0:2], "big") / 65536
    lightness = 0.45 + digest[2] / 255 * 0.15
    saturation = 0.5 + digest[3] / 255 * 0.3
    red, green, blue = colorsys.hls_to_rgb(hue, lightness, saturation)
    colour = (round(red * 255), round(green * 255), round(blue * 255))
    bits = int.from_bytes(digest[4:8], "big")
    half = (GRID + 1) // 2  # columns 0..2; 3 and 4 mirror 1 and 0
    cells = [[False] * GRID for _ in range(GRID)]
    for row in range(GRID):
        for col in range(half):
            on = bool(bits >> (row * half + col) & 1)
            cells[row][col] = cells[row][GRID - 1 - col] = on
    return colour, cells


def render(seed: str, size: int, fmt: str) -> bytes:
    """The identicon for `seed`, `size`×`size` pixels, encoded as `fmt`."""
    colour, cells = pattern(seed)
    grid = Image.new("RGB", (GRID, GRID), BACKGROUND)
    for row, line in enumerate(cells):
        for col, on in enumerate(line):
            if on:
                grid.putpixel((col, row), colour)
    cell = max(1, (size - 2 * (size // 10)) // GRID)  # a margin of about a tenth each side
    inner = grid.resize((cell * GRID, cell * GRID), Image.Resampling.NEAREST)
    img = Image.new("RGB", (size, size), BACKGROUND)
    offset = (size - cell * GRID) // 2
    img.paste(inner, (offset, offset))
    return encode(img, fmt)
