"""Private avatar links: URLs that show an avatar without naming the number or the app.

`tokens` seals and opens tokens (pure), `registry` holds the keys in memory (each app's
key is kept in the database by `store.link_keys`), `urls` builds and reads link URLs,
`startup` wires it into a server. The services live in `handlers.link_services`, the
`/a/…` route in `web.link_views`. (No imports here: `store.link_keys` takes
`tokens.LinkKey` without loading the registry, which takes the store.)
"""
