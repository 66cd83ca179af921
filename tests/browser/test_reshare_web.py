"""Re-sharing from the web app, as `pli reshare` does: a member who joined a group after a
transfer was sent to it cannot get it; another member opens it in the browser and re-shares it,
which decrypts and checks every file there, then opens the send page with those files chosen and
the message saying where they came from; the late member's `pli get` of the new transfer gives
the same bytes. A file that fails its checks is never offered for re-sharing."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import expect

from tests.browser.test_groups_web import GROUP, new_group
from tests.browser.test_transfers import NewPage, Q, _tampered, digest, sign_in, unlock
from tests.integration.conftest import CHEAP_PASSPHRASE, Server, escrow_cheap_keys, make_user


def test_a_member_re_shares_a_group_transfer_to_a_late_member(
    sqlite_server: Server, tmp_path: Path, new_page: NewPage
) -> None:
    anne = make_user(sqlite_server, tmp_path, "anne")
    lab = make_user(sqlite_server, tmp_path, "lab", keys=False)
    escrow_cheap_keys(lab)  # keys the browser unlocks
    carl = make_user(sqlite_server, tmp_path, "carl")
    new_group(sqlite_server, anne, lab)

    originals = tmp_path / "originals"
    originals.mkdir()
    scan = originals / "imagerie thoracique.bin"
    scan.write_bytes(os.urandom((1 << 20) + 4321))
    cases = originals / "cas groupés.csv"
    cases.write_text("cas groupés\n", encoding="utf-8")
    sent = anne.send(scan, cases, to=f"group:{GROUP}")

    # carl joins after the send: the transfer is not his to get
    anne.ok("groups", "add", GROUP, carl.email)
    assert carl.run("get", sent, "-o", str(tmp_path / "carl-before")).returncode != 0

    # lab re-shares it from the browser: the send page has the files and the message
    page = new_page()
    sign_in(page, sqlite_server.url, lab.email)
    unlock(page, CHEAP_PASSPHRASE)
    page.goto(f"/app/t/{sent}")  # a reload forgets the keys: unlock again
    unlock(page, CHEAP_PASSPHRASE, then="Transfer")
    expect(page.get_by_text("Signature verified")).to_be_visible(timeout=60_000)
    page.get_by_role("button", name="Re-share").click()
    expect(page.get_by_role("heading", name="Send files")).to_be_visible(timeout=120_000)
    expect(page.get_by_text(f"The files of transfer {sent}, decrypted and checked")).to_be_visible()
    expected = f"Re-shared from transfer {sent}, sent by {anne.email}."
    expect(page.get_by_label("Message (encrypted)")).to_have_value(expected)
    expect(page.get_by_label("Recipients")).to_have_value("")
    chosen = page.locator("form ul.files li .name")
    expect(chosen).to_have_text([scan.name, cases.name])

    page.get_by_label("Recipients").fill(carl.email)
    page.get_by_role("button", name="Encrypt and send").click()
    expect(page.get_by_text("Sent. Only the recipients can decrypt it.")).to_be_visible(
        timeout=120_000
    )
    page.get_by_role("link", name="Open").click()
    again = page.url.rsplit("/", 1)[1]
    assert again != sent
    expect(page.get_by_text(expected)).to_be_visible(timeout=60_000)

    # carl's CLI verifies lab's signature, decrypts and gets the very same files
    out = tmp_path / "carl-got"
    carl.ok("get", again, "-o", str(out))
    assert digest(out / scan.name) == digest(scan)
    assert (out / cases.name).read_text(encoding="utf-8") == "cas groupés\n"
    assert sorted(p.name for p in out.iterdir()) == sorted([scan.name, cases.name])


def test_a_tampered_file_is_never_offered_for_re_sharing(
    sqlite_server: Server, tmp_path: Path, new_page: NewPage
) -> None:
    page = new_page()
    sent, _ = _tampered(sqlite_server, tmp_path, page)
    expect(page.get_by_text("Signature verified")).to_be_visible(timeout=60_000)
    # in French, where the check's failure is said in French too
    page.get_by_role("button", name="Afficher en français").click()
    page.get_by_role("button", name="Partager de nouveau").click()
    expect(page.get_by_role("alert")).to_contain_text(
        f"n{Q}a pas pu être déchiffré", timeout=30_000
    )
    expect(page).to_have_url(f"{sqlite_server.url}/app/t/{sent}")
    expect(page.get_by_role("heading", name="Envoyer des fichiers")).to_have_count(0)
