"""QQ avatars from qlogo: fetched once, validated, cached (memory, optionally disk), shared by
concurrent callers, kept fresh by the policy in service.py.

The web layer calls `AvatarService.cached` first (sync, O(1)) and `await fetch` on a miss;
failures arrive as `AvatarError` (`UpstreamError` with its `Failure`, `NoAvatar`);
`protocol.avatar_errors` says what YesApi answers to each.
"""

from .breaker import CircuitState
from .failures import AvatarError, CacheState, Failure, NoAvatar, UpstreamError
from .images import OUTPUT_FORMATS
from .model import Avatar, Kind, Served
from .service import DEFAULTS, AvatarService

__all__ = ["DEFAULTS", "OUTPUT_FORMATS", "Avatar", "AvatarError", "AvatarService", "CacheState",
           "CircuitState", "Failure", "Kind", "NoAvatar", "Served", "UpstreamError"]
