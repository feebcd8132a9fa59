"""`AsyncClient`: the asyncio client, the same calls as `Client`."""

from __future__ import annotations

import asyncio
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


class AsyncClient(ClientBase):
    """A qqavatar (or YesApi) server, called with one app.

    With `app_secret`, every request is signed (`sign_scheme`: "yesapi", or "hmac-sha256"
    for an app set to it) and every envelope's `_auth` is checked.
    Failures raise `QQAvatarError` subclasses; system failures (`err_code` < 0, no
    connection) are retried `retries` times with exponential backoff.

        async with AsyncClient("http://127.0.0.1:8000", APP_KEY, APP_SECRET) as client:
            avatar = await client.user_image(376741929, size=640)
    """

    def __init__(self, base_url: str, app_key: str, app_secret: str | None = None, *,
                 timeout: float = DEFAULT_TIMEOUT, retries: int = DEFAULT_RETRIES,
                 backoff: float = DEFAULT_BACKOFF, session: Session | None = None,
                 sign_scheme: str = YESAPI, **httpx_options: Any) -> None:
        super().__init__(base_url, app_key, app_secret, timeout=timeout, retries=retries,
                         backoff=backoff, session=session, sign_scheme=sign_scheme)
        self._http = httpx.AsyncClient(**client_options(base_url, timeout), **httpx_options)

    async def user_image(self, qq: int | str, size: int = 100) -> Image:
        return await self._run(calls.image("user", qq, size))

    async def group_image(self, group: int | str, size: int = 100) -> Image:
        return await self._run(calls.image("group", group, size))

    async def user_image_base64(self, qq: int | str, size: int = 100) -> EncodedImage:
        return await self._run(calls.encoded_image("user", qq, size))

    async def group_image_base64(self, group: int | str, size: int = 100) -> EncodedImage:
        return await self._run(calls.encoded_image("group", group, size))

    async def register(self, username: str, password: str) -> str:
        """App.User.Register → the member's uuid. `password` is the raw password (its md5
        is sent); a taken name raises BusinessError."""
        return await self._run(calls.register(username, password))

    async def login(self, username: str, password: str) -> Session:
        """App.User.Login; set `client.session` to the result to call as that member."""
        return await self._run(calls.login(username, password))

    async def check(self, session: Session | None = None) -> bool:
        """App.User.Check: whether the session (default: `client.session`) still holds."""
        return await self._run(calls.check(self._subject(session)))

    async def logout(self, session: Session | None = None) -> None:
        """App.User.Logout; a session that no longer holds raises BusinessError."""
        subject = self._subject(session)
        await self._run(calls.logout(subject))
        self._forget(subject)

    async def _run(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                return self._core.finish(call, await self._send(call))
            except QQAvatarError as error:
                if attempt >= self._policy.retries or not self._policy.should_retry(error, call):
                    raise
            await asyncio.sleep(self._policy.delay(attempt))
            attempt += 1

    async def _send(self, call: Call[Any]) -> calls.Answer:
        try:
            return answer(await self._http.request(**request_options(self._core.prepare(call))))
        except httpx.TransportError as exc:
            raise transport_error(exc) from exc

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        await self.aclose()
