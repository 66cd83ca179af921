/**
 * One transfer: who signed it (with their key's fingerprint), its message and files, each
 * downloaded, decrypted and checked in the worker, then offered to save only once it passed;
 * and, for a transfer of ours or to us, re-sharing its files with other recipients.
 */

import { fingerprint, type Identity } from "../../crypto/keys.js";
import type { ManifestFile } from "../../crypto/manifest.js";
import { ApiError, call, path, type TransferOut } from "../api.js";
import { h, replace, status } from "../dom.js";
import { failure, formatBytes, formatDate, formatSeconds, t } from "../i18n.js";
import { Cancelled, type Progress, type Running } from "../jobs.js";
import { go, linkTo } from "../router.js";
import { decryptAll, offer, reshareMessage, type FetchOne } from "../reshare.js";
import { unlocked } from "../state.js";
import { download, receipt, reportFailure, verify, type Verified } from "../transfers.js";
import { verifiedAnswer } from "../requests.js";
import { KeysChanged } from "../trust.js";
import { keysChanged } from "./changed.js";
import { signedRecipients } from "./boxes.js";
import { checkNotExpired } from "../../crypto/manifest.js";
import { GoneError, PliError } from "../../crypto/errors.js";
import { NotChosen, target } from "../save.js";
import type { Sink } from "../../worker/protocol.js";

export function transfer(id: string): HTMLElement {
  const section = h("section", {}, h("h1", {}, t("transferTitle")), status("info", t("loading")));
  void show(id, section);
  return section;
}

async function show(id: string, section: HTMLElement): Promise<void> {
  const me = unlocked();
  if (!me) return;
  try {
    const answer = await call<TransferOut>("GET", path`/api/v1/transfers/${id}`);
    if (answer.id !== id) throw new Error("the server answered for another transfer");
    if (answer.kind === "answer") return replace(section, h("h1", {}, t("transferTitle")), ...(await answered(answer, me)));
    const verified = await verify(answer, me);
    checkNotExpired(verified.doc.expires);
    replace(section, h("h1", {}, t("transferTitle")), await sender(verified), ...body(verified, me));
  } catch (error) {
    if (error instanceof KeysChanged) return replace(section, h("h1", {}, t("transferTitle")), keysChanged(error, me.device.email));
    if (error instanceof PliError && !(error instanceof GoneError)) void reportFailure(id, error);
    const text = (error instanceof ApiError && error.status === 410) || error instanceof GoneError ? t("gone") : error instanceof Error ? error.message : String(error);
    replace(section, h("h1", {}, t("transferTitle")), status("error", text), linkTo({ page: "inbox" }, t("back")));
  }
}

async function sender(verified: Verified): Promise<HTMLElement> {
  const { doc } = verified;
  return h(
    "dl",
    { class: "facts" },
    h("dt", {}, t("sender")),
    h("dd", {}, doc.sender.email, " ", h("span", { class: "badge ok" }, t("verified"))),
    h("dt", {}, t("fingerprint")),
    h("dd", {}, h("code", { class: "fingerprint" }, await fingerprint(doc.sender)), verified.firstUse ? h("small", {}, ` (${t("unverifiedKey")})`) : null),
    h("dt", {}, t("to")),
    h("dd", {}, signedRecipients(doc).join(", ") || "—"),
    h("dt", {}, t("expires")),
    h("dd", {}, formatDate(doc.expires)),
  );
}

function body(verified: Verified, me: Identity): HTMLElement[] {
  const received = receivedAll(verified, me);
  const rows = verified.doc.files.map((file) =>
    fileRow(file, (sink, progress) => download(verified.transfer.id, me.ageIdentity, file, sink, progress), () => received([file.id]), (error) => void reportFailure(verified.transfer.id, error)),
  );
  const files = [h("h2", {}, t("files")), h("ul", { class: "files" }, ...rows), reshareBox(verified, me, received)];
  if (!verified.doc.message) return files;
  return [h("blockquote", { class: "message" }, verified.doc.message), ...files];
}

/** Note files fetched and checked; once all of them were, the receipt (not for our own sends). */
function receivedAll(verified: Verified, me: Identity): (ids: string[]) => void {
  const fetched = new Set<string>();
  return (ids) => {
    for (const id of ids) fetched.add(id);
    const mine = verified.transfer.sender === me.device.email;
    if (fetched.size === verified.doc.files.length && !mine) void receipt(verified.transfer.id);
  };
}

/**
 * Re-share (../reshare.ts): every file decrypted and checked into a Blob, then the send page
 * with them chosen and the message said, for the user to name the recipients.
 */
function reshareBox(verified: Verified, me: Identity, received: (ids: string[]) => void): HTMLElement {
  const button = h("button", { type: "button" }, t("reshare"));
  const cancel = h("button", { type: "button", class: "secondary", hidden: true }, t("cancel"));
  const bar = h("progress", { max: 1, value: 0, hidden: true, "aria-label": t("reshareTitle") });
  const line = h("div", { "aria-live": "polite" });
  let running: Running<File[]> | null = null;
  cancel.addEventListener("click", () => running?.cancel());
  button.addEventListener("click", () => {
    button.disabled = true;
    cancel.hidden = bar.hidden = false;
    replace(line, status("info", t("reshareFetching")));
    running = reshareFiles(verified, me, bar, line);
    running.done.then(
      (files) => {
        received(verified.doc.files.map((f) => f.id));
        offer({ from: verified.transfer.id, files, message: reshareMessage(verified.transfer.id, verified.doc.sender.email) });
        go({ page: "send" });
      },
      (error: unknown) => reshareFailed(verified.transfer.id, error, bar, line),
    ).finally(() => {
      button.disabled = false;
      cancel.hidden = true;
      running = null;
    });
  });
  return h("div", { class: "reshare" }, h("h2", {}, t("reshareTitle")), h("p", {}, t("reshareIntro")), h("div", { class: "actions" }, button, cancel), bar, line);
}

/** Every file of the transfer, downloaded, decrypted and checked into Blobs, with progress. */
function reshareFiles(verified: Verified, me: Identity, bar: HTMLProgressElement, line: HTMLElement): Running<File[]> {
  const started = performance.now();
  const fetchOne: FetchOne = (file, progress) => download(verified.transfer.id, me.ageIdentity, file, { kind: "blob" }, progress);
  return decryptAll(verified.doc.files, fetchOne, (p) => progressed(bar, line, p, started));
}

function reshareFailed(id: string, error: unknown, bar: HTMLProgressElement, line: HTMLElement): void {
  bar.hidden = true;
  if (error instanceof PliError && !(error instanceof Cancelled)) void reportFailure(id, error);
  replace(line, error instanceof Cancelled ? status("info", t("cancelled")) : status("error", failure(error)));
}

/**
 * A file with its Download button: `start` runs the checked download into the sink the user's
 * browser offers (../save.ts), which keeps the file only if every check passed.
 */
export function fileRow(
  file: ManifestFile,
  start: (sink: Sink, progress: (p: Progress) => void) => Running<Blob | null>,
  saved: () => void,
  failed: (error: PliError) => void = () => undefined,
): HTMLElement {
  const button = h("button", { type: "button", "aria-label": `${t("download")} ${file.name}` }, t("download"));
  const bar = h("progress", { max: 1, value: 0, hidden: true, "aria-label": file.name });
  const line = h("div", { "aria-live": "polite" });
  const shown = (error: unknown): void => {
    if (error instanceof PliError && !(error instanceof Cancelled)) failed(error);
    replace(line, status("error", error instanceof Cancelled ? t("cancelled") : failure(error)));
  };
  button.addEventListener("click", () => {
    button.disabled = true;
    void (async () => {
      const chosen = await target(file.name, file.size); // first: the save dialog needs the click
      bar.hidden = false;
      replace(line, status("info", t("downloading")));
      const started = performance.now();
      try {
        chosen.done(await start(chosen.sink, (p: Progress) => progressed(bar, line, p, started)).done);
      } catch (error) {
        chosen.failed();
        throw error;
      }
      replace(line, status("ok", t("downloaded")));
      saved();
    })()
      .catch((error: unknown) => (error instanceof NotChosen ? replace(line) : shown(error)))
      .finally(() => (button.disabled = false));
  });
  return h("li", {}, h("span", { class: "name" }, file.name), h("span", { class: "size" }, formatBytes(file.size)), button, bar, line);
}

/** An answer to one of our requests: opened with the request's keys, its sender a claim. */
async function answered(transfer: TransferOut, me: Identity): Promise<HTMLElement[]> {
  const { answer, keys } = await verifiedAnswer(me, transfer);
  const fetched = new Set<string>();
  const rows = answer.files.map((file) =>
    fileRow(file, (sink, progress) => download(transfer.id, keys.identity, file, sink, progress), () => {
      fetched.add(file.id);
      if (fetched.size === answer.files.length) void receipt(transfer.id);
    }, (error) => void reportFailure(transfer.id, error)),
  );
  const nodes: HTMLElement[] = [h("p", {}, t("answerFrom", { name: answer.name }))];
  if (answer.message) nodes.push(h("blockquote", { class: "message" }, answer.message));
  return [...nodes, h("h2", {}, t("files")), h("ul", { class: "files" }, ...rows)];
}

export function progressed(bar: HTMLProgressElement, line: HTMLElement, p: Progress, started: number): void {
  if (p.retrying) return replace(line, status("info", t("networkLost")));
  if (p.total <= 0) return;
  bar.max = p.total;
  bar.value = p.done;
  const seconds = (performance.now() - started) / 1000;
  const speed = seconds > 0 ? p.done / seconds : 0;
  const left = speed > 0 ? (p.total - p.done) / speed : Infinity;
  replace(line, status("info", t("speed", { done: formatBytes(p.done), total: formatBytes(p.total), speed: formatBytes(speed), left: formatSeconds(left) })));
}
