/** The user's own fingerprint and their correspondents', with how to verify them. */

import { fingerprint, type PublicKey } from "../../crypto/keys.js";
import { h, replace } from "../dom.js";
import { t } from "../i18n.js";
import { unlocked } from "../state.js";
import { pins } from "../trust.js";

export function keysPage(): HTMLElement {
  const me = unlocked();
  const own = h("p", {}, t("loading"));
  const theirs = h("div", {}, t("loading"));
  const section = h(
    "section",
    {},
    h("h1", {}, t("keysTitle")),
    h("h2", {}, t("yourFingerprint")),
    own,
    h("p", { class: "hint" }, t("verifyHow")),
    h("h2", {}, t("correspondents")),
    theirs,
  );
  if (!me) return section;
  void fingerprint(me.device).then((fp) => replace(own, h("code", { class: "fingerprint" }, fp), h("br"), h("small", {}, `${t("device")} ${me.device.device}`)));
  const pinned = [...pins(me.device.email).entries()].sort(([a], [b]) => (a === me.device.email ? -1 : b === me.device.email ? 1 : a.localeCompare(b)));
  if (!pinned.length) replace(theirs, h("p", {}, t("noCorrespondents")));
  else void table(pinned).then((node) => replace(theirs, node));
  return section;
}

async function table(pinned: [string, PublicKey[]][]): Promise<HTMLElement> {
  const rows = await Promise.all(
    pinned.flatMap(([email, keys]) =>
      keys.map(async (key) => h("tr", {}, h("th", { scope: "row" }, email), h("td", {}, h("code", { class: "fingerprint" }, await fingerprint(key))), h("td", {}, t("unverifiedKey")))),
    ),
  );
  return h("table", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("email")), h("th", { scope: "col" }, t("fingerprint")), h("th", { scope: "col" }, t("state")))), h("tbody", {}, ...rows));
}
