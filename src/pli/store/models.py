"""Metadata tables. The server stores ciphertext and routing facts only: no file name, no
message and no private key ever reaches a column (see docs/threat-model.md)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # TOTP: the seed sealed under the server key; enabled once a first code confirmed it.
    totp_secret: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    totp_last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)  # no replays
    # SHA-256 hashes of the account's recovery codes: issued with its first second factor (TOTP
    # or a passkey), dropped with its last.
    recovery_codes: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The random user handle its passkeys are made for (WebAuthn's user.id): never the email.
    passkey_handle: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # Set by an alert when the policy suspends downloads; cleared by an administrator or by
    # the account's second factor.
    downloads_suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # A service account (an unattended job): the scopes its API tokens may have, space-separated
    # (send, receive); None for a person. It has no password anyone knows, and never logs in.
    service_scopes: Mapped[str | None] = mapped_column(String(32), nullable=True)


class Session(Base):
    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # SHA-256 of the bearer token: a stolen database yields no usable session.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)  # absolute timeout
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)  # for the idle timeout


class Passkey(Base):
    """A WebAuthn credential of an account, a second factor (see pli.server.auth.passkeys): its
    public key only. The private key never leaves the person's authenticator."""

    __tablename__ = "passkeys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    credential_id: Mapped[bytes] = mapped_column(LargeBinary, unique=True)  # at most 1023 bytes
    public_key: Mapped[bytes] = mapped_column(LargeBinary)  # COSE_Key, as the authenticator gave
    # The authenticator's signature counter (32 bits, unsigned): an assertion must raise it.
    sign_count: Mapped[int] = mapped_column(BigInteger)
    rp_id: Mapped[str] = mapped_column(String(253))  # the relying party it was made for
    transports: Mapped[str] = mapped_column(String(200))  # space-separated hints: usb internal …
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class PasskeyChallenge(Base):
    """A WebAuthn challenge the server handed out: for one account and one purpose (register,
    login, confirm), used once, and only until it expires."""

    __tablename__ = "passkey_challenges"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))
    challenge: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ApiToken(Base):
    """A token for automation: scoped, expiring, stored only as an HMAC under a server key."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    scopes: Mapped[str] = mapped_column(String(100))  # space-separated: send receive admin
    token_hmac: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Device(Base):
    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    bundle: Mapped[str] = mapped_column(Text)  # the signed public bundle, canonical JSON
    escrow: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # age ciphertext
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # pending (published, waiting for one of the account's devices to approve it) | active |
    # removed. Only active devices are handed out as recipients.
    state: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    # The signed approval (canonical JSON) that made it active, for a device added after the
    # account's first: correspondents check it against a device they already trust.
    approval: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The key log entry that made it active (device-published or device-approved).
    log_index: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Transfer(Base):
    __tablename__ = "transfers"
    # The outbox, newest first and keyset-paginated: a range scan of one sender's entries.
    __table_args__ = (Index("ix_transfers_sender_created_id", "sender_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # None for an answer to a file request: its sender has no account.
    sender_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=True
    )
    # direct (to accounts) | link (a share link: no recipients) | answer (to a file request)
    kind: Mapped[str] = mapped_column(String(16), default="direct", server_default="direct")
    # uploading | sealed | revoked | expired | exhausted (a link with no downloads left)
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    sealed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    manifest: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # age ciphertext
    # When its blobs were deleted (expired, revoked, received, exhausted): only metadata is left.
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class TransferRecipient(Base):
    __tablename__ = "transfer_recipients"
    # The inbox, newest first and keyset-paginated: a range scan of one recipient's entries.
    __table_args__ = (
        Index("ix_transfer_recipients_user_created", "user_id", "created_at", "transfer_id"),
    )

    transfer_id: Mapped[str] = mapped_column(
        ForeignKey("transfers.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    # A copy of the transfer's `created_at` (which never changes), for the index above.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When this recipient's client confirmed it had every file, authenticated (a receipt).
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Named by the sender, not only reached through groups (see TransferRecipientGroup).
    direct: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class TransferRecipientGroup(Base):
    """A recipient reached through a group: removed from that group, the recipient loses the
    transfer unless it was also named directly or reached through another group."""

    __tablename__ = "transfer_recipient_groups"
    __table_args__ = (Index("ix_transfer_recipient_groups_group_user", "group_id", "user_id"),)

    transfer_id: Mapped[str] = mapped_column(
        ForeignKey("transfers.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[str] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )


class TransferFile(Base):
    __tablename__ = "transfer_files"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    transfer_id: Mapped[str] = mapped_column(
        ForeignKey("transfers.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    blob_key: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Written by earlier versions only: the ciphertext digest that counts is the signed one.
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Upload(Base):
    """A resumable upload (tus 1.0) of one file's ciphertext. Everything an instance needs to
    carry on is here, so any instance serves the next request."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # None for an upload made with a file request's guest token: its transfer is the answer.
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=True
    )
    transfer_id: Mapped[str] = mapped_column(
        ForeignKey("transfers.id", ondelete="CASCADE"), index=True
    )
    file_id: Mapped[str] = mapped_column(
        ForeignKey("transfer_files.id", ondelete="CASCADE"), index=True
    )
    length: Mapped[int] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    token: Mapped[str] = mapped_column(String(1024))  # the blob store's handle on the parts
    parts: Mapped[str] = mapped_column(Text, default="[]")  # JSON: the committed parts
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # abandoned after
    # One request at a time writes: it holds the lease, renewed while it receives.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Link(Base):
    """A share link: the transfer of the same id, downloaded without an account through
    tickets. The key that opens its files lives in the link's URL, never here."""

    __tablename__ = "links"

    id: Mapped[str] = mapped_column(
        String(32), ForeignKey("transfers.id", ondelete="CASCADE"), primary_key=True
    )
    max_downloads: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: no limit
    downloads: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LinkTicket(Base):
    """One download of a link, in progress: its bearer may fetch the link's files until it
    expires. Stored as the SHA-256 of the ticket only."""

    __tablename__ = "link_tickets"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    link_id: Mapped[str] = mapped_column(ForeignKey("links.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FileRequest(Base):
    """A request for files from people without an account. Its document (title, requester)
    and its key are age ciphertext the server cannot open."""

    __tablename__ = "file_requests"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(16))  # draft | open | closed
    document: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    sealed_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # SHA-256 of the token senders show (derived from the URL's secret, which the server never
    # sees): without the URL, the request's id alone reads and reserves nothing.
    sender_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    max_files: Mapped[int] = mapped_column(Integer)
    max_bytes: Mapped[int] = mapped_column(BigInteger)
    # What answers have reserved so far (a reservation is taken before a byte is uploaded).
    files_used: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    bytes_used: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class RequestAnswer(Base):
    """The transfer a file request was answered with, and the SHA-256 of the guest token
    that uploads and seals it."""

    __tablename__ = "request_answers"

    transfer_id: Mapped[str] = mapped_column(
        ForeignKey("transfers.id", ondelete="CASCADE"), primary_key=True
    )
    request_id: Mapped[str] = mapped_column(
        ForeignKey("file_requests.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """One record of the audit log's hash chain (see pli.audit.chain). Rows are only ever
    inserted, through pli.audit.log.record."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_time", "time"),
        Index("ix_audit_log_actor_event_time", "actor", "event", "time"),
        Index("ix_audit_log_event_time", "event", "time"),
        Index("ix_audit_log_subject", "subject"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # ISO 8601 UTC, fixed width (2025-01-31T09:30:00.000000Z): text order is time order.
    time: Mapped[str] = mapped_column(String(32))
    event: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str | None] = mapped_column(String(320), nullable=True)
    subject: Mapped[str | None] = mapped_column(String(320), nullable=True)
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    details: Mapped[str] = mapped_column(Text)  # canonical JSON object
    prev: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's newest record (seq 0 and the genesis hash when empty): one row, id 1,
    updated by every append so that appends queue up behind each other."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class PolicySetting(Base):
    """One setting of the administrator's policy (see pli.server.policy), as JSON."""

    __tablename__ = "policy"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Alert(Base):
    """Unusual access by an account (see pli.server.alerts); open until cleared."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    details: Mapped[str] = mapped_column(Text)  # canonical JSON object
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Notification(Base):
    """An email waiting to be sent (see pli.server.notify): kept until the SMTP server took it."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class KeyLogHead(Base):
    """The key log's size: one row, id 1, bumped by every append so that appends queue up
    behind each other (as AuditHead does for the audit log)."""

    __tablename__ = "key_log_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger)


class KeyLogEntry(Base):
    """Entry `idx` of the key log: its leaf, the canonical JSON of one key event."""

    __tablename__ = "key_log_entries"

    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    leaf: Mapped[bytes] = mapped_column(LargeBinary)


class KeyLogNode(Base):
    """The hash of a perfect subtree of the key log: node (level, idx) covers the leaves
    [idx * 2**level, (idx + 1) * 2**level). Roots and proofs read O(log n) of them."""

    __tablename__ = "key_log_nodes"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary)


class Organisation(Base):
    """A namespace of groups (an agency, a laboratory), created by the server's administrator."""

    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Group(Base):
    """A group of accounts in an organisation. Who is in it is decided by its administrators'
    signed changes (GroupChange), not by the server; `founder` may sign the first."""

    __tablename__ = "groups"
    __table_args__ = (UniqueConstraint("org_id", "slug", name="uq_groups_org_slug"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    slug: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    founder_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class GroupChange(Base):
    """Change `seq` of a group's membership: the signed change (canonical JSON), its digest,
    and the key log entry that records it."""

    __tablename__ = "group_changes"

    group_id: Mapped[str] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    change: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(64))
    log_index: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class GroupMember(Base):
    """A group's membership as its changes make it: kept for queries, rebuilt by each change."""

    __tablename__ = "group_members"

    group_id: Mapped[str] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16))  # admin | member
