"""Inbox and outbox pages through a real `pli serve` (SQLite and PostgreSQL): the HTTP API's
cursors, the CLI's --limit, --cursor and --all, and the SDK walking page after page."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from pli.client.sdk import Client
from tests.integration.conftest import PASSPHRASE, User


def _api(user: User) -> httpx.Client:
    token = (user.home / "session").read_text().strip()
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.Client(base_url=user.server.url, headers=headers, timeout=30)


def _cursor_in(note: str) -> str:
    found = re.search(r"--cursor (\S+)`", note)
    assert found, note
    return found.group(1)


def test_pages_through_the_api_the_cli_and_the_sdk(
    people: tuple[User, User, User], tmp_path: Path
) -> None:
    alice, bob, carol = people
    note = tmp_path / "note.txt"
    note.write_text("results")
    sent = [alice.send(note, to=bob.email) for _ in range(3)][::-1]  # newest first

    with _api(bob) as api:
        first = api.get("/api/v1/transfers", params={"box": "inbox", "limit": 2}).json()
        assert [t["id"] for t in first["items"]] == sent[:2]
        assert isinstance(first["next_cursor"], str)
        more: dict[str, str | int] = {"box": "inbox", "limit": 2, "cursor": first["next_cursor"]}
        second = api.get("/api/v1/transfers", params=more).json()
        assert [t["id"] for t in second["items"]] == sent[2:]
        assert second["next_cursor"] is None
        everything = api.get("/api/v1/transfers", params={"box": "inbox"}).json()
        assert [t["id"] for t in everything["items"]] == sent
        assert everything["next_cursor"] is None

        for bad in ("nonsense", first["next_cursor"] + "A", "=" * 300):
            refused = api.get("/api/v1/transfers", params={"box": "inbox", "cursor": bad})
            assert refused.status_code == 400
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["detail"].startswith("this cursor is malformed: pass the")
        crossed = api.get(
            "/api/v1/transfers", params={"box": "outbox", "cursor": first["next_cursor"]}
        )
        assert crossed.status_code == 400
        assert crossed.json()["detail"] == "this cursor continues the inbox, not the outbox"

    # Bob's cursor in carol's hands reaches none of bob's transfers.
    with _api(carol) as api:
        theirs = api.get("/api/v1/transfers", params=more).json()
        assert theirs == {"items": [], "next_cursor": None}

    shown = bob.ok("inbox", "--limit", "2", "--json")
    assert [t["id"] for t in shown.json()] == sent[:2]
    assert "there are more (older) transfers" in shown.stderr
    assert "pli inbox --limit 2 --cursor " in shown.stderr
    rest = bob.ok("inbox", "--limit", "2", "--cursor", _cursor_in(shown.stderr), "--json")
    assert [t["id"] for t in rest.json()] == sent[2:]
    assert "more" not in rest.stderr
    listed = bob.ok("inbox", "--all", "--json")
    assert [t["id"] for t in listed.json()] == sent
    assert [t["id"] for t in alice.ok("outbox", "--all", "--json").json()] == sent
    text = bob.ok("inbox", "--limit", "1")
    assert text.stdout.startswith(sent[0])
    assert "pli inbox --all" in text.stderr

    both = bob.run("inbox", "--all", "--limit", "2")
    assert both.returncode == 2
    assert "--all lists every transfer: leave out --limit" in both.stderr
    malformed = bob.run("inbox", "--cursor", "nonsense")
    assert malformed.returncode == 2
    assert malformed.stderr.startswith("error: this cursor is malformed")
    assert "Traceback" not in malformed.stderr
    assert bob.run("inbox", "--limit", "0").returncode == 2

    client = Client(home_path=bob.home)
    try:
        client.unlock(PASSPHRASE)
        assert [t.id for t in client.iter_inbox(page_size=2)] == sent
        page = client.inbox(limit=2)
        assert [t.id for t in page] == sent[:2]
        assert len(page) == 2
        assert all(t.verified for t in page)
        assert [t.id for t in client.inbox(limit=2, cursor=page.next_cursor)] == sent[2:]
        assert list(client.iter_outbox()) == []
    finally:
        client.close()
