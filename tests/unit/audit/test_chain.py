"""pli.audit.chain: appending records and finding the first problem in a chain."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pli.audit.chain import (
    DOMAIN,
    GENESIS,
    Event,
    Record,
    append,
    record_hash,
    verify,
)
from pli.crypto.checkpoints import ServerKey
from pli.crypto.signing import canonical_json
from pli.errors import UsageError

START = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
EVENTS = list(Event)


def build(n: int) -> list[Record]:
    records: list[Record] = []
    previous: Record | None = None
    for i in range(n):
        previous = append(
            previous,
            time=START + timedelta(seconds=i),
            event=EVENTS[i % len(EVENTS)],
            actor=f"user-{i % 7}" if i % 5 else None,
            subject=f"transfer-{i}",
            address="192.0.2.10" if i % 2 else None,
            details={"size": i * 1000, "ok": i % 3 == 0, "note": "é✓", "none": None},
        )
        records.append(previous)
    return records


CHAIN = build(1000)
KEY = ServerKey.generate()
SMALL = CHAIN[:30]


def forge(template: Record, **changes: Any) -> Record:
    """A record with `changes` applied and its own hash recomputed: internally consistent."""
    record = dataclasses.replace(template, **changes)
    return dataclasses.replace(record, hash=record_hash(record.to_dict()))


def problem(records: list[Record], checkpoints: tuple[Any, ...] = ()) -> tuple[str, int]:
    report = verify(records, checkpoints)
    assert not report.ok
    assert report.problem is not None
    assert report.problem.message.endswith(("copy", "backup"))
    return report.problem.kind, report.problem.seq


# --- appending --------------------------------------------------------------------------------


def test_first_record_starts_the_chain() -> None:
    record = append(
        None, time=START, event=Event.AUTH_LOGIN_SUCCEEDED, actor="a", subject=None, address=None
    )
    assert record.seq == 1
    assert record.prev == GENESIS
    assert record.time == "2025-03-01T08:00:00.000000Z"
    assert record.details == {}


def test_each_record_chains_onto_the_previous() -> None:
    for before, after in itertools.pairwise(CHAIN):
        assert after.seq == before.seq + 1
        assert after.prev == before.hash


def test_hash_is_domain_separated_sha256_of_the_canonical_fields() -> None:
    record = CHAIN[41]
    fields = record.to_dict()
    del fields["hash"]
    assert record.hash == hashlib.sha256(DOMAIN + canonical_json(fields)).hexdigest()
    assert record_hash(record.to_dict()) == record.hash
    assert fields["event"] == str(record.event)


def test_time_is_converted_to_utc() -> None:
    paris = timezone(timedelta(hours=2))
    record = append(
        None,
        time=datetime(2025, 6, 1, 10, 30, tzinfo=paris),
        event=Event.ADMIN_ACTION,
        actor=None,
        subject=None,
        address=None,
    )
    assert record.time == "2025-06-01T08:30:00.000000Z"


def test_naive_time_is_refused() -> None:
    with pytest.raises(UsageError):
        append(
            None,
            time=datetime(2025, 1, 1),
            event=Event.ADMIN_ACTION,
            actor=None,
            subject=None,
            address=None,
        )


@pytest.mark.parametrize("value", [1.5, [1], {"a": 1}, 2**60])
def test_details_are_flat_scalars(value: Any) -> None:
    with pytest.raises(UsageError):
        append(
            None,
            time=START,
            event=Event.ADMIN_ACTION,
            actor=None,
            subject=None,
            address=None,
            details={"x": value},
        )


def test_details_are_copied() -> None:
    details: dict[str, str | int | bool | None] = {"a": 1}
    record = append(
        None,
        time=START,
        event=Event.ADMIN_ACTION,
        actor=None,
        subject=None,
        address=None,
        details=details,
    )
    details["a"] = 2
    assert verify([record]).ok


def test_event_names_are_dotted_and_unique() -> None:
    names = [str(event) for event in Event]
    assert len(set(names)) == len(names) == 30
    assert all("." in name and name == name.lower() for name in names)
    assert Event("transfer.downloaded") is Event.TRANSFER_DOWNLOADED


# --- an intact chain --------------------------------------------------------------------------


def test_a_thousand_records_verify() -> None:
    report = verify(iter(CHAIN))
    assert report.ok
    assert report.problem is None
    assert report.count == 1000
    assert report.head == CHAIN[-1].hash


def test_an_empty_log_verifies() -> None:
    report = verify([])
    assert report.ok
    assert (report.count, report.head) == (0, GENESIS)


def test_verify_reads_a_generator_once() -> None:
    assert verify(record for record in CHAIN).ok


# --- deletion ---------------------------------------------------------------------------------


@pytest.mark.parametrize("index", range(len(SMALL) - 1))
def test_each_single_deletion_is_found(index: int) -> None:
    records = SMALL[:index] + SMALL[index + 1 :]
    assert problem(records) == ("deleted", index + 1)
    report = verify(records)
    assert report.count == index
    assert report.head == (SMALL[index - 1].hash if index else GENESIS)


def test_a_deleted_range_is_found() -> None:
    assert problem(CHAIN[:100] + CHAIN[250:]) == ("deleted", 101)


def test_deleting_the_last_record_needs_a_checkpoint() -> None:
    key = ServerKey.generate()
    checkpoint = key.checkpoint(len(SMALL), SMALL[-1].hash, START)
    assert verify(SMALL[:-1]).ok
    assert problem(SMALL[:-1], (checkpoint,)) == ("truncated", len(SMALL))


# --- modification -----------------------------------------------------------------------------

CHANGES: list[tuple[str, Any]] = [
    ("seq", 999),
    ("time", "2025-03-01T08:00:01.000000Z"),
    ("event", Event.ALERT_RAISED),
    ("actor", "mallory"),
    ("actor", None),
    ("subject", "transfer-x"),
    ("address", "198.51.100.7"),
    ("details", {"size": 1}),
    ("details", {}),
    ("prev", "1" * 64),
    ("hash", "f" * 64),
]


@pytest.mark.parametrize(("name", "value"), CHANGES)
@pytest.mark.parametrize("index", [0, 1, 17, 29])
def test_each_field_modification_is_found(index: int, name: str, value: Any) -> None:
    records = list(SMALL)
    records[index] = dataclasses.replace(records[index], **{name: value})
    if records[index] == SMALL[index]:
        records[index] = dataclasses.replace(records[index], actor="someone else")
    assert problem(records) == ("modified", index + 1)


def test_a_modified_detail_value_is_found() -> None:
    records = list(SMALL)
    records[9] = dataclasses.replace(records[9], details={**records[9].details, "ok": "yes"})
    assert problem(records) == ("modified", 10)


def test_a_rehashed_modification_breaks_the_next_link() -> None:
    records = list(SMALL)
    records[9] = forge(records[9], actor="mallory")
    assert problem(records) == ("modified", 11)


def test_a_rehashed_modification_of_the_last_record_needs_a_checkpoint() -> None:
    key = ServerKey.generate()
    checkpoint = key.checkpoint(len(SMALL), SMALL[-1].hash, START)
    records = [*SMALL[:-1], forge(SMALL[-1], subject="other")]
    assert verify(records).ok
    assert problem(records, (checkpoint,)) == ("rewritten", len(SMALL))


def test_an_unhashable_record_is_modified() -> None:
    records = list(SMALL)
    records[3] = dataclasses.replace(records[3], details={"x": 1.5})  # type: ignore[dict-item]
    assert problem(records) == ("modified", 4)


# --- insertion --------------------------------------------------------------------------------


@pytest.mark.parametrize("index", [0, 1, 10, 28])
def test_a_forged_record_chained_in_with_a_correct_hash_is_found(index: int) -> None:
    """The forged record takes the next seq and chains onto its predecessor: only the genuine
    record after it, now a duplicate, shows the problem."""
    before = SMALL[index - 1] if index else None
    forged = append(
        before,
        time=START,
        event=Event.LINK_ACCESSED,
        actor="mallory",
        subject=None,
        address=None,
    )
    records = [*SMALL[:index], forged, *SMALL[index:]]
    assert problem(records) == ("inserted", index + 1)


@pytest.mark.parametrize("index", [0, 10, 28])
def test_a_forged_record_with_the_next_seq_and_a_wrong_prev_is_found(index: int) -> None:
    forged = forge(SMALL[index], prev="a" * 64, actor="mallory")
    records = [*SMALL[:index], forged, *SMALL[index:]]
    assert problem(records) == ("inserted", index + 1)


@pytest.mark.parametrize("seq", [5, 12, 30, 31, 10_000])
def test_a_forged_record_with_another_seq_is_found(seq: int) -> None:
    forged = forge(SMALL[4], seq=seq, actor="mallory")
    records = [*SMALL[:10], forged, *SMALL[10:]]
    assert problem(records) == ("inserted", 11)


def test_a_copied_record_is_found() -> None:
    records = [*SMALL[:10], SMALL[3], *SMALL[10:]]
    assert problem(records) == ("inserted", 11)


def test_a_record_appended_after_a_duplicate_of_the_last_is_found() -> None:
    records = [*SMALL, SMALL[-1]]
    assert problem(records) == ("inserted", len(SMALL))


# --- reordering -------------------------------------------------------------------------------


@pytest.mark.parametrize(("i", "j"), [(0, 1), (4, 5), (28, 29), (3, 17), (0, 29)])
def test_a_swap_of_two_records_is_found(i: int, j: int) -> None:
    records = list(SMALL)
    records[i], records[j] = records[j], records[i]
    assert problem(records) == ("reordered", i + 1)


def test_a_moved_record_is_found() -> None:
    records = [*SMALL[:5], *SMALL[6:20], SMALL[5], *SMALL[20:]]
    assert problem(records) == ("reordered", 6)


# --- checkpoints ------------------------------------------------------------------------------


def test_a_chain_matching_its_checkpoints_verifies() -> None:
    key = ServerKey.generate()
    checkpoints = [key.checkpoint(n, CHAIN[n - 1].hash, START) for n in (1, 500, 1000)]
    checkpoints.append(key.checkpoint(0, GENESIS, START))
    report = verify(CHAIN, checkpoints)
    assert report.ok
    assert report.count == 1000


@pytest.mark.parametrize("keep", [0, 1, 400, 499])
def test_truncation_after_a_checkpoint_is_found(keep: int) -> None:
    key = ServerKey.generate()
    checkpoint = key.checkpoint(500, CHAIN[499].hash, START)
    report = verify(CHAIN[:keep], [checkpoint])
    assert not report.ok
    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == ("truncated", keep + 1)
    assert report.count == keep


def test_a_consistently_rewritten_tail_is_found_by_a_checkpoint() -> None:
    key = ServerKey.generate()
    checkpoint = key.checkpoint(500, CHAIN[499].hash, START)
    rewritten = list(CHAIN[:300])
    previous: Record | None = rewritten[-1]
    for record in CHAIN[300:]:
        previous = append(
            previous,
            time=START,
            event=record.event,
            actor=record.actor,
            subject="cleaned",
            address=None,
            details=record.details,
        )
        rewritten.append(previous)
    assert verify(rewritten).ok
    report = verify(rewritten, [checkpoint])
    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == ("rewritten", 500)
    assert report.count == 500


def test_an_earlier_stream_problem_comes_first() -> None:
    key = ServerKey.generate()
    checkpoint = key.checkpoint(2000, "b" * 64, START)
    records = list(CHAIN)
    del records[10]
    assert problem(records, (checkpoint,)) == ("deleted", 11)


def test_a_checkpoint_of_the_empty_log_must_name_genesis() -> None:
    key = ServerKey.generate()
    assert problem(CHAIN[:3], (key.checkpoint(0, "c" * 64, START),))[0] == "rewritten"


# --- any single edit anywhere -----------------------------------------------------------------

FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "seq": st.integers(min_value=-5, max_value=2000),
    "time": st.datetimes(timezones=st.just(UTC)).map(
        lambda moment: moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    ),
    "event": st.sampled_from(EVENTS),
    "actor": st.none() | st.text(max_size=20),
    "subject": st.none() | st.text(max_size=20),
    "address": st.none() | st.text(max_size=20),
    "details": st.dictionaries(
        st.text(alphabet="abcdefgh", max_size=5),
        st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=10),
        max_size=4,
    ),
    "prev": st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
    "hash": st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
}


@st.composite
def single_edit(draw: st.DrawFn) -> tuple[int, str, Any, bool]:
    index = draw(st.integers(min_value=0, max_value=len(CHAIN) - 1))
    name = draw(st.sampled_from(sorted(FIELD_VALUES)))
    value = draw(FIELD_VALUES[name])
    return index, name, value, draw(st.booleans())


@given(single_edit())
def test_any_single_edit_anywhere_is_found(edit: tuple[int, str, Any, bool]) -> None:
    """Edited with or without recomputing the record's own hash; the checkpoint at the head
    catches a re-hashed edit of the last record."""
    index, name, value, rehash = edit
    original = CHAIN[index]
    changed = dataclasses.replace(original, **{name: value})
    if rehash and name != "hash":
        changed = forge(changed)
    if changed == original:
        return
    records = list(CHAIN)
    records[index] = changed
    checkpoint = KEY.checkpoint(len(CHAIN), CHAIN[-1].hash, START)
    report = verify(records, [checkpoint])
    assert not report.ok
    assert report.problem is not None
    assert report.problem.seq <= len(CHAIN)
    assert report.count <= index + 1
