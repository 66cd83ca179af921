"""Passkeys as a second factor against a real `pli serve`, driven by a software authenticator
(tests/passkey_authenticator.py) as a browser would drive a real one: enrolment, the login
that needs the passkey, recovery codes, removal with either proof, and the refusals (a replayed
assertion, another account's passkey, a wrong origin)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pli.client.sdk import Client
from tests.integration.conftest import PASSWORD, Server, User, make_user, running_server
from tests.integration.test_audit_events import _records
from tests.passkey_authenticator import Authenticator


class Browser:
    """What the web app does for one account, over the real API."""

    def __init__(self, server: Server, user: User) -> None:
        self.server, self.user = server, user
        token = (user.home / "session").read_text()
        self.http = httpx.Client(
            base_url=server.url, headers={"authorization": f"Bearer {token}"}, timeout=30
        )

    def close(self) -> None:
        self.http.close()

    def enrol(self, key: Authenticator, name: str = "laptop") -> dict[str, Any]:
        made = self.http.post("/api/v1/me/2fa/passkeys/options")
        assert made.status_code == 200, made.text
        answer = key.create(made.json()["options"])
        body = {"challenge_id": made.json()["challenge_id"], "credential": answer, "name": name}
        enrolled = self.http.post("/api/v1/me/2fa/passkeys", json=body)
        assert enrolled.status_code == 201, enrolled.text
        result: dict[str, Any] = enrolled.json()
        return result

    def factors(self) -> dict[str, Any]:
        client = Client(home_path=self.user.home)
        try:
            return client.second_factors()
        finally:
            client.close()

    def confirmation(self, key: Authenticator) -> dict[str, Any]:
        """A passkey assertion to confirm a change."""
        made = self.http.post("/api/v1/me/2fa/passkeys/assertion-options")
        assert made.status_code == 200, made.text
        return {
            "challenge_id": made.json()["challenge_id"],
            "credential": key.get(made.json()["options"]),
        }

    def remove(self, passkey_id: str, **proof: Any) -> httpx.Response:
        body = {"code": None, "passkey": None, **proof}
        return self.http.post(f"/api/v1/me/2fa/passkeys/{passkey_id}/remove", json=body)


@pytest.fixture
def browsers() -> Iterator[list[Browser]]:
    opened: list[Browser] = []
    yield opened
    for browser in opened:
        browser.close()


def _browser(browsers: list[Browser], server: Server, user: User) -> Browser:
    browsers.append(Browser(server, user))
    return browsers[-1]


def _login(server: Server, email: str, **extra: Any) -> httpx.Response:
    body = {"email": email, "password": PASSWORD, **extra}
    return httpx.post(f"{server.url}/api/v1/auth/login", json=body, timeout=30)


def _passkey_login(server: Server, email: str, key: Authenticator) -> dict[str, Any]:
    """The web app's login with a passkey: options (after the password), then the login."""
    made = httpx.post(
        f"{server.url}/api/v1/auth/passkey/options",
        json={"email": email, "password": PASSWORD},
        timeout=30,
    )
    assert made.status_code == 200, made.text
    return {
        "challenge_id": made.json()["challenge_id"],
        "credential": key.get(made.json()["options"]),
    }


def _cli_login(user: User, code: str | None = None) -> tuple[int, str]:
    user.extra_env.pop("PLI_TOTP", None)
    if code is not None:
        user.extra_env["PLI_TOTP"] = code
    result = user.run("login", user.server.url, "--email", user.email)
    return result.returncode, result.stderr.strip()


def test_enrol_then_log_in_with_the_passkey(
    server: Server, tmp_path: Path, browsers: list[Browser]
) -> None:
    alice = make_user(server, tmp_path, "alice", keys=False)
    web = _browser(browsers, server, alice)
    assert web.factors() == {"totp": False, "passkeys": [], "recovery_codes_left": 0}
    key = Authenticator(origin=server.url)
    made = web.http.post("/api/v1/me/2fa/passkeys/options").json()
    options = made["options"]
    assert options["rp"] == {"name": "pli", "id": "127.0.0.1"}
    assert options["user"]["name"] == alice.email
    assert options["excludeCredentials"] == []
    enrolled = web.enrol(key)
    assert len(enrolled["recovery_codes"]) == 10
    assert enrolled["passkey"]["name"] == "laptop"
    assert enrolled["passkey"]["last_used_at"] is None
    factors = web.factors()
    assert factors["passkeys"] == [enrolled["passkey"]]
    assert (factors["totp"], factors["recovery_codes_left"]) == (False, 10)

    # The password alone no longer opens the account; the answer says what would.
    refused = _login(server, alice.email)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["title"] == "Second factor required"
    assert refused.json()["methods"] == ["passkey"]
    # The command line has no passkey: it says what to do, without a traceback.
    code, message = _cli_login(alice)
    assert code == 1
    assert message == (
        "error: this account signs in with a passkey: sign in with it in the web app, or set "
        "PLI_TOTP to one of its recovery codes"
    )

    # Credential ids are for those who know the password.
    wrong = httpx.post(
        f"{server.url}/api/v1/auth/passkey/options",
        json={"email": alice.email, "password": "not " + PASSWORD},
    )
    assert (wrong.status_code, wrong.json()["detail"]) == (401, "wrong email or password")
    assertion = _passkey_login(server, alice.email, key)
    opened = _login(server, alice.email, passkey=assertion)
    assert opened.status_code == 200, opened.text
    assert opened.json()["email"] == alice.email
    me = httpx.get(
        f"{server.url}/api/v1/me",
        headers={"authorization": f"Bearer {opened.json()['token']}"},
    )
    assert me.status_code == 200
    # The same assertion again: its challenge is spent.
    replayed = _login(server, alice.email, passkey=assertion)
    assert replayed.status_code == 401
    assert "expired or was already used" in replayed.json()["detail"]
    assert web.factors()["passkeys"][0]["last_used_at"] is not None

    logins = [r for r in _records(server) if str(r.event).startswith("auth.login")]
    assert [(str(r.event), r.details.get("second_factor")) for r in logins[-2:]] == [
        ("auth.login.succeeded", "passkey"),
        ("auth.login.failed", None),
    ]
    changed = [r for r in _records(server) if str(r.event) == "auth.second_factor.changed"]
    assert [r.details for r in changed] == [{"passkey": "added", "name": "laptop"}]


def test_a_recovery_code_logs_a_passkey_only_account_in(
    sqlite_server: Server, tmp_path: Path, browsers: list[Browser]
) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice", keys=False)
    web = _browser(browsers, sqlite_server, alice)
    codes = web.enrol(Authenticator(sqlite_server.url))["recovery_codes"]
    assert _cli_login(alice, "123456") == (1, "error: wrong one-time code")
    assert _cli_login(alice, codes[0]) == (0, f"logged in as {alice.email}")
    assert _cli_login(alice, codes[0]) == (1, "error: wrong one-time code")
    assert web.factors()["recovery_codes_left"] == 9


def test_another_accounts_passkey_does_not_log_in(
    server: Server, tmp_path: Path, browsers: list[Browser]
) -> None:
    alice = make_user(server, tmp_path, "alice", keys=False)
    bob = make_user(server, tmp_path, "bob", keys=False)
    alices, bobs = Authenticator(server.url), Authenticator(server.url)
    _browser(browsers, server, alice).enrol(alices)
    _browser(browsers, server, bob).enrol(bobs)
    # Alice's challenge, answered by Bob's passkey.
    made = httpx.post(
        f"{server.url}/api/v1/auth/passkey/options",
        json={"email": alice.email, "password": PASSWORD},
    ).json()
    forged = {"challenge_id": made["challenge_id"], "credential": bobs.get(made["options"])}
    refused = _login(server, alice.email, passkey=forged)
    assert refused.status_code == 401
    assert refused.json()["detail"] == "this passkey is not one of this account's"
    # Bob's own login, with Alice's challenge: bound to Alice, refused.
    made = httpx.post(
        f"{server.url}/api/v1/auth/passkey/options",
        json={"email": alice.email, "password": PASSWORD},
    ).json()
    stolen = {"challenge_id": made["challenge_id"], "credential": bobs.get(made["options"])}
    assert _login(server, bob.email, passkey=stolen).status_code == 401
    assert _login(server, bob.email, passkey=_passkey_login(server, bob.email, bobs)).is_success


def test_remove_with_a_code_or_with_an_assertion(
    server: Server, tmp_path: Path, browsers: list[Browser]
) -> None:
    alice = make_user(server, tmp_path, "alice", keys=False)
    bob = make_user(server, tmp_path, "bob", keys=False)
    web = _browser(browsers, server, alice)
    laptop, phone = Authenticator(server.url), Authenticator(server.url)
    first = web.enrol(laptop, "laptop")
    second = web.enrol(phone, "phone")
    assert second["recovery_codes"] == []  # the account had a second factor already
    codes = first["recovery_codes"]
    # Enrolled passkeys are excluded from a new enrolment.
    excluded = web.http.post("/api/v1/me/2fa/passkeys/options").json()["options"]
    assert len(excluded["excludeCredentials"]) == 2

    assert web.remove(first["passkey"]["id"]).status_code == 400  # no proof
    assert web.remove(first["passkey"]["id"], code="000000").status_code == 401
    bobs = _browser(browsers, server, bob)
    assert bobs.remove(first["passkey"]["id"], code=codes[0]).status_code == 404
    # The phone confirms the laptop's removal.
    assert web.remove(first["passkey"]["id"], passkey=web.confirmation(phone)).status_code == 204
    # A login challenge does not confirm a change.
    login_challenge = _passkey_login(server, alice.email, phone)
    assert web.remove(second["passkey"]["id"], passkey=login_challenge).status_code == 401
    assert [p["name"] for p in web.factors()["passkeys"]] == ["phone"]
    assert web.factors()["recovery_codes_left"] == 10
    # The last one, with a recovery code: the account's codes go with its last factor.
    assert web.remove(second["passkey"]["id"], code=codes[0]).status_code == 204
    assert web.factors() == {"totp": False, "passkeys": [], "recovery_codes_left": 0}
    assert _login(server, alice.email).status_code == 200
    changed = [r.details for r in _records(server) if str(r.event) == "auth.second_factor.changed"]
    assert changed[-2:] == [
        {"passkey": "removed", "name": "laptop"},
        {"passkey": "removed", "name": "phone"},
    ]


def test_a_passkey_removes_itself(
    sqlite_server: Server, tmp_path: Path, browsers: list[Browser]
) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice", keys=False)
    web = _browser(browsers, sqlite_server, alice)
    key = Authenticator(sqlite_server.url)
    made = web.enrol(key)
    assert web.remove(made["passkey"]["id"], passkey=web.confirmation(key)).status_code == 204
    assert web.factors()["passkeys"] == []


def test_a_copied_passkey_is_refused_and_recorded(
    sqlite_server: Server, tmp_path: Path, browsers: list[Browser]
) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice", keys=False)
    key = Authenticator(sqlite_server.url)
    _browser(browsers, sqlite_server, alice).enrol(key)
    assert _login(
        sqlite_server, alice.email, passkey=_passkey_login(sqlite_server, alice.email, key)
    ).is_success
    # A copy of the key, whose counter lags behind the original's.
    copy = Authenticator(sqlite_server.url, key=key.key, credential_id=key.credential_id)
    copy.user_handle = key.user_handle
    refused = _login(
        sqlite_server, alice.email, passkey=_passkey_login(sqlite_server, alice.email, copy)
    )
    assert refused.status_code == 401
    assert "copied" in refused.json()["detail"]
    failed = [r for r in _records(sqlite_server) if str(r.event) == "auth.login.failed"]
    assert "copied" in str(failed[-1].details["reason"])
    assert failed[-1].actor == alice.email


def test_totp_and_passkey_together(
    sqlite_server: Server, tmp_path: Path, browsers: list[Browser]
) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice", keys=False)
    web = _browser(browsers, sqlite_server, alice)
    codes = web.enrol(Authenticator(sqlite_server.url))["recovery_codes"]
    assert web.http.post("/api/v1/me/2fa/totp").status_code == 200  # allowed beside a passkey
    refused = _login(sqlite_server, alice.email)
    assert refused.json()["methods"] == ["passkey"]  # TOTP is pending, not enabled
    assert _cli_login(alice, codes[1])[0] == 0


def test_passkeys_are_made_for_the_public_url(tmp_path: Path) -> None:
    public = "https://files.example.org"
    with running_server(tmp_path, {"PLI_PUBLIC_URL": public}) as server:
        alice = make_user(server, tmp_path, "alice", keys=False)
        web = Browser(server, alice)
        try:
            options = web.http.post("/api/v1/me/2fa/passkeys/options").json()
            assert options["options"]["rp"]["id"] == "files.example.org"
            # A browser at the address the request came to is not at the public origin.
            local = Authenticator(server.url).create(options["options"])
            body = {"challenge_id": options["challenge_id"], "credential": local, "name": "x"}
            refused = web.http.post("/api/v1/me/2fa/passkeys", json=body)
            assert refused.status_code == 422
            assert "PLI_PUBLIC_URL" in refused.json()["detail"]
            key = Authenticator(public)
            web.enrol(key)
            assertion = _passkey_login(server, alice.email, key)
            assert _login(server, alice.email, passkey=assertion).is_success
        finally:
            web.close()


def test_a_passkey_satisfies_the_policy(tmp_path: Path) -> None:
    with running_server(tmp_path, {"PLI_REQUIRE_2FA": "1"}) as server:
        alice = make_user(server, tmp_path, "alice", keys=False)
        web = Browser(server, alice)
        try:
            assert web.http.get("/api/v1/transfers").status_code == 403
            assert web.factors()["passkeys"] == []  # reachable while enrolling
            web.enrol(Authenticator(server.url))
            assert web.http.get("/api/v1/transfers").status_code == 200
        finally:
            web.close()
