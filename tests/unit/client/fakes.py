"""A scripted pli server for client unit tests: a real HTTP server on 127.0.0.1 that plays a
hostile or broken server. Each test scripts its answers by (method, path), a problem object
like the real server's or any JSON at all; every call is recorded with the token it showed.
Uploads go to a minimal tus 1.0 endpoint that keeps the bytes it received, so the client's
real upload path runs end to end.

    with ScriptedServer() as server:
        server.answers["GET", "/api/v1/links"] = Reply({"items": "not a list"})
        ...  # a real pli.client.api.Api on server.base
        assert server.calls_to("GET", "/api/v1/links")[0].token == "plis_…"
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

from pli.crypto import keylog, merkle
from pli.crypto.bundle import PublicBundle
from pli.crypto.checkpoints import ServerKey
from pli.errors import ERRORS_BY_STATUS

UPLOADS = "/api/v1/uploads"
TUS_VERSION = "1.0.0"
OCTETS = "application/offset+octet-stream"
# What a client tells the server after a download: taken as the real server takes it (204).
_REPORT = re.compile(r"/api/v1/transfers/[^/]+/(receipt|failures)")
NO_BODY: Any = object()  # a Reply's body when it has none (None is sent as JSON `null`)


@dataclass(frozen=True)
class Reply:
    """One scripted answer: its status, JSON body (None is sent as `null`; NO_BODY, or a 204,
    sends none) and extra headers."""

    body: Any = None
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def problem(cls, status: int, detail: str, *, title: str | None = None) -> Reply:
        """An error as the real server answers it (pli.server.problems): RFC 9457."""
        known = ERRORS_BY_STATUS.get(status)
        if title is None:
            title = known.title if known is not None else HTTPStatus(status).phrase
        body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
        return cls(body, status)


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # without the query string
    token: str | None  # the Authorization header's bearer token
    body: Any  # the JSON body; None when there is none (or it is not JSON)


@dataclass
class Upload:
    """One upload created on the tus endpoint, and the bytes it received so far."""

    path: str
    length: int
    metadata: dict[str, str]
    token: str | None
    data: bytearray = field(default_factory=bytearray)
    terminated: bool = False


class ScriptedServer:
    """Started and stopped as a context manager. A scripted answer comes first, even on the
    tus endpoint's paths (to play a hostile one). A client's receipt or failure report after a
    download is answered 204 unless scripted. Any other call no answer scripts and that is no
    tus request is answered 501, and a scripted answer that cannot be sent 500: either is kept in
    `faults`, which must be empty at the end."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], Reply] = {}
        self.calls: list[Call] = []
        self.uploads: list[Upload] = []
        self.faults: list[str] = []
        self.lock = threading.Lock()
        self._http = _Server(self)
        # Polled often, so that stopping it (which waits for the next poll) takes no time.
        serve = functools.partial(self._http.serve_forever, poll_interval=0.01)
        self._thread = threading.Thread(target=serve, daemon=True)

    @property
    def base(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    def calls_to(self, method: str, path: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if (c.method, c.path) == (method, path)]

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join()
        if kind is None:
            assert self.faults == [], f"the scripted server failed: {self.faults}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, scripted: ScriptedServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.scripted = scripted


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real server does
    timeout = 10  # a client that stops mid-request does not hold a thread for long
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        scripted = self.server.scripted
        path = unquote(urlsplit(self.path).path)
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        call = Call(self.command, path, self._token(), _json(raw, self.headers["content-type"]))
        with scripted.lock:
            scripted.calls.append(call)
            reply = scripted.answers.get((self.command, path))
            if reply is None:
                reply = self._tus(scripted, path, raw)
            if reply is None and self.command == "POST" and _REPORT.fullmatch(path):
                reply = Reply(status=204)  # a client's receipt or failure report, as recorded
            if reply is None:
                scripted.faults.append(f"nothing scripted for {self.command} {path}")
                reply = Reply.problem(501, f"nothing scripted for {self.command} {path}")
            try:
                body = _encoded(reply)
            except (TypeError, ValueError) as exc:
                scripted.faults.append(f"cannot send the answer to {self.command} {path}: {exc}")
                reply = Reply.problem(500, "the scripted answer is not JSON")
                body = _encoded(reply)
        self._reply(reply, body)

    def _token(self) -> str | None:
        given = self.headers.get("authorization")
        if given is None:
            return None
        return given.removeprefix("Bearer ")

    def _reply(self, reply: Reply, body: bytes) -> None:
        self.send_response(reply.status)
        kind = "application/problem+json" if reply.status >= 400 else "application/json"
        if body:
            self.send_header("content-type", kind)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.status != 204:
            self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # --- tus 1.0, the core protocol and the creation and termination extensions -------------

    def _tus(self, scripted: ScriptedServer, path: str, raw: bytes) -> Reply | None:
        """The answer of the tus endpoint; None for what is not a tus request."""
        if path == UPLOADS and self.command == "POST":
            return self._tus_version() or self._create(scripted)
        if not path.startswith(f"{UPLOADS}/") or self.command not in ("HEAD", "PATCH", "DELETE"):
            return None
        upload = next((u for u in scripted.uploads if u.path == path), None)
        if upload is None or upload.terminated:
            return Reply.problem(404, "this upload does not exist")
        return self._tus_version() or self._on_upload(upload, raw)

    def _on_upload(self, upload: Upload, raw: bytes) -> Reply:
        if self.command == "HEAD":
            return _tus_reply(200, {"upload-length": str(upload.length)}, upload)
        if self.command == "DELETE":
            upload.terminated = True
            return _tus_reply(204, {})
        return self._patch(upload, raw)

    def _tus_version(self) -> Reply | None:
        if self.headers.get("tus-resumable") != TUS_VERSION:
            return Reply.problem(412, "send Tus-Resumable: 1.0.0", title="Protocol error")
        return None

    def _create(self, scripted: ScriptedServer) -> Reply:
        length = self.headers.get("upload-length", "")
        metadata = _metadata(self.headers.get("upload-metadata", ""))
        if not length.isdigit() or metadata is None:
            return Reply.problem(400, "a malformed Upload-Length or Upload-Metadata")
        path = f"{UPLOADS}/{len(scripted.uploads) + 1}"
        scripted.uploads.append(Upload(path, int(length), metadata, self._token()))
        return _tus_reply(201, {"location": path})

    def _patch(self, upload: Upload, raw: bytes) -> Reply:
        if self.headers.get("content-type") != OCTETS:
            return Reply.problem(415, f"send Content-Type: {OCTETS}", title="Protocol error")
        if self.headers.get("upload-offset") != str(len(upload.data)):
            return Reply.problem(409, "Upload-Offset is not the upload's offset")
        if len(upload.data) + len(raw) > upload.length:
            return Reply.problem(413, "more bytes than Upload-Length")
        upload.data += raw
        return _tus_reply(204, {}, upload)


def _encoded(reply: Reply) -> bytes:
    if reply.status == 204 or reply.body is NO_BODY:
        return b""
    return json.dumps(reply.body).encode()


def _tus_reply(status: int, headers: dict[str, str], upload: Upload | None = None) -> Reply:
    more = {"tus-resumable": TUS_VERSION, "cache-control": "no-store"}
    if upload is not None:
        more["upload-offset"] = str(len(upload.data))
    return Reply(NO_BODY, status, {**headers, **more})


def _metadata(text: str) -> dict[str, str] | None:
    """`key base64,key base64`, decoded; None when malformed."""
    pairs: dict[str, str] = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.strip().partition(" ")
        try:
            pairs[key] = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
    return pairs


def _json(raw: bytes, content_type: str | None) -> Any:
    if not raw or "json" not in (content_type or ""):
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


# --- a key log, as an honest server would prove keys from it --------------------------------

LOG_KEY = ServerKey.generate()  # the scripted server's own key
LOG_TIME = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def logged_devices(
    bundles: Sequence[PublicBundle],
    *,
    key: ServerKey = LOG_KEY,
    before: Sequence[keylog.Entry] = (),
    approvals: Sequence[dict[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """The answer to `GET /users/{email}/devices` for `bundles`: each published in a key log
    that holds `before` first, with its inclusion proof under a head `key` signed."""
    entries = [*before, *(keylog.device_published(b, LOG_TIME) for b in bundles)]
    tree = merkle.MemoryTree([e.leaf_hash() for e in entries])
    head = key.sign_key_log_head(tree.size, tree.root(), LOG_TIME)
    first = len(before)
    proofs = [
        {
            "index": first + i,
            "leaf": entries[first + i].encode().decode("utf-8"),
            "path": [h.hex() for h in tree.inclusion_proof(first + i)],
        }
        for i in range(len(bundles))
    ]
    return {
        "email": bundles[0].email if bundles else "",
        "devices": [b.signed for b in bundles],
        "approvals": list(approvals) if approvals is not None else [None] * len(bundles),
        "log": {"head": head.signed(), "consistency": None, "proofs": proofs},
    }
