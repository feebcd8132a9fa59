"""The OpenAPI 3.1 document at `/openapi.json`, generated from the service table.

Every service is documented twice, once per URL style:

- new style, one path per service: `GET|POST /api/App/QQ/UserImage`;
- old style, `GET|POST /` once: OpenAPI keys operations by path and method only, so the
  service is chosen inside the parameters. The query is one exploded object parameter
  (`style: form, explode: true` serializes its properties as ordinary `k=v` pairs)
  whose schema is a `oneOf` with one branch per service, `s` fixed to the service's name.
  The same `oneOf` describes the POST bodies. Each branch carries exactly that service's
  rules, so `/?s=App.QQ.UserImage&qq=…` is as precisely described as its new-style twin.

Envelope answers are HTTP 200 whatever `ret` says (YesApi's behaviour); image mode and
`QQAVATAR_HTTP_STATUS=mirror` use real 4xx/5xx statuses, documented as `4XX`/`5XX`.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import __version__
from ..avatars.images import MEDIA_TYPES
from ..catalog import Service
from ..protocol.params import NUMBER_PATTERN, Bool, Enum, Number, Rule, parse_bool
from . import servicedoc
from .servicedoc import data_schema, params_of, services, slug, url_path

OPENAPI_VERSION = "3.1.0"
JSON_TYPE = "application/json"
JSONP_TYPE = "text/javascript"
# Every type an avatar can be served as: the formats the image pipeline accepts and writes.
IMAGE_TYPES = tuple(dict.fromkeys(MEDIA_TYPES.values()))
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _json_body_schema(rule: Rule) -> dict[str, Any]:
    """A parameter inside a JSON body: numbers may come as JSON numbers (PHP casts them)."""
    schema = servicedoc.param_schema(rule)
    if isinstance(rule, Number):
        low, high = 10**4, 10**12 - 1  # NUMBER_PATTERN: 5 to 12 digits, no leading zero
        text = {"type": "string", "pattern": "^" + NUMBER_PATTERN.pattern + "$"}
        schema = {key: value for key, value in schema.items() if key not in ("type", "pattern")}
        schema["anyOf"] = [text, {"type": "integer", "minimum": low, "maximum": high}]
    elif isinstance(rule, Enum):
        strings = [str(option) for option in rule.options]
        schema = {key: value for key, value in schema.items() if key not in ("type", "enum")}
        schema["anyOf"] = [{"type": "integer", "enum": list(rule.options)},
                           {"type": "string", "enum": strings}]
    elif isinstance(rule, Bool):
        schema = {key: value for key, value in schema.items() if key != "type"}
        schema["anyOf"] = [{"type": "boolean"}, {"type": "integer"}, {"type": "string"}]
    return schema


def _params_object(service: Service, *, json_body: bool, old_style: bool) -> dict[str, Any]:
    """The parameters of one service as one object (a body, or an exploded query)."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    if old_style:
        properties["s"] = {"const": service.name, "description": "接口服务名称 (the service)"}
        properties["service"] = {"const": service.name,
                                 "description": "同s，两者都传时以service为准 (wins over s)"}
        if service.needs_app:
            required.append("s")
    for param in params_of(service):
        rule = param.rule
        properties[rule.name] = _json_body_schema(rule) if json_body else param.schema
        if rule.required:
            required.append(rule.name)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if old_style:
        schema["title"] = service.name
    example = _example(service)
    if example:
        schema["examples"] = [({"s": service.name} if old_style else {}) | example]
    return schema


def _example(service: Service) -> dict[str, Any]:
    """The worked example's parameters, typed as the schemas type them (none if not given)."""
    if not service.example:
        return {}
    values: dict[str, Any] = {"app_key": servicedoc.EXAMPLE_APP_KEY} if service.needs_app else {}
    rules = {param.name: param.rule for param in params_of(service)}
    for name, text in service.example:
        rule = rules.get(name)
        if isinstance(rule, Enum):
            values[name] = int(text)
        elif isinstance(rule, Bool):
            values[name] = parse_bool(text)
        else:
            values[name] = text
    return values


# (schema name suffix, JSON body, old URL style): each service's parameters as an object.
_PARAM_OBJECTS = (
    ("_Form", False, False),
    ("_Json", True, False),
    ("_OldForm", False, True),
    ("_OldJson", True, True),
)


def _schemas(all_services: list[Service]) -> dict[str, Any]:
    schemas: dict[str, Any] = {
        "ErrorEnvelope": {
            "type": "object",
            "description": "失败 (a failure): `data` is empty, `msg` says why.",
            "properties": {
                "ret": {"type": "integer", "minimum": 400, "maximum": 599},
                "data": {"type": "object", "maxProperties": 0},
                "msg": {"type": "string"},
                "_t": {"type": "integer", "description": "服务器Unix时间戳 (server time)"},
                "_auth": _auth_schema(),
            },
            "required": ["ret", "data", "msg", "_t"],
            "additionalProperties": False,
        },
        "EmptyData": {
            "type": "object", "maxProperties": 0,
            "description": "return_data=1 的失败：只返回空的data (a failure with return_data=1)",
        },
        "Jsonp": {"type": "string", "description": "`callback(<envelope>)`"},
        "Image": {"type": "string", "contentMediaType": "image/*"},
    }
    for service in all_services:
        name = slug(service)
        for suffix, json_body, old_style in _PARAM_OBJECTS:
            schemas[name + suffix] = _params_object(service, json_body=json_body,
                                                    old_style=old_style)
        schemas[name + "_Data"] = data_schema(service)
        schemas[name + "_Envelope"] = {
            "type": "object",
            "description": f"{service.name} 成功 (success); `data.err_code` < 0 is a system "
                           "failure inside a ret 200 answer",
            "properties": {
                "ret": {"type": "integer", "const": 200},
                "data": _ref(name + "_Data"),
                "msg": {"type": "string"},
                "_t": {"type": "integer"},
                "_auth": _auth_schema(),
            },
            "required": ["ret", "data", "msg", "_t"],
            "additionalProperties": False,
        }
    return schemas


def _auth_schema() -> dict[str, Any]:
    return {"type": "string", "pattern": "^[0-9a-f]{32}$",
            "description": "md5(<data JSON> + _t + app_secret), when the app is known"}


def _json_content(schemas: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        JSON_TYPE: {"schema": {"anyOf": schemas}},
        JSONP_TYPE: {"schema": _ref("Jsonp")},
    }


def _responses(service_list: list[Service]) -> dict[str, Any]:
    """Answers of an operation serving these services (one, or all of them at `/`)."""
    envelopes = [_ref(slug(service) + "_Envelope") for service in service_list]
    datas = [_ref(slug(service) + "_Data") for service in service_list]
    error = [_ref("ErrorEnvelope"), _ref("EmptyData")]
    ok: dict[str, Any] = {
        "description": "YesApi信封 (envelope; HTTP 200 whatever `ret` says, unless "
                       "QQAVATAR_HTTP_STATUS=mirror), `data` alone with return_data=1, "
                       "JSONP with callback",
        "content": _json_content(envelopes + error + datas),
    }
    responses: dict[str, Any] = {"200": ok}
    if any(service.image for service in service_list):
        ok["description"] += "; the image itself when output is true (图片)"
        ok["headers"] = _image_headers()
        for media_type in IMAGE_TYPES:
            ok["content"][media_type] = {"schema": _ref("Image")}
        responses["304"] = {"description": "If-None-Match matched the ETag (图片未变)",
                            "headers": _image_headers()}
    responses["4XX"] = {
        "description": "客户端非法请求 in image mode (output true) or with "
                       "QQAVATAR_HTTP_STATUS=mirror: the error envelope, status = ret; in "
                       "image mode also a ret 200 envelope whose data.err_code > 0 says why "
                       "there is no image (e.g. 404 with default=404)",
        "content": _json_content(error + envelopes + datas),
    }
    responses["5XX"] = {
        "description": "服务器错误 (ret 500), or, in image mode, the avatar could not be "
                       "fetched (502/503/504, a ret 200 envelope with data.err_code < 0)",
        "content": _json_content(error + envelopes + datas),
    }
    return responses


def _image_headers() -> dict[str, Any]:
    return {
        "ETag": {"schema": {"type": "string"}, "description": "strong validator of the image"},
        "Cache-Control": {"schema": {"type": "string"}},
        "X-Avatar-Default": {"schema": {"type": "string", "enum": ["0", "1"]},
                             "description": "1: Tencent's default image (no avatar of its own)"},
    }


def _query_parameters(service: Service) -> list[dict[str, Any]]:
    parameters = []
    example = _example(service)
    for param in params_of(service):
        parameter = {
            "name": param.name,
            "in": "query",
            "required": param.required,
            "description": param.description,
            "schema": param.schema,
        }
        if param.name in example:
            parameter["example"] = example[param.name]
        parameters.append(parameter)
    return parameters


def _bodies(objects: list[dict[str, Any]], json_objects: list[dict[str, Any]],
            description: str) -> dict[str, Any]:
    def one(schemas: list[dict[str, Any]]) -> dict[str, Any]:
        return schemas[0] if len(schemas) == 1 else {"oneOf": schemas}

    content = {media_type: {"schema": one(objects)} for media_type in FORM_TYPES}
    content[JSON_TYPE] = {"schema": one(json_objects)}
    return {"required": True, "description": description, "content": content}


def _operation(service: Service, method: str) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": f"{method}_{slug(service)}",
        "summary": service.description,
        "description": f"{service.name}: {service.description}. Docs: /docs/{service.name}",
        "tags": [service.name.rsplit(".", 1)[0]],
        "responses": _responses([service]),
    }
    if method == "get":
        operation["parameters"] = _query_parameters(service)
    else:
        operation["requestBody"] = _bodies(
            [_ref(slug(service) + "_Form")], [_ref(slug(service) + "_Json")],
            "参数也可以放在查询字符串里，请求体优先 (parameters may also go in the query "
            "string; the body wins)",
        )
    return operation


def _old_style_operation(all_services: list[Service], method: str) -> dict[str, Any]:
    description = (
        "旧式URL (the old URL style): `/?s=App.QQ.UserImage&…`. The parameters are those of "
        "the service named by `s` (or `service`, which wins over `s`; names are "
        "case-insensitive and `QQ.UserImage` means `App.QQ.UserImage`); without a service, "
        "App.Site.Index answers. Each service's parameters are one branch of the oneOf."
    )
    operation: dict[str, Any] = {
        "operationId": f"{method}_old_style",
        "summary": "旧式URL：/?s=服务名 (every service, old URL style)",
        "description": description,
        "tags": ["old style"],
        "responses": _responses(all_services),
    }
    objects = [_ref(slug(service) + "_OldForm") for service in all_services]
    if method == "get":
        operation["parameters"] = [{
            "name": "params",
            "in": "query",
            "style": "form",
            "explode": True,
            "required": True,
            "description": "the service's parameters, each as its own `name=value` pair",
            "schema": {"oneOf": objects},
        }]
    else:
        json_objects = [_ref(slug(service) + "_OldJson") for service in all_services]
        operation["requestBody"] = _bodies(objects, json_objects,
                                           "`s` may also go in the query string")
    return operation


def build_document() -> dict[str, Any]:
    """The whole document, from the services registered now."""
    all_services = services()
    paths: dict[str, Any] = {
        "/": {method: _old_style_operation(all_services, method) for method in ("get", "post")}
    }
    for service in all_services:
        paths[url_path(service)] = {method: _operation(service, method)
                                    for method in ("get", "post")}
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "qqavatar",
            "version": __version__,
            "summary": "YesApi-compatible QQ avatar API",
            "description": "Human docs with a signing guide: /docs. Signatures (`sign`) and "
                           "answer signatures (`_auth`): /docs/signing.",
        },
        "paths": paths,
        "components": {"schemas": _schemas(all_services)},
    }


@functools.cache
def document_bytes() -> bytes:
    """Generated on first use and kept: the service table does not change while serving."""
    return json.dumps(build_document(), ensure_ascii=False, separators=(",", ":")).encode()


async def openapi_json(request: Request) -> Response:
    return Response(document_bytes(), media_type="application/json")


ROUTES = [Route("/openapi.json", openapi_json, methods=["GET", "HEAD"])]
