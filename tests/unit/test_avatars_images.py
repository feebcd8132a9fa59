"""Validation of upstream bodies: real images pass with the right type, the rest is refused."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from qqavatar.avatars.images import InvalidImage, media_type, transcode, validate


def encode(fmt: str, size: tuple[int, int] = (40, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(out, fmt)
    return out.getvalue()


@pytest.mark.parametrize(("fmt", "mime"), [
    ("JPEG", "image/jpeg"), ("PNG", "image/png"), ("GIF", "image/gif"),
    ("WEBP", "image/webp"), ("BMP", "image/bmp"),
])
def test_each_web_format_is_served_with_its_type(fmt: str, mime: str) -> None:
    info = validate(encode(fmt), mime)
    assert (info.content_type, info.format) == (mime, fmt.lower())
    assert (info.width, info.height, info.size) == (40, 40, 40)


def test_upstream_parameters_and_case_are_normalised() -> None:
    assert validate(encode("JPEG"), "Image/JPEG; charset=binary").content_type == "image/jpeg"


def test_a_wrong_image_type_is_corrected_from_the_decoded_format() -> None:
    info = validate(encode("PNG"), "image/jpeg")
    assert (info.content_type, info.format) == ("image/png", "png")


def test_size_is_the_larger_side() -> None:
    assert validate(encode("PNG", (30, 50)), "image/png").size == 50


@pytest.mark.parametrize("ctype", ["text/html", "application/octet-stream", "", None])
def test_a_non_image_content_type_is_refused_even_for_a_real_image(ctype: str | None) -> None:
    with pytest.raises(InvalidImage, match="not an image type"):
        validate(encode("JPEG"), ctype)


@pytest.mark.parametrize("body", [
    b"",
    b"this is not an image at all",
    b"<html><body>502</body></html>",
    b"\xff\xd8\xff\xe0" + bytes(5000),  # JPEG magic, then nothing valid
])
def test_garbage_is_refused(body: bytes) -> None:
    with pytest.raises(InvalidImage):
        validate(body, "image/jpeg")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_truncated_image_is_refused(fmt: str) -> None:
    whole = encode(fmt, (300, 300))
    with pytest.raises(InvalidImage):
        validate(whole[: len(whole) * 2 // 3], f"image/{fmt.lower()}")


def test_formats_browsers_do_not_show_are_refused() -> None:
    with pytest.raises(InvalidImage):
        validate(encode("TIFF"), "image/tiff")


def test_absurd_dimensions_are_refused_before_decoding() -> None:
    # A 1-bit PNG of 5000×5000 is small on the wire but would be big in memory.
    out = io.BytesIO()
    Image.new("1", (5000, 5000)).save(out, "PNG")
    assert len(out.getvalue()) < 100_000
    with pytest.raises(InvalidImage, match="over"):
        validate(out.getvalue(), "image/png")


def test_media_type() -> None:
    assert media_type(" IMAGE/PNG ;q=1") == "image/png"
    assert media_type(None) == ""


@pytest.mark.parametrize("body", [
    b"\x89PNG\r\n\x1a\n" + b"\x00" * 200,                       # magic bytes, then nothing
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
    b"\xff\xd8\xff\xe0" + b"\xff" * 300,                        # a JPEG that never starts
    b"GIF89a" + b"\x01" * 50,
])
def test_transcode_refuses_a_body_that_does_not_decode(body: bytes) -> None:
    # A copy read back from a cache tier passed only the magic-byte check (entrycheck.py).
    with pytest.raises(InvalidImage, match="cannot transcode"):
        transcode(body, "webp")
