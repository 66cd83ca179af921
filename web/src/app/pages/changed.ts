/**
 * What the user sees when a correspondent's keys changed: the fingerprints pinned before and
 * those the server now offers, device by device, and a confirmation that they compared the new
 * ones with that person before pinning exactly the set shown (docs/spec/keys.md, check 4).
 */

import { fingerprint, type PublicKey } from "../../crypto/keys.js";
import { h, replace, status } from "../dom.js";
import { t } from "../i18n.js";
import { linkTo } from "../router.js";
import { trustChanged, verifiedAccounts, type KeysChanged } from "../trust.js";

export function keysChanged(error: KeysChanged, me: string): HTMLElement {
  const before = h("ul", { class: "fingerprints" });
  const after = h("ul", { class: "fingerprints" });
  void list(before, error.pinned);
  void list(after, error.offered);
  const confirmed = h("input", { type: "checkbox", id: `confirm-${error.email}`, name: "confirmed" });
  const trust = h("button", { type: "button", class: "secondary" }, t("trustNew"));
  const line = h("div", { "aria-live": "polite" });
  trust.addEventListener("click", () => {
    if (!confirmed.checked) return replace(line, status("error", t("confirmFirst")));
    trustChanged(me, error.email, error.offered);
    trust.disabled = true;
    replace(line, status("ok", t("trusted")));
  });
  const verified = verifiedAccounts(me).has(error.email);
  const accept = verified
    ? [h("p", {}, t("verifiedChanged", { email: error.email })), linkTo({ page: "keys" }, t("keysTitle"))]
    : [h("p", {}, confirmed, " ", h("label", { for: confirmed.id }, t("comparedWith", { email: error.email }))), trust, line];
  return h(
    "div",
    { class: "changed", role: "alert" },
    h("p", { class: "status error" }, t("keysChanged", { email: error.email })),
    h("p", {}, t("pinnedBefore")),
    before,
    h("p", {}, t("offeredNow")),
    after,
    ...accept,
  );
}

async function list(node: HTMLElement, keys: PublicKey[]): Promise<void> {
  const items = await Promise.all(keys.map(async (k) => h("li", {}, h("code", { class: "fingerprint" }, await fingerprint(k)), " ", h("small", {}, `${t("device")} ${k.device}`))));
  replace(node, ...items);
}
