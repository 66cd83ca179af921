"""`pli keys verify`: two people compare one code by phone, and from then on a change of the
verified keys stops every exchange with that account until they compare again.

Real server, real CLI, two (or three) real users."""

from __future__ import annotations

import os
import pty
import re
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import (
    PLI,
    Server,
    User,
    device_of,
    make_user,
    slip_in_device,
)

NOT_VERIFIED = "(key not verified)"


@pytest.fixture
def pair(sqlite_server: Server, tmp_path: Path) -> tuple[User, User]:
    return make_user(sqlite_server, tmp_path, "alice"), make_user(sqlite_server, tmp_path, "bob")


def source(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def code_of(result_stdout: str) -> str:
    groups = re.findall(r"\b\d{5}\b", result_stdout)
    assert len(groups) == 12, result_stdout
    return " ".join(groups)


def shown_code(user: User, other: User) -> str:
    """The code `user` sees for `other`, without answering (no terminal: nothing is marked)."""
    result = user.run("keys", "verify", other.email)
    assert result.returncode == 2, result.stderr
    assert "--code" in result.stderr
    return code_of(result.stdout)


def pinned(user: User) -> dict[str, bool]:
    return {p["email"]: p["verified"] for p in user.ok("keys", "list", "--json").json()}


def verify_each_other(a: User, b: User) -> str:
    code_a, code_b = shown_code(a, b), shown_code(b, a)
    assert code_a == code_b
    a.ok("keys", "verify", b.email, "--code", code_b)
    b.ok("keys", "verify", a.email, "--code", code_a)
    return code_a


def answered(user: User, reply: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI with a terminal as standard input, and type `reply` at it."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [PLI, *args],
            env=user.env(),
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.write(master, reply.encode())
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        os.close(slave)
        os.close(master)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def test_both_sides_compute_the_same_code(pair: tuple[User, User]) -> None:
    alice, bob = pair
    code = shown_code(alice, bob)
    assert re.fullmatch(r"(\d{5} ){11}\d{5}", code)
    assert shown_code(bob, alice) == code
    # Asking showed the code and pinned the keys on first use, but marked nothing.
    assert pinned(alice)[bob.email] is False
    assert pinned(bob)[alice.email] is False
    shown = alice.run("keys", "verify", bob.email)
    fingerprint = bob.ok("keys", "show", "--json").json()["fingerprint"]
    assert fingerprint in shown.stderr  # the other account's devices
    assert alice.ok("keys", "show", "--json").json()["fingerprint"] in shown.stderr  # and mine


def test_a_wrong_code_is_refused_and_marks_nothing(pair: tuple[User, User]) -> None:
    alice, bob = pair
    code = shown_code(alice, bob)
    last = code[-1]
    wrong = code[:-1] + ("0" if last != "0" else "1")
    for typed in [wrong, "12345", "not a code"]:
        refused = alice.run("keys", "verify", bob.email, "--code", typed)
        assert refused.returncode == 1, refused.stderr
        assert "does not match" in refused.stderr
        assert "Traceback" not in refused.stderr
    assert pinned(alice)[bob.email] is False
    # Typed with other spacing, the right code is accepted.
    accepted = alice.ok("keys", "verify", bob.email, "--code", code.replace(" ", ""))
    assert f"{bob.email}'s keys are now marked verified" in accepted.stderr
    assert pinned(alice)[bob.email] is True


def test_the_question_at_a_terminal(pair: tuple[User, User]) -> None:
    alice, bob = pair
    declined = answered(alice, "n\n", "keys", "verify", bob.email)
    assert declined.returncode == 2, declined.stderr
    assert f"Does {bob.email} read the same code? [y/N]" in declined.stdout
    assert pinned(alice)[bob.email] is False
    confirmed = answered(alice, "y\n", "keys", "verify", bob.email)
    assert confirmed.returncode == 0, confirmed.stderr
    assert code_of(confirmed.stdout.split("Does")[0]) == shown_code(bob, alice)
    assert pinned(alice)[bob.email] is True


def test_listings_mark_unverified_keys_until_verified(
    pair: tuple[User, User], tmp_path: Path
) -> None:
    alice, bob = pair
    transfer = alice.send(source(tmp_path, "lab.csv", b"results"), to=bob.email)

    inbox = bob.ok("inbox")
    assert f"from {alice.email} {NOT_VERIFIED}" in inbox.stdout
    assert bob.ok("inbox", "--json").json()[0]["sender_key_verified"] is False
    outbox = alice.ok("outbox")
    assert f"to {bob.email} {NOT_VERIFIED}" in outbox.stdout
    assert f"from {alice.email} {NOT_VERIFIED}" not in outbox.stdout  # signed here
    sent = alice.ok("outbox", "--json").json()[0]
    assert sent["recipient_keys_verified"] == {bob.email: False}
    assert sent["sender_key_verified"] is True
    got = bob.ok("get", transfer, "-o", str(tmp_path / "one"))
    assert f"from {alice.email} {NOT_VERIFIED}" in got.stderr
    assert f"pli keys verify {alice.email}" in got.stderr
    got_json = bob.ok("get", transfer, "-o", str(tmp_path / "two"), "--json").json()
    assert got_json["sender"] == alice.email
    assert got_json["sender_key_verified"] is False
    listed = bob.ok("keys", "list")
    assert f"{alice.email}  not verified" in listed.stdout

    verify_each_other(alice, bob)

    assert NOT_VERIFIED not in bob.ok("inbox").stdout
    assert bob.ok("inbox", "--json").json()[0]["sender_key_verified"] is True
    assert NOT_VERIFIED not in alice.ok("outbox").stdout
    assert alice.ok("outbox", "--json").json()[0]["recipient_keys_verified"] == {bob.email: True}
    got = bob.ok("get", transfer, "-o", str(tmp_path / "three"))
    assert NOT_VERIFIED not in got.stderr
    assert f"from {alice.email} (key verified)" in got.stderr
    assert bob.ok("get", transfer, "-o", str(tmp_path / "four"), "--json").json()[
        "sender_key_verified"
    ]
    listed = bob.ok("keys", "list")
    assert f"{alice.email}  verified" in listed.stdout
    assert f"{bob.email} (you)  not verified" in listed.stdout  # pinned when verifying
    assert pinned(bob) == {alice.email: True, bob.email: False}


def test_a_change_of_verified_keys_stops_everything_until_verified_again(
    pair: tuple[User, User], tmp_path: Path
) -> None:
    alice, bob = pair
    before = alice.send(source(tmp_path, "first.csv", b"1"), to=bob.email)
    old_code = verify_each_other(alice, bob)
    old_print = alice.ok("keys", "show", "--json").json()["fingerprint"]

    # A device of alice's account that none of her devices approved: for bob, the verified
    # keys of alice changed.
    laptop = User(alice.email, tmp_path / "home-alice-laptop", alice.server)
    laptop.ok("login", alice.server.url, "--email", alice.email)
    laptop.ok("keys", "init")
    slip_in_device(alice.server, device_of(laptop))
    new_print = laptop.ok("keys", "show", "--json").json()["fingerprint"]

    for stopped in [
        bob.run("send", str(source(tmp_path, "reply.csv", b"r")), "--to", alice.email),
        bob.run("get", before, "-o", str(tmp_path / "out")),
    ]:
        assert stopped.returncode == 1, stopped.stderr
        assert f"the verified keys of {alice.email} have changed" in stopped.stderr
        assert f"old {old_print}" in stopped.stderr
        assert new_print in stopped.stderr.split("; new ")[1]
        assert f"pli keys verify {alice.email}` again" in stopped.stderr
        assert "Traceback" not in stopped.stderr
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    assert len(alice.ok("inbox", "--json").json()) == 0  # nothing was sent
    listing = bob.ok("inbox", "--json").json()
    assert listing[0]["verified"] is False
    assert "have changed" in listing[0]["problem"]
    # `pli keys trust --yes` cannot lift it: only a new comparison does.
    trusted = bob.run("keys", "trust", alice.email, "--yes")
    assert trusted.returncode == 1
    assert f"pli keys verify {alice.email}" in trusted.stderr
    assert pinned(bob)[alice.email] is True

    # A wrong code leaves the stop in place.
    shown = bob.run("keys", "verify", alice.email)
    assert f"the keys of {alice.email} have changed since they were verified" in shown.stderr
    assert new_print in shown.stderr
    new_code = code_of(shown.stdout)
    assert new_code != old_code
    assert bob.run("keys", "verify", alice.email, "--code", old_code).returncode == 1
    assert bob.run("get", before, "-o", str(tmp_path / "out")).returncode == 1

    # alice's first device accepts her own new device, then both of her devices show bob
    # the code he sees.
    alice.ok("keys", "trust", alice.email, "--yes")
    assert shown_code(alice, bob) == new_code
    assert shown_code(laptop, bob) == new_code
    bob.ok("keys", "verify", alice.email, "--code", new_code)

    assert pinned(bob)[alice.email] is True
    listed = {p["email"]: p for p in bob.ok("keys", "list", "--json").json()}
    assert {d["fingerprint"] for d in listed[alice.email]["devices"]} == {old_print, new_print}
    got = bob.ok("get", before, "-o", str(tmp_path / "accepted"))
    assert (tmp_path / "accepted" / "first.csv").read_bytes() == b"1"
    assert NOT_VERIFIED not in got.stderr
    bob.send(source(tmp_path, "reply.csv", b"r"), to=alice.email)
    assert NOT_VERIFIED not in alice.ok("inbox").stdout


def test_an_unverified_change_keeps_the_trust_path(pair: tuple[User, User], tmp_path: Path) -> None:
    alice, bob = pair
    bob.send(source(tmp_path, "first.csv", b"1"), to=alice.email)  # bob pins alice, unverified
    laptop = User(alice.email, tmp_path / "home-alice-laptop", alice.server)
    laptop.ok("login", alice.server.url, "--email", alice.email)
    laptop.ok("keys", "init")
    slip_in_device(alice.server, device_of(laptop))
    stopped = bob.run("send", str(source(tmp_path, "second.csv", b"2")), "--to", alice.email)
    assert stopped.returncode == 1
    assert "have changed since you last exchanged files" in stopped.stderr
    assert f"pli keys trust {alice.email}" in stopped.stderr
    bob.ok("keys", "trust", alice.email, "--yes")
    bob.send(source(tmp_path, "second.csv", b"2"), to=alice.email)
    assert pinned(bob)[alice.email] is False
