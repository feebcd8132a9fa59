"""Raw HTTP for the client tests: the exact request bytes a client puts on the wire, and
the answer as it comes back (status, headers, body), with no HTTP library in between.

Each test module builds its client's bytes itself, from what that client's published
source does; this module only carries them and reads the reply.
"""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # lowercased names; a repeated header keeps its last value
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def host_port(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def _read_answer(sock: socket.socket, buffer: bytes = b"") -> tuple[Answer, bytes]:
    """One response from `sock` (`buffer`: bytes already read); returns it and what follows."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed before a full answer: {buffer!r}")
        buffer += chunk
    head, rest = buffer.split(b"\r\n\r\n", 1)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ")[1])
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if status < 200 or status in (204, 304):
        return Answer(status, headers, b""), rest
    assert "transfer-encoding" not in headers, "a chunked answer: not read here"
    if "content-length" in headers:
        length = int(headers["content-length"])
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return Answer(status, headers, rest[:length]), rest[length:]
    while chunk := sock.recv(65536):  # no length: the body ends when the server closes
        rest += chunk
    return Answer(status, headers, rest), b""


def exchange(base_url: str, request: bytes, *, timeout: float = 10.0) -> Answer:
    """Send `request` as is on a fresh connection; the server's (final) answer."""
    with socket.create_connection(host_port(base_url), timeout=timeout) as sock:
        sock.sendall(request)
        answer, _ = _read_answer(sock)
        return answer


def exchange_expecting_continue(base_url: str, head: bytes, body: bytes, *, wait: float,
                                timeout: float = 10.0) -> tuple[bool, Answer]:
    """A client that sends `Expect: 100-continue`: the head, then the body once the server
    says `100 Continue` or after `wait` seconds of silence. Returns (continue seen, answer)."""
    with socket.create_connection(host_port(base_url), timeout=timeout) as sock:
        sock.sendall(head)
        sock.settimeout(wait)
        try:
            early = sock.recv(65536)
        except TimeoutError:
            early = b""
        sock.settimeout(timeout)
        interim = early.startswith(b"HTTP/1.1 100")
        if early and not interim:  # the server answered without waiting for the body
            answer, _ = _read_answer(sock, early)
            return False, answer
        rest = early.split(b"\r\n\r\n", 1)[1] if interim else b""
        sock.sendall(body)
        answer, _ = _read_answer(sock, rest)
        return interim, answer


def sorted_values_sign(params: Mapping[str, str], secret: str,
                       order: Callable[[Iterable[str]], list[str]] = sorted) -> str:
    """The YesApi signature as the SDKs build it: the values in the order of their names
    (`order`: how that SDK sorts), the secret appended, md5 as uppercase hex."""
    text = "".join(params[name] for name in order(params)) + secret
    return hashlib.md5(text.encode("utf-8")).hexdigest().upper()


def auth_holds(body: bytes, secret: str) -> bool:
    """`_auth` of an envelope body: md5 of the `data` bytes as written, `_t` and the secret.
    The keys come in the order ret, data, msg, so `data` ends where `,"msg":` begins."""
    envelope = json.loads(body)
    data = body[body.index(b'"data":') + len(b'"data":'):body.rindex(b',"msg":')]
    expected = hashlib.md5(data + str(envelope["_t"]).encode() + secret.encode()).hexdigest()
    return bool(envelope.get("_auth") == expected)
