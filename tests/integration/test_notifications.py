"""Email notifications from a real server to a real SMTP server: a recipient is told a transfer
arrived, and its sender receives a receipt once it was downloaded; neither says a file's name."""

from __future__ import annotations

import time
from email.message import EmailMessage
from pathlib import Path

from tests.integration.conftest import make_user, running_server
from tests.unit.server.test_notify import Inbox, _free_port, _smtp_server

FROM = "pli@hopital.example"


def _wait_for(inbox: Inbox, address: str, count: int = 1) -> list[EmailMessage]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = inbox.to(address)
        if len(found) >= count:
            return found
        time.sleep(0.2)
    raise AssertionError(f"no email reached {address} within 30 s")


def test_arrival_and_receipt_are_mailed(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        "PLI_SMTP_HOST": "127.0.0.1",
        "PLI_SMTP_PORT": str(port),
        "PLI_SMTP_SECURITY": "none",
        "PLI_SMTP_FROM": FROM,
    }
    with _smtp_server(port) as inbox, running_server(tmp_path, env) as server:
        alice, bob = make_user(server, tmp_path, "alice"), make_user(server, tmp_path, "bob")
        source = tmp_path / "résultats MARTIN Kévin.csv"
        source.write_text("MARTIN;179099912301458;POSITIF\n")
        sent = alice.send(source, to=bob.email)

        arrival = _wait_for(inbox, bob.email)[0]
        assert arrival["From"] == FROM
        assert alice.email in arrival["Subject"]
        body = arrival.get_content()
        assert sent in body
        assert f"pli get {sent}" in body
        assert "MARTIN" not in body
        assert "résultats" not in body
        assert inbox.to(alice.email) == []  # no receipt before a download

        bob.ok("get", sent, "-o", str(tmp_path / "out"))
        receipt = _wait_for(inbox, alice.email)[0]
        assert bob.email in receipt["Subject"]
        assert sent in receipt["Subject"]
        bob.ok("get", sent, "-o", str(tmp_path / "again"))
        time.sleep(6)  # more than a round of the sender
        assert len(inbox.to(alice.email)) == 1  # one receipt per recipient, not per download
