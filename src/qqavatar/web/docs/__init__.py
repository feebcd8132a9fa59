"""Human API docs at `/docs`: one page per service, the signing guide, a try-it form.

Generated from the service table (see `web.servicedoc`), server-rendered, no CDN.
"""

from .pages import ROUTES

__all__ = ["ROUTES"]
