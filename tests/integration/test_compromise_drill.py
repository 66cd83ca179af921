"""The compromise drill: after a day of transfers of synthetic lab results, a thief with every
byte the server holds (database, blobs, logs) finds no file name and no file content."""

from __future__ import annotations

import base64
import contextlib
import gzip
import subprocess
import zlib
from pathlib import Path

from tests.integration.conftest import PASSPHRASE, PASSWORD, Server, User

PATIENTS = [
    ("DUPONT", "Jeanne", "285057800608436"),
    ("MARTIN", "Kévin", "190127511800127"),
    ("NGUYEN", "Thi Lan", "279099912301458"),
]
MESSAGE = "Résultats PCR semaine 47 pour la cellule de veille"


def _variants(canary: str) -> list[bytes]:
    raw = canary.encode("utf-8")
    found = [raw, canary.encode("utf-16-le")]
    for shift in range(3):  # base64 of the canary at each alignment, edges dropped
        encoded = base64.b64encode(b"\x00" * shift + raw)[4:-4]
        if len(encoded) >= 8:
            found.append(encoded)
    return found


def _lab_files(tmp_path: Path) -> tuple[list[Path], list[str]]:
    canaries = [MESSAGE, PASSPHRASE, PASSWORD]
    files = []
    for last, first, nir in PATIENTS:
        name = f"resultat_COVID_{last}_{first}.csv"
        body = f"nom;prenom;nir;resultat\n{last};{first};{nir};POSITIF\n" * 50
        path = tmp_path / name
        path.write_text(body, encoding="utf-8")
        files.append(path)
        canaries += [name, f"{last};{first}", nir, f"{first} {last}", last.title() + "_" + first]
    return files, canaries


def _server_bytes(server: Server) -> list[tuple[str, bytes]]:
    held = [(str(p), p.read_bytes()) for p in server.data.rglob("*") if p.is_file()]
    held.append(("server log", server.log.read_bytes()))
    held.append(("server environment", Path(f"/proc/{server.process.pid}/environ").read_bytes()))
    if server.database_url:
        dump = subprocess.run(
            ["pg_dump", "--no-owner", server.database_url], capture_output=True, check=True
        ).stdout
        held.append(("pg_dump", dump))
    return held + [(f"{where} (gunzipped)", data) for where, data in _gunzipped(held)]


def _gunzipped(held: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Whatever gzip streams hide inside what the server holds, decompressed."""
    found = []
    for where, data in held:
        start = data.find(b"\x1f\x8b\x08")
        while start >= 0:
            with contextlib.suppress(zlib.error):
                found.append(
                    (where, zlib.decompressobj(wbits=31).decompress(data[start:], 1 << 26))
                )
            start = data.find(b"\x1f\x8b\x08", start + 1)
    return found


def test_nothing_readable_survives_on_the_server(
    people: tuple[User, User, User], server: Server, tmp_path: Path
) -> None:
    alice, bob, carol = people
    files, canaries = _lab_files(tmp_path)
    kept = alice.send(*files, to=bob.email, extra=("--message", MESSAGE))
    recalled = alice.send(files[0], to=carol.email)
    bob.ok("get", kept, "-o", str(tmp_path / "bob"))
    assert (tmp_path / "bob" / files[1].name).read_bytes() == files[1].read_bytes()
    bob.ok("inbox")
    alice.ok("revoke", recalled)

    held = _server_bytes(server)
    assert sum(len(data) for _, data in held) > 10_000  # the scan really read something
    leaks = [
        (where, canary)
        for canary in canaries
        for variant in _variants(canary)
        for where, data in held
        if variant in data
    ]
    assert leaks == []


def test_the_drill_finds_a_canary_when_there_is_one(tmp_path: Path) -> None:
    """The scan itself must work: a canary hidden gzip-compressed in a log is found."""
    log = gzip.compress(b"...nom;prenom;nir\nDUPONT;Jeanne;285057800608436\n...")
    held = [("log.gz", b"header" + log + b"trailer")]
    everything = held + _gunzipped(held)
    assert any(v in data for v in _variants("285057800608436") for _, data in everything)
