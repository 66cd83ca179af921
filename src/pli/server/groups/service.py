"""Organisations and groups (docs/spec/groups.md). The server's administrator creates them and
names each group's founder; who is a member is decided by signed changes, which the server
checks exactly as a sender's client will, logs in the key log, and applies."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from pli.audit import log as audit
from pli.audit.chain import Event
from pli.crypto import groups, keylog
from pli.crypto.bundle import PublicBundle, parse_bundle
from pli.crypto.signing import canonical_json
from pli.errors import (
    ConflictError,
    CryptoError,
    ForbiddenError,
    NotFoundError,
    SignatureError,
    UsageError,
)
from pli.server.keys import log as key_log
from pli.server.keys import service as keys
from pli.store import models

MAX_TITLE = 200


@dataclass(frozen=True)
class GroupRecord:
    """A group with its organisation and founder, and its history as stored."""

    group: models.Group
    organisation: models.Organisation
    founder: str
    changes: list[models.GroupChange]

    @property
    def name(self) -> str:
        return f"{self.organisation.slug}/{self.group.slug}"


def _slug(text: str, what: str) -> str:
    slug = text.strip().lower()
    if groups.NAME.fullmatch(f"{slug}/x") is None:
        raise UsageError(
            f"{text!r} is not a valid {what} name: 1 to 64 lowercase letters, digits and "
            "hyphens, not starting or ending with a hyphen"
        )
    return slug


def _title(text: str) -> str:
    title = text.strip()
    if not 0 < len(title) <= MAX_TITLE:
        raise UsageError(f"a display name has 1 to {MAX_TITLE} characters")
    return title


def create_organisation(
    session: Session, slug: str, name: str, *, now: datetime, actor: str
) -> models.Organisation:
    slug = _slug(slug, "organisation")
    if session.scalars(select(models.Organisation).where(models.Organisation.slug == slug)).first():
        raise ConflictError(f"organisation {slug} already exists")
    org = models.Organisation(slug=slug, name=_title(name), created_at=now)
    session.add(org)
    audit.record(
        session,
        Event.ADMIN_ACTION,
        now=now,
        actor=actor,
        subject=slug,
        details={"action": "organisation created"},
    )
    session.commit()
    return org


def create_group(
    session: Session, name: str, title: str, founder_email: str, *, now: datetime, actor: str
) -> GroupRecord:
    """A group with no member yet: its founder signs change 0 (adding themselves as its first
    administrator) with the first members they add."""
    org_slug, slug = groups.parse_name(name)
    org = _organisation(session, org_slug)
    founder = keys.user_by_email(session, founder_email)
    if founder.service_scopes is not None:
        raise UsageError(f"{founder.email} is a service account: a person administers a group")
    exists = select(models.Group).where(models.Group.org_id == org.id, models.Group.slug == slug)
    if session.scalars(exists).first() is not None:
        raise ConflictError(f"group {org_slug}/{slug} already exists")
    group = models.Group(
        id=secrets.token_hex(16),
        org_id=org.id,
        slug=slug,
        title=_title(title),
        founder_id=founder.id,
        created_at=now,
    )
    session.add(group)
    audit.record(
        session,
        Event.ADMIN_ACTION,
        now=now,
        actor=actor,
        subject=f"{org_slug}/{slug}",
        details={"action": "group created", "founder": founder.email},
    )
    session.commit()
    return GroupRecord(group, org, founder.email, [])


def _organisation(session: Session, slug: str) -> models.Organisation:
    org = session.scalars(
        select(models.Organisation).where(models.Organisation.slug == slug)
    ).first()
    if org is None:
        raise NotFoundError(f"there is no organisation {slug}")
    return org


def find(session: Session, name: str) -> GroupRecord:
    org_slug, slug = groups.parse_name(name)
    stmt = (
        select(models.Group, models.Organisation, models.User.email)
        .join(models.Organisation, models.Organisation.id == models.Group.org_id)
        .join(models.User, models.User.id == models.Group.founder_id)
        .where(models.Organisation.slug == org_slug, models.Group.slug == slug)
    )
    row = session.execute(stmt).first()
    if row is None:
        raise NotFoundError(f"there is no group {org_slug}/{slug}")
    group, org, founder = row
    history = select(models.GroupChange).where(models.GroupChange.group_id == group.id)
    changes = list(session.scalars(history.order_by(models.GroupChange.seq)))
    return GroupRecord(group, org, founder, changes)


def signed_changes(record: GroupRecord) -> list[object]:
    return [json.loads(c.change) for c in record.changes]


def signer_devices(session: Session, record: GroupRecord) -> list[models.Device]:
    """The device that signed each distinct (account, device) of the history, in order of
    first use: active or since removed, each with the key log entry that made it active."""
    docs = [json.loads(c.change)["doc"] for c in record.changes]
    wanted = list(dict.fromkeys((doc["by"], doc["device"]) for doc in docs))
    found = []
    for email, device_id in wanted:
        device = _logged_device(session, email, device_id)
        if device is not None:
            found.append(device)
    return found


def _logged_device(session: Session, email: str, device_id: str) -> models.Device | None:
    stmt = (
        select(models.Device)
        .join(models.User, models.User.id == models.Device.user_id)
        .where(
            models.User.email == email,
            models.Device.id == device_id,
            models.Device.log_index.is_not(None),
        )
    )
    return session.scalars(stmt).first()


def _signer_keys(session: Session) -> groups.SignerKeys:
    def keys_of(email: str, device_id: str) -> PublicBundle:
        device = _logged_device(session, email, device_id)
        if device is None:
            raise SignatureError(f"device {device_id} of {email} never had logged keys")
        return parse_bundle(json.loads(device.bundle))

    return keys_of


def members(session: Session, record: GroupRecord) -> list[tuple[str, str]]:
    """(email, role) of the group's current members, by email."""
    stmt = (
        select(models.User.email, models.GroupMember.role)
        .join(models.User, models.User.id == models.GroupMember.user_id)
        .where(models.GroupMember.group_id == record.group.id)
        .order_by(models.User.email)
    )
    return [(email, role) for email, role in session.execute(stmt)]


def of_user(session: Session, user: models.User) -> list[tuple[str, str, str]]:
    """(name, title, role) of every group `user` belongs to, by name."""
    stmt = (
        select(
            models.Organisation.slug, models.Group.slug, models.Group.title, models.GroupMember.role
        )
        .join(models.Group, models.Group.id == models.GroupMember.group_id)
        .join(models.Organisation, models.Organisation.id == models.Group.org_id)
        .where(models.GroupMember.user_id == user.id)
        .order_by(models.Organisation.slug, models.Group.slug)
    )
    return [(f"{o}/{g}", title, role) for o, g, title, role in session.execute(stmt)]


def lock(session: Session, group_id: str) -> None:
    """Lock the group's row (an UPDATE that changes nothing: the row's lock on PostgreSQL, the
    write lock on SQLite). Changes to a group, and sends through it, queue here: a change is
    checked against the history it extends, a send against the members it names."""
    session.execute(
        update(models.Group).where(models.Group.id == group_id).values(id=models.Group.id)
    )


def apply(
    session: Session, name: str, caller: models.User, signed: object, *, now: datetime
) -> models.GroupChange:
    """Apply one signed change by `caller` to group `name`: checked against the history as a
    replay checks it, logged in the key log, and applied to the members (a removed member
    loses what reached them through the group)."""
    lock(session, find(session, name).group.id)
    record = find(session, name)
    change = _authorised(session, record, caller, signed)
    state = _replayed(session, record, signed)
    member = _member_account(session, change) if change.action == groups.ADD else None
    digest = change.digest
    entry = (
        keylog.group_member_added(record.group.id, change.email, digest, now)
        if change.action == groups.ADD
        else keylog.group_member_removed(record.group.id, change.email, digest, now)
    )
    row = models.GroupChange(
        group_id=record.group.id,
        seq=change.seq,
        change=canonical_json(signed).decode("utf-8"),
        digest=digest,
        log_index=key_log.append(session, entry),
        created_at=now,
    )
    session.add(row)
    lost = _set_member(session, record.group, change, member, state)
    audit.record(
        session,
        Event.GROUP_CHANGED,
        now=now,
        actor=caller.email,
        subject=record.name,
        details={
            "action": change.action,
            "member": change.email,
            "seq": change.seq,
            "transfers_lost": lost,
        },
    )
    session.commit()
    return row


def _authorised(
    session: Session, record: GroupRecord, caller: models.User, signed: object
) -> groups.Change:
    """The change in `signed`, if `caller` may post it: the founder starts a group, its
    administrators change it, each with a change signed by one of their active devices."""
    if not record.changes:
        if record.founder != caller.email:
            raise ForbiddenError(
                f"only the founder the server's administrator named starts group {record.name}"
            )
    elif (caller.email, groups.ADMIN) not in members(session, record):
        raise ForbiddenError(f"you are not an administrator of group {record.name}")
    try:
        change = groups.claimed(signed)
    except SignatureError as exc:
        raise UsageError(f"the group change was refused: {exc.message}") from exc
    if change.by != caller.email:
        raise ForbiddenError("a group change is posted by the administrator who signed it")
    if change.device not in {d.id for d in keys.devices_of(session, caller)}:
        raise ForbiddenError("a group change is signed by one of your active devices")
    return change


def _replayed(session: Session, record: GroupRecord, signed: object) -> groups.GroupState:
    history = [*signed_changes(record), signed]
    try:
        return groups.replay(history, record.group.id, record.name, _signer_keys(session))
    except CryptoError as exc:
        raise ConflictError(
            f"the group change was refused: {exc.message}",
            hint="the group may have changed meanwhile: look at it again, then retry",
        ) from exc


def _member_account(session: Session, change: groups.Change) -> models.User:
    user = keys.user_by_email(session, change.email)
    scopes = user.service_scopes
    if scopes is not None and "receive" not in scopes.split():
        raise UsageError(f"{user.email} is a service account that sends only: it receives nothing")
    if change.role == groups.ADMIN and scopes is not None:
        raise UsageError(f"{user.email} is a service account: a person administers a group")
    return user


def _set_member(
    session: Session,
    group: models.Group,
    change: groups.Change,
    member: models.User | None,
    state: groups.GroupState,
) -> int:
    """Apply `change` to the stored members; how many transfers a removed member lost."""
    if member is not None:
        row = session.get(models.GroupMember, (group.id, member.id))
        if row is None:
            role = state.members[change.email]
            session.add(models.GroupMember(group_id=group.id, user_id=member.id, role=role))
        else:
            row.role = state.members[change.email]
        return 0
    user = keys.user_by_email(session, change.email)
    session.execute(
        delete(models.GroupMember).where(
            models.GroupMember.group_id == group.id, models.GroupMember.user_id == user.id
        )
    )
    return revoke_access(session, group.id, user.id)


def revoke_access(session: Session, group_id: str, user_id: int) -> int:
    """Take from `user_id` the transfers that reached them through group `group_id` alone
    (not named directly, nor through another group); how many."""
    through = select(models.TransferRecipientGroup.transfer_id).where(
        models.TransferRecipientGroup.group_id == group_id,
        models.TransferRecipientGroup.user_id == user_id,
    )
    transfers = list(session.scalars(through))
    session.execute(
        delete(models.TransferRecipientGroup).where(
            models.TransferRecipientGroup.group_id == group_id,
            models.TransferRecipientGroup.user_id == user_id,
        )
    )
    lost = 0
    for transfer_id in transfers:
        others = select(func.count()).where(
            models.TransferRecipientGroup.transfer_id == transfer_id,
            models.TransferRecipientGroup.user_id == user_id,
        )
        row = session.get(models.TransferRecipient, (transfer_id, user_id))
        if row is not None and not row.direct and not session.scalar(others):
            session.delete(row)
            lost += 1
    session.flush()
    return lost


def check_members(session: Session, name: str, emails: Sequence[str]) -> GroupRecord:
    """The group `name` if every one of `emails` is a current member of it: what a send
    through the group may encrypt to. ConflictError naming anyone who is not."""
    record = find(session, name)
    current = {email for email, _role in members(session, record)}
    strangers = sorted(set(emails) - current)
    if strangers:
        raise ConflictError(
            f"{', '.join(strangers)} not a member of group {record.name}",
            hint="the group changed since your client looked: send again",
        )
    return record


def search(session: Session, text: str, *, limit: int) -> list[tuple[str, str, int]]:
    """(name, title, members) of groups with members whose name or title contains `text`."""
    like = text.strip().lower()
    count = func.count(models.GroupMember.user_id)
    stmt = (
        select(models.Organisation.slug, models.Group.slug, models.Group.title, count)
        .join(models.Organisation, models.Organisation.id == models.Group.org_id)
        .join(models.GroupMember, models.GroupMember.group_id == models.Group.id)
        .where(
            (models.Organisation.slug + "/" + models.Group.slug).contains(like, autoescape=True)
            | func.lower(models.Group.title).contains(like, autoescape=True)
        )
        .group_by(models.Group.id, models.Organisation.slug, models.Group.slug, models.Group.title)
        .order_by(models.Organisation.slug, models.Group.slug)
        .limit(limit)
    )
    return [(f"{o}/{g}", title, n) for o, g, title, n in session.execute(stmt)]


def search_organisations(session: Session, text: str, *, limit: int) -> list[tuple[str, str]]:
    like = text.strip().lower()
    stmt = (
        select(models.Organisation.slug, models.Organisation.name)
        .where(
            models.Organisation.slug.contains(like, autoescape=True)
            | func.lower(models.Organisation.name).contains(like, autoescape=True)
        )
        .order_by(models.Organisation.slug)
        .limit(limit)
    )
    return [(slug, name) for slug, name in session.execute(stmt)]
