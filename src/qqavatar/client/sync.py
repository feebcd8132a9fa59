"""`Client`: the blocking client."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

import qqavatar.client.calls as calls

from ..protocol.sign import YESAPI
from .base import DEFAULT_BACKOFF, DEFAULT_RETRIES, DEFAULT_TIMEOUT, ClientBase
from .calls import Call
from .exceptions import QQAvatarError
from .http import answer, client_options, request_options, transport_error
from .models import EncodedImage, Image, Session

T = TypeVar("T")


class Client(ClientBase):
    """A qqavatar (or YesApi) server, called with one app.

    With `app_secret`, every request is signed (`sign_scheme`: "yesapi", or "hmac-sha256"
    for an app set to it) and every envelope's `_auth` is checked.
    Failures raise `QQAvatarError` subclasses; system failures (`err_code` < 0, no
    connection) are retried `retries` times with exponential backoff.

        with Client("http://127.0.0.1:8000", APP_KEY, APP_SECRET) as client:
            avatar = client.user_image(376741929, size=640)
    """

    def __init__(self, base_url: str, app_key: str, app_secret: str | None = None, *,
                 timeout: float = DEFAULT_TIMEOUT, retries: int = DEFAULT_RETRIES,
                 backoff: float = DEFAULT_BACKOFF, session: Session | None = None,
                 sign_scheme: str = YESAPI, **httpx_options: Any) -> None:
        super().__init__(base_url, app_key, app_secret, timeout=timeout, retries=retries,
                         backoff=backoff, session=session, sign_scheme=sign_scheme)
        self._http = httpx.Client(**client_options(base_url, timeout), **httpx_options)

    def user_image(self, qq: int | str, size: int = 100) -> Image:
        return self._run(calls.image("user", qq, size))

    def group_image(self, group: int | str, size: int = 100) -> Image:
        return self._run(calls.image("group", group, size))

    def user_image_base64(self, qq: int | str, size: int = 100) -> EncodedImage:
        return self._run(calls.encoded_image("user", qq, size))

    def group_image_base64(self, group: int | str, size: int = 100) -> EncodedImage:
        return self._run(calls.encoded_image("group", group, size))

    def register(self, username: str, password: str) -> str:
        """App.User.Register → the member's uuid. `password` is the raw password (its md5
        is sent); a taken name raises BusinessError."""
        return self._run(calls.register(username, password))

    def login(self, username: str, password: str) -> Session:
        """App.User.Login; set `client.session` to the result to call as that member."""
        return self._run(calls.login(username, password))

    def check(self, session: Session | None = None) -> bool:
        """App.User.Check: whether the session (default: `client.session`) still holds."""
        return self._run(calls.check(self._subject(session)))

    def logout(self, session: Session | None = None) -> None:
        """App.User.Logout; a session that no longer holds raises BusinessError."""
        subject = self._subject(session)
        self._run(calls.logout(subject))
        self._forget(subject)

    def _run(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                return self._core.finish(call, self._send(call))
            except QQAvatarError as error:
                if attempt >= self._policy.retries or not self._policy.should_retry(error, call):
                    raise
            time.sleep(self._policy.delay(attempt))
            attempt += 1

    def _send(self, call: Call[Any]) -> calls.Answer:
        try:
            return answer(self._http.request(**request_options(self._core.prepare(call))))
        except httpx.TransportError as exc:
            raise transport_error(exc) from exc

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
