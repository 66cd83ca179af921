"""GET /metrics of the real server, after real uploads and downloads through the CLI: the bytes
counted are the ciphertext's, the transfers are counted by state, request durations are
labelled by route template and no id ever appears. Administrators only, and only from
PLI_ADMIN_NETWORKS (the rest of its authorization: test_authorization.py)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.integration.conftest import (
    Server,
    User,
    bearer,
    make_user,
    start_server,
    stop_server,
)

STATES = ("uploading", "sealed", "revoked", "expired", "exhausted")


def _scrape(server: Server, admin: User) -> tuple[list[Sample], str]:
    answer = httpx.get(f"{server.url}/metrics", headers=bearer(admin), timeout=30)
    assert answer.status_code == 200, answer.text
    families = text_string_to_metric_families(answer.text)
    return [sample for family in families for sample in family.samples], answer.text


def _value(samples: list[Sample], name: str, **labels: str) -> float:
    found = [s.value for s in samples if s.name == name and s.labels == labels]
    assert len(found) == 1, f"{name} {labels}: {found}"
    return found[0]


def _files(server: Server, sender: User, transfer: str) -> dict[str, int]:
    """A transfer's files: their ids and ciphertext sizes, as the server stored them."""
    shown = httpx.get(f"{server.url}/api/v1/transfers/{transfer}", headers=bearer(sender))
    assert shown.status_code == 200, shown.text
    return {str(f["id"]): int(f["size"]) for f in shown.json()["files"]}


def _pending(server: Server, sender: User, recipient: User) -> str:
    """A transfer created and never uploaded: its id."""
    made = httpx.post(
        f"{server.url}/api/v1/transfers",
        json={"recipients": [recipient.email], "files": 1},
        headers=bearer(sender),
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def _durations(samples: list[Sample]) -> set[tuple[str, str, str]]:
    return {
        (s.labels["method"], s.labels["route"], s.labels["status"])
        for s in samples
        if s.name == "pli_http_request_duration_seconds_count"
    }


def test_bytes_are_counted_as_ciphertext_through_the_real_server(
    server: Server, tmp_path: Path
) -> None:
    alice, bob = make_user(server, tmp_path, "alice"), make_user(server, tmp_path, "bob")
    root = make_user(server, tmp_path, "root", keys=False, admin=True)
    sources = [tmp_path / "scan.bin", tmp_path / "note.txt"]
    sources[0].write_bytes(os.urandom(300_000))
    sources[1].write_bytes(b"negative")
    transfer = alice.send(*sources, to=bob.email)
    link = alice.ok("link", "create", str(sources[0]), "--json").json()
    files = {**_files(server, alice, transfer), **_files(server, alice, link["id"])}
    first = next(iter(_files(server, alice, transfer)))
    # One range first: only the bytes of the range are sent.
    part = httpx.get(
        f"{server.url}/api/v1/transfers/{transfer}/files/{first}",
        headers={**bearer(bob), "range": "bytes=0-99"},
    )
    assert part.status_code == 206
    bob.ok("get", transfer, "-o", str(tmp_path / "received"))
    outsider = User("outsider@nowhere.example", tmp_path / "home-outsider", server)
    outsider.ok("link", "get", link["url"], "-o", str(tmp_path / "opened"))
    samples, text = _scrape(server, root)
    assert _value(samples, "pli_bytes_received_total") == sum(files.values())
    assert _value(samples, "pli_bytes_sent_total") == sum(files.values()) + 100
    assert {
        ("PATCH", "/api/v1/uploads/{upload_id}", "2xx"),
        ("GET", "/api/v1/transfers/{transfer_id}/files/{file_id}", "2xx"),
        ("GET", "/api/v1/public/links/{link_id}/files/{file_id}", "2xx"),
    } <= _durations(samples)
    for secret in (transfer, link["id"], *files):
        assert secret not in text


def test_transfers_are_counted_by_state(sqlite_server: Server, tmp_path: Path) -> None:
    server = sqlite_server
    alice, bob = make_user(server, tmp_path, "alice"), make_user(server, tmp_path, "bob")
    root = make_user(server, tmp_path, "root", keys=False, admin=True)
    source = tmp_path / "note.txt"
    source.write_bytes(b"negative")
    sealed = alice.send(source, to=bob.email)
    pending = _pending(server, alice, bob)
    revoked = _pending(server, alice, bob)
    ended = httpx.delete(f"{server.url}/api/v1/transfers/{revoked}", headers=bearer(alice))
    assert ended.status_code == 204, ended.text
    samples, text = _scrape(server, root)
    by_state = {state: _value(samples, "pli_transfers", state=state) for state in STATES}
    assert by_state == {"uploading": 1, "sealed": 1, "revoked": 1, "expired": 0, "exhausted": 0}
    assert _value(samples, "pli_stored_bytes") == sum(_files(server, alice, sealed).values())
    assert _value(samples, "pli_purge_lag_seconds") == 0
    assert ("DELETE", "/api/v1/transfers/{transfer_id}", "2xx") in _durations(samples)
    for secret in (sealed, pending, revoked):
        assert secret not in text


def test_metrics_are_refused_outside_the_admin_networks(tmp_path: Path) -> None:
    server = start_server(tmp_path, None, {"PLI_ADMIN_NETWORKS": "10.0.0.0/8"})
    try:
        root = make_user(server, tmp_path, "root", keys=False, admin=True)
        for headers in (bearer(root), {}):
            refused = httpx.get(f"{server.url}/metrics", headers=headers, timeout=30)
            assert refused.status_code == 403
            assert refused.headers["content-type"] == "application/problem+json"
    finally:
        stop_server(server)
