"""Private avatar links: URLs that show an avatar without naming the number or the app.

`tokens` seals and opens tokens (pure), `registry` holds the keys in memory (each app's
key is kept in the database by `store.link_keys`), `urls` builds and reads link URLs,
`feature` wires it into a server. The services live in `handlers.links`, the `/a/…` route
in `web.links`.
"""

from .registry import LinkRegistry
from .tokens import LinkKey, LinkTarget

__all__ = ["LinkKey", "LinkRegistry", "LinkTarget"]
