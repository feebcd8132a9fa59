"""Is this upstream body really an image, and which Content-Type should it be served with."""

from __future__ import annotations

import io

from PIL import Image

# What browsers show in <img>; anything else from "qlogo" is not an avatar.
FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP")
# Avatars are at most 640 px (some 1080); the cap keeps a tiny PNG that claims to be
# 30000×30000 from making us allocate gigabytes while decoding it.
MAX_SIDE = 4096


class InvalidImage(ValueError):
    """The body is not an image we are willing to serve."""


def media_type(content_type: str | None) -> str:
    """`Image/JPEG; charset=x` → `image/jpeg`."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def validate(body: bytes, content_type: str | None) -> str:
    """The Content-Type to serve `body` with, or raise `InvalidImage`.

    The upstream type must be `image/*`, and Pillow must decode the body in full (a
    header check alone would accept a truncated or garbage-filled JPEG). The answer is
    Pillow's type for the format it found, which equals the upstream type whenever the
    two agree and corrects it when they don't.
    """
    declared = media_type(content_type)
    if not declared.startswith("image/"):
        raise InvalidImage(f"Content-Type {content_type!r} is not an image type")
    try:
        with Image.open(io.BytesIO(body), formats=FORMATS) as img:
            width, height = img.size
            if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
                raise InvalidImage(f"image is {width}x{height}, over {MAX_SIDE}px")
            found = img.format or ""
            if found == "JPEG":
                img.draft(img.mode, (1, 1))  # decode at 1/8 scale: every block still parsed
            img.load()
    except InvalidImage:
        raise
    except Exception as exc:  # noqa: BLE001 — decoders of untrusted bytes raise all sorts
        raise InvalidImage(f"Pillow cannot decode it: {exc!r}"[:200]) from None
    return Image.MIME.get(found, declared)
