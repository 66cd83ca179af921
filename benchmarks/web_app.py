"""The web app in a real browser, against the references of `pli send` and `pli get`: a file sent
from the page (encrypted in its Web Worker, uploaded with tus) against `age -r | curl -T -` into
nginx, and the same file got back (downloaded, decrypted and checked in the worker, streamed
through the app's service worker into the browser's own download, on disk) against
`curl | age -d`. Both sides run in alternating rounds, in the same run.

Chromium is Debian's, launched afresh by the part with the browser tests' flags; the account's
keys are escrowed at a cheap work factor (as in tests/browser/test_large_files.py), unlocked
once before anything is timed. Where Chromium or the web app's build is missing, the rows say
so and nothing is measured."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from playwright.sync_api import ConsoleMessage, Page, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, SAVING
from tests.browser.test_transfers import sign_in, unlock
from tests.integration.conftest import CHEAP_PASSPHRASE, User, escrow_cheap_keys, make_user

from benchmarks.common import MIB, TIMEOUT, alternate
from benchmarks.references import age_curl_upload, curl_age_download
from benchmarks.report import Row, mib, ratio, seconds, throughput
from benchmarks.rig import Rig
from benchmarks.transfer import _check_size, _median_after, _size_label

PART = "web app"
SLOWEST = 1e6  # bytes per second: a browser slower than this is given up on
SENT = "Sent. Only the recipients can decrypt it."
# performance.memory exact, and updated at once, rather than rounded and cached.
PRECISE_MEMORY = "--enable-precise-memory-info"
# The peak of the page's JS heap (its workers' heaps are not in performance.memory), sampled
# every 50 ms from now on: the sampler is started once, the peak reset at each call.
HEAP_PEAK_FROM_NOW = """() => {
  window.__peak = performance.memory.usedJSHeapSize;
  window.__sampler ??= setInterval(() => {
    window.__peak = Math.max(window.__peak, performance.memory.usedJSHeapSize);
  }, 50);
}"""


@dataclass(frozen=True)
class WebApp:
    size: int
    problem: str = ""  # why nothing was measured; "" when it was
    send: float = 0.0  # medians, seconds: the browser's
    get: float = 0.0
    upload: float = 0.0  # age -r | curl -T -
    download: float = 0.0  # curl | age -d
    send_heap: float = 0.0  # the page's peak JS heap, MiB: the largest over the rounds
    get_heap: float = 0.0

    def rows(self) -> list[Row]:
        label = _size_label(self.size)
        sending = f"{label}, browser send (encrypt in worker + tus upload) / `age -r | curl -T -`"
        getting = (
            f"{label}, browser get (download + decrypt + checks + save to disk) / `curl | age -d`"
        )
        if self.problem:
            return [
                Row(PART, sending, f"not measured: {self.problem}", "age -r | curl -T - (nginx)"),
                Row(PART, getting, f"not measured: {self.problem}", "curl | age -d (nginx)"),
            ]
        return [
            Row(
                PART,
                sending,
                f"{seconds(self.send)}, {throughput(self.size, self.send)}",
                f"{seconds(self.upload)}, {throughput(self.size, self.upload)}",
                ratio(self.upload / self.send),
            ),
            Row(
                PART,
                getting,
                f"{seconds(self.get)}, {throughput(self.size, self.get)}",
                f"{seconds(self.download)}, {throughput(self.size, self.download)}",
                ratio(self.download / self.get),
            ),
            Row(
                PART,
                f"{label}, the page's peak JS heap (its workers' not counted): send / get",
                f"{mib(self.send_heap)} / {mib(self.get_heap)}",
                "",
            ),
        ]


def _problem(rig: Rig) -> str:
    """Why the browser side cannot run here, or "" when it can."""
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} is not installed (scripts/system-deps.sh installs chromium)"
    answer = httpx.get(f"{rig.server.url}/app", timeout=60)
    if answer.status_code != 200:
        return f"no web app to serve (GET /app answered {answer.status_code}): run `make web`"
    return ""


@dataclass
class _Browser:
    """One signed-in, unlocked page of the web app, sending `payload` to its own account and
    getting it back; every round's times and heap peaks."""

    rig: Rig
    user: User
    page: Page
    payload: Path
    sends: list[float] = field(default_factory=list)
    gets: list[float] = field(default_factory=list)
    send_heaps: list[float] = field(default_factory=list)
    get_heaps: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # what the page reported as errors

    @property
    def timeout_ms(self) -> float:
        return max(TIMEOUT, self.payload.stat().st_size / SLOWEST) * 1000

    def round(self) -> float:
        try:
            transfer_id, send_s = self._send()
            get_s = self._get()
        except PlaywrightError as exc:
            seen = "; ".join(self.errors[-3:]) or "no error in the page's console"
            raise RuntimeError(f"{exc.message.splitlines()[0]} ({seen})") from exc
        self.rig.revoke(transfer_id, self.user)
        self.sends.append(send_s)
        self.gets.append(get_s)
        return send_s + get_s

    def _heap_peak_from_now(self) -> None:
        self.page.evaluate(HEAP_PEAK_FROM_NOW)

    def _heap_peak(self) -> float:
        return float(self.page.evaluate("window.__peak")) / MIB

    def _send(self) -> tuple[str, float]:
        """From the click on "Encrypt and send" to the page saying it is sent."""
        page = self.page
        page.get_by_role("link", name="Send files").click()
        page.get_by_label("Recipients").fill(self.user.email)
        page.locator("input[type=file]").set_input_files(self.payload)
        sent = page.get_by_text(SENT)
        sent.wait_for(state="hidden")
        self._heap_peak_from_now()
        start = time.perf_counter()
        page.get_by_role("button", name="Encrypt and send").click()
        sent.wait_for(timeout=self.timeout_ms)
        elapsed = time.perf_counter() - start
        self.send_heaps.append(self._heap_peak())
        page.get_by_role("link", name="Open").click()
        page.wait_for_url("**/app/t/*")
        return page.url.rsplit("/", 1)[1], elapsed

    def _get(self) -> float:
        """From the click on "Download" to the browser's download complete on disk."""
        page = self.page
        page.get_by_text("Signature verified").wait_for(timeout=60_000)
        self._heap_peak_from_now()
        start = time.perf_counter()
        with page.expect_download(timeout=self.timeout_ms) as caught:
            page.get_by_role("button", name=f"Download {self.payload.name}").click()
        saved = Path(caught.value.path())  # once the download is complete
        elapsed = time.perf_counter() - start
        self.get_heaps.append(self._heap_peak())
        if not caught.value.url.startswith(f"{self.rig.server.url}/app/download/"):
            raise RuntimeError(f"not saved through the service worker: {caught.value.url}")
        _check_size(saved, self.payload.stat().st_size)
        caught.value.delete()
        return elapsed

    def record(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)


def web_app(rig: Rig, payload: Path, *, rounds: int, warmup: int) -> WebApp:
    size = payload.stat().st_size
    problem = _problem(rig)
    if problem:
        return WebApp(size, problem)
    user = make_user(rig.server, rig.workdir, f"web-{secrets.token_hex(3)}", keys=False)
    escrow_cheap_keys(user)
    ups: list[float] = []
    downs: list[float] = []

    def theirs() -> float:
        url = f"{rig.nginx.url}/web-reference.age"
        target = rig.workdir / "web-reference-got"
        up = age_curl_upload(rig.key, payload, url)
        down = curl_age_download(rig.key, url, target)
        _check_size(target, size)
        target.unlink()
        (rig.nginx.www / "web-reference.age").unlink()
        ups.append(up)
        downs.append(down)
        return up + down

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, PRECISE_MEMORY]
        )
        try:
            context = chromium.new_context(base_url=rig.server.url, accept_downloads=True)
            context.add_init_script(script=SAVING["stream"])
            page = context.new_page()
            ours = _Browser(rig, user, page, payload)
            page.on("console", ours.record)
            page.on("pageerror", lambda error: ours.errors.append(f"uncaught: {error}"))
            sign_in(page, rig.server.url, user.email)
            unlock(page, CHEAP_PASSPHRASE)
            alternate(ours.round, theirs, rounds=rounds, warmup=warmup)
        finally:
            chromium.close()
    return WebApp(
        size,
        send=_median_after(ours.sends, warmup),
        get=_median_after(ours.gets, warmup),
        upload=_median_after(ups, warmup),
        download=_median_after(downs, warmup),
        send_heap=max(ours.send_heaps[warmup:]),
        get_heap=max(ours.get_heaps[warmup:]),
    )
