/**
 * Inbox and outbox. Each entry's manifest is opened and checked here (checks 2-10), so what is
 * shown — file names, the signed recipients and expiry — is what the sender signed, and an
 * entry that fails shows its problem instead.
 */

import { call, type Listing, type TransferOut } from "../api.js";
import { h, replace, status } from "../dom.js";
import { failure, formatBytes, formatDate, reason, t } from "../i18n.js";
import { linkTo } from "../router.js";
import { unlocked } from "../state.js";
import { verify } from "../transfers.js";
import type { ManifestDoc, ManifestFile } from "../../crypto/manifest.js";
import { verifiedAnswer } from "../requests.js";

export function box(which: "inbox" | "outbox"): HTMLElement {
  const list = h("ul", { class: "transfers" });
  const more = h("div");
  const section = h("section", {}, h("h1", {}, t(which === "inbox" ? "inboxTitle" : "outboxTitle")), list, more);
  void load(which, null, list, more);
  return section;
}

async function load(which: "inbox" | "outbox", cursor: string | null, list: HTMLElement, more: HTMLElement): Promise<void> {
  replace(more, status("info", t("loading")));
  const query = new URLSearchParams({ box: which, limit: "50" });
  if (cursor) query.set("cursor", cursor);
  try {
    const page = await call<Listing>("GET", `/api/v1/transfers?${query.toString()}`);
    for (const transfer of page.items) list.appendChild(entry(transfer, which));
    if (!list.firstChild) replace(more, h("p", {}, t("empty")));
    else if (page.next_cursor) {
      const button = h("button", { type: "button", class: "secondary" }, t("more"));
      button.addEventListener("click", () => void load(which, page.next_cursor, list, more));
      replace(more, button);
    } else replace(more);
  } catch (error) {
    replace(more, status("error", failure(error)));
  }
}

/**
 * One listed transfer. Whatever kind the server says it is, it is shown only as its signed
 * manifest (or, for an answer to a request, its authenticated answer) says: who, what, until
 * when; one that does not pass shows its problem, and the server's word only as that.
 */
function entry(transfer: TransferOut, which: "inbox" | "outbox"): HTMLElement {
  const stated = which === "inbox" ? transfer.sender || "—" : transfer.recipients.join(", ");
  const who = h("p", { class: "who" }, h("span", { class: "label" }, `${t(which === "inbox" ? "from" : "to")} `), stated);
  const details = h("div", { class: "details" }, t("loading"));
  const meta = h("p", { class: "meta" }, `${t("state")}: ${transfer.state}`);
  const item = h("li", {}, who, details, meta, linkTo({ page: "transfer", id: transfer.id }, t("open"), { "aria-label": `${t("open")}: ${stated}` }));
  const me = unlocked();
  const problem = (error: unknown): void => replace(details, status("error", `${t("problem")}: ${reason(error)}`));
  const files = (list: ManifestFile[]): HTMLElement => h("p", {}, list.map((f) => `${f.name} (${formatBytes(f.size)})`).join(", "));
  if (!me) return item;
  if (transfer.kind === "answer") {
    verifiedAnswer(me, transfer).then(({ answer }) => replace(details, h("p", {}, t("answerFrom", { name: answer.name })), files(answer.files)), problem);
    return item;
  }
  verify(transfer, me).then(({ doc }) => {
    const signed = which === "inbox" ? doc.sender.email : signedRecipients(doc).join(", ");
    const service = which === "inbox" && transfer.sender_service ? h("span", { class: "badge" }, t("service")) : null;
    replace(who, h("span", { class: "label" }, `${t(which === "inbox" ? "from" : "to")} `), signed, service ? " " : null, service);
    replace(details, files(doc.files), doc.message ? h("p", { class: "message" }, doc.message) : null);
    replace(meta, `${t("expires")} ${formatDate(doc.expires)} · ${t("state")}: ${transfer.state}`);
  }, problem);
  return item;
}

/** The accounts a manifest is addressed to, other than its sender's (a link's key has none). */
export function signedRecipients(doc: ManifestDoc): string[] {
  return [...new Set(doc.recipients.map((r) => r.email).filter((e) => e && e !== doc.sender.email))];
}
