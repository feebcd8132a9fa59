"""`GET /a/<token>[.<format>]`: a private link's avatar.

The token is opened with the owning app's link key, then the avatar is fetched by running
`App.QQ.UserImage` (or `GroupImage`) through the gateway as a call of that app: the same
cache, ETag/304 and Cache-Control as the API, and the view counts against the app's quota
and rate limit and appears in its statistics like any call. Anything that is not a
current, genuine link — malformed, altered, truncated, another extension, a rotated key,
a deleted app — is the same bare 404, so a probe learns nothing.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ..apicall import ApiReply, ApiRequest
from ..avatars import Kind
from ..catalog import GROUP_IMAGE, USER_IMAGE
from ..components import Runtime
from ..gateway import Gateway
from ..links.urls import PATH_PREFIX, extension, split_name

AVATAR_SERVICE: dict[Kind, str] = {"user": USER_IMAGE.name, "group": GROUP_IMAGE.name}


def not_found() -> Response:
    return PlainTextResponse("Not Found", 404, headers={"Cache-Control": "no-store"})


async def view_link(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    gateway: Gateway = request.app.state.gateway
    if runtime.links is None:
        return not_found()
    token, ext = split_name(request.path_params["name"])
    opened = await runtime.links.open(token)
    if opened is None:
        return not_found()
    app_key, target = opened
    app = runtime.apps.get(app_key)
    if app is None or ext != extension(target):
        return not_found()
    call = ApiRequest(
        service=AVATAR_SERVICE[target.kind],
        params={**dict(target.params), "output": "1"},
        headers=dict(request.headers),  # If-None-Match, Host … as the viewer sent them
        client=request.client.host if request.client else None,
        method=request.method,
        scheme=request.url.scheme,
    )
    return to_response(await gateway.handle_as(app, call))


def to_response(reply: ApiReply) -> Response:
    response = Response(reply.body, reply.status, media_type=reply.content_type)
    response.raw_headers.append((b"x-content-type-options", b"nosniff"))
    response.raw_headers.extend((name.lower().encode("latin-1"), value.encode("latin-1"))
                                for name, value in reply.headers)
    return response


# `path`: everything under /a/ is answered here, so `/a/<token>/` is a 404 like any other
# spelling, not a redirect to the link.
ROUTES = [Route(PATH_PREFIX + "{name:path}", view_link, methods=["GET", "HEAD"])]
