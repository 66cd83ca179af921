"""pli.server.keys.log: the key log in each database, against the reference tree in memory."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from pli.crypto import keylog, merkle
from pli.crypto.checkpoints import ServerKey
from pli.crypto.identity import DeviceIdentity
from pli.server.keys import log as key_log
from pli.store.db import Database

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
KEY = ServerKey.generate()


def entry(i: int) -> keylog.Entry:
    bundle = DeviceIdentity.generate(f"user{i}@example.org").public_bundle()
    return keylog.device_published(bundle, NOW)


def test_roots_and_proofs_match_the_reference_tree(database: Session) -> None:
    reference = merkle.MemoryTree()
    for i in range(13):
        made = entry(i)
        assert key_log.append(database, made) == i
        reference.append(made.leaf_hash())
    database.commit()
    assert key_log.size(database) == 13
    head = key_log.head(database, KEY, NOW)
    assert head.root == reference.root()
    assert keylog.TreeHead.from_signed(head.signed(), KEY.public_b64, KEY.key_log_id) == head
    for index in (0, 6, 12):
        assert key_log.inclusion_proof(database, index, 13) == reference.inclusion_proof(index)
    for old in (1, 5, 8):
        assert key_log.consistency_proof(database, old, 13) == reference.consistency_proof(old)
    leaves = key_log.leaves(database, 4, 7)
    assert [keylog.Entry.decode(x).leaf_hash() for x in leaves] == [
        reference.read([(0, i)])[0] for i in range(4, 7)
    ]


def test_an_empty_log_has_the_empty_root(database: Session) -> None:
    head = key_log.head(database, KEY, NOW)
    assert head.size == 0
    assert head.root == merkle.EMPTY_ROOT


def test_a_rolled_back_append_leaves_no_trace(database: Session) -> None:
    key_log.append(database, entry(0))
    database.rollback()
    assert key_log.size(database) == 0
    assert key_log.append(database, entry(1)) == 0


def test_concurrent_appends_make_one_tree(engine: Engine) -> None:
    """Writers on several connections at once: every index is taken once, and the stored
    nodes make the same tree as the entries in index order."""
    db = Database(engine)
    errors: list[BaseException] = []

    def writer(first: int) -> None:
        try:
            for i in range(first, first + 8):
                with db.session() as session:
                    key_log.append(session, entry(i))
                    session.commit()
        except Exception as exc:  # noqa: BLE001  (reported below: a thread cannot fail the test)
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n * 100,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with db.session() as session:
        size = key_log.size(session)
        leaves = key_log.leaves(session, 0, size)
        reference = merkle.MemoryTree([merkle.leaf_hash(x) for x in leaves])
        assert size == 32
        assert key_log.head(session, KEY, NOW).root == reference.root()
