"""The SDK against a scripted server: a request is sealed with its sender token, and malformed
answers, listings and file lists are clean pli errors (one bad transfer is listed with its
problem, not fatal to the whole inbox)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pli.client.sdk import CONFIG, DEVICE, IDENTITY, SESSION, Client
from pli.crypto import links as lk
from pli.crypto import manifest as mf
from pli.crypto.identity import DeviceIdentity
from pli.errors import IntegrityError, TransportError
from tests.unit.client.fakes import Reply, ScriptedServer, logged_devices

EMAIL = "bob@example.org"
ME = DeviceIdentity.generate(EMAIL)
PASSPHRASE = "correct horse battery staple"
SEALED_ME = ME.seal(PASSPHRASE, work_factor=10)  # the lowest work factor: fast to unlock
SESSION_TOKEN = "plis_" + "s" * 43
REQUEST_ID = "0123456789abcdef0123456789abcdef"
KEYS = lk.RequestKeys.generate()
ENTRY = mf.FileEntry("c" * 32, "bilan.pdf", 3, 200, "2" * 64, sha256="1" * 64)
LISTED = [{"id": ENTRY.id, "size": ENTRY.ciphertext_size}]
CREATED, EXPIRES = "2029-12-01T00:00:00Z", "2099-12-01T00:00:00Z"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _sealed_key() -> str:
    return _b64(lk.seal_request_key(ME, REQUEST_ID, "Bilans", KEYS, [ME.age_identity.recipient]))


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as running:
        devices = logged_devices([ME.public_bundle()])
        running.answers["GET", f"/api/v1/users/{EMAIL}/devices"] = Reply(devices)
        request = {"id": REQUEST_ID, "sealed_key": _sealed_key()}
        running.answers["GET", f"/api/v1/requests/{REQUEST_ID}"] = Reply(request)
        yield running


@pytest.fixture
def client(tmp_path: Path, server: ScriptedServer) -> Iterator[Client]:
    """A real client, in a PLI_HOME as `pli login` and `pli keys init` leave it, unlocked."""
    made = Client(home_path=tmp_path / "home")
    made.home.write_json(CONFIG, {"server": server.base, "email": EMAIL})
    made.home.write(SESSION, SESSION_TOKEN.encode())
    made.home.write(IDENTITY, SEALED_ME)
    made.home.write_json(DEVICE, ME.public_bundle().signed)
    made.unlock(PASSPHRASE)
    yield made
    made.close()


def _answer(transfer_id: str, **changes: Any) -> dict[str, Any]:
    answer = lk.Answer(REQUEST_ID, transfer_id, "Dr N", "voici", [ENTRY], CREATED)
    item = {
        "id": transfer_id,
        "kind": "answer",
        "sender": "",
        "recipients": [EMAIL],
        "created_at": CREATED,
        "expires_at": EXPIRES,
        "manifest": _b64(lk.seal_answer(KEYS.fragment, answer)),
        "files": LISTED,
        "request": REQUEST_ID,
    }
    return {**item, **changes}


def _direct(transfer_id: str, **changes: Any) -> dict[str, Any]:
    me = mf.key_entry(ME.public_bundle())
    manifest = mf.Manifest(transfer_id, me, [me], [ENTRY], CREATED, EXPIRES, "")
    item = {
        "id": transfer_id,
        "kind": "direct",
        "sender": EMAIL,
        "recipients": [EMAIL],
        "created_at": CREATED,
        "expires_at": EXPIRES,
        "manifest": _b64(mf.seal(ME, manifest, [ME.age_identity.recipient])),
        "files": LISTED,
    }
    return {**item, **changes}


def _listing(server: ScriptedServer, *items: Any) -> None:
    server.answers["GET", "/api/v1/transfers"] = Reply({"items": list(items), "next_cursor": None})


# --- creating a request -----------------------------------------------------------------------


def test_a_request_is_sealed_with_its_sender_token(client: Client, server: ScriptedServer) -> None:
    url = f"https://pli.example.org/r/{REQUEST_ID}"
    created = {"id": REQUEST_ID, "url": url, "expires_at": EXPIRES}
    server.answers["POST", "/api/v1/requests"] = Reply(created, 201)
    server.answers["POST", f"/api/v1/requests/{REQUEST_ID}/seal"] = Reply({})

    made = client.create_request(title="Bilans")

    (seal,) = server.calls_to("POST", f"/api/v1/requests/{REQUEST_ID}/seal")
    assert seal.token == SESSION_TOKEN
    assert set(seal.body) == {"document", "sealed_key", "sender_token"}
    fragment = lk.parse_request_fragment(made.url.split("#", 1)[1])
    assert seal.body["sender_token"] == fragment.sender_token
    assert made.url.startswith(f"{url}#")
    assert (made.id, made.expires_at) == (REQUEST_ID, EXPIRES)


@pytest.mark.parametrize(
    "answer",
    [
        None,
        {"url": "https://h/r/x", "expires_at": EXPIRES},
        {"id": 5, "url": "https://h/r/x", "expires_at": EXPIRES},
        {"id": "../x", "url": "https://h/r/x", "expires_at": EXPIRES},
        {"id": REQUEST_ID, "url": None, "expires_at": EXPIRES},
        {"id": REQUEST_ID, "url": "https://h/r/x", "expires_at": 5},
    ],
)
def test_a_malformed_new_request_is_refused(
    client: Client, server: ScriptedServer, answer: Any
) -> None:
    server.answers["POST", "/api/v1/requests"] = Reply(answer, 201)
    with pytest.raises(TransportError, match="malformed request"):
        client.create_request()
    assert server.calls_to("POST", f"/api/v1/requests/{REQUEST_ID}/seal") == []


# --- the inbox --------------------------------------------------------------------------------

BAD_FILES: list[Any] = [[1], ["c" * 32], "ab", None, {"id": "c" * 32}]


@pytest.mark.parametrize("files", BAD_FILES)
def test_an_answer_with_a_malformed_file_list_is_listed_with_its_problem(
    client: Client, server: ScriptedServer, files: Any
) -> None:
    _listing(server, _answer("a" * 32), _answer("b" * 32, files=files), _direct("d" * 32))

    good, bad, direct = client.inbox().items

    assert (good.verified, good.claimed_name, [f.name for f in good.files]) == (
        True,
        "Dr N",
        ["bilan.pdf"],
    )
    assert (bad.verified, bad.files, bad.problem) == (
        False,
        [],
        "the server sent a malformed file list",
    )
    assert direct.verified


@pytest.mark.parametrize("files", BAD_FILES)
def test_a_direct_transfer_with_a_malformed_file_list_is_listed_with_its_problem(
    client: Client, server: ScriptedServer, files: Any
) -> None:
    _listing(server, _direct("d" * 32, files=files), _answer("a" * 32))
    bad, good = client.inbox().items
    assert (bad.verified, bad.problem) == (False, "the server sent a malformed file list")
    assert good.verified


def test_an_answer_naming_no_request_is_listed_with_its_problem(
    client: Client, server: ScriptedServer
) -> None:
    _listing(server, _answer("a" * 32, request={"id": REQUEST_ID}))
    (item,) = client.inbox().items
    assert (item.verified, item.request) == (False, None)
    assert item.problem == "this answer has no request or no manifest"


def test_a_request_key_that_is_not_text_is_a_problem_of_the_answer(
    client: Client, server: ScriptedServer
) -> None:
    request = {"id": REQUEST_ID, "sealed_key": 5}
    server.answers["GET", f"/api/v1/requests/{REQUEST_ID}"] = Reply(request)
    _listing(server, _answer("a" * 32))
    (item,) = client.inbox().items
    assert (item.verified, item.problem) == (False, "the server sent a malformed request key")


@pytest.mark.parametrize(
    "item",
    [
        None,
        "a" * 32,
        {"id": "a" * 32},
        _answer("a" * 32, id=5),
        _answer("a" * 32, sender=None),
        _answer("a" * 32, recipients="bob"),
        _answer("a" * 32, recipients=[1]),
        _answer("a" * 32, expires_at=None),
    ],
)
def test_a_listed_transfer_without_its_stated_fields_is_a_transport_error(
    client: Client, server: ScriptedServer, item: Any
) -> None:
    _listing(server, item)
    with pytest.raises(TransportError, match="malformed listing"):
        client.inbox()


@pytest.mark.parametrize("files", BAD_FILES)
def test_getting_an_answer_with_a_malformed_file_list_is_refused(
    client: Client, server: ScriptedServer, tmp_path: Path, files: Any
) -> None:
    server.answers["GET", f"/api/v1/transfers/{'a' * 32}"] = Reply(_answer("a" * 32, files=files))
    with pytest.raises(IntegrityError, match="malformed file list"):
        client.get("a" * 32, tmp_path / "out")


# --- links and requests -----------------------------------------------------------------------


def _link(**changes: Any) -> dict[str, Any]:
    link = {
        "id": "l" * 32,
        "url": "https://pli.example.org/l/" + "l" * 32,
        "state": "active",
        "created_at": CREATED,
        "expires_at": EXPIRES,
        "max_downloads": 3,
        "downloads": 1,
        "downloads_left": 2,
        "transfer": {"files": LISTED},
    }
    return {**link, **changes}


def test_links_are_listed(client: Client, server: ScriptedServer) -> None:
    server.answers["GET", "/api/v1/links"] = Reply({"items": [_link(), _link(max_downloads=None)]})
    first, second = client.links()
    assert (first.files, first.downloads_left, second.max_downloads) == (1, 2, None)


@pytest.mark.parametrize(
    "answer",
    [
        None,
        {"items": None},
        {"items": {"a": 1}},
        {"items": ["x"]},
        {"items": [_link(transfer=None)]},
        {"items": [_link(transfer=[])]},
        {"items": [_link(transfer={"files": "abc"})]},
        {"items": [_link(downloads="many")]},
        {"items": [_link(downloads=True)]},
        {"items": [_link(state=None)]},
        {"items": [_link(max_downloads="3")]},
    ],
)
def test_a_malformed_list_of_links_is_a_transport_error(
    client: Client, server: ScriptedServer, answer: Any
) -> None:
    server.answers["GET", "/api/v1/links"] = Reply(answer)
    with pytest.raises(TransportError, match="malformed list of links"):
        client.links()


def _request(**changes: Any) -> dict[str, Any]:
    request = {
        "id": REQUEST_ID,
        "url": f"https://pli.example.org/r/{REQUEST_ID}",
        "state": "open",
        "created_at": CREATED,
        "expires_at": EXPIRES,
        "max_files": 10,
        "files_used": 1,
        "max_bytes": 10**9,
        "bytes_used": 200,
        "document": None,
        "sealed_key": _sealed_key(),
    }
    return {**request, **changes}


def test_requests_are_listed_whole_when_their_key_opens(
    client: Client, server: ScriptedServer
) -> None:
    server.answers["GET", "/api/v1/requests"] = Reply({"items": [_request()]})
    (item,) = client.requests()
    assert (item.title, item.url) == (
        "Bilans",
        f"https://pli.example.org/r/{REQUEST_ID}#{KEYS.fragment}",
    )


@pytest.mark.parametrize("sealed_key", [5, ["x"], "not base64!", _b64(b"not age")])
def test_a_request_whose_key_does_not_open_is_listed_with_a_notice(
    client: Client, server: ScriptedServer, sealed_key: Any
) -> None:
    items = [_request(sealed_key=sealed_key), _request(id="e" * 32, sealed_key=None)]
    server.answers["GET", "/api/v1/requests"] = Reply({"items": items})
    first, second = client.requests()
    assert (first.title, first.url) == (None, f"https://pli.example.org/r/{REQUEST_ID}")
    assert second.title is None
    assert [n for n in client.notices if n.startswith(f"request {REQUEST_ID}:")]


@pytest.mark.parametrize(
    "answer",
    [
        None,
        {"items": "x"},
        {"items": [None]},
        {"items": [_request(url=None)]},
        {"items": [_request(id=None)]},
        {"items": [_request(max_files="10")]},
        {"items": [_request(files_used=None)]},
    ],
)
def test_a_malformed_list_of_requests_is_a_transport_error(
    client: Client, server: ScriptedServer, answer: Any
) -> None:
    server.answers["GET", "/api/v1/requests"] = Reply(answer)
    with pytest.raises(TransportError, match="malformed list of requests"):
        client.requests()
