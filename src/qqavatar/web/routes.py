"""Pages and endpoints beside the API (admin, docs, health …), as Starlette routes.

The API itself (`/` and `/api/…`) is answered through `web.dispatch` on either server;
every other path goes to these routes. Route handlers find the running server in
`request.app.state.runtime` and `request.app.state.gateway`.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from .admin.routes import ROUTES as ADMIN_ROUTES
from .demo import ROUTES as DEMO_ROUTES
from .docs import ROUTES as DOCS_ROUTES
from .link_views import ROUTES as LINK_ROUTES
from .openapi import ROUTES as OPENAPI_ROUTES
from .ops import ROUTES as OPS_ROUTES

ROUTES: list[BaseRoute] = []

ROUTES += OPENAPI_ROUTES
ROUTES += DOCS_ROUTES
ROUTES += LINK_ROUTES
ROUTES += DEMO_ROUTES
ROUTES += ADMIN_ROUTES
ROUTES += OPS_ROUTES
