"""The dashboard's routes, for `web.routes.ROUTES`."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from . import views

ROUTES: list[BaseRoute] = [
    Route("/admin", views.index, methods=["GET"]),
    Route("/admin/login", views.login_form, methods=["GET"]),
    Route("/admin/login", views.login, methods=["POST"]),
    Route("/admin/logout", views.logout, methods=["POST"]),
    Route("/admin/apps", views.create_app, methods=["POST"]),
    Route("/admin/apps/{app_key}", views.app_page, methods=["GET"]),
    Route("/admin/apps/{app_key}/rotate", views.rotate_secret, methods=["POST"]),
    Route("/admin/apps/{app_key}/settings", views.save_settings, methods=["POST"]),
    Route("/admin/api/apps", views.api_apps, methods=["GET"]),
    Route("/admin/api/stats", views.api_stats, methods=["GET"]),
    Route("/admin/api/daily", views.api_daily, methods=["GET"]),
    Route("/admin/static/admin.css", views.stylesheet, methods=["GET"]),
]
