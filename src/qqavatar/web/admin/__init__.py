"""The operator dashboard at /admin (off unless `QQAVATAR_ADMIN_TOKEN` is set).

`routes.ROUTES` go into `web.routes.ROUTES`; templates and the stylesheet ship as package data.
"""
# Nothing imported here: the CLI reads `access` (the token's files) without the web stack.
