"""pli.server.keys.service: a first device is active at once; a later one waits for an approval
signed by an active device of the same account; removals are signed too; every change that
makes keys usable or unusable is in the key log, and in the audit log."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from pli.crypto import devices, keylog
from pli.crypto.identity import DeviceIdentity
from pli.errors import ConflictError, ForbiddenError, NotFoundError, UsageError
from pli.server.auth import service as auth
from pli.server.keys import log as key_log
from pli.server.keys import service
from pli.store import models
from pli.store.db import Database
from tests.unit.server.exchange import NOW


def account(session: Session, name: str) -> tuple[models.User, DeviceIdentity]:
    email = f"{name}@example.org"
    made = auth.create_user(session, email, "a long enough password", is_admin=False, now=NOW)
    return made, DeviceIdentity.generate(email)


def publish(session: Session, user: models.User, identity: DeviceIdentity) -> models.Device:
    return service.publish(session, user, identity.public_bundle().signed, b"sealed", now=NOW)


def logged(session: Session) -> list[keylog.Entry]:
    size = key_log.size(session)
    return [keylog.Entry.decode(x) for x in key_log.leaves(session, 0, size)]


def changes(session: Session) -> list[Any]:
    rows = session.scalars(select(models.AuditEntry).order_by(models.AuditEntry.seq))
    return [json.loads(r.details).get("change") for r in rows if r.event.startswith("keys.")]


def test_a_first_device_is_active_and_logged(database: Session) -> None:
    alice, laptop = account(database, "alice")
    device = publish(database, alice, laptop)
    assert device.state == "active"
    assert device.log_index == 0
    (entry,) = logged(database)
    assert entry == keylog.device_published(laptop.public_bundle(), NOW)
    assert service.bundles_of(database, alice) == [laptop.public_bundle().signed]


def test_a_later_device_waits_unlogged_and_unlisted(database: Session) -> None:
    alice, laptop = account(database, "alice")
    publish(database, alice, laptop)
    phone = DeviceIdentity.generate(alice.email)
    device = publish(database, alice, phone)
    assert device.state == "pending"
    assert device.log_index is None
    assert len(logged(database)) == 1
    assert service.bundles_of(database, alice) == [laptop.public_bundle().signed]
    assert service.search(database, "alice", limit=5) == [(alice.email, 1, False)]
    assert changes(database) == ["first device", "device waiting for approval"]


def test_an_approval_activates_and_is_logged(database: Session) -> None:
    alice, laptop = account(database, "alice")
    publish(database, alice, laptop)
    phone = DeviceIdentity.generate(alice.email)
    publish(database, alice, phone)
    signed = devices.approve(laptop, phone.public_bundle())
    device = service.approve(database, alice, phone.device, signed, now=NOW)
    assert device.state == "active"
    assert json.loads(device.approval or "null") == signed
    assert logged(database)[1] == keylog.device_approved(phone.public_bundle(), laptop.device, NOW)
    assert device.log_index == 1
    with pytest.raises(ConflictError):
        service.approve(database, alice, phone.device, signed, now=NOW)


def test_only_an_active_device_of_the_account_approves(database: Session) -> None:
    alice, laptop = account(database, "alice")
    mallory, hers = account(database, "mallory")
    publish(database, alice, laptop)
    publish(database, mallory, hers)
    phone, tablet = (DeviceIdentity.generate(alice.email) for _ in range(2))
    publish(database, alice, phone)
    publish(database, alice, tablet)
    with pytest.raises(ForbiddenError):  # a pending device vouches for nothing
        service.approve(
            database, alice, tablet.device, devices.approve(phone, tablet.public_bundle()), now=NOW
        )
    forged = hers.sign(
        devices.APPROVAL_KIND,
        {**devices.approve(laptop, phone.public_bundle())["doc"], "by": hers.device},
    )
    with pytest.raises(ForbiddenError):  # another account's device
        service.approve(database, alice, phone.device, forged, now=NOW)
    with pytest.raises(NotFoundError):  # nor can another account approve alice's device
        service.approve(
            database, mallory, phone.device, devices.approve(laptop, phone.public_bundle()), now=NOW
        )
    wrong = devices.approve(laptop, tablet.public_bundle())
    with pytest.raises(UsageError, match="approval was refused"):  # signed for another device
        service.approve(database, alice, phone.device, wrong, now=NOW)
    states = sorted(d.state for d in service.devices_of(database, alice, service.ALL))
    assert states == ["active", "pending", "pending"]


def test_a_removal_is_signed_logged_and_drops_the_escrow(database: Session) -> None:
    alice, laptop = account(database, "alice")
    publish(database, alice, laptop)
    phone = DeviceIdentity.generate(alice.email)
    publish(database, alice, phone)
    service.approve(
        database, alice, phone.device, devices.approve(laptop, phone.public_bundle()), now=NOW
    )
    with pytest.raises(UsageError):
        service.remove(database, alice, phone.device, {"doc": {}, "sig": ""}, now=NOW)
    service.remove(database, alice, phone.device, devices.remove(laptop, phone.device), now=NOW)
    removed = database.get(models.Device, phone.device)
    assert removed is not None
    assert (removed.state, removed.escrow, removed.removed_at) == ("removed", None, NOW)
    assert logged(database)[-1] == keylog.device_removed(alice.email, phone.device, NOW)
    assert service.bundles_of(database, alice) == [laptop.public_bundle().signed]
    with pytest.raises(ConflictError):
        service.remove(database, alice, phone.device, devices.remove(laptop, phone.device), now=NOW)


def test_a_pending_device_is_removed_without_a_log_entry(database: Session) -> None:
    alice, laptop = account(database, "alice")
    publish(database, alice, laptop)
    phone = DeviceIdentity.generate(alice.email)
    publish(database, alice, phone)
    service.remove(database, alice, phone.device, devices.remove(laptop, phone.device), now=NOW)
    assert len(logged(database)) == 1


def test_a_reset_makes_the_next_device_a_first_one(database: Session) -> None:
    alice, laptop = account(database, "alice")
    publish(database, alice, laptop)
    publish(database, alice, DeviceIdentity.generate(alice.email))  # pending
    assert service.reset(database, alice, now=NOW, actor="admin@example.org") == 2
    assert [e.event for e in logged(database)] == ["device-published", "device-removed"]
    fresh = publish(database, alice, DeviceIdentity.generate(alice.email))
    assert fresh.state == "active"


def test_devices_from_before_the_log_are_logged_once(database: Session) -> None:
    alice, laptop = account(database, "alice")
    database.add(
        models.Device(
            id=laptop.device,
            user_id=alice.id,
            bundle=json.dumps(laptop.public_bundle().signed),
            created_at=NOW,
        )
    )
    database.commit()
    assert service.log_existing_devices(database, now=NOW) == 1
    assert service.log_existing_devices(database, now=NOW) == 0
    assert logged(database) == [keylog.device_published(laptop.public_bundle(), NOW)]


def test_two_devices_published_at_once_make_one_first_device(engine: Engine) -> None:
    """Each on its own connection, at the same moment: one is active, the other waits."""
    db = Database(engine)
    with db.session() as session:
        alice, _ = account(session, "alice")
        user_id = alice.id
    devices_made = [DeviceIdentity.generate(alice.email) for _ in range(2)]
    start, errors = threading.Barrier(2), []

    def publish_one(identity: DeviceIdentity) -> None:
        with db.session() as session:
            owner = session.get(models.User, user_id)
            assert owner is not None
            start.wait()
            try:
                publish(session, owner, identity)
            except Exception as exc:  # noqa: BLE001  (reported below: a thread cannot fail the test)
                errors.append(exc)

    threads = [threading.Thread(target=publish_one, args=(d,)) for d in devices_made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with db.session() as session:
        owner = session.get(models.User, user_id)
        assert owner is not None
        states = sorted(d.state for d in service.devices_of(session, owner, service.ALL))
    # SQLite may refuse the second writer outright ("database is locked"): never two firsts.
    assert states in (["active", "pending"], ["active"])
    assert len(errors) == 2 - len(states)


def test_a_device_does_not_sign_its_own_removal(database: Session) -> None:
    alice, laptop = account(database, "alice")
    publish(database, alice, laptop)
    signed = laptop.sign(
        devices.REMOVAL_KIND,
        {
            "kind": devices.REMOVAL_KIND,
            "email": alice.email,
            "device": laptop.device,
            "by": laptop.device,
        },
    )
    with pytest.raises(UsageError, match="does not remove itself"):
        service.remove(database, alice, laptop.device, signed, now=NOW)
    assert service.bundles_of(database, alice) == [laptop.public_bundle().signed]
