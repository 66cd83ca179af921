"""Email notifications: a transfer arrived (to each recipient), a recipient received it (to
the sender).

The server knows who sent a transfer to whom, its id, how many files it holds, their ciphertext
sizes and when it expires; file names and messages are encrypted on the client, so no email can
carry them. An email is queued as a `notifications` row in the transaction of the change it
announces, so it exists if and only if that change was committed. `send_pending`, which every
instance runs, claims each due row before sending it, so that two instances never send the same
email; a failure is retried later and later, a bounded number of times. Rows are deleted a few
days after they were sent: an address and a transfer id are personal data.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import smtplib
import ssl
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from pli.errors import UsageError
from pli.server.config import Settings, SmtpSettings, mail_address_ok
from pli.store import models
from pli.store.db import Database

if TYPE_CHECKING:  # the transfer service queues notifications: no import cycle at run time
    from pli.server.transfers.service import TransferView

log = logging.getLogger("pli.server.notify")

INTERVAL = 5.0  # seconds between two rounds of `notify_loop`
BATCH = 50  # rows sent per round at most
TIMEOUT = 30.0  # seconds for each exchange with the SMTP server
# A claimed row waits this long for the instance that took it before another may retry it:
# longer than one delivery takes, or a slow send would be doubled.
LEASE = timedelta(minutes=5)
BACKOFF = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
)
# A row still unsent with this many attempts has been given up (about 20 hours of retries).
MAX_ATTEMPTS = 8
KEEP_SENT = timedelta(days=3)  # sent rows are deleted after this
KEEP_ANY = timedelta(days=7)  # any row, given up or not, is deleted this long after its creation
SUBJECT_MAX = 200  # the column's width
_WHO_MAX = 100  # an address is shortened to this in a subject, so that the subject fits

_ARRIVED = """\
{who_fr} vous a envoyé {count} fichier(s) sur pli.

    Taille totale : {size_fr}
    Expire le : {expires}
    Transfert : {id}

Pour les recevoir : pli get {id}{server_fr}
Les noms des fichiers et le message sont chiffrés : seuls vos appareils peuvent les lire.

-----

{who_en} sent you {count} file(s) on pli.

    Total size: {size_en}
    Expires: {expires}
    Transfer: {id}

To receive them: pli get {id}{server_en}
File names and the message are encrypted: only your devices can read them.
"""

_RECEIVED = """\
{who} a téléchargé le transfert {id} ({count} fichier(s), {size_fr}) le {when}.{server_fr}

-----

{who} downloaded transfer {id} ({count} file(s), {size_en}) on {when}.{server_en}
"""


class _UnsendableError(ValueError):
    """A queued row that no attempt could send: it is given up at once."""


# Failures that concern one message: the next one may still go through the same server.
_THIS_MESSAGE = (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError, _UnsendableError)
_FAILURES = (smtplib.SMTPException, OSError, ValueError)


def transfer_arrived(
    session: Session, settings: Settings, view: TransferView, *, now: datetime
) -> None:
    """Queue one email to each recipient of a transfer just sealed. Added to the session, not
    committed: the caller commits it with the seal. Nothing when SMTP is not configured."""
    if settings.smtp is None:
        return
    count = len(view.files)
    who_en = _short(view.sender) if view.sender else "Someone"
    body = _ARRIVED.format(
        who_fr=_short(view.sender) if view.sender else "Quelqu'un",
        who_en=who_en,
        count=count,
        id=view.transfer.id,
        expires=_utc(view.transfer.expires_at),
        **_sizes(view),
        **_server(settings.public_url),
    )
    subject = f"{who_en} sent you {count} file(s) on pli"
    for recipient in view.recipients:
        _queue(session, recipient, subject, body, now=now)


def transfer_received(
    session: Session, settings: Settings, view: TransferView, recipient_email: str, *, now: datetime
) -> None:
    """Queue a receipt to the sender of a transfer: `recipient_email` received it. Added to the
    session, not committed. Nothing when SMTP is not configured or the sender has no account."""
    if settings.smtp is None or not view.sender:
        return
    _check_address(recipient_email)
    who = _short(recipient_email)
    body = _RECEIVED.format(
        who=who,
        id=view.transfer.id,
        count=len(view.files),
        when=_utc(now),
        **_sizes(view),
        **_server(settings.public_url),
    )
    subject = f"{who} downloaded transfer {view.transfer.id}"
    _queue(session, view.sender, subject, body, now=now)


def _queue(session: Session, recipient: str, subject: str, body: str, *, now: datetime) -> None:
    _check_address(recipient)
    if len(subject) > SUBJECT_MAX or "\r" in subject or "\n" in subject:
        raise UsageError("a notification's subject must be one short line")
    session.add(
        models.Notification(
            recipient=recipient,
            subject=subject,
            body=body,
            created_at=now,
            attempts=0,
            next_attempt_at=now,
        )
    )


def _check_address(address: str) -> None:
    # Account addresses are normalised when stored; this holds even if one was not.
    if not mail_address_ok(address):
        raise UsageError("an email address cannot hold spaces or control characters")


def _short(address: str) -> str:
    return address if len(address) <= _WHO_MAX else address[: _WHO_MAX - 1] + "…"


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _sizes(view: TransferView) -> dict[str, str]:
    total = sum(f.size or 0 for f in view.files)
    return {
        "size_fr": _size(total, ("octets", "Kio", "Mio", "Gio", "Tio"), ","),
        "size_en": _size(total, ("bytes", "KiB", "MiB", "GiB", "TiB"), "."),
    }


def _size(count: int, units: tuple[str, ...], point: str) -> str:
    if count < 1024:
        return f"{count} {units[0]}"
    value, unit = float(count), 0
    while value >= 1024 and unit < len(units) - 1:
        value, unit = value / 1024, unit + 1
    return f"{value:.1f} {units[unit]}".replace(".", point)


def _server(public_url: str | None) -> dict[str, str]:
    if not public_url:
        return {"server_fr": "", "server_en": ""}
    return {"server_fr": f"\nServeur : {public_url}", "server_en": f"\nServer: {public_url}"}


def send_pending(database: Database, settings: Settings, *, now: datetime) -> int:
    """Send the notifications due at `now`, at most `BATCH` of them: how many were sent.
    Rows kept long enough are deleted first."""
    smtp = settings.smtp
    if smtp is None:
        return 0
    _forget(database, now=now)
    sent = 0
    for note in _due(database, now=now):
        if not _claim(database, note, now=now):
            continue  # another instance took it
        try:
            _deliver(smtp, note, now=now)
        except _FAILURES as exc:
            final = isinstance(exc, _UnsendableError)
            _failed(database, note, _reason(exc, smtp), now=now, final=final)
            if isinstance(exc, _THIS_MESSAGE):
                continue
            break  # the server is unreachable or refuses us: the others wait for the next round
        _sent(database, note.id, now=now)
        sent += 1
    return sent


def _forget(database: Database, *, now: datetime) -> None:
    table = models.Notification
    with database.session() as session:
        session.execute(
            delete(table).where(
                or_(table.sent_at < now - KEEP_SENT, table.created_at < now - KEEP_ANY)
            )
        )
        session.commit()


def _due(database: Database, *, now: datetime) -> list[models.Notification]:
    table = models.Notification
    with database.session() as session:
        # Read in a transaction of its own, ended before any row is claimed: on SQLite a read
        # that later writes could fail when another instance wrote in between.
        return list(
            session.scalars(
                select(table)
                .where(
                    table.sent_at.is_(None),
                    table.attempts < MAX_ATTEMPTS,
                    table.next_attempt_at <= now,
                )
                .order_by(table.next_attempt_at, table.id)
                .limit(BATCH)
            )
        )


def _claim(database: Database, note: models.Notification, *, now: datetime) -> bool:
    """Take a row to send it: counts the attempt and moves its next attempt past the lease. The
    update matches only while the row is as it was read, so only one instance takes it."""
    table = models.Notification
    with database.session() as session:
        taken = session.execute(
            update(table)
            .where(
                table.id == note.id,
                table.attempts == note.attempts,
                table.sent_at.is_(None),
                table.next_attempt_at <= now,
            )
            .values(attempts=note.attempts + 1, next_attempt_at=now + LEASE)
        )
        session.commit()
    return getattr(taken, "rowcount", 0) == 1


def _sent(database: Database, note_id: int, *, now: datetime) -> None:
    table = models.Notification
    with database.session() as session:
        session.execute(update(table).where(table.id == note_id).values(sent_at=now))
        session.commit()


def _failed(
    database: Database, note: models.Notification, reason: str, *, now: datetime, final: bool
) -> None:
    """Schedule the next attempt, or give up: the row then keeps `MAX_ATTEMPTS` attempts and
    no `sent_at` until it is deleted. One log line, without the address or the password."""
    tries = note.attempts + 1
    if final or tries >= MAX_ATTEMPTS:
        values = {"attempts": MAX_ATTEMPTS, "next_attempt_at": now}
        log.error("notification %d given up after %d attempt(s): %s", note.id, tries, reason)
    else:
        retry = now + BACKOFF[min(tries, len(BACKOFF)) - 1]
        values = {"next_attempt_at": retry}
        log.warning(
            "notification %d not sent (attempt %d of %d, next at %s): %s",
            note.id,
            tries,
            MAX_ATTEMPTS,
            _utc(retry),
            reason,
        )
    table = models.Notification
    with database.session() as session:
        session.execute(
            update(table).where(table.id == note.id, table.attempts == tries).values(**values)
        )
        session.commit()


def _reason(exc: Exception, smtp: SmtpSettings) -> str:
    """One line about a failure. What the server answered is left out (it could echo what we
    sent, credentials included); only its reply code is kept."""
    if isinstance(exc, smtplib.SMTPResponseException):
        text = f"{type(exc).__name__} (SMTP {exc.smtp_code})"
    elif isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({code for code, _ in exc.recipients.values()})
        text = f"{type(exc).__name__} (SMTP {codes})"
    else:
        text = f"{type(exc).__name__}: {exc}"
    if smtp.password:
        text = text.replace(smtp.password, "***")
    return " ".join(text.split())


def _deliver(smtp: SmtpSettings, note: models.Notification, *, now: datetime) -> None:
    message = _message(smtp, note, now=now)
    with _connect(smtp) as client:
        # An explicit envelope: exactly this one recipient, whatever the headers would parse to.
        client.send_message(message, from_addr=smtp.sender, to_addrs=[note.recipient])


def _message(smtp: SmtpSettings, note: models.Notification, *, now: datetime) -> EmailMessage:
    # Rows are written by `_queue`, which checks the same; a row written some other way must
    # not be able to add headers or recipients either (EmailMessage refuses line breaks too).
    if not mail_address_ok(note.recipient) or "\r" in note.subject or "\n" in note.subject:
        raise _UnsendableError("its recipient or subject is not one line of text")
    message = EmailMessage()
    message["From"] = smtp.sender
    message["To"] = note.recipient
    message["Subject"] = note.subject
    message["Date"] = email.utils.format_datetime(now)
    message["Message-ID"] = email.utils.make_msgid(domain=smtp.sender.rpartition("@")[2])
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies
    message.set_content(note.body)
    return message


def _connect(smtp: SmtpSettings) -> smtplib.SMTP:
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if smtp.security == "tls":
        client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=TIMEOUT, context=context)
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=TIMEOUT)
    try:
        if smtp.security == "starttls":
            # Raises if the server does not offer STARTTLS: never falls back to clear text.
            client.starttls(context=context)
        if smtp.username is not None and smtp.password is not None:
            client.login(smtp.username, smtp.password)
    except BaseException:
        client.close()
        raise
    return client


async def notify_loop(database: Database, settings: Settings) -> None:
    """Send due notifications every `INTERVAL` seconds, for as long as the server runs."""
    while True:
        try:
            sent = await run_in_threadpool(send_pending, database, settings, now=settings.clock())
        except Exception:  # a failed round must not stop the next one
            log.exception("sending notifications failed")
        else:
            if sent:
                log.info("sent %d notification(s)", sent)
        await asyncio.sleep(INTERVAL)
