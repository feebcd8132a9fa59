"""Every relative link in README.md and docs/*.md leads somewhere: the file exists and, for
a markdown page, so does the heading its `#anchor` names (GitHub's way of making anchors).
Links inside code blocks and inline code are not links; web addresses are not checked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto: …


def prose(text: str) -> str:
    """The text without fenced code blocks and inline code."""
    return _CODE.sub("", _FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but `-` and `_` dropped, each
    space a `-` (`## 1. \\`_auth\\` as a sign oracle` → `1-_auth-as-a-sign-oracle`)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors of a page's headings; repeated ones get `-1`, `-2` … as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for heading in _HEADING.findall(_FENCE.sub("", text)):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in _LINK.findall(prose(page.read_text(encoding="utf-8"))):
        if _EXTERNAL.match(target):
            continue
        path_part, _, anchor = target.partition("#")
        destination = (page.parent / path_part).resolve() if path_part else page
        if not destination.exists():
            broken.append(f"{target}: no such file")
        elif anchor and destination.suffix == ".md" \
                and anchor not in anchors(destination.read_text(encoding="utf-8")):
            broken.append(f"{target}: no heading makes #{anchor}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page: Path) -> None:
    assert broken_links(page) == []


def test_the_check_sees_a_broken_file_and_a_broken_anchor(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other\n\n## 1. `_auth` as a sign oracle\n\n## A\n## A\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n[fine](other.md#1-_auth-as-a-sign-oracle) [fine](other.md#a-1) [here](#page)\n"
        "[gone](missing.md) [bad anchor](other.md#nothing) [web](https://example.com/x.md)\n"
        "`[code](nowhere.md)`\n\n```\n[block](nowhere.md)\n```\n")
    assert broken_links(page) == ["missing.md: no such file",
                                  "other.md#nothing: no heading makes #nothing"]


def test_slug_follows_github() -> None:
    assert slug("Signing and `_auth`") == "signing-and-_auth"
    assert slug("12. The YesApi signature") == "12-the-yesapi-signature"
    assert slug("Statistics and the dashboard") == "statistics-and-the-dashboard"
