"""The dashboard's pages and form actions (HTML), and its JSON endpoints under /admin/api.

Pages are server-rendered Jinja2 with inline SVG charts and plain forms: the dashboard
works without JavaScript, and its Content-Security-Policy allows none.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from ...components import Runtime
from ...limits.limit_values import MAX_QUOTA
from ...protocol.numbers import client_int
from ...proxies import client_bucket, request_client
from ...stats.days import day_of
from ...stats.queries import DaySummary, StatsQueries, Usage
from ...store.apps import AppRecord, AppStore
from ...store.db import StoreUnavailable
from ..bearer import bearer_is, tokens_equal
from . import access, auth, charts
from .throttle import SignInThrottle

log = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = "数据库暂时不可用，请稍后重试 (database unavailable: try again shortly)"
DAY_CHOICES = (7, 30, 90)
DEFAULT_DAYS = 30
MAX_API_DAYS = 3660
_APP_KEY = re.compile(r"[0-9A-F]{32}")
_LIST_SEPARATORS = re.compile(r"[\s,;]+")

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}

templates = Jinja2Templates(env=Environment(
    loader=PackageLoader("qqavatar.web.admin", "templates"),
    autoescape=select_autoescape(default=True),
))

Page = Callable[[Request], Awaitable[Response]]


def not_found() -> Response:
    return Response("Not Found", status_code=404, media_type="text/plain")


def dashboard_off(request: Request) -> Response:
    """What every /admin path answers while no token is configured: a page (or, under
    /admin/api, JSON) that says how to turn the dashboard on."""
    if request.url.path.startswith("/admin/api/"):
        return _secured(JSONResponse({"error": f"the dashboard is off: {access.TURN_ON}"},
                                     status_code=404))
    return _secured(templates.TemplateResponse(
        request, "off.html", {"title": "Dashboard off", "csrf": None,
                              "min_length": access.MIN_TOKEN_LENGTH}, status_code=404))


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _engine(request: Request) -> AsyncEngine:
    engine = _runtime(request).engine
    assert engine is not None, "the dashboard needs the database"
    return engine


def _secured(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


async def _unless_outage(handler: Awaitable[Response], *, as_json: bool = False) -> Response:
    """The handler's page, or a 503 that says the database is away (not a bare 500)."""
    try:
        return await handler
    except StoreUnavailable as exc:
        log.warning("admin: database unavailable (%s)", exc.reason)
        if as_json:
            return JSONResponse({"error": DATABASE_UNAVAILABLE}, status_code=503)
        return Response(DATABASE_UNAVAILABLE, status_code=503, media_type="text/plain")


def _signed_in(request: Request) -> str | Response:
    """The admin token when the operator is signed in; else the answer: 404 when the
    dashboard is off, the login page otherwise."""
    token = auth.admin_token(request)
    if token is None:
        return dashboard_off(request)
    if not auth.signed_in(request, token):
        return _secured(RedirectResponse("/admin/login", status_code=303))
    return token


def page(handler: Callable[[Request, str], Awaitable[Response]]) -> Page:
    """A page for signed-in operators."""
    async def endpoint(request: Request) -> Response:
        token = _signed_in(request)
        if isinstance(token, Response):
            return token
        return _secured(await _unless_outage(handler(request, token)))
    return endpoint


def action(handler: Callable[[Request, FormData], Awaitable[Response]]) -> Page:
    """A form POST: signed in, and carrying the session's CSRF token."""
    async def endpoint(request: Request) -> Response:
        token = _signed_in(request)
        if isinstance(token, Response):
            return token
        form = await request.form()
        csrf = form.get("csrf")
        if not auth.csrf_ok(request, token, csrf if isinstance(csrf, str) else None):
            return _secured(Response("CSRF check failed: reload the page and try again.",
                                     status_code=403, media_type="text/plain"))
        return _secured(await _unless_outage(handler(request, form)))
    return endpoint


def api(handler: Callable[[Request], Awaitable[Response]]) -> Page:
    """A JSON endpoint: a session cookie or `Authorization: Bearer <token>`."""
    async def endpoint(request: Request) -> Response:
        token = auth.admin_token(request)
        if token is None:
            return dashboard_off(request)
        if not (auth.signed_in(request, token) or bearer_is(request, token)):
            return _secured(JSONResponse({"error": "sign in or send Authorization: Bearer"},
                                         status_code=401,
                                         headers={"WWW-Authenticate": "Bearer"}))
        return _secured(await _unless_outage(handler(request), as_json=True))
    return endpoint


def _render(request: Request, name: str, context: dict[str, Any], status: int = 200,
            token: str | None = None, headers: dict[str, str] | None = None) -> Response:
    session = request.cookies.get(auth.COOKIE)
    csrf = auth.csrf_token(token, session) if token and session else None
    return templates.TemplateResponse(request, name, {"csrf": csrf, **context},
                                      status_code=status, headers=headers)


STYLESHEET = files("qqavatar.web.admin").joinpath("static/admin.css").read_bytes()


async def stylesheet(request: Request) -> Response:
    # served while the dashboard is off too: its "how to turn it on" page uses it
    return Response(STYLESHEET, media_type="text/css",
                    headers={"Cache-Control": "public, max-age=3600"})


# --- signing in and out --------------------------------------------------------------------


async def login_form(request: Request) -> Response:
    """The sign-in form; with `?code=` (the link a first start prints), a one-time sign-in."""
    token = auth.admin_token(request)
    if token is None:
        return dashboard_off(request)
    code = request.query_params.get("code")
    if code is not None and request.method == "GET":  # a HEAD (a link preview) spends nothing
        return await _sign_in(request, token, lambda: access.redeem_sign_in_code(
            _runtime(request).settings, code), "This sign-in link was used already or is "
            "older than an hour: sign in with the token.")
    if auth.signed_in(request, token):
        return _secured(RedirectResponse("/admin", status_code=303))
    return _secured(_render(request, "login.html", {"title": "Sign in"}))


async def login(request: Request) -> Response:
    token = auth.admin_token(request)
    if token is None:
        return dashboard_off(request)
    form = await request.form()
    given = form.get("token")
    return await _sign_in(request, token, lambda: auth.same_origin(request) and isinstance(
        given, str) and tokens_equal(given, token), "Wrong token.")


async def _sign_in(request: Request, token: str, check: Callable[[], bool],
                   refusal: str) -> Response:
    """A session for a right token or link; 401, or 429 after repeated failures."""
    throttle: SignInThrottle | None = getattr(request.app.state, "sign_in_throttle", None)
    if throttle is None:
        throttle = request.app.state.sign_in_throttle = SignInThrottle()
    client = client_bucket(request_client(request)[0])
    wait = throttle.retry_after(client)
    if wait:
        return _secured(_render(request, "login.html", {
            "title": "Sign in", "error": f"Too many failed sign-ins: try again in {wait} s."},
            status=429, headers={"Retry-After": str(wait)}))
    if not check():
        throttle.failed(client)
        return _secured(_render(request, "login.html",
                                {"title": "Sign in", "error": refusal}, status=401))
    response = RedirectResponse("/admin", status_code=303)
    auth.set_session(response, request, auth.new_session(token))
    return _secured(response)


async def logout(request: Request) -> Response:
    token = auth.admin_token(request)
    if token is None:
        return dashboard_off(request)
    form = await request.form()
    csrf = form.get("csrf")
    response = RedirectResponse("/admin/login", status_code=303)
    if auth.csrf_ok(request, token, csrf if isinstance(csrf, str) else None):
        auth.clear_session(response, request)
    return _secured(response)


# --- pages ----------------------------------------------------------------------------------


def whole_number(text: str, maximum: int) -> int | None:
    """A count from client text, 0 to `maximum` (the protocol's bounded reader), else None."""
    value = client_int(text, max_digits=len(str(maximum)))
    return value if value is not None and value <= maximum else None


def _days(request: Request, default: int, maximum: int) -> int | None:
    """`?days=`: 1 to `maximum`, `default` when absent, None when it is anything else."""
    raw = request.query_params.get("days", "")
    return (whole_number(raw, maximum) or None) if raw else default


def _page_days(request: Request) -> int:
    # a page falls back to its default: the links it offers are the choices
    return _days(request, DEFAULT_DAYS, max(DAY_CHOICES)) or DEFAULT_DAYS


def _api_days(request: Request, default: int) -> int | JSONResponse:
    days = _days(request, default, MAX_API_DAYS)
    if days is None:
        return JSONResponse({"error": f"days must be a whole number from 1 to {MAX_API_DAYS}"},
                            status_code=400)
    return days


async def _fresh_queries(request: Request) -> StatsQueries:
    # This server's latest counts first, so the pages show calls made a moment ago.
    stats = _runtime(request).stats
    if stats is not None:
        await stats.flush()
    return StatsQueries(_engine(request))


def _charts(summaries: list[DaySummary], *, with_latency: bool) -> list[Markup]:
    labels = [summary.day.strftime("%m-%d") for summary in summaries]
    drawn = [
        charts.bar_chart("Calls per day", labels, [s.calls for s in summaries]),
        charts.bar_chart("Daily active members", labels,
                         [s.active_members for s in summaries], color="#2e9e6b"),
        charts.line_chart("Cache hit ratio", labels,
                          [charts.Series("hits", [s.cache_hit_ratio for s in summaries],
                                         "#8e5bd8")],
                          fmt=charts.percent, top=1.0),
    ]
    if with_latency:
        colors = ("#3b7dd8", "#e39b2b", "#c0392b")
        series = [
            charts.Series(name, [s.latency_ms[index] for s in summaries], colors[index])
            for index, name in enumerate(("p50", "p90", "p99"))
        ]
        drawn.append(charts.line_chart("Upstream latency", labels, series,
                                       fmt=charts.milliseconds))
    return drawn


@page
async def index(request: Request, token: str) -> Response:
    return await _index_page(request, token)


async def _index_page(request: Request, token: str, *, error: str | None = None) -> Response:
    days = _page_days(request)
    today = day_of(time.time())
    queries = await _fresh_queries(request)
    summaries = await queries.daily(today=today, days=days)
    usage = await queries.usage(today=today)
    apps = await AppStore(_engine(request)).list()
    rows = [{"app": app, "usage": usage.get(app.app_key, Usage()),
             "quota": _quota_used(request, app.app_key)} for app in apps]
    return _render(request, "index.html", {
        "title": "Dashboard", "apps": rows, "days": days, "day_choices": DAY_CHOICES,
        "today": today.isoformat(), "charts": _charts(summaries, with_latency=True),
        "flash": _flash(request), "error": error,
    }, status=400 if error else 200, token=token)


async def _app_page(request: Request, token: str, app: AppRecord, *,
                    error: str | None = None) -> Response:
    days = _page_days(request)
    today = day_of(time.time())
    queries = await _fresh_queries(request)
    summaries = await queries.daily(today=today, days=days, app_key=app.app_key)
    usage = (await queries.usage(today=today)).get(app.app_key, Usage())
    created = datetime.fromtimestamp(app.created_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return _render(request, "app.html", {
        "title": app.name, "app": app, "usage": usage, "created": created, "days": days,
        "quota": _quota_used(request, app.app_key),
        "day_choices": DAY_CHOICES, "today": today.isoformat(),
        "charts": _charts(summaries, with_latency=False),
        "flash": _flash(request), "error": error,
    }, status=400 if error else 200, token=token)


@page
async def app_page(request: Request, token: str) -> Response:
    app = await _find_app(request)
    if app is None:
        return not_found()
    return await _app_page(request, token, app)


def _quota_used(request: Request, app_key: str) -> Usage | None:
    """Calls counted against the app's quotas (all servers, within a second); None when
    the limits feature is off."""
    quotas = _runtime(request).quotas
    if quotas is None:
        return None
    today, month = quotas.usage(app_key)
    return Usage(today=today, month=month)


_FLASHES = {
    "created": "App created. Give its app_key (and app_secret, if it signs) to its owner.",
    "rotated": "New secret issued; the old one stops working within a second.",
    "saved": "Saved; the servers apply it within a second.",
}


def _flash(request: Request) -> str | None:
    return _FLASHES.get(request.query_params.get("done", ""))


async def _find_app(request: Request) -> AppRecord | None:
    app_key = str(request.path_params["app_key"]).upper()
    if _APP_KEY.fullmatch(app_key) is None:
        return None
    return await AppStore(_engine(request)).get(app_key)


# --- form actions ---------------------------------------------------------------------------


@action
async def create_app(request: Request, form: FormData) -> Response:
    name = form.get("name")
    try:
        record = await AppStore(_engine(request)).create(
            name if isinstance(name, str) else "", sign_required=form.get("sign_required") == "1")
    except ValueError as exc:
        return await _index_page(request, auth.admin_token(request) or "", error=str(exc))
    return RedirectResponse(f"/admin/apps/{record.app_key}?done=created", status_code=303)


@action
async def rotate_secret(request: Request, form: FormData) -> Response:
    app = await _find_app(request)
    if app is None:
        return not_found()
    await AppStore(_engine(request)).update(app.app_key, rotate_secret=True)
    return RedirectResponse(f"/admin/apps/{app.app_key}?done=rotated", status_code=303)


@action
async def save_settings(request: Request, form: FormData) -> Response:
    app = await _find_app(request)
    if app is None:
        return not_found()
    token = auth.admin_token(request) or ""
    try:
        changes = _settings_from(form)
        updated = await AppStore(_engine(request)).update(app.app_key, **changes)
    except ValueError as exc:
        return await _app_page(request, token, app, error=str(exc))
    if updated is None:
        return not_found()
    return RedirectResponse(f"/admin/apps/{app.app_key}?done=saved", status_code=303)


def _settings_from(form: FormData) -> dict[str, Any]:
    """AppStore.update arguments from the settings form; ValueError with a readable text."""
    def text(name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    def count(name: str, label: str) -> int:
        value = text(name)
        if not value:
            return 0  # cleared
        number = whole_number(value, MAX_QUOTA)
        if number is None:
            raise ValueError(f"{label} must be a whole number (empty or 0: no limit)")
        return number

    def items(name: str) -> list[str]:
        return [item for item in _LIST_SEPARATORS.split(text(name)) if item]

    scheme = form.get("sign_scheme")  # absent (a form from before it was asked): unchanged
    return {
        "name": text("name"),
        "sign_required": form.get("sign_required") == "1",
        "sign_scheme": scheme.strip() if isinstance(scheme, str) else None,
        "daily_quota": count("daily_quota", "daily quota"),
        "monthly_quota": count("monthly_quota", "monthly quota"),
        "rate_limit": count("rate_limit", "rate limit"),
        "ip_allow": items("ip_allow"),
        "domains": items("domains"),
    }


# --- JSON -----------------------------------------------------------------------------------


@api
async def api_apps(request: Request) -> Response:
    """Every app (without secrets) with its calls today and this month."""
    today = day_of(time.time())
    usage = await (await _fresh_queries(request)).usage(today=today)
    apps = await AppStore(_engine(request)).list()
    return JSONResponse([
        app.public_dict(with_secret=False)
        | {"calls_today": usage.get(app.app_key, Usage()).today,
           "calls_this_month": usage.get(app.app_key, Usage()).month}
        for app in apps
    ])


@api
async def api_stats(request: Request) -> Response:
    """The rows of `qqavatar stats --json`; `?days=N&app=APP_KEY`."""
    app_key = request.query_params.get("app")
    days = _api_days(request, 7)
    if isinstance(days, Response):
        return days
    rows = await (await _fresh_queries(request)).rows(
        today=day_of(time.time()), days=days, app_key=app_key.upper() if app_key else None)
    return JSONResponse([row.to_json() for row in rows])


@api
async def api_daily(request: Request) -> Response:
    """What the charts show, one object per day; `?days=N&app=APP_KEY`."""
    app_key = request.query_params.get("app")
    days = _api_days(request, DEFAULT_DAYS)
    if isinstance(days, Response):
        return days
    summaries = await (await _fresh_queries(request)).daily(
        today=day_of(time.time()), days=days, app_key=app_key.upper() if app_key else None)
    return JSONResponse([
        {"day": s.day.isoformat(), "calls": s.calls, "active_members": s.active_members,
         "cache_hits": s.cache_hits, "upstream_fetches": s.upstream_fetches,
         "system_errors": s.system_errors, "cache_hit_ratio": s.cache_hit_ratio,
         "upstream_latency_ms": dict(zip(("p50", "p90", "p99"), s.latency_ms, strict=True))}
        for s in summaries
    ])
