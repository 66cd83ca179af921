"""Organisations and groups: a send to a group reaches every device of every member its signed
history gives; a removed member loses the server's copies; a later member sees nothing earlier
until someone re-shares it; a server that slips a member in or rewrites the history is caught.
Against the real server and the real CLI."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session

from pli.client.sdk import Client
from pli.crypto import groups, keylog
from pli.crypto.bundle import PublicBundle, parse_bundle
from pli.crypto.identity import DeviceIdentity
from pli.crypto.signing import canonical_json
from pli.server.keys import log as key_log
from pli.store import models
from pli.store.db import database_url, make_engine
from tests.integration.conftest import PASSPHRASE, PASSWORD, Server, User, bearer, make_user

GROUP = "ars-idf/veille"


def second_device(first: User, tmp: Path) -> User:
    """`first`'s account on a second device, approved by the first (in this process: the CLI
    verbs for it are tested in test_devices.py)."""
    other = User(first.email, tmp / f"home-{first.email.split('@')[0]}-2", first.server)
    new = Client(home_path=other.home)
    old = Client(home_path=first.home)
    try:
        new.login(first.server.url, first.email, PASSWORD)
        made = new.init_keys(PASSPHRASE, work_factor=10)
        old.unlock(PASSPHRASE)
        old.approve_device(old.pending_device(made.bundle.device))
    finally:
        new.close()
        old.close()
    return other


def new_group(server: Server, founder: User, name: str = GROUP) -> None:
    org = name.split("/", maxsplit=1)[0]
    made = server.admin("create-org", org, "--name", "ARS Île-de-France")
    assert made.returncode == 0 or "already exists" in made.stderr, made.stderr
    made = server.admin(
        "create-group", name, "--title", "Veille sanitaire", "--founder", founder.email
    )
    assert made.returncode == 0, made.stderr


@dataclass
class Team:
    lab: User  # sends
    members: list[User]  # the group's, first is its founder
    second: list[User]  # each member's second device


@pytest.fixture
def team(server: Server, tmp_path: Path) -> Team:
    lab = make_user(server, tmp_path, "lab")
    members = [make_user(server, tmp_path, n) for n in ("anne", "bruno", "chloe")]
    second = [second_device(m, tmp_path) for m in members]
    new_group(server, members[0])
    for member in members[1:]:
        members[0].ok("groups", "add", GROUP, member.email)
    return Team(lab, members, second)


def source(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


def test_a_group_send_reaches_every_device_and_follows_membership(
    team: Team, server: Server, tmp_path: Path
) -> None:
    sent = team.lab.ok(
        "send",
        str(source(tmp_path, "cas.csv", "cas groupés".encode())),
        "--to",
        f"group:{GROUP}",
        "--json",
    )
    transfer = sent.json()["id"]
    assert f"first use of group {GROUP}: 3 members" in sent.stderr

    for n, device in enumerate(team.members + team.second):  # three members, two devices each
        out = tmp_path / f"out-{n}"
        device.ok("get", transfer, "-o", str(out))
        assert (out / "cas.csv").read_bytes() == "cas groupés".encode()

    anne, bruno, chloe = team.members
    anne.ok("groups", "remove", GROUP, chloe.email)
    for device in (chloe, team.second[2]):  # she loses the server's copy on every device
        refused = device.run("get", transfer, "-o", str(tmp_path / "refused"))
        assert refused.returncode != 0
        assert "no such transfer" in refused.stderr
        assert "Traceback" not in refused.stderr
    assert transfer in bruno.ok("inbox", "--json").stdout  # the others keep it

    david = make_user(server, tmp_path, "david")
    anne.ok("groups", "add", GROUP, david.email)
    assert transfer not in david.ok("inbox", "--json").stdout  # joined after: sees nothing
    assert david.run("get", transfer, "-o", str(tmp_path / "d0")).returncode != 0
    later = team.lab.send(source(tmp_path, "suite.csv", b"la suite"), to=f"group:{GROUP}")
    david.ok("get", later, "-o", str(tmp_path / "d1"))
    assert chloe.run("get", later, "-o", str(tmp_path / "c1")).returncode != 0

    # a member re-shares the earlier transfer with him: decrypted on her side, sent again
    reshared = bruno.ok("reshare", transfer, "--to", david.email, "--json").json()["id"]
    david.ok("get", reshared, "-o", str(tmp_path / "d2"))
    assert (tmp_path / "d2" / "cas.csv").read_bytes() == "cas groupés".encode()
    assert not any(p.name.startswith("reshare-") for p in bruno.home.iterdir())

    shown = team.lab.ok("groups", "show", GROUP, "--json").json()
    assert shown["members"] == {anne.email: "admin", bruno.email: "member", david.email: "member"}


def test_members_manage_nothing_and_founders_start_their_groups(
    sqlite_server: Server, tmp_path: Path
) -> None:
    anne, bruno, eve = (make_user(sqlite_server, tmp_path, n) for n in ("anne", "bruno", "eve"))
    new_group(sqlite_server, anne)
    early = eve.run("groups", "add", GROUP, eve.email)  # not its founder
    assert early.returncode != 0
    assert "only its founder starts it" in early.stderr
    empty = eve.run("send", str(source(tmp_path, "alerte.csv", b"x")), "--to", f"group:{GROUP}")
    assert empty.returncode != 0
    assert "has no members yet" in empty.stderr

    anne.ok("groups", "add", GROUP, bruno.email)
    refused = bruno.run("groups", "add", GROUP, eve.email)  # a member, not an administrator
    assert refused.returncode != 0
    assert "without being one of its administrators" in refused.stderr
    anne.ok("groups", "add", GROUP, bruno.email, "--admin")
    unsaid = anne.run("groups", "add", GROUP, bruno.email)  # no silent demotion
    assert unsaid.returncode != 0
    assert f"{bruno.email} is already an administrator" in unsaid.stderr
    bruno.ok("groups", "add", GROUP, eve.email)
    last = anne.run("groups", "remove", GROUP, anne.email)
    assert last.returncode == 0, last.stderr  # bruno is an administrator too
    alone = bruno.run("groups", "remove", GROUP, bruno.email)
    assert alone.returncode != 0
    assert "without an administrator" in alone.stderr
    assert {g["name"]: g["role"] for g in eve.ok("groups", "list", "--json").json()} == {
        GROUP: "member"
    }


def test_group_routes_need_an_account_and_its_own_devices(
    sqlite_server: Server, tmp_path: Path
) -> None:
    anne, eve = (make_user(sqlite_server, tmp_path, n) for n in ("anne", "eve"))
    new_group(sqlite_server, anne)
    url = f"{sqlite_server.url}/api/v1/groups/{GROUP}"
    assert httpx.get(url).status_code == 401
    assert httpx.post(f"{url}/changes", json={"change": {}}).status_code == 401
    assert httpx.get(f"{sqlite_server.url}/api/v1/me/groups").status_code == 401
    assert httpx.get(url, headers=bearer(eve)).status_code == 200
    missing = httpx.get(f"{sqlite_server.url}/api/v1/groups/ars-idf/nope", headers=bearer(eve))
    assert missing.status_code == 404

    # Eve signs anne's founding change with her own key and posts it as anne's: refused.
    state = groups.GroupState(httpx.get(url, headers=bearer(eve)).json()["id"], GROUP)
    forger = DeviceIdentity.generate(anne.email)
    forged = groups.sign_change(forger, state, groups.ADD, anne.email, groups.ADMIN)
    as_eve = httpx.post(f"{url}/changes", json={"change": forged}, headers=bearer(eve))
    assert as_eve.status_code == 403
    as_anne = httpx.post(f"{url}/changes", json={"change": forged}, headers=bearer(anne))
    assert as_anne.status_code == 403  # not one of anne's devices
    assert httpx.get(url, headers=bearer(eve)).json()["changes"] == []


def _slip_in(server: Server, email: str, *, logged_device: bool) -> None:
    """What whoever runs the server can do behind the administrators' backs: add an account
    to the group with a change signed by a key of its own, logged like any other. With
    `logged_device`, the key is also logged as a device of the administrator, at once marked
    removed so that it is never handed out with the administrator's keys."""
    engine = make_engine(database_url(server.data, server.database_url))
    try:
        with Session(engine) as session:
            group = session.query(models.Group).one()
            rows = session.query(models.GroupChange).order_by(models.GroupChange.seq).all()
            history = [json.loads(r.change) for r in rows]
            state = groups.replay(history, group.id, GROUP, lambda e, d: _any_bundle(session, d))
            admin = state.admins()[0]
            made_up, now = DeviceIdentity.generate(admin), rows[-1].created_at
            if logged_device:
                _log_device(session, made_up, admin, now)
            doc = groups.sign_change(made_up, state, groups.ADD, email, groups.MEMBER)
            entry = keylog.group_member_added(group.id, email, groups.digest(doc), now)
            session.add(
                models.GroupChange(
                    group_id=group.id,
                    seq=state.seq + 1,
                    change=json.dumps(doc),
                    digest=groups.digest(doc),
                    log_index=key_log.append(session, entry),
                    created_at=now,
                )
            )
            intruder = session.query(models.User).filter_by(email=email).one()
            session.add(models.GroupMember(group_id=group.id, user_id=intruder.id, role="member"))
            session.commit()
    finally:
        engine.dispose()


def _log_device(session: Session, identity: DeviceIdentity, email: str, now: datetime) -> None:
    bundle = identity.public_bundle()
    owner = session.query(models.User).filter_by(email=email).one()
    device = models.Device(
        id=bundle.device,
        user_id=owner.id,
        bundle=canonical_json(bundle.signed).decode(),
        created_at=now,
        state="removed",
        removed_at=now,
    )
    device.log_index = key_log.append(session, keylog.device_published(bundle, now))
    session.add(device)


def _any_bundle(session: Session, device: str) -> PublicBundle:
    row = session.get(models.Device, device)
    assert row is not None
    return parse_bundle(json.loads(row.bundle))


def test_a_member_the_server_slips_in_is_refused(sqlite_server: Server, tmp_path: Path) -> None:
    anne, lab, mallory = (make_user(sqlite_server, tmp_path, n) for n in ("anne", "lab", "mallory"))
    new_group(sqlite_server, anne)
    anne.ok("groups", "add", GROUP, lab.email)
    _slip_in(sqlite_server, mallory.email, logged_device=False)
    refused = lab.run("send", str(source(tmp_path, "x.csv", b"x")), "--to", f"group:{GROUP}")
    assert refused.returncode != 0
    assert "did not prove the keys of device" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert mallory.ok("inbox", "--json").json() == []


def test_a_signer_the_server_made_up_and_logged_is_refused(
    sqlite_server: Server, tmp_path: Path
) -> None:
    anne, lab, mallory = (make_user(sqlite_server, tmp_path, n) for n in ("anne", "lab", "mallory"))
    new_group(sqlite_server, anne)
    anne.ok("groups", "add", GROUP, lab.email)
    lab.send(source(tmp_path, "a.csv", b"a"), to=f"group:{GROUP}")  # pins the group and anne
    _slip_in(sqlite_server, mallory.email, logged_device=True)
    for who in (lab, anne):  # a sender that pinned anne, and anne herself
        refused = who.run("send", str(source(tmp_path, "b.csv", b"b")), "--to", f"group:{GROUP}")
        assert refused.returncode != 0
        assert f"of {anne.email}, which this device never saw" in refused.stderr
        assert "Traceback" not in refused.stderr
    assert anne.run("groups", "show", GROUP).returncode != 0
    assert mallory.ok("inbox", "--json").json() == []


def test_a_rewritten_history_is_refused(sqlite_server: Server, tmp_path: Path) -> None:
    anne, lab, bruno = (make_user(sqlite_server, tmp_path, n) for n in ("anne", "lab", "bruno"))
    new_group(sqlite_server, anne)
    anne.ok("groups", "add", GROUP, bruno.email)
    lab.send(source(tmp_path, "a.csv", b"a"), to=f"group:{GROUP}")  # pins the history
    engine = make_engine(database_url(sqlite_server.data, sqlite_server.database_url))
    try:
        with Session(engine) as session:  # hide bruno's addition, keep him a member
            session.query(models.GroupChange).filter_by(seq=1).delete()
            session.commit()
    finally:
        engine.dispose()
    refused = lab.run("send", str(source(tmp_path, "b.csv", b"b")), "--to", f"group:{GROUP}")
    assert refused.returncode != 0
    assert f"the membership history of group {GROUP} differs" in refused.stderr
    engine = make_engine(database_url(sqlite_server.data, sqlite_server.database_url))
    try:
        with Session(engine) as session:  # now all of it: the group looks never started
            session.query(models.GroupChange).delete()
            session.commit()
    finally:
        engine.dispose()
    for who, verb in (
        (lab, ("send", str(tmp_path / "b.csv"), "--to", f"group:{GROUP}")),
        (anne, ("groups", "add", GROUP, lab.email)),
    ):
        refused = who.run(*verb)
        assert refused.returncode != 0
        assert f"the membership history of group {GROUP} differs" in refused.stderr


def test_a_member_whose_keys_changed_stops_the_send(sqlite_server: Server, tmp_path: Path) -> None:
    anne, bruno, lab = (make_user(sqlite_server, tmp_path, n) for n in ("anne", "bruno", "lab"))
    new_group(sqlite_server, anne)
    anne.ok("groups", "add", GROUP, bruno.email)
    lab.send(source(tmp_path, "a.csv", b"a"), to=f"group:{GROUP}")  # pins both members' keys
    assert sqlite_server.admin("reset-devices", bruno.email).returncode == 0
    (bruno.home / "identity.age").unlink()
    (bruno.home / "device.json").unlink()
    bruno.ok("keys", "init")

    stopped = lab.run("send", str(source(tmp_path, "b.csv", b"b")), "--to", f"group:{GROUP}")
    assert stopped.returncode != 0
    assert f"group {GROUP}: the keys of {bruno.email} changed" in stopped.stderr
    assert f"--without {bruno.email}" in stopped.stderr
    assert len(lab.ok("outbox", "--json").json()) == 1  # nothing sent

    went = lab.send(
        source(tmp_path, "c.csv", b"c"), to=f"group:{GROUP}", extra=("--without", bruno.email)
    )
    anne.ok("get", went, "-o", str(tmp_path / "anne"))
    assert bruno.run("get", went, "-o", str(tmp_path / "bruno")).returncode != 0


def test_the_directory_lists_groups_and_organisations(
    sqlite_server: Server, tmp_path: Path
) -> None:
    anne, lab = (make_user(sqlite_server, tmp_path, n) for n in ("anne", "lab"))
    new_group(sqlite_server, anne)
    anne.ok("groups", "add", GROUP, lab.email)
    found = lab.ok("directory", "search", "veille", "--json").json()
    shown = anne.ok("groups", "show", GROUP, "--json").json()
    group = {
        "history": shown["history"],
        "kind": "group",
        "name": GROUP,
        "title": "Veille sanitaire",
        "members": {anne.email: "admin", lab.email: "member"},
        "pinned": False,  # checked, not pinned: lab never sent to it
    }
    assert found == [group]
    lab.ok("groups", "show", GROUP)
    assert lab.ok("directory", "search", "veille", "--json").json() == [group | {"pinned": True}]
    orgs = lab.ok("directory", "search", "ars", "--json").json()
    organisation = {"kind": "organisation", "name": "ars-idf", "title": "ARS Île-de-France"}
    assert organisation | {"members": None, "history": None, "pinned": False} in orgs
    text = lab.ok("directory", "search", "veille").stdout
    assert f"group:{GROUP}  Veille sanitaire  2 members, history pinned, history " in text
    assert shown["history"][:16] in text


def test_without_names_members_only(sqlite_server: Server, tmp_path: Path) -> None:
    anne, lab = (make_user(sqlite_server, tmp_path, n) for n in ("anne", "lab"))
    new_group(sqlite_server, anne)
    anne.ok("groups", "add", GROUP, lab.email)
    typo = lab.run(
        "send",
        str(source(tmp_path, "a.csv", b"a")),
        "--to",
        f"group:{GROUP}",
        "--without",
        "anne@example.og",
    )
    assert typo.returncode != 0
    assert "anne@example.og: not a member of any group sent to" in typo.stderr
    assert lab.ok("outbox", "--json").json() == []


def test_one_group_named_twice_is_one_group(sqlite_server: Server, tmp_path: Path) -> None:
    anne, lab = (make_user(sqlite_server, tmp_path, n) for n in ("anne", "lab"))
    new_group(sqlite_server, anne)
    anne.ok("groups", "add", GROUP, lab.email)
    body = {
        "recipients": [],
        "groups": [
            {"name": GROUP, "members": [anne.email]},
            {"name": f"group:{GROUP.upper()}", "members": [anne.email]},
        ],
        "files": 1,
    }
    made = httpx.post(f"{sqlite_server.url}/api/v1/transfers", json=body, headers=bearer(lab))
    assert made.status_code == 201, made.text
    assert made.json()["recipients"] == [anne.email]
