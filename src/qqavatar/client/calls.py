"""Each API call once, without I/O: the parameters to send and how to read the answer.

`Client` and `AsyncClient` differ only in how they send; everything else about a call
(signing, `_auth`, error mapping, reading images and envelopes) lives here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..protocol.sign import HMAC_SHA256, SCHEMES, YESAPI, compute_sign, compute_strong_sign
from .envelope import Envelope, parse_envelope, verify_auth
from .exceptions import AuthMismatch, ProtocolError, ServerError, api_error, service_error
from .models import EncodedImage, Image, Kind, Session

T = TypeVar("T")

USER_IMAGE = "App.QQ.UserImage"
GROUP_IMAGE = "App.QQ.GroupImage"
JSON_TYPES = ("application/json", "text/json")


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer as the calls need it."""

    status: int
    headers: Mapping[str, str]   # any case-insensitive mapping (httpx.Headers)
    body: bytes

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    service: str
    params: Mapping[str, str]
    read_envelope: Callable[[Envelope], T] | None = None
    read_image: Callable[[Answer], T] | None = None   # output=1: image bytes on success
    post: bool = False            # credentials go in the body, not the URL
    idempotent: bool = True       # safe to send again after a broken connection
    with_session: bool = True     # send the client's uuid/token
    business_errors: bool = True  # raise BusinessError for err_code > 0 (else read it)


@dataclass(slots=True)
class Prepared:
    method: str
    query: dict[str, str]
    form: dict[str, str] | None = None


@dataclass(slots=True)
class Core:
    """What both clients share: credentials, the session, and the sans-I/O steps."""

    app_key: str
    app_secret: str | None = None
    session: Session | None = None
    # The app's request sign (`qqavatar app show`): YesApi's md5, or hmac-sha256, which
    # adds a timestamp and a fresh nonce to every attempt (docs/security.md).
    sign_scheme: str = YESAPI
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        if self.sign_scheme not in SCHEMES:
            raise ValueError(f"sign_scheme must be one of {', '.join(SCHEMES)}, "
                             f"not {self.sign_scheme!r}")
        if self.sign_scheme == HMAC_SHA256 and self.app_secret is None:
            raise ValueError("sign_scheme hmac-sha256 needs the app_secret")

    def prepare(self, call: Call[Any]) -> Prepared:
        params = {"s": call.service, "app_key": self.app_key, **call.params}
        if call.with_session and self.session is not None:
            params |= {"uuid": self.session.uuid, "token": self.session.token}
        if self.app_secret is not None and self.sign_scheme == HMAC_SHA256:
            params |= {"timestamp": str(int(self.clock())), "nonce": secrets.token_urlsafe(18)}
            params["sign"] = compute_strong_sign(call.service, params, self.app_secret)
        elif self.app_secret is not None:
            params["sign"] = compute_sign(params, self.app_secret)
        if not call.post:
            return Prepared("GET", params)
        return Prepared("POST", {"s": params.pop("s")}, params)

    def finish(self, call: Call[T], answer: Answer) -> T:
        """The call's value from the answer, or the typed error it stands for."""
        if call.read_image is not None and answer.status == 200 \
                and answer.media_type.startswith("image/"):
            return call.read_image(answer)
        if answer.media_type not in JSON_TYPES:
            what = f"HTTP {answer.status} {answer.media_type or 'without Content-Type'}"
            if answer.status >= 500:  # a proxy or load balancer in front failed
                raise ServerError(answer.status, f"{what}, not a YesApi envelope",
                                  http_status=answer.status)
            raise ProtocolError(f"unexpected answer: {what}", http_status=answer.status)
        envelope = parse_envelope(answer.body)
        authentic = None
        if self.app_secret is not None:
            try:
                authentic = verify_auth(envelope, self.app_secret)
            except AuthMismatch:
                if envelope.ret == 200:  # nothing from an unauthentic answer is used
                    raise
                authentic = False
        if envelope.ret != 200:
            raise api_error(envelope.ret, envelope.msg, http_status=answer.status,
                            authentic=authentic)
        err_code = envelope.data.get("err_code", 0)
        if not isinstance(err_code, int):
            raise ProtocolError(f"data.err_code is not an integer: {err_code!r}")
        if err_code < 0 or (err_code > 0 and call.business_errors):
            err_msg = str(envelope.data.get("err_msg", ""))
            raise service_error(err_code, err_msg, envelope.data, http_status=answer.status)
        if call.read_envelope is None:
            raise ProtocolError("expected image bytes, got an envelope",
                                http_status=answer.status)
        return call.read_envelope(envelope)


# --- avatars --------------------------------------------------------------------------------

def _number_param(kind: Kind) -> tuple[str, str]:
    return (USER_IMAGE, "qq") if kind == "user" else (GROUP_IMAGE, "group")


def image(kind: Kind, number: int | str, size: int) -> Call[Image]:
    service, param = _number_param(kind)
    number = str(number)

    def read(answer: Answer) -> Image:
        served = answer.headers.get("x-avatar-size", "")
        return Image(
            kind=kind,
            number=number,
            size=int(served) if served.isdigit() else size,
            content=answer.body,
            content_type=answer.headers.get("content-type", ""),
            is_default=answer.headers.get("x-avatar-default") == "1",
            etag=answer.headers.get("etag"),
            cache=answer.headers.get("x-cache"),
        )

    # output is left out: true is its default, and the URL stays the one an <img> uses.
    return Call(service, {param: number, "size": str(size)}, read_image=read)


def encoded_image(kind: Kind, number: int | str, size: int) -> Call[EncodedImage]:
    service, param = _number_param(kind)
    number = str(number)

    def read(envelope: Envelope) -> EncodedImage:
        data = envelope.data
        img = data.get("img")
        if not isinstance(img, str) or not img:
            raise ProtocolError("data.img is missing")
        served = data.get("size")
        return EncodedImage(
            kind=kind,
            number=number,
            size=served if isinstance(served, int) else size,
            base64=img,
            # YesApi itself sends neither key; qqavatar adds both.
            content_type=str(data.get("content_type") or sniff_type(img)),
            is_default=data.get("is_default") is True,
            t=envelope.t or 0,
            data=data,
        )

    return Call(service, {param: number, "size": str(size), "output": "0"},
                read_envelope=read)


def sniff_type(img: str) -> str:
    """The image type from the first bytes of base64 text (for servers that do not say)."""
    try:
        head = base64.b64decode(img[:16])
    except (binascii.Error, ValueError):
        return "application/octet-stream"
    signatures = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG", "image/png"),
                  (b"GIF8", "image/gif"))
    for magic, media in signatures:
        if head.startswith(magic):
            return media
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


# --- members (App.User.*, SPEC §6) ----------------------------------------------------------

def password_md5(password: str) -> str:
    """YesApi members send md5(raw password) as `password`, never the password itself."""
    return hashlib.md5(password.encode("utf-8")).hexdigest()


def register(username: str, password: str) -> Call[str]:
    """The new member's uuid; a taken name is a BusinessError (err_code 1)."""
    def read(envelope: Envelope) -> str:
        uuid = envelope.data.get("uuid")
        if not isinstance(uuid, str) or not uuid:
            raise ProtocolError("App.User.Register answered without uuid")
        return uuid

    return Call("App.User.Register", {"username": username, "password": password_md5(password)},
                read_envelope=read, post=True, idempotent=False, with_session=False)


def login(username: str, password: str) -> Call[Session]:
    def read(envelope: Envelope) -> Session:
        uuid, token = envelope.data.get("uuid"), envelope.data.get("token")
        if not isinstance(uuid, str) or not isinstance(token, str) or not uuid or not token:
            raise ProtocolError("App.User.Login answered without uuid/token")
        return Session(uuid, token)

    return Call("App.User.Login", {"username": username, "password": password_md5(password)},
                read_envelope=read, post=True, idempotent=False, with_session=False)


def check(session: Session) -> Call[bool]:
    """True when the session holds; a stale one is `err_code` 1, read here as False."""
    return Call("App.User.Check", {"uuid": session.uuid, "token": session.token},
                read_envelope=lambda envelope: envelope.data.get("err_code", 0) == 0,
                post=True, with_session=False, business_errors=False)


def logout(session: Session) -> Call[None]:
    return Call("App.User.Logout", {"uuid": session.uuid, "token": session.token},
                read_envelope=lambda envelope: None, post=True, idempotent=False,
                with_session=False)
