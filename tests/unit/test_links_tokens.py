"""Private link tokens: sealing, opening, and everything that must not open."""

from __future__ import annotations

import base64

import pytest

from qqavatar.links.tokens import (
    KEY_ID_BYTES,
    LinkKey,
    LinkTarget,
    split_token,
)
from qqavatar.links.urls import link_url, public_base, split_name
from qqavatar.settings import Settings

APP = "0123456789ABCDEF0123456789ABCDEF"
OTHER_APP = "FEDCBA9876543210FEDCBA9876543210"


def user(qq: str, size: str = "100", **extra: str) -> LinkTarget:
    return LinkTarget.of("user", {"qq": qq, "size": size, **extra})


def open_token(key: LinkKey, app_key: str, token: str) -> LinkTarget | None:
    parts = split_token(token)
    if parts is None or parts.key_id != key.key_id:
        return None
    return key.unseal(app_key, parts.raw)


def number_spellings(number: str) -> list[str]:
    """What an attacker would try: the number as decimal, hex, and base64 of its text."""
    raw = number.encode()
    spellings = [number, format(int(number), "x"), format(int(number), "X")]
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode()
        spellings += [text, text.rstrip("=")]
    return spellings


@pytest.fixture
def key() -> LinkKey:
    return LinkKey.generate()


@pytest.mark.parametrize("target", [
    user("10001"),
    user("376741929", "640"),
    user("999999999999", "40", format="webp", default="identicon"),
    LinkTarget.of("group", {"group": "123456789", "size": "140"}),
])
def test_round_trip(key: LinkKey, target: LinkTarget) -> None:
    token = key.seal(APP, target)
    assert open_token(key, APP, token) == target


def test_same_inputs_same_token_and_key_id_prefix(key: LinkKey) -> None:
    first, second = key.seal(APP, user("376741929")), key.seal(APP, user("376741929"))
    assert first == second
    # The key id is the same for all of one key's tokens, and says nothing else.
    other = key.seal(APP, user("376741920"))
    assert other != first
    assert split_token(other).key_id == split_token(first).key_id == key.key_id  # type: ignore[union-attr]
    assert len(key.key_id) == KEY_ID_BYTES


def test_other_key_other_token_and_no_opening(key: LinkKey) -> None:
    other = LinkKey.generate()
    token = key.seal(APP, user("376741929"))
    assert other.seal(APP, user("376741929")) != token
    assert other.key_id != key.key_id
    assert other.unseal(APP, split_token(token).raw) is None  # type: ignore[union-attr]


def test_app_key_is_bound(key: LinkKey) -> None:
    token = key.seal(APP, user("376741929"))
    assert open_token(key, OTHER_APP, token) is None
    assert key.seal(OTHER_APP, user("376741929")) != token


def test_key_derivation_is_stable() -> None:
    secret = bytes(range(32))
    assert LinkKey(secret).seal(APP, user("10001")) == LinkKey(secret).seal(APP, user("10001"))
    with pytest.raises(ValueError, match="32 bytes"):
        LinkKey(secret[:31])


def test_every_changed_character_fails(key: LinkKey) -> None:
    token = key.seal(APP, user("376741929"))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for position, char in enumerate(token):
        for replacement in (alphabet[(alphabet.index(char) + 1) % 64],
                            alphabet[(alphabet.index(char) + 32) % 64], "=", "."):
            changed = token[:position] + replacement + token[position + 1:]
            assert open_token(key, APP, changed) is None, (position, replacement)


def test_every_flipped_bit_fails(key: LinkKey) -> None:
    raw = split_token(key.seal(APP, user("376741929"))).raw  # type: ignore[union-attr]
    for index in range(len(raw)):
        for bit in range(8):
            flipped = bytearray(raw)
            flipped[index] ^= 1 << bit
            assert key.unseal(APP, bytes(flipped)) is None, (index, bit)


def test_truncated_or_extended_fails(key: LinkKey) -> None:
    token = key.seal(APP, user("376741929"))
    for cut in range(len(token)):
        assert open_token(key, APP, token[:cut]) is None, cut
    for extra in ("A", "AA", "AAAA", "=", "=="):
        assert open_token(key, APP, token + extra) is None, extra


def test_non_canonical_spellings_fail(key: LinkKey) -> None:
    token = key.seal(APP, user("376741929"))
    assert open_token(key, APP, token + "=" * (-len(token) % 4)) is None  # padded
    as_standard = token.replace("-", "+").replace("_", "/")
    if as_standard != token:
        assert open_token(key, APP, as_standard) is None
    assert open_token(key, APP, " " + token) is None
    assert split_token("Ａ" * 8) is None  # non-ASCII


def test_tokens_have_one_length_whatever_the_number(key: LinkKey) -> None:
    lengths = {len(key.seal(APP, user(qq, size, **extra)))
               for qq in ("10001", "123456789012")
               for size in ("40", "640")
               for extra in ({}, {"format": "jpeg", "default": "identicon"})}
    assert len(lengths) == 1


@pytest.mark.parametrize("number", ["10001", "376741929", "123456789012", "2851776554"])
def test_no_spelling_of_the_number_or_app_key_in_the_token(key: LinkKey, number: str) -> None:
    token = key.seal(APP, user(number))
    url = link_url("https://avatar.example.com", token, user(number))
    for spelling in number_spellings(number):
        assert spelling not in url, spelling
    app_key_b64 = base64.b64encode(APP.encode()).decode()
    for spelling in (APP, APP.lower(), app_key_b64, app_key_b64.rstrip("=")):
        assert spelling not in url


def test_target_rejects_unusable_text() -> None:
    with pytest.raises(ValueError):
        LinkTarget.of("user", {"qq": "1\x1f2"})
    with pytest.raises(ValueError):
        LinkTarget.of("user", {"a=b": "1"})
    assert user("10001", format="png").get("format") == "png"
    assert user("10001").get("format") is None


def test_urls() -> None:
    target = user("10001", format="png")
    assert link_url("https://a.example", "TOKEN", target) == "https://a.example/a/TOKEN.png"
    assert link_url("", "TOKEN", user("10001")) == "/a/TOKEN"
    assert split_name("TOKEN.png") == ("TOKEN", "png")
    assert split_name("TOKEN") == ("TOKEN", None)
    assert split_name("TOKEN.") == ("TOKEN", "")
    assert split_name("TOKEN.png.jpg") == ("TOKEN", "png.jpg")


ALLOWED = ("avatar.example.com", "cdn.example.com:8443")


@pytest.mark.parametrize(("configured", "allowed", "scheme", "host", "server", "expected"), [
    ("https://cdn.example.com/avatars", ALLOWED, "http", "evil.example", ("127.0.0.1", 80),
     "https://cdn.example.com/avatars"),
    (None, ALLOWED, "https", "cdn.example.com:8443", None, "https://cdn.example.com:8443"),
    (None, ALLOWED, "http", "AVATAR.example.com", None, "http://avatar.example.com"),
    # A Host not in the list gets the first listed name, never itself.
    (None, ALLOWED, "http", "evil.example", None, "http://avatar.example.com"),
    (None, ALLOWED, "http", None, None, "http://avatar.example.com"),
    # No list: the address the connection reached, whatever the Host says.
    (None, (), "http", "evil.example", ("127.0.0.1", 8000), "http://127.0.0.1:8000"),
    (None, (), "https", "evil.example", ("::1", 8443), "https://[::1]:8443"),
    (None, (), "http", "evil.example", "127.0.0.2:9000", "http://127.0.0.2:9000"),
    (None, (), "http", "evil.example", "[::1]:9000", "http://[::1]:9000"),
    (None, (), "http", "evil.example", None, None),
    (None, (), "http", "evil.example", "nonsense", None),
])
def test_public_base(configured: str | None, allowed: tuple[str, ...], scheme: str,
                     host: str | None, server: tuple[str, int] | str | None,
                     expected: str | None) -> None:
    assert public_base(configured, allowed, scheme, host, server) == expected


@pytest.mark.parametrize(("given", "expected"), [
    ("Avatar.Example.com, cdn.example.com:8443,", "avatar.example.com,cdn.example.com:8443"),
    ("[::1]:8000", "[::1]:8000"),
    ("", ""),
])
def test_allowed_hosts_setting(given: str, expected: str) -> None:
    assert Settings(allowed_hosts=given).allowed_hosts == expected


@pytest.mark.parametrize("given", ["evil.example/x", "a b", "user@evil.example", "a:b"])
def test_allowed_hosts_setting_rejects(given: str) -> None:
    with pytest.raises(Exception, match="not a host"):  # ConfigError, via qqavatar.config
        Settings(allowed_hosts=given)


@pytest.mark.parametrize(("given", "expected"), [
    ("https://avatar.example.com/", "https://avatar.example.com"),
    ("http://127.0.0.1:8000/base/", "http://127.0.0.1:8000/base"),
    ("", None),
])
def test_public_url_setting(given: str, expected: str | None) -> None:
    assert Settings(public_url=given).public_url == expected


@pytest.mark.parametrize("given", ["ftp://a.example", "avatar.example.com", "https://a.example/?x=1"])
def test_public_url_setting_rejects(given: str) -> None:
    with pytest.raises(Exception, match="not an http"):  # ConfigError, via qqavatar.config
        Settings(public_url=given)
