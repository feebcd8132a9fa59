"""Who may use the dashboard: the holder of `QQAVATAR_ADMIN_TOKEN`.

- No token configured: the dashboard does not exist (every /admin path is a 404).
- Logging in with the token sets a session cookie: HttpOnly, SameSite=Strict, path /admin,
  Secure over https, holding an expiry, a random nonce and an HMAC of both keyed by the
  token. Nothing is kept on the server, so any number of workers accept it, and changing
  the token logs everyone out.
- Every POST carries a CSRF token (an HMAC of the session) and, when the browser sends
  one, an Origin equal to this server's. SameSite=Strict alone already keeps other sites'
  forms from riding the session; the token also covers browsers that ignore it.
- Scripts may call /admin/api/… with `Authorization: Bearer <token>` instead.
All comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "qqavatar_admin"
SESSION_SECONDS = 12 * 3600


def admin_token(request: Request) -> str | None:
    """The configured token; None when the dashboard is off."""
    token: str | None = request.app.state.runtime.settings.admin_token
    return token or None


def tokens_equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _mac(token: str, message: str) -> str:
    return hmac.new(token.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()


def new_session(token: str, *, now: float | None = None) -> str:
    """`expiry.nonce.mac`: the nonce makes every sign-in its own session (own CSRF token)."""
    expires = int((time.time() if now is None else now) + SESSION_SECONDS)
    body = f"{expires}.{secrets.token_hex(16)}"
    return f"{body}.{_mac(token, f'session:{body}')}"


def session_valid(token: str, session: str | None, *, now: float | None = None) -> bool:
    if not session:
        return False
    body, _, mac = session.rpartition(".")
    expires = body.partition(".")[0]
    if not expires.isdigit() or not tokens_equal(mac, _mac(token, f"session:{body}")):
        return False
    return int(expires) > (time.time() if now is None else now)


def csrf_token(token: str, session: str) -> str:
    return _mac(token, f"csrf:{session}")


def signed_in(request: Request, token: str) -> bool:
    return session_valid(token, request.cookies.get(COOKIE))


def bearer_ok(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and tokens_equal(given.strip(), token)


def same_origin(request: Request) -> bool:
    """False only when the browser says the request comes from another origin."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    # Host only, not the scheme: behind a TLS-terminating proxy this server sees http.
    return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()


def csrf_ok(request: Request, token: str, given: str | None) -> bool:
    session = request.cookies.get(COOKIE, "")
    return (same_origin(request) and given is not None
            and tokens_equal(given, csrf_token(token, session)))


def set_session(response: Response, request: Request, session: str) -> None:
    response.set_cookie(COOKIE, session, max_age=SESSION_SECONDS, path="/admin",
                        httponly=True, samesite="strict", secure=request.url.scheme == "https")


def clear_session(response: Response, request: Request) -> None:
    response.delete_cookie(COOKIE, path="/admin", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")
