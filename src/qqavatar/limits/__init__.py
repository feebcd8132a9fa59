"""Per-app limits: IP allow-list, bound domains, rate limit, daily and monthly quotas.

`limit_values` (pure parsing, used by the store and the CLI) is kept free of imports from the
rest of this package, so `qqavatar.store` can use it without pulling in the guards.
"""
