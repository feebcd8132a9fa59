"""The avatar services' optional parameters beyond YesApi's: `format` and `default`.

Shared by every service that shows an avatar (UserImage, GroupImage and the private links
made from them), so one spelling is accepted everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..avatars import DEFAULTS, OUTPUT_FORMATS
from . import errors
from .numbers import php_number
from .params import Rule


@dataclass(frozen=True, slots=True)
class Choice(Rule):
    """PhalApi's enum over text options: `in_array`'s loose comparison, so a value matches
    an option equal to it, or numerically equal when both are numeric strings ("404.0" is
    "404"); "JPEG" is not "jpeg". Failing: `参数format应该为：jpeg/png/webp，但现在format = gif`."""

    options: tuple[str, ...] = ()

    def convert(self, raw: str) -> Any:
        number = php_number(raw)
        for option in self.options:
            if raw == option:
                return option
            if number is not None and number == php_number(option):
                return option
        raise errors.not_in_enum(self.name, self.options, raw)


FORMAT = Choice(
    "format", options=OUTPUT_FORMATS,
    description="图片格式，不传则保持头像原格式：" + "/".join(OUTPUT_FORMATS)
                + " (re-encode the image; absent: as qlogo serves it)")
DEFAULT = Choice(
    "default", default="qq", options=DEFAULTS,
    description="号码没有自己的头像时：qq 腾讯默认头像，404 返回err_code=1（图片模式HTTP 404），"
                "identicon 按号码生成的图案 (no avatar of its own: Tencent's default, "
                "a 404, or a generated identicon)")
