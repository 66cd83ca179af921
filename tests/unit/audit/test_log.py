"""The audit log in a real database, on each backend: appends from many transactions at once
form one chain, and an append goes or stays with the transaction it belongs to."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sqlalchemy import Engine

from pli.audit import log
from pli.audit.chain import Event, verify
from pli.store.db import Database

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def test_concurrent_appends_make_one_chain(engine: Engine) -> None:
    database = Database(engine)
    errors: list[Exception] = []

    def append(worker: int) -> None:
        try:
            for i in range(25):
                with log.at_address(f"10.0.0.{worker}"), database.session() as session:
                    log.record(
                        session, Event.ADMIN_ACTION, now=NOW, actor=f"w{worker}", details={"i": i}
                    )
                    session.commit()
        except Exception as exc:  # noqa: BLE001  (any failure of a thread is reported below)
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with database.session() as session:
        records = list(log.records(session))
        report = verify(records)
        assert (report.ok, report.count) == (True, 100)
        assert log.head(session) == (100, report.head)
    assert [r.seq for r in records] == list(range(1, 101))
    assert {r.address for r in records} == {f"10.0.0.{n}" for n in range(4)}


def test_a_record_is_rolled_back_with_its_transaction(engine: Engine) -> None:
    database = Database(engine)
    with database.session() as session:
        log.record(session, Event.ADMIN_ACTION, now=NOW, actor="kept")
        session.commit()
        log.record(session, Event.ADMIN_ACTION, now=NOW, actor="rolled back")
        session.rollback()
        log.record(session, Event.ADMIN_ACTION, now=NOW, actor="kept too")
        session.commit()
    with database.session() as session:
        records = list(log.records(session))
        assert verify(records).ok
        assert [r.actor for r in records] == ["kept", "kept too"]
        assert records[1].prev == records[0].hash
        assert log.head(session) == (2, records[1].hash)
