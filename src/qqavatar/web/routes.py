"""Pages and endpoints beside the API (admin, docs, health …), as Starlette routes.

The API itself (`/` and `/api/…`) is served by `web.app` directly; every other path
goes to these routes. Route handlers find the running server in
`request.app.state.runtime` and `request.app.state.gateway`.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

ROUTES: list[BaseRoute] = []
