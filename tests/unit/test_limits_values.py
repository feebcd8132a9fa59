"""Pure parts of members and limits: values, periods, password hashes (client addresses:
test_proxies)."""

from __future__ import annotations

import calendar
import hashlib

import pytest

from qqavatar.limits.limit_values import (
    clean_cidrs,
    clean_domains,
    clean_limit,
    host_of,
    split_list,
)
from qqavatar.limits.quota import periods_at
from qqavatar.members.passwords import hash_password, verify_password
from qqavatar.store.members import token_hash, username_key


@pytest.mark.parametrize(
    ("header", "host"),
    [
        ("example.com", "example.com"),
        ("Example.COM:8080", "example.com"),
        ("example.com.", "example.com"),
        ("127.0.0.1:8000", "127.0.0.1"),
        ("[::1]:8000", "::1"),
        ("[2001:DB8::1]", "2001:db8::1"),
        ("", ""),
    ],
)
def test_host_of(header: str, host: str) -> None:
    assert host_of(header) == host


def test_clean_domains() -> None:
    assert clean_domains(["API.Example.com.", "例子.cn", "[::1]", "127.0.0.1"]) == (
        "api.example.com", "xn--fsqu00a.cn", "::1", "127.0.0.1")
    assert clean_domains("a.com, b.com,a.com") == ("a.com", "b.com")  # one string, deduplicated
    for bad in ("http://a.com", "a.com:80", "a.com/x", "-a.com", "a..com", "*.a.com"):
        with pytest.raises(ValueError):
            clean_domains([bad])


def test_clean_cidrs() -> None:
    assert clean_cidrs(["10.1.2.3/8", "1.2.3.4", "2001:db8::/32"]) == (
        "10.0.0.0/8", "1.2.3.4/32", "2001:db8::/32")
    with pytest.raises(ValueError, match="not an IP address or CIDR network: 'nope'"):
        clean_cidrs(["nope"])
    with pytest.raises(ValueError, match="at most 100"):
        clean_cidrs([f"10.0.0.{i}" for i in range(101)])


def test_clean_limit_and_lists() -> None:
    assert clean_limit(0, "q") is None
    assert clean_limit(None, "q") is None
    assert clean_limit(5, "q") == 5
    with pytest.raises(ValueError, match="between 1 and 10"):
        clean_limit(11, "q", 10)
    with pytest.raises(ValueError):
        clean_limit(-1, "q")
    assert split_list(" none ") == []
    assert split_list("") == []
    assert split_list("a, ,b") == ["a", "b"]


def test_periods_are_china_standard_time() -> None:
    # 2026-11-30 15:59:59 UTC is 23:59:59 in Beijing; one second later it is December there.
    last = calendar.timegm((2026, 11, 30, 15, 59, 59))
    assert periods_at(last) == ("D2026-11-30", "M2026-11")
    assert periods_at(last + 1) == ("D2026-12-01", "M2026-12")


def test_password_hash_is_salted_scrypt() -> None:
    secret = hashlib.md5(b"123456").hexdigest()
    first, second = hash_password(secret), hash_password(secret)
    assert first.startswith("scrypt$16384$8$1$")
    assert first != second                       # a fresh salt each time
    assert secret not in first
    assert verify_password(secret, first) and verify_password(secret, second)
    assert not verify_password(secret.upper(), first)
    for broken in ("", "scrypt$1$2", "bcrypt$x$y$z$a$b", first.replace("scrypt", "md5")):
        assert not verify_password(secret, broken)


def test_names_and_tokens() -> None:
    assert username_key("Ａlice") == username_key("ALICE") == "alice"
    token = "ab" * 32
    assert token_hash(token) == token_hash(token.upper()) == hashlib.sha256(
        token.upper().encode()).hexdigest()
