"""App.Site.Index: what this server is and which services it offers (no app needed)."""

from __future__ import annotations

from .. import __version__
from ..apicall import Call, Result
from ..catalog import SERVICES
from ..components import Runtime
from ..protocol.phpjson import dumps


async def site_index(runtime: Runtime, call: Call) -> Result:
    return Result(data=dumps({
        "name": "qqavatar",
        "version": __version__,
        "services": [service.name for service in SERVICES.values()],
    }))
