"""`/demo/comments`: a blog's comment list whose avatars are private links.

Served only in demo mode (`qqavatar demo`, `serve --demo`, or QQAVATAR_DEMO=1): every view
of the page spends views of the oldest app, which a production server must not hand out
to anyone who asks. The page's source names no QQ number and no app_key — open it and see.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..catalog import USER_IMAGE_LINK
from ..components import Runtime
from ..handlers.link_services import link_target
from ..links.urls import link_url
from ..protocol.params import parse
from ..store.apps import AppStore


@dataclass(frozen=True, slots=True)
class Comment:
    author: str
    qq: str          # never written into the page; only the link made from it is
    when: str
    text: str


# The fake qlogo gives a JPEG for numbers ending in 1-4, a PNG for 5-9, and the default
# image for 0, so the list shows all three.
DEMO_COMMENTS = (
    Comment("小明", "376741929", "3 分钟前", "头像链接里看不到我的QQ号了，不怕被加好友骚扰。"),
    Comment("Alice", "10001", "12 分钟前", "Right-click → copy image address: just a token."),
    Comment("老王", "2851776554", "1 小时前", "页面源代码里也找不到app_key，爬虫拿去也没用。"),
    Comment("Bob", "635461237", "昨天", "Same avatar, same URL, so my browser caches it."),
    Comment("匿名用户", "1234567890", "2 天前", "没有设置头像的号码显示腾讯默认头像。"),
)
DEMO_NUMBERS = tuple(comment.qq for comment in DEMO_COMMENTS)

_PAGE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>qqavatar · 私有头像链接演示</title>
<style>
body {{ font: 15px/1.6 system-ui, sans-serif; max-width: 42rem; margin: 2rem auto;
        padding: 0 1rem; color: #222; }}
.comment {{ display: flex; gap: .75rem; padding: .75rem 0; border-bottom: 1px solid #eee; }}
.comment img {{ width: 48px; height: 48px; border-radius: 50%; flex: none; }}
.meta {{ color: #888; font-size: 13px; }}
code {{ background: #f4f4f4; padding: 0 .25rem; }}
</style>
</head>
<body>
<h1>评论 · Comments</h1>
<p>Every avatar below is a private link made by <code>App.QQ.UserImageLink</code>:
view the source — no QQ number and no <code>app_key</code> in it.</p>
<ol class="comments" style="list-style: none; padding: 0">
{comments}
</ol>
</body>
</html>
"""

_COMMENT = """<li class="comment">
  <img src="{src}" alt="" width="48" height="48">
  <div><strong>{author}</strong> <span class="meta">{when}</span><p>{text}</p></div>
</li>"""


async def demo_comments(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    if not runtime.settings.demo or runtime.links is None or runtime.engine is None:
        return PlainTextResponse("Not Found", 404)
    apps = await AppStore(runtime.engine).list()  # oldest first
    if not apps:
        return PlainTextResponse("No app yet: create one with `qqavatar app create NAME`.", 503)
    owner = apps[0].app_key
    items = []
    for comment in DEMO_COMMENTS:
        values = parse({"qq": comment.qq, "size": "100"}, USER_IMAGE_LINK.rules)
        target = link_target(USER_IMAGE_LINK, values)
        token = await runtime.links.seal(owner, target)
        if token is None:  # the app was deleted while the page was being made
            return PlainTextResponse("The demo app is gone; reload the page.", 503)
        items.append(_COMMENT.format(src=escape(link_url("", token, target)),
                                     author=escape(comment.author), when=escape(comment.when),
                                     text=escape(comment.text)))
    return HTMLResponse(_PAGE.format(comments="\n".join(items)),
                        headers={"Cache-Control": "no-store"})


ROUTES = [Route("/demo/comments", demo_comments, methods=["GET", "HEAD"])]
