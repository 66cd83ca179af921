"""Service accounts: an unattended job sends with its API token alone, and that token can do
nothing else. Against the real server and the real CLI."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import Server, User, bearer, make_user

SERVICE = "export@lab.example"


def service_job(server: Server, tmp: Path, scopes: tuple[str, ...] = ("send",)) -> User:
    """A service account made by the administrator, set up on the job's machine with
    `pli login --token` and `pli keys init`, as the cron example in docs/cli.md does."""
    made = server.admin("create-service", SERVICE, *(x for s in scopes for x in ("--scope", s)))
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("plit_")
    job = User(SERVICE, tmp / "home-job", server)
    job.extra_env["PLI_TOKEN"] = token
    job.ok("login", server.url, "--email", SERVICE, "--token")
    del job.extra_env["PLI_TOKEN"]  # from now on the job's home holds it
    job.ok("keys", "init")
    return job


def report(tmp: Path) -> Path:
    path = tmp / "results-2026-11-29.csv"
    path.write_bytes(b"patient;test;result\n")
    return path


def test_a_nightly_export_is_sent_and_marked(server: Server, tmp_path: Path) -> None:
    bob = make_user(server, tmp_path, "bob")
    job = service_job(server, tmp_path)
    transfer = job.send(report(tmp_path), to=bob.email)

    listed = bob.ok("inbox").stdout
    assert f"from {SERVICE} (service)" in listed
    item = bob.ok("inbox", "--json").json()[0]
    assert (item["id"], item["sender"], item["sender_service"]) == (transfer, SERVICE, True)
    bob.ok("get", transfer, "-o", str(tmp_path / "got"))
    assert (tmp_path / "got" / "results-2026-11-29.csv").read_bytes() == b"patient;test;result\n"
    assert job.ok("outbox", "--json").json()[0]["sender_service"] is True


def test_a_service_token_can_only_send(sqlite_server: Server, tmp_path: Path) -> None:
    alice, bob = (make_user(sqlite_server, tmp_path, n) for n in ("alice", "bob"))
    job = service_job(sqlite_server, tmp_path)
    source = tmp_path / "private.csv"
    source.write_bytes(b"not for the job")
    theirs = alice.send(source, to=bob.email)
    files = httpx.get(f"{sqlite_server.url}/api/v1/transfers/{theirs}", headers=bearer(bob)).json()[
        "files"
    ]
    url = sqlite_server.url
    with httpx.Client(base_url=url, headers=bearer(job), timeout=30) as http:
        # It receives nothing: no inbox, no transfer, no file, not even another user's.
        assert http.get("/api/v1/transfers", params={"box": "inbox"}).status_code == 403
        assert http.get(f"/api/v1/transfers/{theirs}").status_code == 403
        assert http.get(f"/api/v1/transfers/{theirs}/files/{files[0]['id']}").status_code == 403
        # It administers nothing, and makes no tokens of its own.
        assert http.get("/api/v1/admin/users").status_code == 403
        assert http.get("/api/v1/admin/policy").status_code == 403
        made = http.post("/api/v1/tokens", json={"name": "more", "scopes": ["receive"]})
        assert made.status_code == 403
        # Its own outbox is what it may read.
        assert http.get("/api/v1/transfers", params={"box": "outbox"}).status_code == 200
    refused = job.run("inbox")
    assert refused.returncode == 1
    assert "does not allow 'receive'" in refused.stderr


def test_no_one_sends_to_a_service_that_only_sends(sqlite_server: Server, tmp_path: Path) -> None:
    bob = make_user(sqlite_server, tmp_path, "bob")
    service_job(sqlite_server, tmp_path)
    refused = bob.run("send", str(report(tmp_path)), "--to", SERVICE)
    assert refused.returncode != 0
    assert "service account that sends only" in refused.stderr
    found = httpx.get(
        f"{sqlite_server.url}/api/v1/directory", params={"q": "lab"}, headers=bearer(bob)
    ).json()
    assert found == []


def test_a_receiving_service_gets_files(sqlite_server: Server, tmp_path: Path) -> None:
    bob = make_user(sqlite_server, tmp_path, "bob")
    job = service_job(sqlite_server, tmp_path, ("send", "receive"))
    transfer = bob.send(report(tmp_path), to=SERVICE)
    job.ok("get", transfer, "-o", str(tmp_path / "inbound"))
    assert (tmp_path / "inbound" / "results-2026-11-29.csv").is_file()


def test_no_one_logs_in_as_a_service(sqlite_server: Server, tmp_path: Path) -> None:
    service_job(sqlite_server, tmp_path)
    impostor = User(SERVICE, tmp_path / "home-impostor", sqlite_server)
    refused = impostor.run("login", sqlite_server.url, "--email", SERVICE)
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("create-service", "admin-job@lab.example", "--scope", "admin"), "scopes are among"),
        (("service-token", "alice@example.org", "--scope", "send"), "is not a service account"),
        (("service-token", SERVICE, "--scope", "receive"), "limited to: send"),
    ],
    ids=["admin-scope", "a-person", "beyond-its-scopes"],
)
def test_what_an_administrator_cannot_make(
    sqlite_server: Server, tmp_path: Path, args: tuple[str, ...], expected: str
) -> None:
    make_user(sqlite_server, tmp_path, "alice")
    service_job(sqlite_server, tmp_path)
    refused = sqlite_server.admin(*args)
    assert refused.returncode != 0
    assert expected in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_new_token_replaces_an_expiring_one(sqlite_server: Server, tmp_path: Path) -> None:
    bob = make_user(sqlite_server, tmp_path, "bob")
    job = service_job(sqlite_server, tmp_path)
    renewed = sqlite_server.admin("service-token", SERVICE, "--scope", "send", "--expires", "30d")
    assert renewed.returncode == 0, renewed.stderr
    job.extra_env["PLI_TOKEN"] = renewed.stdout.strip()
    job.ok("login", sqlite_server.url, "--email", SERVICE, "--token")
    del job.extra_env["PLI_TOKEN"]
    job.send(report(tmp_path), to=bob.email)


def test_a_service_sends_where_people_need_a_second_factor(
    sqlite_server: Server, tmp_path: Path
) -> None:
    """A service has no login to add a second factor to: a policy requiring one for people
    does not stop the nightly job."""
    bob = make_user(sqlite_server, tmp_path, "bob")
    job = service_job(sqlite_server, tmp_path)
    set_policy = sqlite_server.admin("policy", "set", "require_2fa=true")
    assert set_policy.returncode == 0, set_policy.stderr
    job.send(report(tmp_path), to=bob.email)
    refused = bob.run("inbox")  # bob, a person, must enrol first
    assert refused.returncode == 1
    assert "requires a second factor" in refused.stderr
