/**
 * Send files: recipients, files (chosen or dropped, several at once), expiry and a message,
 * all encrypted here before anything leaves the browser, with progress, speed and time left;
 * a transfer's files being re-shared, chosen already (../reshare.ts); and a send that a reload
 * interrupted, resumed once the same files are chosen again (../resume.ts).
 */

import { suggest } from "../directory.js";
import { parseName } from "../../crypto/groups.js";
import type { Identity } from "../../crypto/keys.js";
import { h, replace, status, field, type Child } from "../dom.js";
import { failure, formatBytes, formatDate, t } from "../i18n.js";
import { GroupRefused, GroupReplaced, MemberRefused, NobodyToSend, UnknownSigner } from "../groups.js";
import { Cancelled } from "../jobs.js";
import { Busy } from "../pending.js";
import { CannotResume, NotTheSameFiles, discard, resume, unfinished, type PendingSend, type Resuming } from "../resume.js";
import { take } from "../reshare.js";
import { linkTo } from "../router.js";
import { unlocked } from "../state.js";
import { send, type Sending } from "../transfers.js";
import { KeysChanged, pins } from "../trust.js";
import { keysChanged } from "./changed.js";
import { progressed } from "./transfer.js";

/** Files chosen with the picker or dropped, several at once, each removable. */
export function filePicker(id = "file-picker", legend = t("files")): { node: HTMLElement; files: File[]; add(files: Iterable<File>): void; clear(): void } {
  const chosen: File[] = [];
  const picker = h("input", { type: "file", multiple: true, name: "files", class: "visually-hidden", id });
  const fileList = h("ul", { class: "files", "aria-live": "polite" });
  const drop = h("div", { class: "drop" }, h("label", { for: id, class: "button secondary" }, t("chooseFiles")), picker, h("span", {}, ` ${t("dropHere")}`));
  const show = (): void =>
    replace(fileList, ...chosen.map((file, i) => {
      const remove = h("button", { type: "button", class: "link", "aria-label": `${t("remove")} ${file.name}` }, t("remove"));
      remove.addEventListener("click", () => {
        chosen.splice(i, 1);
        show();
      });
      return h("li", {}, h("span", { class: "name" }, file.name), h("span", { class: "size" }, formatBytes(file.size)), remove);
    }));
  const add = (files: Iterable<File> | null | undefined): void => {
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
  const node = h("fieldset", {}, h("legend", {}, legend), drop, fileList);
  return { node, files: chosen, add, clear: () => ((chosen.length = 0), show()) };
}

export function expirySelect(): HTMLSelectElement {
  return h("select", { name: "expires" }, h("option", { value: "1d" }, t("day1")), h("option", { value: "7d", selected: true }, t("day7")), h("option", { value: "30d" }, t("day30")));
}

export function sendPage(): HTMLElement {
  const me = unlocked();
  const correspondents = me ? [...pins(me.device.email).keys()].filter((e) => e !== me.device.email) : [];
  const known = h("datalist", { id: "known-recipients" }, ...correspondents.map((e) => h("option", { value: e })));
  const recipients = h("input", { type: "text", name: "recipients", list: "known-recipients", autocomplete: "off", required: true });
  suggest(recipients, known, correspondents);
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
  let without = new Set<string>();
  recipients.addEventListener("input", () => (without = new Set()));
  const go = (): void => {
    const to = recipients.value.split(/[,;\s]+/).map((e) => e.trim().toLowerCase()).filter(Boolean);
    if (!to.length) return replace(line, status("error", t("noRecipients")));
    if (!chosen.length) return replace(line, status("error", t("noFiles")));
    if (!me) return;
    submit.disabled = true;
    cancel.hidden = false;
    bar.hidden = false;
    replace(line, status("info", t("sending")));
    const started = performance.now();
    const out = { files: [...chosen], recipients: to, expiresIn: expiry.value, message: message.value, without: [...without] };
    running = send(me, out, (p) => progressed(bar, line, { done: p.done, total: p.total, retrying: p.retrying }, started));
    const leaveOut = (email: string): void => {
      without.add(email);
      go();
    };
    running.done.then(
      ({ id, firstUse, firstGroups }) => {
        replace(line, status("ok", t("sent")), ...firstUses(firstUse, firstGroups), linkTo({ page: "transfer", id }, t("open")));
        picker.clear();
      },
      (error: unknown) => {
        bar.hidden = true;
        replace(line, ...failed(error, me.device.email, leaveOut));
      },
    ).finally(() => {
      submit.disabled = false;
      cancel.hidden = true;
      running = null;
    });
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    go();
  });
  const interrupted = h("div");
  if (me) void unfinished(me.device.email).then((sends) => replace(interrupted, ...sends.map((s) => resumeBox(me, s))));
  return h("section", {}, h("h1", {}, t("sendTitle")), interrupted, prefilled(picker.add, message), form);
}

/**
 * The files of a transfer being re-shared (../reshare.ts), chosen already, and its message;
 * the recipients are left for the user to name. A note saying so, or nothing.
 */
function prefilled(add: (files: Iterable<File>) => void, message: HTMLTextAreaElement): HTMLElement | null {
  const reshare = take();
  if (!reshare) return null;
  add(reshare.files);
  message.value = reshare.message;
  return status("info", t("resharePrefilled", { id: reshare.from }));
}

/**
 * A send this browser began and did not finish (the page was reloaded or closed): the user
 * chooses the same files again to resume it, or discards it.
 */
function resumeBox(me: Identity, pending: PendingSend): HTMLElement {
  const id = `resume-${pending.transfer}`;
  const picker = filePicker(`${id}-files`, t("resumeChoose"));
  const line = h("div", { "aria-live": "polite" });
  const bar = h("progress", { max: 1, value: 0, hidden: true, "aria-label": t("sending") });
  const go = h("button", { type: "button" }, t("resumeSend"));
  const cancel = h("button", { type: "button", class: "secondary", hidden: true }, t("cancel"));
  const drop = h("button", { type: "button", class: "secondary" }, t("resumeDiscard"));
  const heading = h("h2", { id: `${id}-title` }, t("resumeTitle"));
  const files = h("ul", { class: "files" }, ...pending.files.map((f) => h("li", {}, h("span", { class: "name" }, f.name), h("span", { class: "size" }, formatBytes(f.size)))));
  const box = h(
    "section",
    { class: "interrupted", "aria-labelledby": heading.id },
    heading,
    status("info", t("resumeIntro")),
    h("p", {}, `${t("to")} ${pending.to.join(", ")} · ${t("resumeStarted", { date: formatDate(pending.started) })}`),
    files,
    picker.node,
    bar,
    line,
    h("div", { class: "actions" }, go, cancel, drop),
  );
  let running: Resuming | null = null;
  const over = (...shown: Child[]): void => {
    go.hidden = drop.hidden = cancel.hidden = true;
    replace(line, ...shown);
  };
  cancel.addEventListener("click", () => running?.cancel());
  drop.addEventListener("click", () => {
    go.disabled = drop.disabled = true;
    void discard(pending).then(() => over(status("info", t("resumeDiscarded"))));
  });
  go.addEventListener("click", () => {
    if (!picker.files.length) return replace(line, status("error", t("resumeNoFiles")));
    go.disabled = drop.disabled = true;
    cancel.hidden = false;
    bar.hidden = false;
    replace(line, status("info", t("sending")));
    const started = performance.now();
    running = resume(me, pending, [...picker.files], (p) => progressed(bar, line, { done: p.done, total: p.total, retrying: p.retrying }, started));
    running.done.then(
      ({ id: sent, firstUse, firstGroups, restarted, changed }) => {
        over(
          status("ok", t("sent")),
          restarted ? status("info", t("resumeAfresh")) : null,
          ...changed.map((name) => status("info", t("resumeChanged", { name }))),
          ...firstUses(firstUse, firstGroups),
          linkTo({ page: "transfer", id: sent }, t("open")),
        );
        picker.clear();
      },
      (error: unknown) => {
        bar.hidden = true;
        if (error instanceof NotTheSameFiles) return replace(line, status("error", t("resumeSameFiles", { names: error.expected.join(", ") })));
        if (error instanceof Busy) return replace(line, status("error", t("resumeElsewhere")));
        const keys = error instanceof KeysChanged || error instanceof MemberRefused || (error instanceof GroupRefused && error.problem instanceof KeysChanged);
        if (keys) return replace(line, ...failed(error, me.device.email));
        // Anything else abandoned the transfer: it cannot be resumed any more.
        over(...(error instanceof CannotResume ? [status("error", t("resumeLost"))] : failed(error, me.device.email)));
      },
    ).finally(() => {
      go.disabled = drop.disabled = false;
      cancel.hidden = true;
      running = null;
    });
  });
  return box;
}

/** What a send pinned on first use: correspondents' keys, groups' histories. */
function firstUses(emails: string[], groups: string[]): HTMLElement[] {
  return [...emails.map((email) => status("info", t("firstUse", { email }))), ...groups.map((group) => status("info", t("firstGroup", { group })))];
}

/** What the user sees when a send failed; `leaveOut` sends again without a group's member. */
function failed(error: unknown, me: string, leaveOut?: (email: string) => void): HTMLElement[] {
  if (error instanceof Cancelled) return [status("info", t("cancelled"))];
  if (error instanceof KeysChanged) return [keysChanged(error, me)];
  if (error instanceof MemberRefused) return memberRefused(error, me, leaveOut);
  if (error instanceof GroupRefused) return groupRefused(error, me);
  if (error instanceof NobodyToSend) return [status("error", t("nobodyToSend"))];
  return [status("error", failure(error))];
}

/** A group's members could not be proved; a group whose name now leads to another group is to
 * be forgotten on its page, once its administrator confirmed it was recreated; the changed keys
 * of one who signed its changes can be trusted again here, as a correspondent's. */
function groupRefused(error: GroupRefused, me: string): HTMLElement[] {
  const problem = error.problem;
  if (problem instanceof UnknownSigner) {
    return [status("error", `${t("nothingSent")} ${t("unknownSigner", { seq: String(problem.seq), group: problem.group, device: problem.device, email: problem.email })}`)];
  }
  if (problem instanceof KeysChanged) return [status("error", t("groupRefused", { group: error.group, reason: problem.message })), keysChanged(problem, me)];
  if (!(problem instanceof GroupReplaced)) return [status("error", t("groupRefused", { group: error.group, reason: problem.message }))];
  const { organisation, group } = parseName(error.group);
  return [status("error", t("groupReplaced", { group: error.group })), h("p", {}, linkTo({ page: "group", organisation, group }, t("groupHeading", { group: error.group })))];
}

/** A member's keys stop a group send: say who, offer to go on without them, show the keys. */
function memberRefused(error: MemberRefused, me: string, leaveOut?: (email: string) => void): HTMLElement[] {
  const shown: HTMLElement[] = [status("error", t("memberRefused", { email: error.email, group: error.group }))];
  if (leaveOut) {
    const button = h("button", { type: "button", class: "secondary" }, t("sendWithout", { email: error.email }));
    button.addEventListener("click", () => leaveOut(error.email));
    shown.push(h("div", { class: "actions" }, button));
  }
  shown.push(error.problem instanceof KeysChanged ? keysChanged(error.problem, me) : h("p", {}, error.problem.message));
  return shown;
}
