"""Share links through the real CLI and server: created by an account holder, opened by someone
with no account and no state, with the secret never reaching the server."""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import statistics
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from pli.crypto import age
from tests.integration.conftest import PLI, Server, User, make_user
from tests.integration.test_compromise_drill import _server_bytes, _variants
from tests.integration.test_downloads import Relay, _digest, _source

GONE = "this link does not exist or is no longer available"
LINK_PASSPHRASE = "a link passphrase told by phone"


def _outsider(server: Server, tmp_path: Path, name: str = "outsider") -> User:
    """Someone with no account: an empty PLI_HOME that is never created, no password."""
    return User(f"{name}@nowhere.example", tmp_path / f"home-{name}", server)


def _files(tmp_path: Path) -> list[Path]:
    report = tmp_path / "résultats NGUYEN Thi Lan.csv"
    report.write_text("nom;nir;resultat\nNGUYEN;279099912301458;NEGATIF\n" * 40)
    scan = tmp_path / "scan.bin"
    scan.write_bytes(bytes(range(256)) * 3000)
    return [report, scan]


def _create(alice: User, *args: str) -> dict[str, str]:
    made = alice.ok("link", "create", *args, "--json").json()
    assert made["url"].startswith(f"{alice.server.url}/l/{made['id']}#")
    return dict(made)


def _fragment(url: str) -> str:
    return url.split("#", 1)[1]


def _secret_variants(fragment: str) -> list[bytes]:
    """The fragment as text, and the link's raw secret key in every encoding we can think of."""
    found = _variants(fragment) + _variants(fragment.lower())
    if fragment.startswith("AGE-SECRET-KEY-1"):
        raw = age._bech32_decode(fragment.lower(), "age-secret-key-")
        found += [raw, raw.hex().encode(), base64.b64encode(raw)[:-4]]
    return found


def _leaks(server: Server, secrets: list[bytes]) -> list[str]:
    return [where for where, data in _server_bytes(server) for s in secrets if s in data]


def test_a_link_round_trip_leaves_no_secret_on_the_server(server: Server, tmp_path: Path) -> None:
    alice = make_user(server, tmp_path, "alice")
    files = _files(tmp_path)
    link = _create(alice, *map(str, files), "--max-downloads", "2")
    guest = _outsider(server, tmp_path)

    got = guest.ok("link", "get", link["url"], "-o", str(tmp_path / "out"), "--json").json()

    assert [Path(p).name for p in got["files"]] == [f.name for f in files]
    for source in files:
        assert (tmp_path / "out" / source.name).read_bytes() == source.read_bytes()
    assert got["sender"] == alice.email
    assert not guest.home.exists()  # no account, no state
    assert list((tmp_path / "out").glob(".pli-*")) == []  # no partial file, no ticket left
    listed = alice.ok("link", "list", "--json").json()
    assert [(x["id"], x["downloads"], x["downloads_left"]) for x in listed] == [(link["id"], 1, 1)]
    assert _leaks(server, _secret_variants(_fragment(link["url"]))) == []


def test_a_link_with_a_passphrase(sqlite_server: Server, tmp_path: Path) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    alice.extra_env["PLI_LINK_PASSPHRASE"] = LINK_PASSPHRASE
    files = _files(tmp_path)
    link = _create(alice, str(files[0]), "--passphrase")
    fragment = _fragment(link["url"])
    assert fragment.startswith("p1.")  # the URL alone does not open it
    guest = _outsider(sqlite_server, tmp_path)

    asked = guest.run("link", "get", link["url"], "-o", str(tmp_path / "none"))
    assert asked.returncode == 2
    assert "PLI_LINK_PASSPHRASE" in asked.stderr
    guest.extra_env["PLI_LINK_PASSPHRASE"] = "not the passphrase"
    wrong = guest.run("link", "get", link["url"], "-o", str(tmp_path / "none"))
    assert wrong.returncode == 1
    assert wrong.stderr.strip().splitlines() == [
        "error: wrong passphrase for this link (or the link was altered)"
    ]
    guest.extra_env["PLI_LINK_PASSPHRASE"] = LINK_PASSPHRASE
    guest.ok("link", "get", link["url"], "-o", str(tmp_path / "out"))

    assert (tmp_path / "out" / files[0].name).read_bytes() == files[0].read_bytes()
    assert not (tmp_path / "none").exists() or not any((tmp_path / "none").iterdir())
    assert alice.ok("link", "list", "--json").json()[0]["downloads"] == 1  # wrong ones cost none
    secrets = _secret_variants(fragment) + _variants(LINK_PASSPHRASE)
    assert _leaks(sqlite_server, secrets) == []


def _altered(fragment: str) -> list[str]:
    middle = len(fragment) // 2
    flipped = fragment[:middle] + ("Q" if fragment[middle] != "Q" else "P") + fragment[middle + 1 :]
    return [fragment[:-5], fragment[: len(fragment) // 3], flipped]


@pytest.mark.parametrize("protected", [False, True])
def test_truncated_or_altered_fragments_are_refused_before_any_download(
    sqlite_server: Server, tmp_path: Path, protected: bool
) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    alice.extra_env["PLI_LINK_PASSPHRASE"] = LINK_PASSPHRASE
    files = _files(tmp_path)
    link = _create(alice, str(files[0]), *(["--passphrase"] if protected else []))
    base, fragment = link["url"].split("#", 1)
    guest = _outsider(sqlite_server, tmp_path)
    guest.extra_env["PLI_LINK_PASSPHRASE"] = LINK_PASSPHRASE

    for altered in [*_altered(fragment), ""]:
        refused = guest.run("link", "get", f"{base}#{altered}", "-o", str(tmp_path / "out"))
        assert refused.returncode in (1, 2), altered
        lines = refused.stderr.strip().splitlines()
        assert lines[0].startswith("error: "), refused.stderr
        assert "Traceback" not in refused.stderr
        assert any(w in lines[0] for w in ("altered", "incomplete", "no secret")), lines[0]
    assert alice.ok("link", "list", "--json").json()[0]["downloads"] == 0


def test_another_valid_key_costs_a_download_and_opens_nothing(
    sqlite_server: Server, tmp_path: Path
) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    link = _create(alice, str(_files(tmp_path)[0]))
    base = link["url"].split("#", 1)[0]
    stranger = age.X25519Identity.generate().export()
    refused = _outsider(sqlite_server, tmp_path).run(
        "link", "get", f"{base}#{stranger}", "-o", str(tmp_path / "out")
    )
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: this link's secret does not open it")
    assert not any((tmp_path / "out").glob("*"))


def test_revoked_and_expired_links_get_one_plain_answer(
    sqlite_server: Server, tmp_path: Path
) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    source = _files(tmp_path)[0]
    revoked = _create(alice, str(source))
    expiring = _create(alice, str(source), "--expires", "2s")
    blobs = sqlite_server.data / "blobs"
    assert len([p for p in blobs.glob("??/*") if p.is_file()]) == 2
    alice.ok("link", "revoke", revoked["id"])
    assert len([p for p in blobs.glob("??/*") if p.is_file()]) == 1  # its file is gone at once
    time.sleep(2.5)
    guest = _outsider(sqlite_server, tmp_path)
    unknown = revoked["url"].replace(revoked["id"], "0" * 32)
    for url in (revoked["url"], expiring["url"], unknown):
        refused = guest.run("link", "get", url, "-o", str(tmp_path / "out"))
        assert refused.returncode == 1
        assert refused.stderr.strip() == f"error: {GONE}"
    states = {x["id"]: x["state"] for x in alice.ok("link", "list", "--json").json()}
    assert states == {revoked["id"]: "revoked", expiring["id"]: "expired"}
    listed = alice.ok("link", "list").stdout
    assert "revoked" in listed
    assert "expired" in listed


def test_twenty_concurrent_downloads_of_a_three_download_link(
    server: Server, tmp_path: Path
) -> None:
    alice = make_user(server, tmp_path, "alice")
    source = _files(tmp_path)[1]
    link = _create(alice, str(source), "--max-downloads", "3")
    guests = [_outsider(server, tmp_path, f"guest{i}") for i in range(20)]

    def fetch(i: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PLI, "link", "get", link["url"], "-o", str(tmp_path / f"out{i}")],
            env=guests[i].env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        results = list(pool.map(fetch, range(20)))

    won = [i for i, r in enumerate(results) if r.returncode == 0]
    assert len(won) == 3, [r.stderr for r in results]
    for i in won:
        assert (tmp_path / f"out{i}" / source.name).read_bytes() == source.read_bytes()
    for i, r in enumerate(results):
        if i not in won:
            assert (r.returncode, r.stderr.strip()) == (1, f"error: {GONE}")
    listed = alice.ok("link", "list", "--json").json()[0]
    assert (listed["downloads"], listed["downloads_left"], listed["state"]) == (3, 0, "exhausted")


def _through(relay: Relay, url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=urlsplit(relay.url).netloc))


def test_an_output_that_is_a_file_is_one_usage_error_and_costs_no_download(
    sqlite_server: Server, tmp_path: Path
) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    link = _create(alice, str(_files(tmp_path)[0]))
    in_the_way = tmp_path / "report.pdf"
    in_the_way.write_bytes(b"%PDF mine")
    refused = _outsider(sqlite_server, tmp_path).run(
        "link", "get", link["url"], "-o", str(in_the_way)
    )
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr == f"error: cannot save into {in_the_way}: it is not a directory\n"
    assert in_the_way.read_bytes() == b"%PDF mine"
    assert alice.ok("link", "list", "--json").json()[0]["downloads"] == 0


def test_an_interrupted_download_resumes_on_the_same_ticket(
    sqlite_server: Server, tmp_path: Path
) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    source = _source(tmp_path, 48 << 20)
    link = _create(alice, str(source), "--max-downloads", "1")
    relay = Relay(sqlite_server)
    guest = _outsider(sqlite_server, tmp_path)
    out = tmp_path / "out"
    try:
        relay.limit(16 << 20)  # the connection is cut after 16 MiB
        cut = guest.run("link", "get", _through(relay, link["url"]), "-o", str(out))
        assert cut.returncode == 1, cut.stderr
        assert "run the same command again to resume" in cut.stderr
        assert list(out.glob(".pli-*.ticket")) != []  # kept 0600 beside the partial file
        assert all(p.stat().st_mode & 0o077 == 0 for p in out.glob(".pli-*"))
        relay.limit(None)
        resumed = guest.ok("link", "get", _through(relay, link["url"]), "-o", str(out))
    finally:
        relay.close()
    assert "resumed an interrupted download" in resumed.stderr
    assert _digest(out / source.name) == _digest(source)
    assert alice.ok("link", "list", "--json").json()[0]["downloads"] == 1  # one ticket only
    again = guest.run("link", "get", link["url"], "-o", str(tmp_path / "again"))
    assert again.stderr.strip() == f"error: {GONE}"


def test_a_link_of_many_files_is_not_held_back_by_the_rate_limit(tmp_path: Path) -> None:
    """The limit counts the tickets taken, not the downloads a ticket then makes."""
    from tests.integration.conftest import running_server  # noqa: PLC0415

    with running_server(tmp_path, {"PLI_PUBLIC_RATE_LIMIT": "2"}) as server:
        alice = make_user(server, tmp_path, "alice")
        files = []
        for i in range(6):
            path = tmp_path / f"part-{i}.csv"
            path.write_text(f"lot {i}\n" * 100)
            files.append(path)
        link = _create(alice, *map(str, files))
        guest = _outsider(server, tmp_path)
        got = guest.ok("link", "get", link["url"], "-o", str(tmp_path / "out"), "--json").json()
        assert len(got["files"]) == 6
        for source in files:
            assert (tmp_path / "out" / source.name).read_bytes() == source.read_bytes()


def test_link_blobs_decrypt_with_the_age_cli(sqlite_server: Server, tmp_path: Path) -> None:
    """A link is standard age: its fragment is an identity the reference tool accepts."""
    alice = make_user(sqlite_server, tmp_path, "alice")
    source = _files(tmp_path)[0]
    link = _create(alice, str(source))
    key = tmp_path / "link.key"
    key.write_text(_fragment(link["url"]) + "\n")
    blobs = [p for p in (sqlite_server.data / "blobs").rglob("*") if p.is_file()]
    plain = [
        subprocess.run(["age", "-d", "-i", str(key), str(b)], capture_output=True, check=False)
        for b in blobs
    ]
    assert source.read_bytes() in [p.stdout for p in plain if p.returncode == 0]


# --- the public endpoints ---------------------------------------------------------------------


def _ticket_status(server: Server, link_id: str) -> tuple[int, str]:
    answer = httpx.post(f"{server.url}/api/v1/public/links/{link_id}/tickets")
    return answer.status_code, answer.json()["detail"] if answer.status_code == 404 else ""


def test_unknown_expired_revoked_and_exhausted_look_the_same(
    tmp_path: Path,
) -> None:
    from tests.integration.conftest import running_server  # noqa: PLC0415

    with running_server(tmp_path, {"PLI_PUBLIC_RATE_LIMIT": "100000"}) as server:
        alice = make_user(server, tmp_path, "alice")
        source = _files(tmp_path)[0]
        ids = {
            "revoked": _create(alice, str(source))["id"],
            "exhausted": _create(alice, str(source), "--max-downloads", "1")["id"],
            "expired": _create(alice, str(source), "--expires", "1s")["id"],
            "unknown": hashlib.sha256(b"nobody").hexdigest()[:32],
        }
        alice.ok("link", "revoke", ids["revoked"])
        assert _ticket_status(server, ids["exhausted"])[0] == 201
        time.sleep(1.5)
        answers = {kind: _ticket_status(server, i) for kind, i in ids.items()}
        assert set(answers.values()) == {(404, GONE)}
        spreads = [_spread(server, list(ids.values())) for _ in range(3)]
    # The same work for each: their fastest answers (the 10th percentile, which the load of
    # other tests running beside this one disturbs least) differ by far less than a request
    # costs. A real difference shows in every round; noise rarely in three.
    assert min(spreads) < 0.2, spreads


def _spread(server: Server, ids: list[str]) -> float:
    """How far apart the kinds of refusal are in time, relative to the fastest."""
    fastest = [statistics.quantiles(t, n=10)[0] for t in _interleaved_timings(server, ids, 200)]
    return (max(fastest) - min(fastest)) / min(fastest)


def _interleaved_timings(server: Server, ids: list[str], rounds: int) -> list[list[float]]:
    timings: list[list[float]] = [[] for _ in ids]
    with httpx.Client(base_url=server.url) as http:
        for _ in range(rounds):
            for i, link_id in enumerate(ids):
                start = time.perf_counter()
                http.post(f"/api/v1/public/links/{link_id}/tickets")
                timings[i].append(time.perf_counter() - start)
    return timings
