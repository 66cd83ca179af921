"""Signed group membership: the vectors replay as written, and every rule of
docs/spec/groups.md refuses what it must."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pli import errors
from pli.crypto import groups
from pli.crypto.bundle import PublicBundle, parse_bundle
from pli.crypto.identity import DeviceIdentity
from pli.errors import IntegrityError, SignatureError, TamperingError, UsageError

VECTORS = json.loads(
    (Path(__file__).parents[2] / "vectors" / "key-log" / "vectors.json").read_text()
)["group_changes"]
GROUP, NAME = "12" * 16, "ars-idf/veille"
ANNE = DeviceIdentity.generate("anne@ars.example")
BRUNO = DeviceIdentity.generate("bruno@ars.example")


def vector_keys(email: str, device: str) -> PublicBundle:
    for signed in VECTORS["bundles"].values():
        bundle = parse_bundle(signed)
        if (bundle.email, bundle.device) == (email, device):
            return bundle
    raise SignatureError("unknown signer")


def keys(email: str, device: str) -> PublicBundle:
    for identity in (ANNE, BRUNO):
        if (identity.email, identity.device) == (email, device):
            return identity.public_bundle()
    raise SignatureError("unknown signer")


def test_the_vector_history_replays_to_its_members() -> None:
    changes = VECTORS["changes"]
    for n, case in enumerate(changes):
        assert groups.digest(case["signed"]) == case["digest"]
        history = [c["signed"] for c in changes[: n + 1]]
        state = groups.replay(history, VECTORS["group"], VECTORS["name"], vector_keys)
        assert state.members == case["members"]
        assert state.head == case["digest"]


@pytest.mark.parametrize("case", VECTORS["invalid"], ids=lambda c: c["name"])
def test_the_vector_histories_that_must_be_refused_are(case: dict[str, Any]) -> None:
    with pytest.raises(getattr(errors, case["error"])):
        groups.replay(case["changes"], VECTORS["group"], VECTORS["name"], vector_keys)


def founded() -> tuple[groups.GroupState, list[dict[str, Any]]]:
    state = groups.GroupState(GROUP, NAME)
    chain = [groups.sign_change(ANNE, state, groups.ADD, ANNE.email, groups.ADMIN)]
    chain.append(groups.sign_change(ANNE, replay(chain), groups.ADD, BRUNO.email))
    return replay(chain), chain


def replay(chain: list[dict[str, Any]]) -> groups.GroupState:
    return groups.replay(chain, GROUP, NAME, keys)


def test_a_history_starts_with_its_founder() -> None:
    empty = groups.GroupState(GROUP, NAME)
    assert replay([]).members == {}
    with pytest.raises(IntegrityError, match="founding administrator"):
        groups.sign_change(ANNE, empty, groups.ADD, BRUNO.email, groups.ADMIN)
    with pytest.raises(IntegrityError, match="founding administrator"):
        groups.sign_change(ANNE, empty, groups.ADD, ANNE.email, groups.MEMBER)


def test_only_administrators_change_a_group() -> None:
    state, chain = founded()
    assert state.members == {ANNE.email: "admin", BRUNO.email: "member"}
    with pytest.raises(IntegrityError, match="without being one of its administrators"):
        groups.sign_change(BRUNO, state, groups.ADD, "eve@ars.example")
    promoted = [*chain, groups.sign_change(ANNE, state, groups.ADD, BRUNO.email, groups.ADMIN)]
    state = replay(promoted)
    added = groups.sign_change(BRUNO, state, groups.ADD, "eve@ars.example")
    assert replay([*promoted, added]).members["eve@ars.example"] == "member"


@pytest.mark.parametrize(
    ("action", "email", "role", "refusal"),
    [
        (groups.ADD, BRUNO.email, groups.MEMBER, "already a member"),
        (groups.REMOVE, "eve@ars.example", None, "not a member"),
        (groups.REMOVE, ANNE.email, None, "without an administrator"),
        (groups.ADD, ANNE.email, groups.MEMBER, "without an administrator"),
    ],
)
def test_changes_that_change_nothing_or_orphan_the_group_are_refused(
    action: str, email: str, role: str | None, refusal: str
) -> None:
    state, _chain = founded()
    with pytest.raises(IntegrityError, match=refusal):
        groups.sign_change(ANNE, state, action, email, role)


def test_a_change_is_bound_to_its_group_place_and_signer() -> None:
    state, chain = founded()
    with pytest.raises(IntegrityError, match="another group"):
        groups.replay(chain, "34" * 16, NAME, keys)
    with pytest.raises(IntegrityError, match="another group"):
        groups.replay(chain, GROUP, "ars-idf/autre", keys)
    with pytest.raises(IntegrityError, match="out of order"):
        replay([chain[1], chain[0]])
    with pytest.raises(SignatureError, match="names another signer"):
        groups.replay(chain, GROUP, NAME, lambda _e, _d: BRUNO.public_bundle())
    tampered = {**chain[1], "doc": {**chain[1]["doc"], "email": "eve@ars.example"}}
    with pytest.raises(SignatureError):
        replay([chain[0], tampered])
    extra = {**chain[1], "doc": {**chain[1]["doc"], "note": "x"}}
    with pytest.raises(SignatureError, match="malformed"):
        replay([chain[0], extra])
    assert state.admins() == [ANNE.email]


def test_a_pinned_history_must_be_extended_not_rewritten() -> None:
    state, chain = founded()
    groups.check_extends(state, 1, state.head, state.digests[0])
    groups.check_extends(state, 0, state.digests[0], state.digests[0])
    with pytest.raises(TamperingError, match="rewrote it or hid"):
        groups.check_extends(replay(chain[:1]), 1, state.head, state.digests[0])  # hidden
    other = groups.sign_change(ANNE, replay(chain[:1]), groups.ADD, "eve@ars.example")
    with pytest.raises(TamperingError):
        groups.check_extends(replay([chain[0], other]), 1, state.head, state.digests[0])


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("group:ars-idf/veille", ("ars-idf", "veille")), (" ARS-IDF/Veille ", ("ars-idf", "veille"))],
)
def test_group_names(text: str, parsed: tuple[str, str]) -> None:
    assert groups.parse_name(text) == parsed


@pytest.mark.parametrize(
    "text", ["veille", "a/b/c", "-a/b", "a/b-", "a b/c", "../x", "a/" + "b" * 65]
)
def test_malformed_group_names_are_refused(text: str) -> None:
    with pytest.raises(UsageError, match="not a group name"):
        groups.parse_name(text)
