/**
 * How the account signs in: its passkeys (add one on this device, remove one), whether an
 * authenticator app is on, and how many recovery codes are left. Recovery codes, when the first
 * second factor is added, are shown once.
 */

import { h, field, replace, status } from "../dom.js";
import { failure, formatDate, t } from "../i18n.js";
import * as passkeys from "../passkeys.js";

export function securityPage(): HTMLElement {
  const summary = h("div", {}, status("info", t("loading")));
  const list = h("div", {});
  const message = h("div", { "aria-live": "polite" });
  const name = h("input", { type: "text", name: "passkey-name", maxlength: 100, required: true, value: t("passkeyDefaultName") });
  const add = h("button", { type: "submit" }, t("addPasskey"));
  const form = h("form", { novalidate: true }, field(t("passkeyName"), name, t("passkeyNameHint")), add);
  const code = h("input", { type: "text", name: "code", autocomplete: "one-time-code", maxlength: 32 });
  const section = h(
    "section",
    {},
    h("h1", {}, t("securityTitle")),
    summary,
    h("h2", {}, t("passkeysTitle")),
    h("p", { class: "hint" }, t("passkeysIntro")),
    list,
    message,
    h("h2", {}, t("addPasskey")),
    passkeys.available() ? form : status("info", t("passkeysUnsupported")),
    h("h2", {}, t("removeWithCode")),
    field(t("otp"), code, t("removeWithCodeHint")),
  );

  const refresh = async (): Promise<void> => {
    const factors = await passkeys.factors();
    replace(summary, facts(factors));
    replace(list, factors.passkeys.length ? table(factors.passkeys, removing) : h("p", {}, t("noPasskeys")));
  };
  const failed = (error: unknown): void => replace(message, status("error", error instanceof passkeys.NoPasskey ? t("passkeyDismissed") : failure(error)));

  async function removing(key: passkeys.Passkey, button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    try {
      await passkeys.remove(key.id, code.value.trim() || null);
      code.value = "";
      replace(message, status("ok", t("passkeyRemoved", { name: key.name })));
      await refresh();
    } catch (error) {
      failed(error);
    } finally {
      button.disabled = false;
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = name.value.trim();
    if (!chosen) return replace(message, status("error", t("passkeyNameNeeded")));
    add.disabled = true;
    void passkeys
      .enrol(chosen)
      .then(async (added) => {
        replace(message, status("ok", t("passkeyAdded", { name: added.passkey.name })), added.recovery_codes.length ? codes(added.recovery_codes) : null);
        await refresh();
      }, failed)
      .finally(() => (add.disabled = false));
  });
  refresh().catch((error: unknown) => replace(summary, status("error", failure(error))));
  return section;
}

function facts(factors: passkeys.SecondFactors): HTMLElement {
  return h(
    "dl",
    { class: "facts" },
    h("dt", {}, t("authenticatorApp")),
    h("dd", {}, factors.totp ? t("on") : t("off")),
    h("dt", {}, t("recoveryCodesLeft")),
    h("dd", {}, String(factors.recovery_codes_left)),
  );
}

function table(keys: passkeys.Passkey[], remove: (key: passkeys.Passkey, button: HTMLButtonElement) => Promise<void>): HTMLElement {
  const rows = keys.map((key) => {
    const button = h("button", { type: "button", class: "secondary", "aria-label": `${t("remove")} ${key.name}` }, t("remove"));
    button.addEventListener("click", () => void remove(key, button));
    return h("tr", {}, h("th", { scope: "row" }, key.name), h("td", {}, formatDate(key.created_at)), h("td", {}, key.last_used_at ? formatDate(key.last_used_at) : "—"), h("td", {}, button));
  });
  const head = h("tr", {}, ...[t("passkeyName"), t("added"), t("lastUsed"), t("actions")].map((text) => h("th", { scope: "col" }, text)));
  return h("table", {}, h("thead", {}, head), h("tbody", {}, ...rows));
}

/** The recovery codes, shown once: each works once, in place of a second factor. */
function codes(list: string[]): HTMLElement {
  return h("div", { class: "codes" }, h("p", {}, t("recoveryCodesOnce")), h("ul", {}, ...list.map((c) => h("li", {}, h("code", {}, c)))));
}
