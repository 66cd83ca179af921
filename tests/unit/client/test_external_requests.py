"""Answering a file request and getting a link against a scripted server: the sender token is
shown where it must be, and a malformed or hostile answer is a clean pli error."""

from __future__ import annotations

import base64
import errno
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pli.client import external
from pli.crypto import age
from pli.crypto import links as lk
from pli.crypto import manifest as mf
from pli.crypto.identity import DeviceIdentity
from pli.errors import IntegrityError, NotFoundError, UsageError
from tests.unit.client.fakes import Reply, ScriptedServer

REQUEST_ID = "0123456789abcdef0123456789abcdef"
LINK_ID = "fedcba9876543210fedcba9876543210"
TRANSFER_ID = "00112233445566778899aabbccddeeff"
SLOTS = ["a" * 32, "b" * 32]
BOB = DeviceIdentity.generate("bob@example.org")
KEYS = lk.RequestKeys.generate()
OPEN = ("GET", f"/api/v1/public/requests/{REQUEST_ID}")
RESERVE = ("POST", f"/api/v1/public/requests/{REQUEST_ID}/answers")
SEAL = ("POST", f"/api/v1/public/answers/{TRANSFER_ID}/seal")
GUEST = "pli_guest_" + "g" * 43


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _open_request(**changes: Any) -> dict[str, Any]:
    document = lk.seal_document(BOB, REQUEST_ID, "Bilans", KEYS)
    answer = {
        "id": REQUEST_ID,
        "document": _b64(document),
        "expires_at": "2030-01-01T00:00:00Z",
        "files_left": 5,
        "bytes_left": 10**9,
    }
    return {**answer, **changes}


def _reservation(files: int = 2) -> dict[str, Any]:
    """The reservation as the server makes it: nothing of the requester in it."""
    return {
        "token": GUEST,
        "transfer": {
            "id": TRANSFER_ID,
            "created_at": "2029-12-01T00:00:00Z",
            "expires_at": "2029-12-08T00:00:00Z",
            "files": [{"id": slot, "size": 1000} for slot in SLOTS[:files]],
        },
    }


class _Quiet:
    def start(self, label: str, total: int) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    made = []
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(f"contents of {name}")
        made.append(tmp_path / name)
    return made


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as running:
        yield running


def _send(server: ScriptedServer, files: list[Path]) -> external.SentAnswer:
    url = f"{server.base}/r/{REQUEST_ID}#{KEYS.fragment}"
    return external.answer_request(
        url, files, name="Dr N", message="voici", progress=_Quiet(), retry_seconds=0
    )


def test_the_sender_token_reads_the_request_and_reserves_the_answer(
    server: ScriptedServer, files: list[Path]
) -> None:
    server.answers[OPEN] = Reply(_open_request())
    server.answers[RESERVE] = Reply(_reservation(), 201)
    server.answers[SEAL] = Reply({})

    sent = _send(server, files)

    assert (sent.transfer, sent.requester, sent.title) == (TRANSFER_ID, BOB.email, "Bilans")
    token = KEYS.fragment.sender_token
    assert [c.token for c in server.calls_to(*OPEN) + server.calls_to(*RESERVE)] == [token] * 2
    (seal,) = server.calls_to(*SEAL)
    assert seal.token == GUEST
    answer = lk.open_answer(base64.b64decode(seal.body["manifest"]), KEYS, REQUEST_ID, TRANSFER_ID)
    assert [f.id for f in answer.files] == SLOTS
    assert answer.created == "2029-12-01T00:00:00Z"
    assert KEYS.fragment.sender_token not in str(KEYS.fragment)  # derived, not in the URL
    # Each file went, whole and encrypted to the request's key, into its slot, with the guest
    # token alone; and the answer commits to the very bytes the server received.
    (reserve,) = server.calls_to(*RESERVE)
    assert reserve.body == {"files": [u.length for u in server.uploads]}
    assert [u.metadata for u in server.uploads] == [
        {"transfer": TRANSFER_ID, "file": slot} for slot in SLOTS
    ]
    uploads = [c for c in server.calls if c.path.startswith("/api/v1/uploads")]
    assert {c.token for c in uploads} == {GUEST}
    for upload, entry, path in zip(server.uploads, answer.files, files, strict=True):
        assert len(upload.data) == upload.length == entry.ciphertext_size
        assert age.decrypt(bytes(upload.data), [KEYS.identity]) == path.read_bytes()
        assert hashlib.sha256(upload.data).hexdigest() == entry.ciphertext_sha256
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry.sha256


@pytest.mark.parametrize(
    "answer",
    [
        None,
        [],
        {"token": GUEST},
        {"transfer": _reservation()["transfer"]},
        {**_reservation(), "token": 12345},
        {**_reservation(), "token": "pli_guest_abc\r\nx-injected: 1"},
        {**_reservation(), "transfer": "later"},
        _reservation(files=1),  # a slot missing: no zip of unequal lengths
        {**_reservation(), "transfer": {**_reservation()["transfer"], "files": [1, 2]}},
        {**_reservation(), "transfer": {**_reservation()["transfer"], "files": "ab"}},
        {**_reservation(), "transfer": {**_reservation()["transfer"], "files": None}},
        {
            **_reservation(),
            "transfer": {**_reservation()["transfer"], "files": [{"id": 1}, {"id": 2}]},
        },
        {
            **_reservation(),
            "transfer": {**_reservation()["transfer"], "files": [{"id": "../x"}, {"id": "y"}]},
        },
        {**_reservation(), "transfer": {**_reservation()["transfer"], "id": ["x"]}},
        {**_reservation(), "transfer": {**_reservation()["transfer"], "created_at": None}},
    ],
)
def test_a_malformed_reservation_is_refused_before_any_upload(
    server: ScriptedServer, files: list[Path], answer: Any
) -> None:
    server.answers[OPEN] = Reply(_open_request())
    server.answers[RESERVE] = Reply(answer, 201)
    with pytest.raises(IntegrityError, match="the server sent a malformed reservation"):
        _send(server, files)
    assert server.uploads == []
    assert [(c.method, c.path) for c in server.calls] == [OPEN, RESERVE]


@pytest.mark.parametrize(
    "answer",
    [
        None,
        "text",
        _open_request(document=5),
        _open_request(document=None),
        _open_request(files_left="3"),
        _open_request(files_left=float("inf")),
        _open_request(bytes_left=True),
        _open_request(bytes_left=-1),
        _open_request(expires_at=None),
    ],
)
def test_a_malformed_open_request_is_refused(
    server: ScriptedServer, files: list[Path], answer: Any
) -> None:
    server.answers[OPEN] = Reply(answer)
    with pytest.raises(IntegrityError, match="the server sent a malformed request"):
        _send(server, files)
    assert [(c.method, c.path) for c in server.calls] == [OPEN]


@pytest.mark.parametrize("where", [OPEN, RESERVE])
def test_an_unknown_request_hints_at_a_mistyped_link(
    server: ScriptedServer, files: list[Path], where: tuple[str, str]
) -> None:
    server.answers[OPEN] = Reply(_open_request())
    server.answers[where] = Reply.problem(404, "this request does not exist or is no longer open")
    with pytest.raises(NotFoundError, match="no longer open") as raised:
        _send(server, files)
    assert raised.value.hint is not None
    assert "incomplete or altered" in raised.value.hint


def test_an_unreadable_file_is_a_usage_error_before_anything_is_asked(
    server: ScriptedServer, files: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = Path.open

    def refusing(path: Path, *args: Any, **kwargs: Any) -> Any:
        if path == files[1]:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return opened(path, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refusing)
    with pytest.raises(UsageError, match=f"cannot read {files[1]}: Permission denied"):
        _send(server, files)
    assert server.calls == []


@pytest.mark.parametrize("name", ["missing.txt", "."])
def test_a_missing_file_or_a_directory_is_a_usage_error(
    server: ScriptedServer, files: list[Path], name: str
) -> None:
    with pytest.raises(UsageError, match="is not a file"):
        _send(server, [files[0], files[0].parent / name])
    assert server.calls == []


# --- links ------------------------------------------------------------------------------------


LINK = age.X25519Identity.generate()


def _link_transfer(files: Any) -> dict[str, Any]:
    entry = mf.FileEntry("c" * 32, "r.csv", 3, 200, "2" * 64)
    manifest = mf.Manifest(
        transfer=LINK_ID,
        sender=mf.key_entry(BOB.public_bundle()),
        recipients=[lk.link_recipient_entry(LINK.recipient)],
        files=[entry],
        created="2029-12-01T00:00:00Z",
        expires="2099-12-01T00:00:00Z",
        message="",
    )
    sealed = mf.seal(BOB, manifest, [LINK.recipient])
    return {"id": LINK_ID, "manifest": _b64(sealed), "files": files}


def test_the_link_manifest_is_checked_against_the_listed_files() -> None:
    listed = [{"id": "c" * 32, "size": 200}]
    assert external._link_manifest(_link_transfer(listed), LINK_ID, LINK).files[0].size == 3
    with pytest.raises(IntegrityError, match="does not match the signed manifest"):
        external._link_manifest(_link_transfer([{"id": "c" * 32, "size": 201}]), LINK_ID, LINK)


@pytest.mark.parametrize("files", [[1], ["c" * 32], "ab", None, {"id": "c" * 32}])
def test_a_link_file_list_that_is_not_objects_is_refused(files: Any) -> None:
    with pytest.raises(IntegrityError, match="the server sent a malformed file list"):
        external._link_manifest(_link_transfer(files), LINK_ID, LINK)


@pytest.mark.parametrize("answer", [None, [], {"ticket": "x"}, {"transfer": 3}, {"transfer": []}])
def test_a_malformed_ticket_answer_is_refused(answer: Any) -> None:
    with pytest.raises(IntegrityError, match="the server sent a malformed link"):
        external._checked_ticket_answer(answer, LINK_ID)


def test_a_ticket_answer_about_another_link_is_refused() -> None:
    with pytest.raises(IntegrityError, match="another link"):
        external._checked_ticket_answer({"transfer": {"id": TRANSFER_ID}}, LINK_ID)


@pytest.mark.parametrize("where", ["file", "file/below"])
def test_an_output_that_cannot_be_a_directory_is_a_usage_error(
    server: ScriptedServer, tmp_path: Path, where: str
) -> None:
    (tmp_path / "file").write_text("in the way")
    url = f"{server.base}/l/{LINK_ID}#{LINK.export()}"
    with pytest.raises(UsageError, match="cannot save into"):
        external.get_link(url, tmp_path / where, lambda: "", progress=_Quiet(), notices=[])
    assert server.calls == []
    assert (tmp_path / "file").read_text() == "in the way"
