"""Who may use the dashboard: the holder of the admin token (see `access`).

- No token: the dashboard is off (its pages say how to turn it on; nothing else answers).
- Signing in with the token (or a one-time link) sets a session cookie: HttpOnly,
  SameSite=Strict, path /admin, Secure when the client reached us over https (directly or
  through a trusted proxy: `qqavatar.proxies`), holding an expiry, a random nonce and an
  HMAC of both. The HMAC key is derived from the token (HKDF-SHA256), never the token
  itself. Nothing is kept on the server, so any number of workers accept it, and changing
  the token logs everyone out.
- Every POST carries a CSRF token (an HMAC of the session) and, when the browser sends
  one, an Origin equal to this server's. SameSite=Strict alone already keeps other sites'
  forms from riding the session; the token also covers browsers that ignore it.
- Scripts may call /admin/api/… with `Authorization: Bearer <token>` instead.
All comparisons are constant-time.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import time
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from starlette.requests import Request
from starlette.responses import Response

from ...protocol.numbers import client_int
from ...proxies import request_client
from ..bearer import tokens_equal
from .access import dashboard_token

COOKIE = "qqavatar_admin"
SESSION_SECONDS = 12 * 3600
_KEY_INFO = b"qqavatar admin session v1"


def admin_token(request: Request) -> str | None:
    """The token in force; None when the dashboard is off. Read once per process."""
    state = request.app.state
    if not hasattr(state, "admin_token"):
        state.admin_token = dashboard_token(state.runtime.settings)
    token: str | None = state.admin_token
    return token


@functools.lru_cache(maxsize=4)
def session_key(token: str) -> bytes:
    """The cookie's HMAC key: HKDF of the token, so a MAC never works as a token oracle."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=_KEY_INFO).derive(token.encode("utf-8"))


def _mac(token: str, message: str) -> str:
    return hmac.new(session_key(token), message.encode("utf-8", "surrogatepass"),
                    hashlib.sha256).hexdigest()


def new_session(token: str, *, now: float | None = None) -> str:
    """`expiry.nonce.mac`: the nonce makes every sign-in its own session (own CSRF token)."""
    expires = int((time.time() if now is None else now) + SESSION_SECONDS)
    body = f"{expires}.{secrets.token_hex(16)}"
    return f"{body}.{_mac(token, f'session:{body}')}"


def session_valid(token: str, session: str | None, *, now: float | None = None) -> bool:
    if not session:
        return False
    body, _, mac = session.rpartition(".")
    expires = client_int(body.partition(".")[0], max_digits=10)  # until the year 2286
    if expires is None or not tokens_equal(mac, _mac(token, f"session:{body}")):
        return False
    return expires > (time.time() if now is None else now)


def csrf_token(token: str, session: str) -> str:
    return _mac(token, f"csrf:{session}")


def signed_in(request: Request, token: str) -> bool:
    return session_valid(token, request.cookies.get(COOKIE))


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another origin, or says it in a
    way that is no URL at all (`http://[`)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    try:
        host = urlsplit(origin).netloc
    except ValueError:
        return False
    # Host only, not the scheme: behind a TLS-terminating proxy this server sees http.
    return host.lower() == request.headers.get("host", "").lower()


def csrf_ok(request: Request, token: str, given: str | None) -> bool:
    session = request.cookies.get(COOKIE, "")
    return (same_origin(request) and given is not None
            and tokens_equal(given, csrf_token(token, session)))


def _secure(request: Request) -> bool:
    return request_client(request)[1] == "https"


def set_session(response: Response, request: Request, session: str) -> None:
    response.set_cookie(COOKIE, session, max_age=SESSION_SECONDS, path="/admin",
                        httponly=True, samesite="strict", secure=_secure(request))


def clear_session(response: Response, request: Request) -> None:
    response.delete_cookie(COOKIE, path="/admin", httponly=True, samesite="strict",
                           secure=_secure(request))
