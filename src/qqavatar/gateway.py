"""One API call from parameters to reply, in PhalApi's order.

service lookup (404) → parameter rules, common then the service's (400)
→ app (406) → signature (400/409) → guards (sessions, limits …) → handler
→ envelope or image → observers (statistics, metrics).

This module knows YesApi, not HTTP: it takes an `ApiRequest` (a service name
and a flat dict of parameters) and gives back an `ApiReply`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .apicall import ApiReply, ApiRequest, AppLike, Call, Kept, Outcome, Result
from .catalog import COMMON_RULES, ENVELOPE_RULES, Service, canonical_name, resolve
from .components import Runtime
from .handlers import HANDLERS, Handler
from .protocol import errors
from .protocol.envelope import Data, Digest, envelope, is_valid_callback, jsonp
from .protocol.errors import ApiError
from .protocol.params import RuleSet, parse, parse_all, parse_bool
from .protocol.sign import HMAC_SHA256, check_strong_sign, verify_sign
from .store.db import StoreUnavailable

log = logging.getLogger(__name__)

JSON_TYPE = "application/json;charset=utf-8"
JSONP_TYPE = "text/javascript; charset=utf-8"


class Guard(Protocol):
    """May refuse an authenticated call (raise ApiError) before its handler runs."""

    async def __call__(self, call: Call) -> None: ...

    def replayable(self, call: Call) -> bool:
        """Could this call be answered again from a kept reply, `replay` all it needs here?"""
        ...

    @property
    def replay(self) -> Callable[[Call], None] | None:
        """The per-call work (counting) for a call answered again, None if there is none;
        no await, no refusal."""
        ...


# An observer sees every answered call; it must be cheap and must not raise.
Observer = Callable[[Outcome], None]
# A service, its handler, and the rules of its calls (the common ones and its own).
_Bound = tuple[Service, Handler, RuleSet | None]
# Spellings of service names kept resolved; past this, further spellings are resolved per call.
_MAX_RESOLVED = 256


@dataclass(slots=True)
class _Shape:
    """How the answer is shaped, known before the call is fully read (errors need it too)."""

    t: int
    secret: str | None = None
    image_mode: bool = False
    return_data: bool = False
    callback: str | None = None


class Gateway:
    def __init__(
        self,
        runtime: Runtime,
        *,
        guards: Sequence[Guard] = (),
        observers: Sequence[Observer] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.runtime = runtime
        self.guards = list(guards)
        self.observers = list(observers)
        self.mirror_status = runtime.settings.http_status == "mirror"
        self.clock = clock
        # Service names as clients spell them → the service, its handler and its rules.
        self._resolved: dict[str, _Bound] = {}

    def _shape(self, params: dict[str, str]) -> _Shape:
        callback = params.get("callback")
        return_data = params.get("return_data")  # mostly absent: no parse_bool call then
        return _Shape(
            t=int(self.clock()),
            callback=callback if callback is not None and is_valid_callback(callback) else None,
            return_data=return_data is not None and parse_bool(return_data),
        )

    def reject(self, params: dict[str, str], error: ApiError) -> ApiReply:
        """An error found before the call could be read (e.g. a malformed body)."""
        self._observe(Outcome(service="", app_key=None, ret=error.ret))
        return self._error(self._shape(params), error)

    # Plain functions handing out `_handle`'s coroutine: one coroutine per call, not two.
    def handle(self, request: ApiRequest, *, keep: bool = False) -> Coroutine[Any, Any, ApiReply]:
        """`keep`: the caller keeps answers (web/replies.py): mark those that may be kept."""
        return self._handle(request, None, keep)

    def handle_as(self, app: AppLike, request: ApiRequest) -> Coroutine[Any, Any, ApiReply]:
        """A call the server makes for `app` (a private link's view): no `app_key` or `sign`
        is asked of the request; rules, guards, handler and observers run as for any call."""
        return self._handle(request, app, False)

    async def _handle(self, request: ApiRequest, on_behalf_of: AppLike | None,
                      keep: bool) -> ApiReply:
        started = time.perf_counter()
        params = request.params
        shape = self._shape(params)
        name = request.service or "App.Site.Index"
        bound = self._resolved.get(name)
        outcome = Outcome(service=canonical_name(name) if bound is None else bound[0].name,
                          app_key=None, ret=200)
        try:
            if bound is None:
                bound = self._resolve(name)
                outcome.service = bound[0].name
            service, handler, rules = bound
            if service.image:
                output = params.get("output")
                shape.image_mode = output is None or parse_bool(output)
            if on_behalf_of is None:
                call = self._authenticate(shape, service, rules, request)
            else:
                call = self._on_behalf(shape, service, request, on_behalf_of)
            if call.app is not None:
                outcome.app_key = call.app.app_key
            for guard in self.guards:
                await guard(call)
            outcome.member = call.member
            result = await handler(self.runtime, call)
            outcome.member = call.member  # a handler may name the member (App.User.Login)
        except ApiError as error:
            outcome.ret = error.ret
            if outcome.app_key is None and shape.secret is not None:
                # A known app whose call failed its rules or sign: still that app's traffic.
                known = self.runtime.apps.get(params.get("app_key") or "")
                outcome.app_key = known.app_key if known is not None else None
            self._observe(outcome, started)
            return self._error(shape, error)
        except Exception as exc:  # a bug must not become a stack trace on the wire
            if isinstance(exc, StoreUnavailable):  # not a bug: say so (services that know
                # they need the database say it first)
                log.warning("database unavailable in %s: %s", request.service, exc.reason)
                failure = errors.database_unavailable()
            else:
                log.exception("unhandled error in %s", request.service)
                failure = errors.server_error("内部错误，请稍后重试")
            outcome.ret = 500
            self._observe(outcome, started)
            return self._error(shape, failure)
        outcome.err_code = result.err_code
        outcome.cache = result.cache
        outcome.upstream_fetch = result.upstream_fetch
        outcome.upstream_ms = result.upstream_ms
        self._observe(outcome, started)
        reply = self._reply(shape, result)
        if (keep and result.source is not None and call.app is not None
                and all(guard.replayable(call) for guard in self.guards)):
            replays = tuple(replay for guard in self.guards if (replay := guard.replay))
            reply.kept = Kept(call, result.source, outcome, shape.t, replays)
        return reply

    def replay(self, kept: Kept) -> bool:
        """Count `kept`'s call once more and say True if its answer still holds: the same
        second (`_t`), max-age and app record, the same avatar still cached and fresh.
        False: nothing was counted, the request takes the full path."""
        started = time.perf_counter()
        call, source = kept.call, kept.source
        app = call.app
        assert app is not None
        if (int(self.clock()) != kept.second or self.runtime.apps.get(app.app_key) is not app
                or not self.runtime.avatars.holds(source)):
            return False
        for replay in kept.replays:
            replay(call)
        self._observe(kept.outcome, started)
        return True

    def _resolve(self, name: str) -> _Bound:
        service = resolve(name)  # raises for an unknown name: those are not kept
        bound = (service, HANDLERS[service.name], rules_of(service))
        if len(self._resolved) < _MAX_RESOLVED:
            self._resolved[name] = bound
        return bound

    def _authenticate(self, shape: _Shape, service: Service, rules: RuleSet | None,
                      request: ApiRequest) -> Call:
        params = request.params
        # Every rule at once when none fails (the usual call); else rule by rule, in order.
        values = None if rules is None else parse_all(params, rules)
        if not service.needs_app:
            if values is None:
                values = parse(params, ENVELOPE_RULES)
                values.update(parse(params, service.rules))
            return Call(service, values, request, None, shape.image_mode)
        common = values if values is not None else parse(params, COMMON_RULES)
        app = self.runtime.apps.get(common["app_key"])
        if app is not None:
            shape.secret = app.app_secret
        if (common["uuid"] is None) != (common["token"] is None):
            raise errors.uuid_without_token()
        if values is None:
            values = common | parse(params, service.rules)
        if app is None:
            raise errors.unknown_app()
        _check_sign(app, service, params, common["sign"], self.clock)
        return Call(service, values, request, app, shape.image_mode)

    def _on_behalf(self, shape: _Shape, service: Service, request: ApiRequest,
                   app: AppLike) -> Call:
        shape.secret = app.app_secret
        params = {**request.params, "app_key": app.app_key}
        values = parse(params, COMMON_RULES)
        values.update(parse(params, service.rules))
        return Call(service, values, request, app, shape.image_mode)

    def _observe(self, outcome: Outcome, started: float | None = None) -> None:
        if started is not None:
            outcome.duration = time.perf_counter() - started
        for observer in self.observers:
            try:
                observer(outcome)
            except Exception:
                log.exception("observer failed")

    def _reply(self, shape: _Shape, result: Result) -> ApiReply:
        if result.reply is not None:
            return result.reply
        status = result.http_status if shape.image_mode else None
        reply = self._envelope(shape, 200, result.data, "", http_status=status,
                               prehashed=result.data_md5)
        reply.headers.extend(result.headers)
        return reply

    def _error(self, shape: _Shape, error: ApiError) -> ApiReply:
        status = error.ret if shape.image_mode else None
        return self._envelope(shape, error.ret, b"{}", error.msg, http_status=status)

    def _envelope(
        self, shape: _Shape, ret: int, data: Data, msg: str, *, http_status: int | None = None,
        prehashed: Digest | None = None,
    ) -> ApiReply:
        if shape.return_data:
            body = data if isinstance(data, bytes) else b"".join(data)
        else:
            body = envelope(ret, data, msg, shape.t, shape.secret, prehashed)
        content_type = JSON_TYPE
        if shape.callback is not None:
            body, content_type = jsonp(shape.callback, body), JSONP_TYPE
        if http_status is None:
            http_status = ret if self.mirror_status else 200
        return ApiReply(http_status, content_type, body, [("Cache-Control", "no-store")])


def rules_of(service: Service) -> RuleSet | None:
    """The rules of a call to `service`, the common ones and its own, to read at once
    (`parse_all`); None when it has a rule of its own for a common parameter (rule by rule)."""
    common = COMMON_RULES if service.needs_app else ENVELOPE_RULES
    try:
        return RuleSet((*common, *service.rules))
    except ValueError:
        return None


def _check_sign(app: AppLike, service: Service, params: dict[str, str], sign: str | None,
                clock: Callable[[], float]) -> None:
    if app.sign_scheme == HMAC_SHA256:  # opted in: always signed
        check_strong_sign(service.name, params, app.app_secret, sign, clock())
    elif sign is None:
        if app.sign_required:
            raise errors.missing("sign")
    elif not verify_sign(params, app.app_secret, sign):
        raise errors.bad_sign()
