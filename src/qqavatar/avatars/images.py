"""Is this upstream body really an image, which type it is served with, and transcoding it.

The functions here are CPU work on bytes (Pillow); callers run the big ones in a thread.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, features

# What browsers show in <img>; anything else from "qlogo" is not an avatar.
FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP")
# Avatars are at most 640 px (some 1080); the cap keeps a tiny PNG that claims to be
# 30000×30000 from making us allocate gigabytes while decoding it.
MAX_SIDE = 4096

# What `format=` may ask for: the web formats Pillow can write here. AVIF needs a Pillow
# built with libavif (the wheels since 11.3 are), so it is offered only when present.
OUTPUT_FORMATS: tuple[str, ...] = ("jpeg", "png", "webp") + (
    ("avif",) if features.check("avif") else ())
MEDIA_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif",
               "webp": "image/webp", "bmp": "image/bmp", "avif": "image/avif"}
# Encoder settings: visually lossless for avatars, and fast (a 640 px AVIF at speed 8
# takes tens of ms, at the default speed several hundred).
_SAVE_OPTIONS: dict[str, dict[str, object]] = {
    "jpeg": {"quality": 85},
    "png": {},
    "webp": {"quality": 85, "method": 4},
    "avif": {"quality": 70, "speed": 8},
}
_BACKGROUND = (255, 255, 255)  # what transparency becomes in a JPEG


class InvalidImage(ValueError):
    """The body is not an image we are willing to serve."""


@dataclass(frozen=True, slots=True)
class ImageInfo:
    content_type: str  # image/jpeg …
    format: str        # jpeg …, the key of MEDIA_TYPES
    width: int
    height: int

    @property
    def size(self) -> int:
        """The pixel size an avatar is known by: its larger side."""
        return max(self.width, self.height)


def media_type(content_type: str | None) -> str:
    """`Image/JPEG; charset=x` → `image/jpeg`."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def validate(body: bytes, content_type: str | None) -> ImageInfo:
    """What the image is, or raise `InvalidImage`.

    The upstream type must be `image/*`, and Pillow must decode the body in full (a
    header check alone would accept a truncated or garbage-filled JPEG). The type served
    is Pillow's for the format it found, which equals the upstream type whenever the two
    agree and corrects it when they don't.
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
    return ImageInfo(Image.MIME.get(found, declared), found.lower(), width, height)


def _for_format(img: Image.Image, fmt: str) -> Image.Image:
    """A mode the encoder takes, keeping transparency where the format has it."""
    transparent = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
    if fmt == "png" and img.mode in ("1", "L", "LA", "P", "RGB", "RGBA"):
        return img
    if fmt == "jpeg":
        if not transparent:
            return img if img.mode in ("L", "RGB") else img.convert("RGB")
        rgba = img.convert("RGBA")
        flat = Image.new("RGB", rgba.size, _BACKGROUND)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return img.convert("RGBA" if transparent else "RGB")


def transcode(body: bytes, fmt: str) -> bytes:
    """`body` re-encoded as `fmt` (one of OUTPUT_FORMATS); an animated GIF becomes its first
    frame. `InvalidImage` when `body` does not decode: a copy read back from a cache tier
    passed only the checks that need no decoding (entrycheck.py)."""
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"cannot write {fmt!r}; this Pillow writes {OUTPUT_FORMATS}")
    try:
        with Image.open(io.BytesIO(body), formats=FORMATS) as img:
            img.seek(0)
            img.load()
            return encode(img, fmt)
    except Exception as exc:  # noqa: BLE001 — decoders of untrusted bytes raise all sorts
        raise InvalidImage(f"Pillow cannot transcode it: {exc!r}"[:200]) from None


def encode(img: Image.Image, fmt: str) -> bytes:
    """`img` written as `fmt` (one of OUTPUT_FORMATS) with our encoder settings."""
    out = io.BytesIO()
    _for_format(img, fmt).save(out, fmt.upper(), **_SAVE_OPTIONS[fmt])
    return out.getvalue()


def load_codecs() -> None:
    """Import now the Pillow plugins the first avatars would: a tiny image of every format we
    read is written and validated (they are imported on first use otherwise, costing that
    request ~20 ms and the process its memory only later)."""
    for name in FORMATS:
        out = io.BytesIO()
        Image.new("RGB", (1, 1)).save(out, name)
        validate(out.getvalue(), MEDIA_TYPES[name.lower()])
