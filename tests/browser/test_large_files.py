"""A 512 MiB file sent and received in the browser: the bytes saved are the bytes chosen, and
neither the page's JavaScript heap nor the whole page with its worker ever holds more than a
small fraction of the file (uploads are encrypted and sent in 8 MiB parts; downloads are
decrypted into Blobs, which the browser keeps out of the page, on disk when large)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.test_transfers import send_from_browser, sign_in, unlock
from tests.integration.conftest import CHEAP_PASSPHRASE, Server, escrow_cheap_keys, make_user

NewPage = Callable[..., Page]
SIZE = 512 << 20
MIB = 1 << 20
# Exact heap figures, and memory measurement that does not wait for the next collection.
MEASURING = ["--enable-precise-memory-info", "--enable-blink-features=ForceEagerMeasureMemory"]

# Sampled in the page every 50 ms: the growth of its JS heap (array buffers included) over what
# it was when sampling started, and every 500 ms what the browser attributes to the page and
# its worker together.
SAMPLER = """() => {
  window.__heap = 0; window.__all = 0; let busy = false;
  const base = performance.memory.usedJSHeapSize;
  setInterval(() => {
    window.__heap = Math.max(window.__heap, performance.memory.usedJSHeapSize - base);
  }, 50);
  setInterval(async () => {
    if (busy) return; busy = true;
    try {
      const m = await performance.measureUserAgentSpecificMemory();
      window.__all = Math.max(window.__all, m.bytes);
    } finally { busy = false; }
  }, 500);
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """This module's own Chromium, launched with the flags that make memory measurable."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is not installed (scripts/system-deps.sh installs chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *MEASURING]
        )
        yield launched
        launched.close()


def _random_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(size // (8 * MIB)):
            chunk = os.urandom(8 * MIB)
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(8 * MIB):
            digest.update(chunk)
    return digest.hexdigest()


def test_512_mib_in_and_out_of_the_browser_in_little_memory(
    sqlite_server: Server, tmp_path: Path, new_page: NewPage
) -> None:
    bob = make_user(sqlite_server, tmp_path, "bob", keys=False)
    big = tmp_path / "imagerie.bin"
    expected = _random_file(big, SIZE)
    escrow_cheap_keys(bob)
    page = new_page()
    sign_in(page, sqlite_server.url, bob.email)
    unlock(page, CHEAP_PASSPHRASE)
    assert page.evaluate("crossOriginIsolated") is True
    page.evaluate(SAMPLER)

    # on two busy cores the browser's crypto can fall to a few MiB/s: a slow send is not a fault
    send_from_browser(page, sqlite_server, bob.email, [big], timeout_ms=600_000)
    sent_heap, sent_all = page.evaluate("[window.__heap, window.__all]")
    expect(page.get_by_text("Signature verified")).to_be_visible(timeout=60_000)
    with page.expect_download(timeout=600_000) as download:
        page.get_by_role("button", name=f"Download {big.name}").click()
    saved = tmp_path / "saved.bin"
    download.value.save_as(saved)
    heap, whole = page.evaluate("[window.__heap, window.__all]")

    assert _sha256(saved) == expected
    # streamed by the app's service worker into the browser's own download: never a Blob
    assert urlsplit(download.value.url).path.startswith("/app/download/"), download.value.url
    print(
        f"page heap grew by {heap / MIB:.1f} MiB at most (sending {sent_heap / MIB:.1f}); "
        f"page and worker {whole / MIB:.1f} MiB (sending {sent_all / MIB:.1f})"
    )
    assert heap < 48 * MIB, heap
    assert 0 < whole < 128 * MIB, whole
    # The measure sees what the page holds: 64 MiB kept in the page would fail the check above
    # (the growth is counted from a heap that held some garbage since collected, so a little
    # less than 64 MiB shows).
    page.evaluate("() => { window.__kept = new Uint8Array(64 << 20).fill(1); }")
    page.wait_for_timeout(200)
    assert page.evaluate("window.__heap") >= 48 * MIB
