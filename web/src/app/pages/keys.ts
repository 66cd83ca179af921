/**
 * The user's own fingerprint and their correspondents', each verified or not, and the way to
 * verify one: the code both people read to each other (docs/spec/keys.md, "Verification code"),
 * the same `pli keys verify` shows.
 */

import { approveDevice, removeDevice } from "../../crypto/devices.js";
import { fingerprint, parseBundle, type Device, type Identity, type PublicKey, type Signed } from "../../crypto/keys.js";
import { TrustError } from "../../crypto/errors.js";
import { codesMatch, verificationCode } from "../../crypto/verification.js";
import { call, path } from "../api.js";
import { auditKeys, type KeyAudit } from "../audit.js";
import { field, h, replace, status } from "../dom.js";
import { failure, formatDate, t } from "../i18n.js";
import { unlocked } from "../state.js";
import { markVerified, offeredKeys, pinnedKeys, pins, verifiedAccounts } from "../trust.js";

export function keysPage(): HTMLElement {
  const me = unlocked();
  const own = h("p", {}, t("loading"));
  const theirs = h("div", {}, t("loading"));
  const devices = h("div", {}, t("loading"));
  const section = h(
    "section",
    {},
    h("h1", {}, t("keysTitle")),
    h("h2", {}, t("yourFingerprint")),
    own,
    h("p", { class: "hint" }, t("verifyHow")),
    h("h2", {}, t("yourDevices")),
    devices,
    h("h2", {}, t("correspondents")),
    theirs,
  );
  if (!me) return section;
  section.append(...auditSection(me));
  const email = me.device.email;
  void fingerprint(me.device).then((fp) => replace(own, h("code", { class: "fingerprint" }, fp), h("br"), h("small", {}, `${t("device")} ${me.device.device}`)));
  const render = (): void => {
    const pinned = [...pins(email).entries()].sort(([a], [b]) => (a === email ? -1 : b === email ? 1 : a.localeCompare(b)));
    if (!pinned.length) replace(theirs, h("p", {}, t("noCorrespondents")));
    else void table(email, pinned, render).then((node) => replace(theirs, node));
  };
  render();
  const listDevices = (): void =>
    void ownDevices(me, listDevices).then(
      (node) => replace(devices, node),
      (error: unknown) => replace(devices, status("error", failure(error))),
    );
  listDevices();
  return section;
}

interface OwnDevice {
  device: string;
  state: "active" | "pending" | "removed";
  bundle: Signed;
  created_at: string;
}

/** This account's devices as the server lists them: each bundle checked, pending ones to
 * approve after comparing their fingerprint, active ones to remove. */
async function ownDevices(me: Identity, refresh: () => void): Promise<HTMLElement> {
  const listed = await call<{ items: OwnDevice[] }>("GET", "/api/v1/me/devices");
  const rows = await Promise.all(
    listed.items.map(async (item) => {
      const device = await parseBundle(item.bundle, me.device.email);
      const here = device.device === me.device.device;
      const state = here ? `${t(`device_${item.state}`)} (${t("thisBrowser")})` : t(`device_${item.state}`);
      const action = here ? null : item.state === "pending" ? approval(me, device, item.bundle, refresh) : item.state === "active" ? removal(me, device, refresh) : null;
      return h("tr", {}, h("th", { scope: "row" }, h("code", {}, device.device)), h("td", {}, h("code", { class: "fingerprint" }, await fingerprint(device))), h("td", {}, state), h("td", {}, action));
    }),
  );
  const head = h("tr", {}, h("th", { scope: "col" }, t("device")), h("th", { scope: "col" }, t("fingerprint")), h("th", { scope: "col" }, t("state")), h("td", {}));
  return h("table", { class: "devices" }, h("thead", {}, head), h("tbody", {}, ...rows));
}

function approval(me: Identity, device: Device, envelope: Signed, refresh: () => void): HTMLElement {
  const checked = h("input", { type: "checkbox", id: `same-${device.device}`, name: "same" });
  const button = h("button", { type: "button" }, t("approveDevice"));
  const line = h("div", { "aria-live": "polite" });
  button.addEventListener("click", () => {
    if (!checked.checked) return replace(line, status("error", t("compareFirst")));
    button.disabled = true;
    void approveDevice(me, device, envelope)
      .then((signed) => call("POST", path`/api/v1/me/devices/${device.device}/approve`, { signed }))
      .then(refresh, (error: unknown) => replace(line, status("error", failure(error))))
      .finally(() => (button.disabled = false));
  });
  return h("div", {}, h("p", {}, checked, " ", h("label", { for: checked.id }, t("sameFingerprint"))), button, line);
}

function removal(me: Identity, device: Device, refresh: () => void): HTMLElement {
  const button = h("button", { type: "button", class: "secondary" }, t("removeDevice"));
  const line = h("div", { "aria-live": "polite" });
  button.addEventListener("click", () => {
    button.disabled = true;
    void removeDevice(me, device.device)
      .then((signed) => call("POST", path`/api/v1/me/devices/${device.device}/remove`, { signed }))
      .then(refresh, (error: unknown) => replace(line, status("error", failure(error))))
      .finally(() => (button.disabled = false));
  });
  return h("div", {}, button, line);
}

async function table(me: string, pinned: [string, PublicKey[]][], render: () => void): Promise<HTMLElement> {
  const verified = verifiedAccounts(me);
  const rows = await Promise.all(
    pinned.flatMap(([email, keys]) =>
      keys.map(async (key, i) => {
        const state = verified.has(email) ? t("verifiedKey") : t("unverifiedKey");
        const action = i === 0 && email !== me ? verifyButton(me, email, render) : null;
        return h("tr", {}, h("th", { scope: "row" }, email), h("td", {}, h("code", { class: "fingerprint" }, await fingerprint(key))), h("td", {}, state, " ", action));
      }),
    ),
  );
  return h("table", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("email")), h("th", { scope: "col" }, t("fingerprint")), h("th", { scope: "col" }, t("state")))), h("tbody", {}, ...rows));
}

function verifyButton(me: string, email: string, render: () => void): HTMLElement {
  const button = h("button", { type: "button", class: "link" }, t("verifyWith", { email }));
  button.addEventListener("click", () => {
    const panel = h("div", { class: "verify", "aria-live": "polite" }, t("loading"));
    button.replaceWith(panel);
    void verification(me, email, render).then(
      (nodes) => replace(panel, ...nodes),
      (error: unknown) => replace(panel, status("error", failure(error))),
    );
  });
  return button;
}

/** The code over this account's pinned keys and the keys the server offers for `email` now. */
async function verification(me: string, email: string, render: () => void): Promise<HTMLElement[]> {
  const mine = (await pinnedKeys(me, me)).devices;
  const here = unlocked()?.device.device;
  if (!mine.some((d) => d.device === here)) throw new TrustError(t("notListedHere"));
  const theirs = (await offeredKeys(email)).devices;
  const code = verificationCode(me, mine, email, theirs);
  const typed = h("input", { type: "text", name: "code", autocomplete: "off", inputmode: "numeric" });
  const line = h("div", { "aria-live": "polite" });
  const confirm = h("button", { type: "button" }, t("codesMatch"));
  confirm.addEventListener("click", () => {
    if (!codesMatch(code, typed.value)) return replace(line, status("error", t("codeDiffers", { email })));
    markVerified(me, email, theirs);
    render();
  });
  return [
    h("p", {}, t("readCode", { email })),
    h("pre", { class: "code" }, h("code", {}, `${code.slice(0, 35)}\n${code.slice(36)}`)),
    field(t("theirCode", { email }), typed),
    confirm,
    line,
  ];
}

/** `pli keys audit`, here: a button that reads the key log and says what it found. */
function auditSection(me: Identity): HTMLElement[] {
  const button = h("button", { type: "button", class: "secondary" }, t("auditButton"));
  const line = h("div", { "aria-live": "polite", class: "audit" });
  button.addEventListener("click", () => {
    button.disabled = true;
    replace(line, status("info", t("auditRunning")));
    void auditKeys(me)
      .then(
        (found) => replace(line, ...audited(found)),
        (error: unknown) => replace(line, status("error", t("auditFailed", { reason: error instanceof Error ? error.message : String(error) }))),
      )
      .finally(() => (button.disabled = false));
  });
  return [h("h2", {}, t("auditTitle")), h("p", { class: "hint" }, t("auditIntro")), button, line];
}

function audited(found: KeyAudit): HTMLElement[] {
  const shown: HTMLElement[] = [];
  if (found.notListed) shown.push(status("error", t("notListedHere")));
  if (found.unknown.length === 0) {
    if (!found.notListed) shown.push(status("ok", t("auditClean", { read: String(found.read), size: String(found.size) })));
    return shown;
  }
  const items = found.unknown.map(([index, entry]) =>
    h("li", {}, t("auditEntry", { index: String(index), event: entry.event, device: entry.device ?? "", time: formatDate(entry.time) })),
  );
  shown.push(status("error", t("auditUnknown")), h("ul", { class: "unknown-keys" }, ...items));
  return shown;
}
