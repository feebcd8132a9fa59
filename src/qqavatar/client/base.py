"""The part of a client that does no I/O: settings, credentials and the member session."""

from __future__ import annotations

from ..protocol.sign import YESAPI
from .calls import Core
from .models import Session
from .retry import RetryPolicy

DEFAULT_TIMEOUT = 15.0  # a cold avatar may take the server's whole upstream timeout, twice
DEFAULT_RETRIES = 2
DEFAULT_BACKOFF = 0.25


class ClientBase:
    def __init__(self, base_url: str, app_key: str, app_secret: str | None = None, *,
                 timeout: float = DEFAULT_TIMEOUT, retries: int = DEFAULT_RETRIES,
                 backoff: float = DEFAULT_BACKOFF, session: Session | None = None,
                 sign_scheme: str = YESAPI) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http:// or https:// URL, not {base_url!r}")
        self.base_url = base_url
        self.timeout = timeout
        self._core = Core(app_key, app_secret or None, session, sign_scheme)
        self._policy = RetryPolicy(retries=retries, backoff=backoff)

    @property
    def app_key(self) -> str:
        return self._core.app_key

    @property
    def session(self) -> Session | None:
        """The member whose uuid/token go with every avatar call (e.g. a `login()` result)."""
        return self._core.session

    @session.setter
    def session(self, session: Session | None) -> None:
        self._core.session = session

    def _subject(self, session: Session | None) -> Session:
        subject = session or self._core.session
        if subject is None:
            raise ValueError("no session: pass one, or set client.session")
        return subject

    def _forget(self, session: Session) -> None:
        if self._core.session == session:
            self._core.session = None

    def __repr__(self) -> str:  # never the secret, and only the start of the key
        return (f"{type(self).__name__}({self.base_url!r}, app_key={self.app_key[:6]!r}…, "
                f"signed={self._core.app_secret is not None})")
