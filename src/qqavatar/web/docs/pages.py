"""The `/docs` pages: rendered once per process from the service table, then served as is."""

from __future__ import annotations

import functools
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ... import __version__
from ...protocol.params import Bool
from .. import servicedoc

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("qqavatar.web.docs", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,  # a typo in a template fails loudly, in tests
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.globals.update(version=__version__, doc=servicedoc)

# JSON Schema types as YesApi's tables name them.
TYPE_LABELS = {"string": "字符串", "integer": "整型", "boolean": "布尔型", "array": "数组",
               "object": "对象", "number": "浮点型"}


def _field_type(json_type: str) -> str:
    return f"{TYPE_LABELS.get(json_type, json_type)} {json_type}"


_ENV.filters["field_type"] = _field_type


def form_field(param: servicedoc.ParamDoc, example: dict[str, str]) -> dict[str, Any]:
    """How the try-it form asks for one parameter: a choice where the rule has few values.

    Only the worked example's values are filled in; everything else starts "not sent", so
    the request is as small as a YesApi client's and its defaults show what the server does.
    """
    rule = param.rule
    choices: list[str] = []
    if param.type_en == "enum":
        choices = [str(option) for option in servicedoc.options_of(rule)]
    elif isinstance(rule, Bool):
        choices = ["1", "0"]
    return {"choices": choices, "value": example.get(param.name, "")}


_ENV.globals["form_field"] = form_field


@functools.cache
def _index_html() -> str:
    return _ENV.get_template("index.html").render(services=servicedoc.services())


@functools.cache
def _signing_html() -> str:
    services = servicedoc.services()
    # YesApi's own example service when it is there, else any that needs an app
    example = servicedoc.find("App.QQ.UserImage") or next(
        (service for service in services if service.needs_app), None)
    return _ENV.get_template("signing.html").render(services=services, service=example)


@functools.cache
def _service_html(name: str) -> str:
    service = servicedoc.find(name)
    assert service is not None
    example = servicedoc.example_params(service)
    # the try-it form starts from the example, but shows the image itself where there is one
    tryit = {name: value for name, value in example.items()
             if not (service.image and name == "output")}
    return _ENV.get_template("service.html").render(
        services=servicedoc.services(),
        service=service,
        current=service.name,
        params=servicedoc.params_of(service),
        path=servicedoc.url_path(service),
        errors=servicedoc.error_table(service),
        old=servicedoc.signed_example(service, old_style=True),
        new=servicedoc.signed_example(service, old_style=False),
        answer=servicedoc.example_answer(service),
        tryit=tryit,
    )


# As the dashboard's (web/admin/views.py): no framing, no other origin, no inline code;
# the try-it form runs tryit.js, fetches this server and shows the avatar from a blob.
SECURITY_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data: blob:; connect-src 'self'; "
                               "frame-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                               "base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def _page(html: str, status: int = 200) -> Response:
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


async def index(request: Request) -> Response:
    return _page(_index_html())


async def signing(request: Request) -> Response:
    return _page(_signing_html())


async def service_page(request: Request) -> Response:
    name: str = request.path_params["name"]
    service = servicedoc.find(name)
    if service is None:
        html = _ENV.get_template("not_found.html").render(services=servicedoc.services(),
                                                          name=name)
        return _page(html, 404)
    return _page(_service_html(service.name))


ROUTES: list[BaseRoute] = [
    Route("/docs", index, methods=["GET", "HEAD"]),
    Route("/docs/signing", signing, methods=["GET", "HEAD"]),
    Mount("/docs/static", StaticFiles(packages=[("qqavatar.web.docs", "static")]),
          name="docs-static"),
    Route("/docs/{name}", service_page, methods=["GET", "HEAD"]),
]
