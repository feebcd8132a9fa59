"""The service a call names with `service` or `s`, read as PhalApi's Request reads it.

- `service` wins over `s` whenever it is present, even empty (PhalApi tests with `isset`);
  neither present: "" (the gateway's `App.Site.Index`).
- One part means the class's `Index` (`QQ` → `App.QQ.Index`), two parts the `App` namespace
  (`QQ.UserImage` → `App.QQ.UserImage`); past three parts the rest is dropped, as PhalApi's
  `list($namespace, $api, $action) = explode('.', …)` drops it.
- An empty name, or one whose class or method part is empty (or "0", which PHP's `empty()`
  counts as empty), is `客户端非法请求：非法服务：<name>` (ret 400).
"""

from __future__ import annotations

from collections.abc import Mapping

from . import errors

_MAX_CHECKED = 256
# Names as clients send them → the name to resolve; most calls repeat a few spellings.
_checked: dict[str, str] = {}


def requested_service(params: Mapping[str, str]) -> str:
    name = params.get("service")
    if name is None:
        name = params.get("s")
        if name is None:
            return ""
    known = _checked.get(name)
    if known is not None:
        return known
    full = _phalapi_name(name)
    if len(_checked) < _MAX_CHECKED:
        _checked[name] = full
    return full


def _phalapi_name(name: str) -> str:
    if name in ("", "0"):  # PHP's falsy strings: no namespace is added
        raise errors.illegal_service(name)
    parts = name.split(".")
    if len(parts) == 1:
        name = f"App.{name}.Index"
    elif len(parts) == 2:
        name = f"App.{name}"
    parts = name.split(".", 3)
    if parts[1] in ("", "0") or parts[2] in ("", "0"):
        raise errors.illegal_service(name)
    return ".".join(parts[:3])
