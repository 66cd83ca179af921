"""Devices: a new device waits until one of its account's devices approves it; correspondents
accept an approved device without being asked, and refuse one the account did not approve.
Against the real server and the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import Server, User, bearer, make_user


def second_device(first: User, tmp: Path, name: str = "phone") -> tuple[User, str, str]:
    """`first`'s account on a new device with its own keys, pending: (it, its id, its
    fingerprint as `pli keys init` showed it)."""
    other = User(first.email, tmp / f"home-{name}", first.server)
    other.ok("login", first.server.url, "--email", first.email)
    made = other.ok("keys", "init")
    assert "waits for approval" in made.stderr
    device = json.loads((other.home / "device.json").read_text())["doc"]["device"]
    fingerprint = made.stdout.split("fingerprint:", 1)[1].strip()
    return other, device, fingerprint


def source(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


@pytest.fixture
def pair(server: Server, tmp_path: Path) -> tuple[User, User]:
    """Alice and Bob, on each backend."""
    return make_user(server, tmp_path, "alice"), make_user(server, tmp_path, "bob")


def test_a_new_device_receives_only_once_approved(pair: tuple[User, User], tmp_path: Path) -> None:
    alice, bob = pair
    early = bob.send(source(tmp_path, "early.csv", b"before the phone"), to=alice.email)
    phone, device, fingerprint = second_device(alice, tmp_path)
    waiting = bob.send(source(tmp_path, "waiting.csv", b"while it waits"), to=alice.email)
    listed = {d["device"]: d for d in alice.ok("devices", "list", "--json").json()}
    assert listed[device]["state"] == "pending"

    approved = alice.ok("devices", "approve", device, "--fingerprint", fingerprint)
    assert fingerprint in approved.stdout
    assert phone.ok("devices", "list", "--json").json()[1]["approved_by"] is not None

    # Bob's client accepts the approved device on its own, and says so.
    sent = bob.ok(
        "send", str(source(tmp_path, "after.csv", b"after")), "--to", alice.email, "--json"
    )
    assert f"device {device} of {alice.email}" in sent.stderr
    assert "approved by its device" in sent.stderr
    phone.ok("get", sent.json()["id"], "-o", str(tmp_path / "phone-out"))
    # The phone's audit knows the laptop, whose signed approval made it active.
    audit = phone.ok("keys", "audit", "--json").json()
    assert audit["unknown"] == []
    assert audit["problems"] == []
    assert (tmp_path / "phone-out" / "after.csv").read_bytes() == b"after"
    for earlier in (early, waiting):  # encrypted before the phone was approved
        refused = phone.run("get", earlier, "-o", str(tmp_path / f"refused-{earlier}"))
        assert refused.returncode != 0
        assert "Traceback" not in refused.stderr


def test_a_wrong_fingerprint_approves_nothing(sqlite_server: Server, tmp_path: Path) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    _, device, _ = second_device(alice, tmp_path)
    refused = alice.run("devices", "approve", device, "--fingerprint", "0000 " * 8)
    assert refused.returncode == 1
    assert "does not match" in refused.stderr
    listed = {d["device"]: d["state"] for d in alice.ok("devices", "list", "--json").json()}
    assert listed[device] == "pending"


def test_a_pending_device_approves_nothing(sqlite_server: Server, tmp_path: Path) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    phone, _, _ = second_device(alice, tmp_path, "phone")
    _, tablet, fingerprint = second_device(alice, tmp_path, "tablet")
    refused = phone.run("devices", "approve", tablet, "--fingerprint", fingerprint)
    assert refused.returncode == 1
    assert "only an active device of your account can sign this" in refused.stderr


def test_another_account_cannot_approve(sqlite_server: Server, tmp_path: Path) -> None:
    alice, mallory = (make_user(sqlite_server, tmp_path, n) for n in ("alice", "mallory"))
    _, device, fingerprint = second_device(alice, tmp_path)
    refused = mallory.run("devices", "approve", device, "--fingerprint", fingerprint)
    assert refused.returncode == 1
    assert f"no device {device} of yours waits for approval" in refused.stderr


def test_a_removed_device_gets_nothing_new(sqlite_server: Server, tmp_path: Path) -> None:
    alice, bob = (make_user(sqlite_server, tmp_path, n) for n in ("alice", "bob"))
    phone, device, fingerprint = second_device(alice, tmp_path)
    alice.ok("devices", "approve", device, "--fingerprint", fingerprint)
    before = bob.send(source(tmp_path, "before.csv", b"both devices"), to=alice.email)
    alice.ok("devices", "remove", device)
    listed = {d["device"]: d["state"] for d in alice.ok("devices", "list", "--json").json()}
    assert listed[device] == "removed"

    sent = bob.ok(
        "send", str(source(tmp_path, "after.csv", b"laptop only")), "--to", alice.email, "--json"
    )
    assert f"device {device} of {alice.email} was removed" in sent.stderr
    after = sent.json()["id"]
    phone.ok("get", before, "-o", str(tmp_path / "before-out"))  # its keys still open that
    refused = phone.run("get", after, "-o", str(tmp_path / "after-out"))
    assert refused.returncode != 0
    assert "Traceback" not in refused.stderr
    alice.ok("get", after, "-o", str(tmp_path / "laptop-out"))
    # The laptop's audit knows the phone it approved, removed since: nothing to report. The
    # phone's own audit says it is no longer among the account's devices.
    audit = alice.ok("keys", "audit", "--json").json()
    assert audit["unknown"] == []
    assert audit["problems"] == []
    gone = phone.run("keys", "audit")
    assert gone.returncode == 3
    assert "does not list this device's keys" in gone.stderr


def test_a_device_does_not_remove_itself(sqlite_server: Server, tmp_path: Path) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    me = json.loads((alice.home / "device.json").read_text())["doc"]["device"]
    refused = alice.run("devices", "remove", me)
    assert refused.returncode == 2
    assert "a device does not remove itself" in refused.stderr


def test_approval_needs_a_login_session(sqlite_server: Server, tmp_path: Path) -> None:
    """An API token (automation) neither lists, approves nor removes devices."""
    alice = make_user(sqlite_server, tmp_path, "alice")
    made = httpx.post(
        f"{sqlite_server.url}/api/v1/tokens",
        json={"name": "job", "scopes": ["send", "receive"]},
        headers=bearer(alice),
    ).json()
    token = {"authorization": f"Bearer {made['token']}"}
    assert httpx.get(f"{sqlite_server.url}/api/v1/me/devices", headers=token).status_code == 403


def test_an_administrator_recovery_is_a_key_change_for_everyone(
    sqlite_server: Server, tmp_path: Path
) -> None:
    alice, bob = (make_user(sqlite_server, tmp_path, n) for n in ("alice", "bob"))
    bob.send(Path(source(tmp_path, "first.csv", b"1")), to=alice.email)  # bob pins alice
    reset = sqlite_server.admin("reset-devices", alice.email)
    assert reset.returncode == 0, reset.stderr
    assert "removed 1 device(s)" in reset.stderr
    lost = bob.run("send", str(source(tmp_path, "none.csv", b"0")), "--to", alice.email)
    assert lost.returncode == 1
    assert f"{alice.email} has no keys yet" in lost.stderr

    fresh = User(alice.email, tmp_path / "home-new-laptop", sqlite_server)
    fresh.ok("login", sqlite_server.url, "--email", alice.email)
    made = fresh.ok("keys", "init")
    assert "waits for approval" not in made.stderr  # a first device again
    changed = bob.run("send", str(source(tmp_path, "second.csv", b"2")), "--to", alice.email)
    assert changed.returncode == 1
    assert f"the keys of {alice.email} have changed" in changed.stderr
    assert sqlite_server.admin("reset-devices", "nobody@example.org").returncode == 1
