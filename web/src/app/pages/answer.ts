/**
 * The page at a file request's address, for a sender without an account: who asks (their own
 * claim, with their key's fingerprint to compare), for what, and a form to send files, which
 * are encrypted here to the request's key alone. Nothing is asked of the server before the
 * fragment parsed.
 */

import { fingerprint } from "../../crypto/keys.js";
import { parseRequestFragment } from "../../crypto/links.js";
import { IntegrityError, PliError } from "../../crypto/errors.js";
import { ApiError } from "../api.js";
import { field, h, replace, status } from "../dom.js";
import { failure, formatBytes, formatDate, t } from "../i18n.js";
import { Cancelled } from "../jobs.js";
import { answerRequest, readRequest, type ReadRequest } from "../requests.js";
import { filePicker } from "./send.js";
import { progressed } from "./transfer.js";

export function requestLanding(id: string): HTMLElement {
  const section = h("section", {}, h("h1", {}, t("answerTitle")), h("p", {}, t("answerIntro")), status("info", t("loading")));
  void (async () => {
    const fragment = await parseRequestFragment(location.hash.slice(1)).catch(() => null);
    if (!fragment) return replace(section, h("h1", {}, t("answerTitle")), status("error", t("requestBroken")));
    const request = await readRequest(id, fragment);
    replace(section, h("h1", {}, t("answerTitle")), h("p", {}, t("answerIntro")), await about(request), form(request));
  })().catch((error: unknown) => replace(section, h("h1", {}, t("answerTitle")), status("error", explain(error))));
  return section;
}

async function about(request: ReadRequest): Promise<HTMLElement> {
  const { doc } = request;
  return h(
    "dl",
    { class: "facts" },
    h("dt", {}, t("requester")),
    h("dd", {}, t("requestedBy", { email: doc.requester.email })),
    h("dt", {}, t("fingerprint")),
    h("dd", {}, h("code", { class: "fingerprint" }, await fingerprint(doc.requester)), h("br"), h("small", {}, t("claimNote"))),
    doc.title ? h("dt", {}, t("requestTitleLabel")) : null,
    doc.title ? h("dd", { class: "message" }, doc.title) : null,
    h("dt", {}, t("expires")),
    h("dd", {}, formatDate(request.expiresAt)),
    h("dt", {}, t("files")),
    h("dd", {}, t("left", { files: String(request.filesLeft), bytes: formatBytes(request.bytesLeft) })),
  );
}

function form(request: ReadRequest): HTMLElement {
  const picker = filePicker();
  const name = h("input", { type: "text", name: "name", autocomplete: "name", maxlength: 200 });
  const message = h("textarea", { name: "message", rows: 3, maxlength: 10000 });
  const bar = h("progress", { max: 1, value: 0, hidden: true, "aria-label": t("sending") });
  const line = h("div", { "aria-live": "polite" });
  const submit = h("button", { type: "submit" }, t("answerSend"));
  const cancel = h("button", { type: "button", class: "secondary", hidden: true }, t("cancel"));
  const node = h("form", { novalidate: true }, picker.node, field(t("yourName"), name), field(t("message"), message), bar, line, h("div", { class: "actions" }, submit, cancel));
  node.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!picker.files.length) return replace(line, status("error", t("noFiles")));
    submit.disabled = true;
    cancel.hidden = false;
    bar.hidden = false;
    const started = performance.now();
    const job = answerRequest(request, [...picker.files], name.value, message.value, (p) => progressed(bar, line, p, started));
    cancel.onclick = () => job.cancel();
    job.done.then(
      () => {
        replace(line, status("ok", t("answerSent")));
        picker.clear();
      },
      (error: unknown) => replace(line, error instanceof Cancelled ? status("info", t("cancelled")) : status("error", explain(error))),
    ).finally(() => {
      submit.disabled = false;
      cancel.hidden = true;
    });
  });
  return node;
}

function explain(error: unknown): string {
  if (error instanceof ApiError && (error.status === 404 || error.status === 410)) return t("requestGone");
  if (error instanceof IntegrityError) return t("requestBroken");
  if (error instanceof PliError || error instanceof ApiError) return error.message;
  return failure(error);
}
