"""schemathesis over the OpenAPI document the server generates: every operation, seeded.

A real `pli serve` (SQLite) is started with two users who have published keys and a sealed
transfer between them. Each generated request goes out as the sender (a real session token), as
nobody, or with a forged token; path parameters are sometimes those of the real transfer, so the
authenticated handlers run past their lookups. Every response must be free of server errors and
described by the document: status, content type, headers and body (`application/problem+json`
for errors). Seeded and derandomized: a failure reproduces with the same command.

`make fuzz-long` runs the same test with many more examples per operation (FUZZ_EXAMPLES).
"""

from __future__ import annotations

import os
import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.conftest import (
    PASSWORD,
    POSTGRES_ADMIN_URL,
    TUS,
    Server,
    make_user,
    start_server,
    stop_server,
    upload_metadata,
)

SEED = 20261128
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "30"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {"deterministic": True, "database": "none", "max-examples": EXAMPLES},
        "phases": {"examples": {"enabled": False}, "stateful": {"enabled": False}},
    }
)
# The fuzzer sends thousands of wrong passwords, some for the sender's own address (it learns
# it from responses): with the default limits, the sender could not log in again after a
# logout. The limits themselves are tested in tests/integration; here they are out of the way,
# with the rate limit of the routes without an account (tested in tests/unit/server).
RELAXED_LOGIN_LIMITS = {
    "PLI_LOGIN_MAX_FAILURES": "1000000",
    "PLI_LOGIN_REFUSE_AFTER": "1000000",
    "PLI_LOGIN_ACCOUNT_SLOW_AFTER": "1000000",
    "PLI_PUBLIC_RATE_LIMIT": "1000000",
}
# Who sends each request: mostly the logged-in sender, so authenticated handlers are reached.
CALLERS = ["sender", "sender", "sender", "sender", "nobody", "forged"]


@dataclass
class Target:
    server: Server
    email: str
    transfer_id: str
    file_id: str
    token: str = ""
    refreshed: int = 0
    known: dict[str, str] = field(default_factory=dict)  # other real ids, by parameter name
    seen: Counter[tuple[str, int]] = field(default_factory=Counter)

    def login(self) -> None:
        body = {"email": self.email, "password": PASSWORD}
        response = httpx.post(f"{self.server.url}/api/v1/auth/login", json=body, timeout=30)
        assert response.status_code == 200, response.text
        self.token = response.json()["token"]
        self.refreshed += 1

    def still_logged_in(self) -> bool:
        headers = {"authorization": f"Bearer {self.token}"}
        return httpx.get(f"{self.server.url}/api/v1/me", headers=headers).status_code == 200


@pytest.fixture(scope="module")
def database_url() -> Iterator[str | None]:
    """SQLite by default; FUZZ_DATABASE=postgres (as in `make fuzz-long`) fuzzes PostgreSQL."""
    if os.environ.get("FUZZ_DATABASE", "sqlite") == "sqlite":
        yield None
        return
    name = f"pli_fuzz_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # name is ours: hex only
    yield f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory, database_url: str | None) -> Iterator[Target]:
    tmp = tmp_path_factory.mktemp("fuzz")
    server = start_server(tmp, database_url, extra_env=RELAXED_LOGIN_LIMITS)
    try:
        alice = make_user(server, tmp, "alice")
        bob = make_user(server, tmp, "bob")
        source = tmp / "results.csv"
        source.write_text("patient;result\nDupont;negative\n")
        target = Target(server, alice.email, alice.send(source, to=bob.email), "")
        target.login()
        shown = httpx.get(
            f"{server.url}/api/v1/transfers/{target.transfer_id}",
            headers={"authorization": f"Bearer {target.token}"},
        )
        assert shown.status_code == 200, shown.text
        target.file_id = shown.json()["files"][0]["id"]
        target.known = _link_and_request(server.url, target.token)
        yield target
    finally:
        stop_server(server)
    log = server.log.read_text()
    assert "Traceback" not in log, log[-5000:]
    assert "unexpected server error" not in log, log[-5000:]


def _link_and_request(url: str, token: str) -> dict[str, str]:
    """A sealed share link and an open file request of the sender: their ids."""
    with httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}) as http:
        link = http.post("/api/v1/links", json={"files": 1}).json()
        meta = upload_metadata(link["id"], link["transfer"]["files"][0]["id"])
        tus = {**TUS, "upload-length": "1", "upload-metadata": meta}
        location = http.post("/api/v1/uploads", headers=tus).headers["location"]
        patch = {**TUS, "upload-offset": "0", "content-type": "application/offset+octet-stream"}
        http.patch(location, headers=patch, content=b"x")
        http.post(f"/api/v1/transfers/{link['id']}/seal", json={"manifest": "AAAA"})
        request = http.post("/api/v1/requests", json={}).json()
        body = {"document": "AAAA", "sealed_key": "AAAA"}
        http.post(f"/api/v1/requests/{request['id']}/seal", json=body)
    return {"link_id": link["id"], "request_id": request["id"]}


def _call(case: Case[Any], caller: str, real_ids: bool, target: Target) -> None:
    if real_ids and case.path_parameters:
        known = {"transfer_id": target.transfer_id, "file_id": target.file_id, **target.known}
        case.path_parameters = {k: known.get(k, v) for k, v in case.path_parameters.items()}
    case.headers.pop("authorization", None)  # case-insensitive: any generated one goes
    if caller == "sender":
        case.headers["authorization"] = f"Bearer {target.token}"
    elif caller == "forged":
        case.headers["authorization"] = "Bearer plis_" + "A" * 43
    response = case.call(base_url=target.server.url, timeout=30)
    target.seen[(case.operation.label, response.status_code)] += 1
    case.validate_response(response, checks=CHECKS)
    # Logout, password changes and the like may end the session the next cases need.
    ended = response.status_code == 401 or (
        response.status_code < 300 and case.method.upper() != "GET"
    )
    if caller == "sender" and ended and not target.still_logged_in():
        target.login()


def _fuzz(
    operation: APIOperation[Any, Any, Any, Any], mode: GenerationMode, target: Target
) -> None:
    # No shrinking: a failure is reported as generated (with a curl line to replay it), and a
    # failing run stays as short as a passing one. Derandomized, it reproduces all the same.
    @settings(
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        max_examples=EXAMPLES,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=operation.as_strategy(generation_mode=mode),
        caller=st.sampled_from(CALLERS),
        real_ids=st.booleans(),
    )
    def run(case: Case[Any], caller: str, real_ids: bool) -> None:
        _call(case, caller, real_ids, target)

    if not target.still_logged_in():
        target.login()
    try:
        run()
    except Unsatisfiable:
        # An operation without parameters or body has no invalid input to generate.
        if mode is GenerationMode.POSITIVE:
            raise


def test_every_operation_answers_within_its_schema(
    target: Target, subtests: pytest.Subtests
) -> None:
    schema = schemathesis.openapi.from_url(f"{target.server.url}/openapi.json", config=CONFIG)
    results = list(schema.get_all_operations())
    # Every operation of the document is usable by the fuzzer: none is skipped as invalid.
    assert all(isinstance(result, Ok) for result in results), results
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    labels = {op.label for op in operations}
    # The document is the one the server generates: every route of the API is in it.
    assert {"POST /api/v1/auth/login", "POST /api/v1/transfers", "GET /healthz"} <= labels
    assert len(operations) >= 15
    failed = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            with subtests.test(msg=f"{operation.label} [{mode.value}]"):
                try:
                    _fuzz(operation, mode, target)
                except BaseException:
                    failed.append(f"{operation.label} [{mode.value}]")
                    raise
    assert not failed, failed
    # The fuzzer got past authentication (a real session), and was refused without one.
    assert target.seen[("GET /api/v1/me", 200)] > 0
    assert target.seen[("GET /api/v1/transfers/{transfer_id}", 200)] > 0
    assert target.seen[("GET /api/v1/me", 401)] > 0
    assert sum(n for (_, status), n in target.seen.items() if status >= 500) == 0
