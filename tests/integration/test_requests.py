"""File requests through the real CLI and server: someone with no account answers a request,
and the requester accepts only what was made with the request's own link."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import httpx

from pli.crypto import age
from pli.crypto import links as lk
from pli.crypto.manifest import FileEntry
from tests.integration.conftest import TUS, Server, User, bearer, make_user, upload_metadata
from tests.integration.test_compromise_drill import _server_bytes, _variants
from tests.integration.test_links import _outsider

CLOSED = "this request does not exist or is no longer open"


def _files(tmp_path: Path) -> list[Path]:
    made = []
    for name, body in (("bilan MARTIN Kévin.pdf", b"%PDF-1.7 bilan\n" * 500), ("ordo.txt", b"x")):
        path = tmp_path / name
        path.write_bytes(body)
        made.append(path)
    return made


def _request(bob: User, *args: str) -> dict[str, str]:
    made = bob.ok("request", "create", *args, "--json").json()
    assert made["url"].startswith(f"{bob.server.url}/r/{made['id']}#age1")
    return dict(made)


def test_a_request_round_trip(server: Server, tmp_path: Path) -> None:
    bob = make_user(server, tmp_path, "bob")
    asked = _request(bob, "--title", "Bilans du patient MARTIN", "--max-files", "3")
    files = _files(tmp_path)
    sender = _outsider(server, tmp_path, "lab")

    sent = sender.ok(
        "request", "send", asked["url"], *map(str, files),
        "--name", "Dr Nguyen, labo Pasteur", "--message", "voici les bilans", "--json",
    ).json()  # fmt: skip

    assert sent["requester"] == bob.email
    assert sent["title"] == "Bilans du patient MARTIN"
    assert not sender.home.exists()
    inbox = bob.ok("inbox", "--json").json()
    assert [t["id"] for t in inbox] == [sent["transfer"]]
    item = inbox[0]
    assert (item["kind"], item["sender"], item["verified"]) == ("answer", "", True)
    assert item["claimed_name"] == "Dr Nguyen, labo Pasteur"
    assert item["request"] == asked["id"]
    assert item["message"] == "voici les bilans"
    assert [f["name"] for f in item["files"]] == [f.name for f in files]
    text = bob.ok("inbox").stdout
    assert 'unauthenticated sender, who says they are "Dr Nguyen, labo Pasteur"' in text

    bob.ok("get", sent["transfer"], "-o", str(tmp_path / "out"))
    for source in files:
        assert (tmp_path / "out" / source.name).read_bytes() == source.read_bytes()

    listed = bob.ok("request", "list", "--json").json()
    assert [(r["id"], r["files_used"], r["title"]) for r in listed] == [
        (asked["id"], 2, "Bilans du patient MARTIN")
    ]
    assert listed[0]["url"] == asked["url"]  # the whole URL, rebuilt from the sealed key
    too_many = sender.run("request", "send", asked["url"], *map(str, files))
    assert too_many.returncode == 2
    assert "accepts 1 more file(s) at most" in too_many.stderr

    bob.ok("request", "close", asked["id"])
    closed = sender.run("request", "send", asked["url"], str(files[1]))
    assert (closed.returncode, closed.stderr.splitlines()[0]) == (1, f"error: {CLOSED}")
    secret = asked["url"].split("#", 1)[1].split(".", 1)[1]
    held = _server_bytes(server)
    canaries = ["Bilans du patient MARTIN", "Dr Nguyen, labo Pasteur", "voici les bilans", secret]
    canaries += [f.name for f in files]
    leaks = [(w, c) for c in canaries for v in _variants(c) for w, d in held if v in d]
    assert leaks == []


def test_an_altered_request_url_is_refused_before_anything_is_sent(
    sqlite_server: Server, tmp_path: Path
) -> None:
    bob = make_user(sqlite_server, tmp_path, "bob")
    asked = _request(bob, "--title", "Résultats")
    base, fragment = asked["url"].split("#", 1)
    recipient, secret = fragment.split(".", 1)
    other = str(age.X25519Identity.generate().recipient)
    flipped = secret[:10] + ("A" if secret[10] != "A" else "B") + secret[11:]
    sender = _outsider(sqlite_server, tmp_path)
    source = _files(tmp_path)[1]
    for altered in (f"{other}.{secret}", fragment[:-4], recipient):
        refused = sender.run("request", "send", f"{base}#{altered}", str(source))
        assert refused.returncode == 1, altered
        assert refused.stderr.startswith("error: this request link is incomplete or was altered")
    # Another secret shows another sender token, which the server answers as an unknown id.
    refused = sender.run("request", "send", f"{base}#{recipient}.{flipped}", str(source))
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        f"error: {CLOSED}",
        "hint: if it should be open, the link may be incomplete or altered: ask for it again",
    ]
    assert bob.ok("request", "list", "--json").json()[0]["files_used"] == 0
    assert bob.ok("inbox", "--json").json() == []


def _forge(server: Server, request_id: str, fragment: lk.RequestFragment, token: str) -> str:
    """What a server could do alone: open an answer and fill it with what it likes. (It needs
    no sender token; over HTTP, the request's own stands in for that.)"""
    plain = b"forged results\n"
    sealed = age.encrypt(plain, [fragment.recipient])
    made = httpx.post(
        f"{server.url}/api/v1/public/requests/{request_id}/answers",
        headers={"authorization": f"Bearer {token}"},
        json={"files": [len(sealed)]},
    ).json()
    transfer, guest = made["transfer"], {"authorization": f"Bearer {made['token']}"}
    file_id = transfer["files"][0]["id"]
    meta = upload_metadata(transfer["id"], file_id)
    created = httpx.post(
        f"{server.url}/api/v1/uploads",
        headers={**guest, **TUS, "upload-length": str(len(sealed)), "upload-metadata": meta},
    )
    patch = {
        **guest,
        **TUS,
        "upload-offset": "0",
        "content-type": "application/offset+octet-stream",
    }
    httpx.patch(f"{server.url}{created.headers['location']}", headers=patch, content=sealed)
    entry = FileEntry(
        file_id, "results.csv", len(plain), len(sealed), hashlib.sha256(sealed).hexdigest(),
        sha256=hashlib.sha256(plain).hexdigest(),
    )  # fmt: skip
    answer = lk.Answer(request_id, transfer["id"], "Dr Forger", "", [entry], "2026-01-01T00:00:00Z")
    manifest = base64.b64encode(lk.seal_answer(fragment, answer)).decode()
    sealed_answer = httpx.post(
        f"{server.url}/api/v1/public/answers/{transfer['id']}/seal",
        headers=guest,
        json={"manifest": manifest},
    )
    assert sealed_answer.status_code == 200, sealed_answer.text
    return str(transfer["id"])


def test_an_answer_the_server_made_up_is_not_accepted(
    sqlite_server: Server, tmp_path: Path
) -> None:
    bob = make_user(sqlite_server, tmp_path, "bob")
    asked = _request(bob)
    request_id = asked["id"]
    real = lk.parse_request_fragment(asked["url"].split("#", 1)[1])
    # Even a server that learnt the request's public key lacks its secret; one that did not
    # can only encrypt to a key of its own.
    knows_key = lk.RequestFragment(real.recipient, os.urandom(32))
    own_key = lk.RequestKeys.generate().fragment
    forged = [_forge(sqlite_server, request_id, f, real.sender_token) for f in (knows_key, own_key)]

    inbox = {t["id"]: t for t in bob.ok("inbox", "--json").json()}
    for transfer in forged:
        assert inbox[transfer]["verified"] is False
        assert inbox[transfer]["files"] == []
        assert inbox[transfer]["claimed_name"] is None
        refused = bob.run("get", transfer, "-o", str(tmp_path / "out"))
        assert refused.returncode == 1
        assert "not made with the request's link" in refused.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_the_request_id_alone_neither_reads_nor_fills_a_request(
    sqlite_server: Server, tmp_path: Path
) -> None:
    bob = make_user(sqlite_server, tmp_path, "bob")
    asked = _request(bob, "--title", "Résultats")
    fragment = lk.parse_request_fragment(asked["url"].split("#", 1)[1])
    public = f"{sqlite_server.url}/api/v1/public/requests/{asked['id']}"
    other = lk.RequestKeys.generate().fragment.sender_token
    for headers in (
        {},
        {"authorization": f"Bearer {other}"},
        {"authorization": f"Bearer {fragment.sender_token[:-1]}"},
        bearer(bob),  # not even the requester's session
    ):
        read = httpx.get(public, headers=headers)
        assert (read.status_code, read.json()["detail"]) == (404, CLOSED), headers
        reserve = httpx.post(f"{public}/answers", headers=headers, json={"files": [100]})
        assert (reserve.status_code, reserve.json()["detail"]) == (404, CLOSED), headers
    listed = bob.ok("request", "list", "--json").json()
    assert (listed[0]["files_used"], listed[0]["bytes_used"]) == (0, 0)
    shown = {"authorization": f"Bearer {fragment.sender_token}"}
    opened = httpx.get(public, headers=shown)
    assert opened.status_code == 200
    document = base64.b64decode(opened.json()["document"])
    assert lk.open_document(document, asked["id"], fragment).title == "Résultats"
