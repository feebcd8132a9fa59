"""The components one running server shares; handlers and guards take what they need."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .avatars import AvatarService
from .calls import AppLike
from .settings import Settings


class AppLookup(Protocol):
    def get(self, app_key: str) -> AppLike | None: ...


@dataclass(slots=True)
class Runtime:
    settings: Settings
    apps: AppLookup
    avatars: AvatarService
