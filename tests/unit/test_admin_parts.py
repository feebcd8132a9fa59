"""Pure parts of the dashboard: SVG charts and session tokens."""

from __future__ import annotations

import re

import pytest

from qqavatar.web.admin import auth, charts


@pytest.mark.parametrize(("value", "ceiling"), [
    (0, 1), (-3, 1), (0.3, 0.5), (1, 1), (7, 10), (11, 20), (240, 250), (2600, 5000),
])
def test_nice_ceiling(value: float, ceiling: float) -> None:
    assert charts.nice_ceiling(value) == pytest.approx(ceiling)


def test_bar_chart_scales_bars_and_escapes_text() -> None:
    svg = charts.bar_chart("<b>calls</b>", ["11-27", "<i>"], [50, 100])
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "<b>" not in svg and "&lt;b&gt;calls" in svg and "&lt;i&gt;" in svg
    heights = [float(h) for h in re.findall(r'class="bar"[^>]*height="([\d.]+)"', svg)]
    assert heights == [pytest.approx(charts.PLOT_H / 2), pytest.approx(charts.PLOT_H)]
    assert 'style=' not in svg  # a strict CSP forbids inline styles


def test_line_chart_leaves_gaps_for_missing_days() -> None:
    series = charts.Series("p50", [1.0, None, 3.0, 4.0], "#000")
    svg = charts.line_chart("latency", ["a", "b", "c", "d"], [series])
    assert svg.count("<circle") == 3
    assert svg.count("<polyline") == 1  # one segment of two points; the lone point has none
    empty = charts.line_chart("nothing", ["a"], [charts.Series("x", [None], "#000")])
    assert "<circle" not in empty and "<polyline" not in empty


def test_axis_formats() -> None:
    assert charts.number(1234) == "1.23k" and charts.number(7) == "7"
    assert charts.percent(0.25) == "25%"
    assert charts.milliseconds(12.5) == "12.5ms" and charts.milliseconds(2500) == "2.5s"


def test_sessions_expire_and_cannot_be_forged() -> None:
    session = auth.new_session("token", now=1000)
    assert auth.session_valid("token", session, now=1000 + auth.SESSION_SECONDS - 1)
    assert not auth.session_valid("token", session, now=1000 + auth.SESSION_SECONDS)
    assert not auth.session_valid("other token", session, now=1000)
    assert auth.new_session("token", now=1000) != session  # a nonce per sign-in
    expires, nonce, mac = session.split(".")
    assert not auth.session_valid("token", f"{int(expires) + 10}.{nonce}.{mac}", now=1000)
    assert not auth.session_valid("token", None) and not auth.session_valid("token", "x")
    assert auth.csrf_token("token", session) != auth.csrf_token("token", session + "0")
