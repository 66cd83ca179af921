/** Share links: create one (files, expiry, downloads allowed, optional passphrase), list, revoke. */

import { call, path } from "../api.js";
import { field, h, replace, status } from "../dom.js";
import { formatDate, t } from "../i18n.js";
import { Cancelled } from "../jobs.js";
import { createLink, type LinkOut } from "../links.js";
import { unlocked } from "../state.js";
import { filePicker, expirySelect } from "./send.js";
import { progressed } from "./transfer.js";

export function linksPage(): HTMLElement {
  const list = h("ul", { class: "transfers" });
  const section = h("section", {}, h("h1", {}, t("linksTitle")), h("p", {}, t("linksIntro")), h("h2", {}, t("newLink")), form(list), h("h2", {}, t("yourLinks")), list);
  void refresh(list);
  return section;
}

function form(list: HTMLElement): HTMLElement {
  const picker = filePicker();
  const expiry = expirySelect();
  const downloads = h("select", { name: "max-downloads" }, h("option", { value: "" }, t("unlimited")), ...[1, 2, 5, 10, 50].map((n) => h("option", { value: String(n), selected: n === 5 }, String(n))));
  const passphrase = h("input", { type: "password", name: "link-passphrase", autocomplete: "new-password" });
  const bar = h("progress", { max: 1, value: 0, hidden: true, "aria-label": t("sending") });
  const line = h("div", { "aria-live": "polite" });
  const submit = h("button", { type: "submit" }, t("createLink"));
  const cancel = h("button", { type: "button", class: "secondary", hidden: true }, t("cancel"));
  const node = h(
    "form",
    { novalidate: true },
    picker.node,
    field(t("expiry"), expiry),
    field(t("maxDownloads"), downloads),
    field(t("linkPassphrase"), passphrase, t("linkPassphraseHint")),
    bar,
    line,
    h("div", { class: "actions" }, submit, cancel),
  );
  node.addEventListener("submit", (event) => {
    event.preventDefault();
    const me = unlocked();
    if (!me) return;
    if (!picker.files.length) return replace(line, status("error", t("noFiles")));
    submit.disabled = true;
    cancel.hidden = false;
    bar.hidden = false;
    const started = performance.now();
    const wanted = { files: [...picker.files], expiresIn: expiry.value, maxDownloads: downloads.value ? Number(downloads.value) : null, passphrase: passphrase.value || null };
    const job = createLink(me, wanted, (p) => progressed(bar, line, p, started));
    cancel.onclick = () => job.cancel();
    job.done.then(
      (url) => {
        replace(line, ...shownUrl(url, t("linkReady")));
        picker.clear();
        passphrase.value = "";
        void refresh(list);
      },
      (error: unknown) => replace(line, status(error instanceof Cancelled ? "info" : "error", error instanceof Cancelled ? t("cancelled") : t("failed", { reason: error instanceof Error ? error.message : String(error) }))),
    ).finally(() => {
      submit.disabled = false;
      cancel.hidden = true;
    });
  });
  return node;
}

/** A new link's or request's whole address, shown once, with a Copy button. */
export function shownUrl(url: string, label: string): HTMLElement[] {
  const box = h("input", { type: "text", readonly: true, value: url, class: "url", "aria-label": label });
  const copy = h("button", { type: "button", class: "secondary" }, t("copy"));
  const done = h("span", { "aria-live": "polite" });
  copy.addEventListener("click", () => {
    box.select();
    void navigator.clipboard?.writeText(url).then(() => replace(done, t("copied")), () => undefined);
  });
  return [status("ok", label), box, h("div", { class: "actions" }, copy, done)];
}

async function refresh(list: HTMLElement): Promise<void> {
  try {
    const answer = await call<{ items: LinkOut[] }>("GET", "/api/v1/links?limit=100");
    replace(list, ...answer.items.map(item));
    if (!answer.items.length) replace(list, h("li", {}, t("empty")));
  } catch (error) {
    replace(list, h("li", {}, status("error", t("failed", { reason: String(error) }))));
  }
}

function item(link: LinkOut): HTMLElement {
  const used = link.downloads_left === null ? t("downloadsUsedNoLimit", { used: String(link.downloads) }) : t("downloadsUsed", { used: String(link.downloads), left: String(link.downloads_left) });
  const revoke = h("button", { type: "button", class: "secondary", "aria-label": `${t("revoke")} ${link.id}` }, t("revoke"));
  const line = h("span", { "aria-live": "polite" });
  revoke.addEventListener("click", () => {
    revoke.disabled = true;
    void call("DELETE", path`/api/v1/links/${link.id}`).then(
      () => replace(line, t("revoked")),
      (error: unknown) => replace(line, t("failed", { reason: String(error) })),
    );
  });
  const active = link.state === "active" || link.state === "uploading";
  return h(
    "li",
    {},
    h("p", {}, h("code", {}, link.id)),
    h("p", { class: "meta" }, `${t("state")}: ${link.state} · ${used} · ${t("expires")} ${formatDate(link.expires_at)}`),
    active ? h("div", { class: "actions" }, revoke, line) : null,
  );
}
