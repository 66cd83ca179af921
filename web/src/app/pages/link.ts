/**
 * The page at a share link's address, for someone without an account: the key is the
 * address's fragment (after #), which the browser never sends. Nothing is asked of the server
 * until the fragment parsed (and its passphrase opened it), and a download is used only when
 * the visitor presses Open, not when a mail client or a preview fetches the page.
 */

import { fingerprint } from "../../crypto/keys.js";
import { DecryptError, GoneError, PliError, UsageError } from "../../crypto/errors.js";
import { openLinkFragment, parseLinkFragment, type LinkFragment } from "../../crypto/links.js";
import { ApiError } from "../api.js";
import { field, h, replace, status } from "../dom.js";
import { failure, formatDate, t } from "../i18n.js";
import { linkDownload, openLink, type OpenedLink } from "../links.js";
import { fileRow } from "./transfer.js";

export function linkPage(id: string): HTMLElement {
  const section = h("section", {}, h("h1", {}, t("linkOpenTitle")), h("p", {}, t("linkOpenIntro")));
  let fragment: LinkFragment;
  try {
    fragment = parseLinkFragment(location.hash.slice(1));
  } catch {
    section.appendChild(status("error", t("linkBroken")));
    return section;
  }
  section.appendChild(opener(id, fragment));
  return section;
}

function opener(id: string, fragment: LinkFragment): HTMLElement {
  const passphrase = h("input", { type: "password", name: "link-passphrase", autocomplete: "off", required: true });
  const message = h("div", { "aria-live": "polite" });
  const button = h("button", { type: "submit" }, t("openLink"));
  const wrapped = fragment.kind === "wrapped";
  const form = h("form", {}, wrapped ? h("p", {}, t("linkNeedsPassphrase")) : null, wrapped ? field(t("passphrase"), passphrase) : null, message, button);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    button.disabled = true;
    replace(message, status("info", t("opening")));
    void (async () => {
      const identity = await openLinkFragment(fragment, wrapped ? passphrase.value : undefined);
      const opened = await openLink(id, identity);
      form.replaceWith(...(await contents(opened)));
    })()
      .catch((error: unknown) => replace(message, status("error", explain(error))))
      .finally(() => (button.disabled = false));
  });
  return form;
}

async function contents(link: OpenedLink): Promise<HTMLElement[]> {
  const { doc } = link;
  return [
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, t("sender")),
      h("dd", {}, t("signedBy", { email: doc.sender.email })),
      h("dt", {}, t("fingerprint")),
      h("dd", {}, h("code", { class: "fingerprint" }, await fingerprint(doc.sender)), h("br"), h("small", {}, t("claimNote"))),
      h("dt", {}, t("expires")),
      h("dd", {}, formatDate(doc.expires)),
    ),
    h("h2", {}, t("files")),
    h("ul", { class: "files" }, ...doc.files.map((file) => fileRow(file, (sink, progress) => linkDownload(link, file, sink, progress), () => undefined))),
  ];
}

function explain(error: unknown): string {
  if (error instanceof DecryptError) return t("wrongLinkPassphrase");
  if (error instanceof GoneError || (error instanceof ApiError && (error.status === 404 || error.status === 410))) return t("linkGone");
  if (error instanceof UsageError || error instanceof PliError) return error.message;
  return failure(error);
}
