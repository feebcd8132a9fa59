"""nginx as an operator would put it in front of qlogo: `proxy_cache` with `proxy_cache_lock`.

Also serves the static file of the JSON scenario (the same bytes qqavatar answers).
The config lives in the harness's temporary directory; nginx runs in the foreground
(`daemon off`) with its own pid file, error log and temp paths, one worker process.
"""

from __future__ import annotations

import os
from pathlib import Path

STATIC_JSON = "/static/avatar.json"

_CONFIG = """\
{user}daemon off;
worker_processes {workers};
pid {root}/nginx.pid;
error_log {root}/error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    proxy_cache_path {root}/cache levels=1:2 keys_zone=avatars:64m max_size=1g
                     inactive=1d use_temp_path=off;

    upstream qlogo {{
        server {upstream};
        keepalive 64;
    }}

    server {{
        listen 127.0.0.1:{port};

        location /static/ {{
            root {root}/www;
            default_type application/json;
        }}

        location / {{
            proxy_pass http://qlogo;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache avatars;
            proxy_cache_lock on;
            proxy_cache_lock_timeout 10s;
            proxy_cache_valid 200 1d;
            add_header X-Cache $upstream_cache_status;
        }}
    }}
}}
"""


def write_static(root: Path, body: bytes) -> None:
    """The JSON scenario's file (nginx reads it at each request: it may come after the start)."""
    (root / "www" / STATIC_JSON.lstrip("/")).write_bytes(body)


def write_config(root: Path, *, port: int, upstream: str, workers: int = 1) -> Path:
    """Write nginx.conf under `root`; `upstream` is `host:port`."""
    for sub in ("tmp", "cache", "www/static"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    # As root, nginx's workers would switch to `nobody`, who cannot enter a private temp dir.
    user = "user root;\n" if os.geteuid() == 0 else ""
    config = root / "nginx.conf"
    config.write_text(_CONFIG.format(user=user, workers=workers, root=root, port=port,
                                     upstream=upstream))
    return config


def command(nginx: str, root: Path) -> list[str]:
    # -e: the startup error log too (before the config is read) goes to our directory.
    return [nginx, "-p", str(root), "-c", str(root / "nginx.conf"), "-e", str(root / "error.log")]
