/**
 * Send files: recipients, files (chosen or dropped, several at once), expiry and a message,
 * all encrypted here before anything leaves the browser, with progress, speed and time left.
 */

import { h, replace, status, field } from "../dom.js";
import { failure, formatBytes, t } from "../i18n.js";
import { Cancelled } from "../jobs.js";
import { linkTo } from "../router.js";
import { unlocked } from "../state.js";
import { send, type Sending } from "../transfers.js";
import { KeysChanged, pins } from "../trust.js";
import { keysChanged } from "./changed.js";
import { progressed } from "./transfer.js";

/** Files chosen with the picker or dropped, several at once, each removable. */
export function filePicker(): { node: HTMLElement; files: File[]; clear(): void } {
  const chosen: File[] = [];
  const picker = h("input", { type: "file", multiple: true, name: "files", class: "visually-hidden", id: "file-picker" });
  const fileList = h("ul", { class: "files", "aria-live": "polite" });
  const drop = h("div", { class: "drop" }, h("label", { for: "file-picker", class: "button secondary" }, t("chooseFiles")), picker, h("span", {}, ` ${t("dropHere")}`));
  const show = (): void =>
    replace(fileList, ...chosen.map((file, i) => {
      const remove = h("button", { type: "button", class: "link", "aria-label": `${t("remove")} ${file.name}` }, t("remove"));
      remove.addEventListener("click", () => {
        chosen.splice(i, 1);
        show();
      });
      return h("li", {}, h("span", { class: "name" }, file.name), h("span", { class: "size" }, formatBytes(file.size)), remove);
    }));
  const add = (files: FileList | null | undefined): void => {
    for (const file of files ?? []) chosen.push(file);
    show();
  };
  picker.addEventListener("change", () => {
    add(picker.files);
    picker.value = "";
  });
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    add(event.dataTransfer?.files);
  });
  const node = h("fieldset", {}, h("legend", {}, t("files")), drop, fileList);
  return { node, files: chosen, clear: () => ((chosen.length = 0), show()) };
}

export function expirySelect(): HTMLSelectElement {
  return h("select", { name: "expires" }, h("option", { value: "1d" }, t("day1")), h("option", { value: "7d", selected: true }, t("day7")), h("option", { value: "30d" }, t("day30")));
}

export function sendPage(): HTMLElement {
  const me = unlocked();
  const correspondents = me ? [...pins(me.device.email).keys()].filter((e) => e !== me.device.email) : [];
  const known = h("datalist", { id: "known-recipients" }, ...correspondents.map((e) => h("option", { value: e })));
  const recipients = h("input", { type: "text", name: "recipients", list: "known-recipients", autocomplete: "off", required: true });
  const picker = filePicker();
  const chosen = picker.files;
  const expiry = expirySelect();
  const message = h("textarea", { name: "message", rows: 3, maxlength: 10000 });
  const line = h("div", { "aria-live": "polite" });
  const bar = h("progress", { max: 1, value: 0, hidden: true, "aria-label": t("sending") });
  const submit = h("button", { type: "submit" }, t("send"));
  const cancel = h("button", { type: "button", class: "secondary", hidden: true }, t("cancel"));
  let running: Sending | null = null;
  cancel.addEventListener("click", () => running?.cancel());

  const form = h(
    "form",
    { novalidate: true },
    field(t("recipients"), recipients, t("recipientsHint")),
    known,
    picker.node,
    field(t("expiry"), expiry),
    field(t("message"), message),
    bar,
    line,
    h("div", { class: "actions" }, submit, cancel),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const to = recipients.value.split(/[,;\s]+/).map((e) => e.trim().toLowerCase()).filter(Boolean);
    if (!to.length) return replace(line, status("error", t("noRecipients")));
    if (!chosen.length) return replace(line, status("error", t("noFiles")));
    if (!me) return;
    submit.disabled = true;
    cancel.hidden = false;
    bar.hidden = false;
    replace(line, status("info", t("sending")));
    const started = performance.now();
    running = send(me, { files: [...chosen], recipients: to, expiresIn: expiry.value, message: message.value }, (p) =>
      progressed(bar, line, { done: p.done, total: p.total, retrying: p.retrying }, started),
    );
    running.done.then(
      ({ id, firstUse }) => {
        replace(line, status("ok", t("sent")), ...firstUse.map((e) => status("info", t("firstUse", { email: e }))), linkTo({ page: "transfer", id }, t("open")));
        picker.clear();
      },
      (error: unknown) => replace(line, ...failed(error, me.device.email)),
    ).finally(() => {
      submit.disabled = false;
      cancel.hidden = true;
      running = null;
    });
  });
  return h("section", {}, h("h1", {}, t("sendTitle")), form);
}

function failed(error: unknown, me: string): HTMLElement[] {
  if (error instanceof Cancelled) return [status("info", t("cancelled"))];
  if (error instanceof KeysChanged) return [keysChanged(error, me)];
  return [status("error", failure(error))];
}
