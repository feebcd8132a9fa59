"""Every page and dashboard route, fuzzed (issue 21): hostile path parameters, query
strings, form bodies and headers, signed in (a real session with its CSRF token) or not.
Whatever arrives, the answer is not a 5xx, carries no traceback, and the server's log
holds none. The routes are read from the route table, so a new page is fuzzed too.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Mount, Route

from qqavatar.web.routes import ROUTES
from tests.server_fixture import RunningServer

TOKEN = "fuzzing-admin-token-0123456789abcdefgh"


def _endpoints() -> list[tuple[str, str]]:
    """(method, path template) of every page route; a mount as `{path}` under it."""
    found: list[tuple[str, str]] = []
    for route in ROUTES:
        if isinstance(route, Mount):
            found += [("GET", route.path + "/{path}")]
        elif isinstance(route, Route):
            found += [(method, route.path) for method in sorted(route.methods or ())
                      if method != "HEAD"]
    return found


ENDPOINTS = _endpoints()
HOSTILE = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["", "0", "-1", "²", "①", "٣", "1e3", "0x10", " 7", "7 ", "null",
                     "http://[", "http://[zz]", "http://a]", "%ff", "%00", "\x00", "\u2028",
                     "..", "../..", "A" * 32, "<script>", '"}', "\ud800", "NaN", "Infinity"]),
    st.integers(min_value=4290, max_value=4400).map(lambda n: "9" * n),
    st.text(min_size=1000, max_size=3000),
)
QUERY_NAMES = st.sampled_from(["days", "app", "code", "done", "name", "token", "csrf", "s",
                               "qq", "size", "x", ""])
FORM_NAMES = st.sampled_from(["token", "csrf", "name", "sign_required", "daily_quota",
                              "monthly_quota", "rate_limit", "ip_allow", "domains", "x"])
HEADER_VALUES = st.one_of(
    st.sampled_from(["http://[", "http://[zz]", "http://a]", "null", "", "https://evil.example",
                     "Bearer", "Bearer " + "x" * 4000, "bearer  ", "1.2.3.4, unknown",
                     "https", "gopher"]),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=80),
)
HEADERS = st.dictionaries(
    st.sampled_from(["Origin", "Authorization", "X-Forwarded-For", "X-Forwarded-Proto",
                     "Cookie", "Referer", "Accept"]),
    HEADER_VALUES, max_size=4)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory,
         fake_qlogo: Any) -> Generator[RunningServer, None, None]:
    running = RunningServer(tmp_path_factory.mktemp("fuzz-pages"), fake_qlogo.url,
                            {"QQAVATAR_ADMIN_TOKEN": TOKEN, "QQAVATAR_DEMO": "1",
                             "QQAVATAR_TRUSTED_PROXIES": "127.0.0.1/32"})
    yield running
    running.stop()


@pytest.fixture(scope="module")
def session(site: RunningServer) -> dict[str, str]:
    """A signed-in session's cookie and CSRF token, and a real app key."""
    key = site.create_app("fuzzed")["app_key"]
    with httpx.Client(base_url=site.url, timeout=10) as browser:
        assert browser.post("/admin/login", data={"token": TOKEN}).status_code == 303
        page = browser.get("/admin").text
        match = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
        assert match, page
        return {"cookie": browser.cookies["qqavatar_admin"], "csrf": match.group(1),
                "app_key": key}


def _fill(template: str, value: str, app_key: str, real_key: bool) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(1) == "app_key" and real_key:
            return app_key
        # a `path` parameter may carry slashes; the others one segment
        return quote(value, safe="/" if ":path" in match.group(0) else "")
    return re.sub(r"\{(\w+)(?::\w+)?\}", replace, template)


@given(endpoint=st.sampled_from(ENDPOINTS), value=HOSTILE, real_key=st.booleans(),
       query=st.dictionaries(QUERY_NAMES, HOSTILE, max_size=4),
       form=st.dictionaries(FORM_NAMES, HOSTILE, max_size=6), headers=HEADERS,
       signed=st.booleans(), with_csrf=st.booleans())
@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_no_page_answers_a_server_error(site: RunningServer, session: dict[str, str],
                                        endpoint: tuple[str, str], value: str, real_key: bool,
                                        query: dict[str, str], form: dict[str, str],
                                        headers: dict[str, str], signed: bool,
                                        with_csrf: bool) -> None:
    method, template = endpoint
    path = _fill(template, value, session["app_key"], real_key)
    # the back-off would soon answer every sign-in 429: spread guesses over addresses
    headers = {"X-Forwarded-For": f"198.18.{len(value) % 250}.{len(form) + 1}", **headers}
    cookies = {"qqavatar_admin": session["cookie"]} if signed else {}
    if with_csrf and method == "POST":
        form = {**form, "csrf": session["csrf"]}
    with httpx.Client(base_url=site.url, timeout=20, cookies=cookies) as client:
        try:
            reply = client.request(method, path, params=query,
                                   data=form if method == "POST" else None, headers=headers)
        except (httpx.InvalidURL, UnicodeEncodeError, httpx.LocalProtocolError):
            return  # httpx would not send it: nothing reached the server
    assert reply.status_code < 500, (method, path[:100], reply.status_code, reply.text[:300])
    assert b"Traceback" not in reply.content


def test_the_log_holds_no_traceback(site: RunningServer, session: dict[str, str]) -> None:
    """Runs after the property test (file order): what the fuzzing left in the log."""
    output = site.output()
    assert "Traceback" not in output and '"exc":' not in output, output[-4000:]
