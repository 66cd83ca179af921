/**
 * Unlock the keys the account keeps on the server (only ciphertext: an age file under the
 * user's passphrase), or create keys for a first-time user. Either way the private keys are
 * decrypted or made here, in this page, and never sent in clear.
 */

import { base64Padded, fromBase64Padded } from "../../crypto/b64.js";
import { fingerprint, newIdentity, sealIdentity, unsealIdentity, type Identity } from "../../crypto/keys.js";
import { ApiError, call, path, type DeviceKeys, type Escrowed } from "../api.js";
import { field, h, replace, status } from "../dom.js";
import { failure, t } from "../i18n.js";
import { go, takeNext } from "../router.js";
import { setIdentity, signedIn } from "../state.js";
import { fetchKeys, pin } from "../trust.js";

const MIN_PASSPHRASE = 16;

export function unlock(): HTMLElement {
  const section = h("section", { class: "narrow" }, h("p", {}, t("loading")));
  void call<Escrowed[]>("GET", "/api/v1/me/escrow").then(
    (escrowed) => replace(section, ...(escrowed.length ? unlockForm(escrowed) : createForm())),
    (error: unknown) => replace(section, status("error", failure(error))),
  );
  return section;
}

function unlockForm(escrowed: Escrowed[]): HTMLElement[] {
  const passphrase = h("input", { type: "password", name: "passphrase", autocomplete: "off", required: true });
  const message = h("div", { "aria-live": "polite" });
  const button = h("button", { type: "submit" }, t("unlock"));
  const form = h("form", {}, field(t("passphrase"), passphrase), message, button);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    button.disabled = true;
    replace(message, status("info", t("unlocking")));
    void opened(escrowed, passphrase.value).then(
      (identity) => {
        if (!identity) return replace(message, status("error", t("badPassphrase")));
        const pending = escrowed.some((e) => e.device === identity.device.device && e.state === "pending");
        return pending ? showPending(form, identity) : done(identity);
      },
      () => replace(message, status("error", t("badPassphrase"))),
    ).finally(() => (button.disabled = false));
  });
  return [h("h1", {}, t("unlockTitle")), h("p", {}, t("unlockIntro")), form];
}

async function opened(escrowed: Escrowed[], passphrase: string): Promise<Identity | null> {
  for (const entry of escrowed) {
    try {
      return await unsealIdentity(fromBase64Padded(entry.escrow), passphrase);
    } catch {
      // another device's key, or the wrong passphrase: try the next one
    }
  }
  return null;
}

function done(identity: Identity): void {
  setIdentity(identity);
  go(takeNext(), true);
}

function createForm(): HTMLElement[] {
  const first = h("input", { type: "password", name: "new-passphrase", autocomplete: "new-password", required: true, minlength: MIN_PASSPHRASE });
  const second = h("input", { type: "password", name: "repeat-passphrase", autocomplete: "new-password", required: true });
  const login = h("input", { type: "password", name: "login-password", autocomplete: "current-password", required: true });
  const message = h("div", { "aria-live": "polite" });
  const button = h("button", { type: "submit" }, t("createKeys"));
  const intro = h("p", {}, t("createIntro"));
  const form = h(
    "form",
    { novalidate: true },
    field(t("newPassphrase"), first, t("passphraseHint")),
    field(t("repeatPassphrase"), second),
    field(t("signInPassword"), login, t("signInPasswordHint")),
    message,
    button,
  );
  void hasDevices().then((yes) => yes && intro.after(h("p", { class: "status info" }, t("noEscrowCli"))));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    button.disabled = true;
    replace(message, status("info", t("creating")));
    void create(form, first.value, second.value, login.value).then(
      (problem) => problem && replace(message, status("error", problem)),
      (error: unknown) => replace(message, status("error", failure(error))),
    ).finally(() => (button.disabled = false));
  });
  return [h("h1", {}, t("noEscrowTitle")), intro, form];
}

/** Whether the account already has devices (made by the CLI): a new one changes its keys. */
async function hasDevices(): Promise<boolean> {
  const answer = await call<DeviceKeys>("GET", path`/api/v1/users/${signedIn() ?? ""}/devices`).catch(() => null);
  return (answer?.devices.length ?? 0) > 0;
}

/**
 * Make, seal and publish this browser's keys; a problem to show, or null once done. The login
 * password is checked by the server (as at sign-in) and compared with the passphrase here: the
 * passphrase itself never leaves the page.
 */
async function create(form: HTMLElement, passphrase: string, repeated: string, password: string): Promise<string | null> {
  if (passphrase !== repeated) return t("passphraseMismatch");
  if ([...passphrase].length < MIN_PASSPHRASE) return t("passphraseShort");
  if (!(await isLoginPassword(password))) return t("badLogin");
  if (passphrase === password) return t("passphraseIsPassword");
  const email = signedIn() ?? "";
  const identity = await newIdentity(email, new Date().toISOString().replace(/\.\d+Z$/, "Z"));
  const sealed = await sealIdentity(identity, passphrase, 18);
  const made = await call<{ state: string }>("POST", "/api/v1/devices", { bundle: identity.bundle, escrow: base64Padded(sealed) });
  pin(email, email, await fetchKeys(email));
  if (made.state === "pending") {
    showPending(form, identity);
    return null;
  }
  done(identity);
  return null;
}

/**
 * A device that waits for approval: its id and fingerprint, the command to run on a device that
 * has the account's keys, and a button to go on once it is approved.
 */
function showPending(anchor: Element, identity: Identity): void {
  const section = anchor.closest("section") ?? anchor;
  const id = identity.device.device;
  const print = h("code", { class: "fingerprint" }, t("loading"));
  const command = h("code", {}, `pli devices approve ${id}`);
  const message = h("div", { "aria-live": "polite" });
  const button = h("button", { type: "button" }, t("pendingCheck"));
  void fingerprint(identity.device).then((text) => {
    replace(print, text);
    replace(command, `pli devices approve ${id} --fingerprint "${text}"`);
  });
  button.addEventListener("click", () => {
    button.disabled = true;
    void call<Escrowed[]>("GET", "/api/v1/me/escrow").then(
      (escrowed) => (escrowed.some((e) => e.device === id && e.state !== "pending") ? done(identity) : replace(message, status("info", t("stillPending")))),
      (error: unknown) => replace(message, status("error", failure(error))),
    ).finally(() => (button.disabled = false));
  });
  replace(
    section,
    h("h1", {}, t("pendingTitle")),
    h("p", {}, t("pendingIntro")),
    h("dl", {}, h("dt", {}, t("pendingDevice")), h("dd", {}, h("code", {}, id)), h("dt", {}, t("fingerprint")), h("dd", {}, print)),
    h("pre", {}, command),
    message,
    button,
  );
}

/** Whether the server takes `candidate` as this account's login password. */
async function isLoginPassword(candidate: string): Promise<boolean> {
  try {
    await call("POST", "/api/v1/me/password/verify", { password: candidate });
    return true;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return false;
    throw error;
  }
}
