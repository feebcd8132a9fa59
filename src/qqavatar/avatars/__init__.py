"""QQ avatars from qlogo: fetched once, validated, cached in memory, shared by concurrent callers.

The web layer calls `AvatarService.cached` first (sync, O(1)) and `await get` on a miss;
failures arrive as `UpstreamError` with the `err_code`/`err_msg` to put in `data`.
"""

from .errors import UpstreamError
from .model import Avatar, Kind
from .service import AvatarService

__all__ = ["Avatar", "AvatarService", "Kind", "UpstreamError"]
