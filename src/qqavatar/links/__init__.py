"""Private avatar links: URLs that show an avatar without naming the number or the app.

`tokens` seals and opens tokens (pure), `store` keeps each app's link key in the database,
`registry` holds the keys in memory, `urls` builds and reads link URLs, `feature` wires it
into a server. The services live in `handlers.links`, the `/a/…` route in `web.links`.
"""

from .registry import LinkRegistry
from .tokens import LinkKey, LinkTarget

__all__ = ["LinkKey", "LinkRegistry", "LinkTarget"]
