"""`format` (transcoding), `default` (404, identicon) and their parameter rule.

Every produced image is decoded with Pillow: right format, right size, same picture.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from PIL import Image, ImageChops, ImageStat, features

from qqavatar.avatars import OUTPUT_FORMATS, AvatarService, NoAvatar
from qqavatar.avatars.identicon import GRID, pattern, render
from qqavatar.avatars.images import transcode
from qqavatar.fakeqlogo import RunningFake, avatar_bytes, penguin_bytes, spawn
from qqavatar.protocol.avatar_errors import failure_answer
from qqavatar.protocol.avatar_rules import DEFAULT, FORMAT, Choice
from qqavatar.protocol.errors import ApiError
from tests.unit.avatars_support import Clock, run, until_settled

P = "客户端非法请求："


@pytest.fixture(scope="module")
def fake() -> Iterator[RunningFake]:
    with spawn() as running:
        yield running


@pytest.fixture(autouse=True)
def _clean_fake(fake: RunningFake) -> None:
    fake.reset()


def decode(body: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(body))
    img.load()
    return img


def difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel, 0..255."""
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    return sum(ImageStat.Stat(diff).mean) / 3


# --- transcoding -----------------------------------------------------------------------


def test_avif_is_offered_exactly_when_pillow_writes_it() -> None:
    assert OUTPUT_FORMATS[:3] == ("jpeg", "png", "webp")
    assert ("avif" in OUTPUT_FORMATS) == features.check("avif")


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
@pytest.mark.parametrize("number", ["10001", "10005"])  # a JPEG and a PNG original
def test_transcoding_keeps_the_picture(fmt: str, number: str) -> None:
    original = avatar_bytes("user", number, 0, 140)
    out = decode(transcode(original, fmt))
    assert out.format == fmt.upper()
    assert out.size == (140, 140)
    assert difference(out, decode(original)) < 4  # lossy formats: close, not equal


def test_transparency_becomes_white_in_jpeg_and_stays_in_png() -> None:
    img = Image.new("RGBA", (20, 20), (255, 0, 0, 0))
    img.paste((0, 0, 255, 255), (5, 5, 15, 15))
    buffer = io.BytesIO()
    img.save(buffer, "PNG")
    jpeg = decode(transcode(buffer.getvalue(), "jpeg"))
    assert jpeg.mode == "RGB"
    red, green, blue = jpeg.getpixel((1, 1))  # type: ignore[misc]
    assert min(red, green, blue) > 240
    webp = decode(transcode(buffer.getvalue(), "webp"))
    assert webp.mode == "RGBA" and webp.getpixel((1, 1))[3] == 0  # type: ignore[index]


def test_a_format_pillow_cannot_write_is_refused() -> None:
    with pytest.raises(ValueError):
        transcode(avatar_bytes("user", "10001", 0, 40), "tiff")


def test_a_transcoded_avatar_is_served_and_cached_by_format(fake: RunningFake) -> None:
    async def test(svc: AvatarService) -> None:
        served = await svc.fetch("user", "10001", 100, "webp")
        webp = served.avatar
        assert served.cache == "MISS"
        assert (webp.content_type, webp.format, webp.size) == ("image/webp", "webp", 100)
        assert decode(webp.body).format == "WEBP"
        assert svc.cached("user", "10001", 100, "webp") is webp
        again = await svc.fetch("user", "10001", 100, "webp")
        assert again.avatar is webp and again.cache == "HIT"
        png = await svc.get("user", "10001", 100, "png")
        assert decode(png.body).format == "PNG" and png.etag != webp.etag
        # The original's own format is the original, not a copy.
        jpeg = await svc.get("user", "10001", 100, "jpeg")
        assert jpeg.body == avatar_bytes("user", "10001", 0, 100)
        assert svc.cached("user", "10001", 100, "jpeg") is svc.cached("user", "10001", 100)
        assert webp.modified_at == jpeg.modified_at

    run(fake, test)
    assert fake.count("user", "10001", 100) == 1  # one upstream fetch for every format


def test_a_transcoded_copy_follows_its_original(fake: RunningFake,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)

    async def test(svc: AvatarService) -> None:
        old = await svc.get("user", "10002", 40, "png")
        clock.advance(60)
        fake.fault("change")
        stale = await svc.fetch("user", "10002", 40, "png")
        assert (stale.cache, stale.avatar) == ("STALE", old)
        fresh = await until_settled(svc, "user", "10002", 40, "png")
        assert fresh.cache == "REVALIDATED"
        assert fresh.avatar.etag != old.etag
        assert difference(decode(fresh.avatar.body),
                          decode(avatar_bytes("user", "10002", 1, 40))) < 1
        assert svc.cached("user", "10002", 40, "png") is fresh.avatar

    run(fake, test, ttl=60)


def test_default_images_are_transcoded_too(fake: RunningFake) -> None:
    a = run(fake, lambda s: s.get("user", "10000", 100, "png"))
    assert a.is_default and a.content_type == "image/png"
    assert difference(decode(a.body), decode(penguin_bytes(100))) < 1


# --- default=404 -----------------------------------------------------------------------


def test_default_404_refuses_a_number_without_an_avatar(fake: RunningFake) -> None:
    async def test(svc: AvatarService) -> None:
        for kind, text in (("user", "该QQ号没有设置头像"), ("group", "该QQ群没有设置头像")):
            with pytest.raises(NoAvatar) as refused:
                await svc.fetch(kind, "10000", 100, "", "404")
            answer = failure_answer(refused.value)
            assert (answer.err_code, answer.err_msg, answer.http_status) == (1, text, 404)
            assert refused.value.cache == "MISS"
        with pytest.raises(NoAvatar) as again:
            await svc.fetch("user", "10000", 100, "", "404")
        assert (again.value.cache, again.value.upstream_fetch) == ("HIT", False)
        assert svc.cached("user", "10000", 100, "", "404") is None
        assert (await svc.get("user", "10000", 100)).is_default  # default=qq unchanged
        assert not (await svc.get("user", "10001", 100, "", "404")).is_default

    run(fake, test)
    assert fake.count("user", "10000", 100) == 1


# --- default=identicon -----------------------------------------------------------------


def test_an_identicon_is_symmetric_and_deterministic() -> None:
    colour, cells = pattern("user:10000")
    assert pattern("user:10000") == (colour, cells)
    assert pattern("user:10010") != (colour, cells)
    assert pattern("group:10000") != (colour, cells)
    assert all(row == row[::-1] for row in cells)
    img = decode(render("user:10000", 100, "png"))
    assert (img.format, img.size) == ("PNG", (100, 100))
    assert render("user:10000", 100, "png") == render("user:10000", 100, "png")
    # Each cell of the picture has the colour its bit says.
    cell, offset = (100 - 2 * 10) // GRID, (100 - (100 - 2 * 10) // GRID * GRID) // 2
    for row in range(GRID):
        for col in range(GRID):
            centre = (offset + col * cell + cell // 2, offset + row * cell + cell // 2)
            expected = colour if cells[row][col] else (240, 240, 240)
            assert img.convert("RGB").getpixel(centre) == expected


@pytest.mark.parametrize("size", [40, 100, 140, 640])
def test_identicons_come_in_every_size(size: int) -> None:
    assert decode(render("user:10000", size, "png")).size == (size, size)


def test_default_identicon_for_a_number_without_an_avatar(fake: RunningFake) -> None:
    async def test(svc: AvatarService) -> None:
        served = await svc.fetch("user", "10000", 140, "", "identicon")
        icon = served.avatar
        assert served.cache == "MISS"
        assert icon.body == render("user:10000", 140, "png")
        assert (icon.content_type, icon.size, icon.is_default) == ("image/png", 140, True)
        assert svc.cached("user", "10000", 140, "", "identicon") is icon
        webp = await svc.get("user", "10000", 140, "webp", "identicon")
        assert webp.body == render("user:10000", 140, "webp")
        other = await svc.get("user", "10010", 140, "", "identicon")
        assert other.body != icon.body
        real = await svc.get("user", "10001", 140, "", "identicon")  # has its own avatar
        assert real.body == avatar_bytes("user", "10001", 0, 140)

    run(fake, test)


# --- the parameter rule ----------------------------------------------------------------


def test_format_rule_accepts_the_formats_and_refuses_the_rest() -> None:
    for fmt in OUTPUT_FORMATS:
        assert FORMAT.apply({"format": fmt}) == fmt
    assert FORMAT.apply({}) is None
    options = "/".join(OUTPUT_FORMATS)
    for bad in ("gif", "JPEG", "", "jpg"):
        with pytest.raises(ApiError) as refused:
            FORMAT.apply({"format": bad})
        assert refused.value.ret == 400
        assert refused.value.msg == f"{P}参数format应该为：{options}，但现在format = {bad}"


def test_default_rule_compares_loosely_as_php_does() -> None:
    assert DEFAULT.apply({}) == "qq"
    assert DEFAULT.apply({"default": "404"}) == "404"
    assert DEFAULT.apply({"default": "404.0"}) == "404"  # in_array: numeric strings as numbers
    assert DEFAULT.apply({"default": " 404"}) == "404"
    with pytest.raises(ApiError) as refused:
        DEFAULT.apply({"default": "mm"})
    assert refused.value.msg == f"{P}参数default应该为：qq/404/identicon，但现在default = mm"


def test_choice_echoes_at_most_32_characters() -> None:
    rule = Choice("x", options=("a",))
    with pytest.raises(ApiError) as refused:
        rule.apply({"x": "y" * 100})
    assert refused.value.msg.endswith("x = " + "y" * 32)
