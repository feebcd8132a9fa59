"""What the API docs say about each service, derived from the service table.

`/openapi.json` and `/docs` both read services through this module, so a service or a
parameter is documented as soon as it is registered: its rules give the types,
bounds, defaults and the exact error messages; `Service.returns`/`errors`/`example`
and `Rule.description` add the words the rules cannot carry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from ..catalog import COMMON_RULES, ENVELOPE_RULES, SERVICES, Service
from ..protocol import errors
from ..protocol.envelope import auth, envelope
from ..protocol.errors import ApiError
from ..protocol.params import NUMBER_PATTERN, Bool, Enum, Number, Pattern, Rule, Str
from ..protocol.phpjson import dumps
from ..protocol.sign import canonical_text, compute_sign, compute_strong_sign

# The sample app of every worked example: never a real one (the secret says so).
EXAMPLE_APP_KEY = "0123456789ABCDEF0123456789ABCDEF"
EXAMPLE_SECRET = "ExampleSecretForTheDocsOnly0123456789abcdefghijklmnopqrstuvwxyzA"
EXAMPLE_T = 1683778302



def services() -> list[Service]:
    """Every registered service, in a stable order (by name)."""
    return sorted(SERVICES.values(), key=lambda service: service.name)


def find(name: str) -> Service | None:
    return SERVICES.get(name.lower())


def url_path(service: Service) -> str:
    """`App.QQ.UserImage` → `/api/App/QQ/UserImage` (the new URL style)."""
    return "/api/" + service.name.replace(".", "/")


def slug(service: Service) -> str:
    """An id usable in OpenAPI operationIds and HTML anchors."""
    return re.sub(r"[^A-Za-z0-9]", "_", service.name)


@dataclass(frozen=True, slots=True)
class ParamDoc:
    """One parameter of a service as the docs show it."""

    rule: Rule
    common: bool  # a public (公共) parameter, shared by every service

    @property
    def name(self) -> str:
        return self.rule.name

    @property
    def required(self) -> bool:
        return self.rule.required

    @property
    def type_zh(self) -> str:
        return self._type[0]

    @property
    def type_en(self) -> str:
        return self._type[1]

    @property
    def _type(self) -> tuple[str, str]:
        """The type as YesApi's 参数类型 column names it, and in English."""
        if isinstance(self.rule, Bool):
            return "布尔型", "boolean"
        if options_of(self.rule):
            return "枚举类型", "enum"
        return "字符串", "string"

    @property
    def default_text(self) -> str:
        default = self.rule.default
        if default is None:
            return ""
        if isinstance(default, bool):
            return "true" if default else "false"
        return str(default)

    @property
    def rule_text(self) -> str:
        return rule_text(self.rule)

    @property
    def description(self) -> str:
        prefix = "公共参数 (common). " if self.common else ""
        return prefix + self.rule.description

    @property
    def schema(self) -> dict[str, Any]:
        return param_schema(self.rule)


def params_of(service: Service) -> list[ParamDoc]:
    """The parameters a call to `service` reads, in the order the gateway applies them.

    A service may restate a common parameter with its own rule (App.User.Check requires
    `uuid`); its rule is the one a caller has to meet, so it replaces the common one.
    """
    common = COMMON_RULES if service.needs_app else ENVELOPE_RULES
    own = {rule.name for rule in service.rules}
    return [ParamDoc(rule, True) for rule in common if rule.name not in own] + [
        ParamDoc(rule, False) for rule in service.rules
    ]


def options_of(rule: Rule) -> tuple[Any, ...]:
    """The values of an enum-like rule: `Enum`, or any rule with an `options` tuple."""
    options = getattr(rule, "options", ())
    return tuple(options) if isinstance(options, tuple) else ()


def _anchored(pattern: str) -> str:
    """The rules use `fullmatch`; JSON Schema patterns search, so anchor them."""
    return f"^(?:{pattern})$"


def param_schema(rule: Rule) -> dict[str, Any]:
    """The JSON Schema of one parameter's value, as sent in a query string or a form.

    A rule of its own kind (a `Rule` subclass outside `protocol.params`) describes the
    values it accepts with a `json_schema() -> dict` method; without one it is a string.
    """
    schema: dict[str, Any]
    own = getattr(rule, "json_schema", None)
    options = options_of(rule)
    if callable(own):
        schema = dict(own())
    elif options and all(isinstance(option, int) for option in options):
        schema = {"type": "integer", "enum": list(options)}
    elif options:
        schema = {"type": "string", "enum": [str(option) for option in options]}
    elif isinstance(rule, Bool):
        schema = {"type": "boolean"}
    elif isinstance(rule, Number):
        schema = {"type": "string", "pattern": "^" + NUMBER_PATTERN.pattern + "$"}
    elif isinstance(rule, Pattern):
        schema = {"type": "string", "pattern": _anchored(rule.pattern.pattern)}
    else:
        schema = {"type": "string"}
        if isinstance(rule, Str):
            if rule.min_len is not None:
                schema["minLength"] = rule.min_len
            if rule.max_len is not None:
                schema["maxLength"] = rule.max_len
    if rule.default is not None:
        schema["default"] = rule.default
    if rule.description:
        schema["description"] = rule.description
    return schema


def rule_text(rule: Rule) -> str:
    """The rule in words, as YesApi's 备注 column writes it."""
    own = getattr(rule, "json_schema", None)
    if callable(own) and "pattern" in own():
        return f"格式 (format): {own()['pattern']}"
    if isinstance(rule, Str):
        if rule.min_len is not None and rule.min_len == rule.max_len:
            return f"长度:{rule.min_len} (exactly {rule.min_len} characters)"
        bounds = []
        if rule.min_len is not None:
            bounds.append(f"最小:{rule.min_len}")
        if rule.max_len is not None:
            bounds.append(f"最大:{rule.max_len}")
        return " ".join(bounds)
    if options_of(rule):
        return "范围:" + "/".join(map(str, options_of(rule)))
    if isinstance(rule, Bool):
        return "数字>0为真，或ok/true/success/on/yes (a number > 0, or ok/true/success/on/yes)"
    if isinstance(rule, Number):
        return f"5到12位数字，不以0开头 (^{NUMBER_PATTERN.pattern}$)"
    if isinstance(rule, Pattern):
        return f"格式 (format): ^{rule.pattern.pattern}$"
    return ""


_BAD_VALUES = ("?", "1x", " ", "-", "x" * 65)


def _bad_value(rule: Pattern) -> str:
    """A value the pattern refuses, for the error table's example message."""
    for value in _BAD_VALUES:
        if rule.pattern.fullmatch(value) is None:
            return value
    return "\x00"


def _rule_failures(rule: Rule) -> list[ApiError]:
    found: list[ApiError] = []
    if rule.required:
        found.append(errors.missing(rule.name))
    if isinstance(rule, Str):
        if rule.min_len:
            found.append(errors.too_short(rule.name, rule.min_len, rule.min_len - 1))
        if rule.max_len is not None:
            found.append(errors.too_long(rule.name, rule.max_len, rule.max_len + 1))
    elif options_of(rule):
        options = tuple(map(str, options_of(rule)))
        bad = "0" if "0" not in options else "x"
        if isinstance(rule, Enum):
            bad = str(max(rule.options, default=0) + 1)
        found.append(errors.not_in_enum(rule.name, options, bad))
    elif isinstance(rule, Number):
        found.append(errors.bad_number(rule.name, "abc"))
    elif isinstance(rule, Pattern):
        found.append(errors.bad_format(rule.name, _bad_value(rule)))
    return found


@dataclass(frozen=True, slots=True)
class ErrorDoc:
    ret: int
    msg: str
    when: str


def error_table(service: Service) -> list[ErrorDoc]:
    """Every `ret` ≠ 200 a call can end with, with the exact message (examples filled in)."""
    rows = [ErrorDoc(404, errors.unknown_service("App.Nope.Nope").msg,
                     "接口服务不存在 (no such service)")]
    for param in params_of(service):
        rows += [ErrorDoc(failure.ret, failure.msg, f"参数{param.name}不符合规则 (bad value)")
                 for failure in _rule_failures(param.rule)]
    if service.needs_app:
        rows += [
            ErrorDoc(400, errors.uuid_without_token().msg, "只传了uuid或token (only one of them)"),
            ErrorDoc(406, errors.unknown_app().msg, "app_key不存在 (unknown app)"),
            ErrorDoc(400, errors.missing("sign").msg, "应用开启了签名但未传sign (sign required)"),
            ErrorDoc(409, errors.bad_sign().msg, "签名错误 (wrong sign)"),
            ErrorDoc(401, errors.session_expired().msg, "会员会话无效 (member session invalid)"),
        ]
    rows.append(ErrorDoc(500, errors.server_error("内部错误，请稍后重试").msg,
                         "服务器错误 (server fault)"))
    return rows


def _example_value(rule: Rule) -> str:
    if isinstance(rule, Number):
        return "376741929"
    if options_of(rule):
        return str(rule.default if rule.default is not None else options_of(rule)[0])
    if isinstance(rule, Bool):
        return "1"
    if isinstance(rule, Str) and rule.min_len:
        return ("example" * (rule.min_len // 7 + 1))[: max(rule.min_len, 7)]
    return "example"


def example_params(service: Service) -> dict[str, str]:
    """The service's own parameters in the worked example: its `example`, else the required ones."""
    if service.example:
        return dict(service.example)
    return {rule.name: _example_value(rule) for rule in service.rules if rule.required}


@dataclass(frozen=True, slots=True)
class SignedExample:
    """A request signed step by step: what to hash and the `sign` it gives."""

    params: dict[str, str]   # every parameter sent, `sign` excluded
    names: list[str]         # sorted as the signature sorts them
    text: str                # the values concatenated, with the secret appended
    sign: str

    @property
    def query(self) -> str:
        return urlencode({**self.params, "sign": self.sign})


def signed_example(service: Service, *, old_style: bool) -> SignedExample:
    """The worked example: the service's example parameters for the sample app, signed.

    The old URL style sends `s` as a parameter, so it takes part in the signature;
    the new style names the service in the path and signs one parameter fewer.
    """
    params: dict[str, str] = {"s": service.name} if old_style else {}
    if service.needs_app:
        params["app_key"] = EXAMPLE_APP_KEY
    params.update(example_params(service))
    names = sorted(params)  # plain names: byte order, which is what the signature uses too
    text = "".join(params[name] for name in names) + EXAMPLE_SECRET
    return SignedExample(params, names, text, compute_sign(params, EXAMPLE_SECRET))


EXAMPLE_NONCE = "Ex4mple-Nonce_0123456789"  # a fresh one per request in real life


@dataclass(frozen=True, slots=True)
class StrongSignedExample:
    """A request signed with the opt-in `hmac-sha256` scheme (protocol/sign.py)."""

    params: dict[str, str]   # every parameter sent, `sign` excluded (no `s`: new URL style)
    text: str                # the canonical text the HMAC covers
    sign: str

    @property
    def query(self) -> str:
        return urlencode({**self.params, "sign": self.sign})


def strong_signed_example(service: Service) -> StrongSignedExample:
    """The worked example of the stronger scheme, made by the server's own code: the
    service's example parameters for the sample app at `EXAMPLE_T`."""
    params = {"app_key": EXAMPLE_APP_KEY, **example_params(service),
              "timestamp": str(EXAMPLE_T), "nonce": EXAMPLE_NONCE}
    return StrongSignedExample(params, canonical_text(service.name, params).decode(),
                               compute_strong_sign(service.name, params, EXAMPLE_SECRET))


def example_data(service: Service) -> dict[str, Any]:
    return {field.name: list(field.example) if isinstance(field.example, tuple) else field.example
            for field in service.returns}


@dataclass(frozen=True, slots=True)
class ExampleAnswer:
    data_json: str
    t: int
    auth: str
    body: str


def example_answer(service: Service) -> ExampleAnswer:
    """A success envelope for the sample app, with its `_auth` really computed."""
    data = dumps(example_data(service))
    secret = EXAMPLE_SECRET if service.needs_app else None
    body = envelope(200, data, "", EXAMPLE_T, secret)
    return ExampleAnswer(data.decode("utf-8"), EXAMPLE_T,
                         auth(data, EXAMPLE_T, EXAMPLE_SECRET) if secret else "",
                         body.decode("utf-8"))


_JSON_TYPES = {"string", "integer", "boolean", "array", "object", "number", "null"}


def data_schema(service: Service) -> dict[str, Any]:
    """JSON Schema of `data` on success; any JSON value when the service does not say."""
    if not service.returns:
        return {"description": "由接口决定 (depends on the service)"}
    properties: dict[str, Any] = {}
    for field in service.returns:
        schema: dict[str, Any] = {"description": field.description}
        if field.type in _JSON_TYPES:
            schema["type"] = field.type
        if field.type == "array":
            schema["items"] = {}
        properties[field.name] = schema
    return {
        "type": "object",
        "properties": properties,
        "required": [field.name for field in service.returns if field.required],
    }
