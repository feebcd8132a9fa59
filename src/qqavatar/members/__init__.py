"""Members of an app (SPEC §6): registration, login sessions and the session guard."""
