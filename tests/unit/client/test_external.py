"""Reading link and request URLs, and the ticket file of an interrupted link download."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from pli.client.external import TicketFile, split_url
from pli.errors import UsageError

LINK_ID = "0123456789abcdef0123456789abcdef"


def test_the_fragment_is_cut_off_the_server_address() -> None:
    base, ident, fragment = split_url(f"https://pli.example.org/l/{LINK_ID}#AGE-SECRET", "l")
    assert (base, ident, fragment) == ("https://pli.example.org", LINK_ID, "AGE-SECRET")
    base, _, _ = split_url(f"https://h.example/pli/r/{LINK_ID}/#age1x.y", "r")
    assert base == "https://h.example/pli"


@pytest.mark.parametrize(
    "url",
    [
        f"https://pli.example.org/r/{LINK_ID}#x",  # a request link given as a share link
        "https://pli.example.org/l/#x",
        "https://pli.example.org/l/short#x",
        f"https://pli.example.org/l/{LINK_ID}?a=1#x",
        f"ftp://pli.example.org/l/{LINK_ID}#x",
        "not a url",
    ],
)
def test_what_is_not_a_link_is_a_usage_error(url: str) -> None:
    with pytest.raises(UsageError):
        split_url(url, "l")


def test_plain_http_is_for_this_machine_only() -> None:
    with pytest.raises(UsageError, match="refusing plain http"):
        split_url(f"http://pli.example.org/l/{LINK_ID}#x", "l")
    assert split_url(f"http://127.0.0.1:8080/l/{LINK_ID}#x", "l")[0] == "http://127.0.0.1:8080"
    assert split_url(f"http://pli.example.org/l/{LINK_ID}#x", "l", allow_http=True)[1] == LINK_ID


def test_a_ticket_file_is_private_and_named_by_a_hash(tmp_path: Path) -> None:
    tickets = TicketFile(tmp_path, LINK_ID)
    assert tickets.read() is None
    tickets.write("pli_ticket_abc")
    assert tickets.read() == "pli_ticket_abc"
    assert LINK_ID not in tickets.path.name
    assert tickets.path.stat().st_mode & 0o777 == 0o600
    tickets.delete()
    assert not tickets.path.exists()


def test_a_ticket_file_is_never_followed_through_a_link(tmp_path: Path) -> None:
    tickets = TicketFile(tmp_path, LINK_ID)
    target = tmp_path / "elsewhere"
    target.write_text("pli_ticket_planted")
    tickets.path.symlink_to(target)
    with pytest.raises(UsageError, match=re.escape(str(tickets.path))):
        tickets.read()
    tickets.write("pli_ticket_new")  # the link itself is replaced, not what it points to
    assert target.read_text() == "pli_ticket_planted"
    assert not tickets.path.is_symlink()
    assert tickets.read() == "pli_ticket_new"


def test_a_readable_ticket_file_is_refused_and_rewritten_private(tmp_path: Path) -> None:
    tickets = TicketFile(tmp_path, LINK_ID)
    tickets.path.write_text("pli_ticket_seen_by_others")
    tickets.path.chmod(0o644)
    with pytest.raises(UsageError, match=re.escape(str(tickets.path))):
        tickets.read()
    tickets.write("pli_ticket_new")
    assert tickets.path.stat().st_mode & 0o777 == 0o600
    assert tickets.read() == "pli_ticket_new"


def test_a_ticket_file_with_another_link_is_refused_and_not_written_through(
    tmp_path: Path,
) -> None:
    tickets = TicketFile(tmp_path, LINK_ID)
    tickets.write("pli_ticket_old")
    other = tmp_path / "other-name"
    os.link(tickets.path, other)
    with pytest.raises(UsageError, match="remove it"):
        tickets.read()
    tickets.write("pli_ticket_new")
    assert other.read_text() == "pli_ticket_old"
    assert tickets.path.stat().st_nlink == 1
    assert tickets.read() == "pli_ticket_new"


def test_a_ticket_file_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    tickets = TicketFile(tmp_path, LINK_ID)
    os.mkfifo(tickets.path)  # opened without blocking, then refused
    with pytest.raises(UsageError, match=re.escape(str(tickets.path))):
        tickets.read()
    tickets.write("pli_ticket_new")
    assert tickets.read() == "pli_ticket_new"


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away takes root")
def test_a_ticket_file_of_another_user_is_refused(tmp_path: Path) -> None:
    tickets = TicketFile(tmp_path, LINK_ID)
    tickets.write("pli_ticket_planted")
    os.chown(tickets.path, 4242, -1)
    with pytest.raises(UsageError, match=re.escape(str(tickets.path))):
        tickets.read()


def test_a_ticket_file_is_private_whatever_the_umask(tmp_path: Path) -> None:
    tickets = TicketFile(tmp_path, LINK_ID)
    previous = os.umask(0)
    try:
        tickets.write("pli_ticket_abc")
    finally:
        os.umask(previous)
    assert tickets.path.stat().st_mode & 0o777 == 0o600


def test_a_file_that_is_not_a_ticket_is_ignored(tmp_path: Path) -> None:
    tickets = TicketFile(tmp_path, LINK_ID)
    tickets.path.write_text("something else")
    tickets.path.chmod(0o600)
    assert tickets.read() is None
