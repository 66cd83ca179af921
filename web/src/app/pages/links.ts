/** Share links: create one (files, expiry, downloads allowed, optional passphrase), list, revoke. */

import { call, path } from "../api.js";
import { field, h, replace, status } from "../dom.js";
import { failure, formatDate, t } from "../i18n.js";
import { Cancelled } from "../jobs.js";
import { createLink, type LinkOut } from "../links.js";
import { unlocked } from "../state.js";
import { filePicker, expirySelect } from "./send.js";
import { progressed } from "./transfer.js";
import { endButton, refreshList, shownUrl } from "./owned.js";

export function linksPage(): HTMLElement {
  const list = h("ul", { class: "transfers" });
  const section = h("section", {}, h("h1", {}, t("linksTitle")), h("p", {}, t("linksIntro")), h("h2", {}, t("newLink")), form(list), h("h2", {}, t("yourLinks")), list);
  void refreshList(list, "/api/v1/links?limit=100", item);
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
        void refreshList(list, "/api/v1/links?limit=100", item);
      },
      (error: unknown) => replace(line, status(error instanceof Cancelled ? "info" : "error", error instanceof Cancelled ? t("cancelled") : failure(error))),
    ).finally(() => {
      submit.disabled = false;
      cancel.hidden = true;
    });
  });
  return node;
}

function item(link: LinkOut): HTMLElement {
  const used = link.downloads_left === null ? t("downloadsUsedNoLimit", { used: String(link.downloads) }) : t("downloadsUsed", { used: String(link.downloads), left: String(link.downloads_left) });
  const active = link.state === "active" || link.state === "uploading";
  return h(
    "li",
    {},
    h("p", {}, h("code", {}, link.id)),
    h("p", { class: "meta" }, `${t("state")}: ${link.state} · ${used} · ${t("expires")} ${formatDate(link.expires_at)}`),
    active ? endButton("revoke", "revoked", link.id, () => call("DELETE", path`/api/v1/links/${link.id}`)) : null,
  );
}
