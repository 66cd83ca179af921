/**
 * Sign in with email and password, and the second factor when the account has one: a passkey
 * (WebAuthn), or a code from an authenticator app, or a recovery code.
 */

import { ApiError, call, saveSession, type Session } from "../api.js";
import { field, h, replace, status } from "../dom.js";
import { failure, t } from "../i18n.js";
import * as passkeys from "../passkeys.js";
import { go } from "../router.js";

let sessionEnded = false;

/** The next sign-in page says why it is shown: the session ended. */
export function noteSessionEnded(): void {
  sessionEnded = true;
}

export function signIn(): HTMLElement {
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const otp = h("input", { type: "text", name: "otp", autocomplete: "one-time-code", inputmode: "numeric", maxlength: 32 });
  const otpField = field(t("otp"), otp, t("otpHint"));
  otpField.hidden = true;
  const withPasskey = h("button", { type: "button", class: "secondary", hidden: true }, t("usePasskey"));
  const message = h("div", { "aria-live": "polite" }, sessionEnded ? status("info", t("sessionEnded")) : null);
  sessionEnded = false;
  const button = h("button", { type: "submit" }, t("signIn"));
  const form = h("form", { novalidate: true }, field(t("email"), email), field(t("password"), password), otpField, message, withPasskey, button);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void attempt(() => call<Session>("POST", "/api/v1/auth/login", { email: email.value.trim(), password: password.value, otp: otp.value.trim() || null }));
  });
  withPasskey.addEventListener("click", () => void attempt(() => passkeys.signIn(email.value.trim(), password.value)));

  async function attempt(signingIn: () => Promise<Session>): Promise<void> {
    button.disabled = withPasskey.disabled = true;
    replace(message, status("info", t("signingIn")));
    try {
      saveSession(await signingIn());
      go({ page: "unlock" }, true);
    } catch (error) {
      replace(message, status("error", explain(error, otp.value.trim() !== "")));
      const needed = secondFactor(error);
      if (needed) ask(methods(needed));
    } finally {
      button.disabled = withPasskey.disabled = false;
    }
  }

  /** Show what the account can use: the passkey button first, and the code field (recovery codes always work). */
  function ask(can: passkeys.Method[]): void {
    const passkey = can.includes("passkey") && passkeys.available();
    withPasskey.hidden = !passkey;
    otpField.hidden = false;
    (passkey ? withPasskey : otp).focus();
  }

  return h("section", { class: "narrow" }, h("h1", {}, t("signInTitle")), form);
}

function secondFactor(error: unknown): ApiError | null {
  return error instanceof ApiError && error.title === "Second factor required" ? error : null;
}

function methods(error: ApiError): passkeys.Method[] {
  const listed = error.extra.methods;
  if (!Array.isArray(listed)) return ["totp"];
  return listed.filter((m): m is passkeys.Method => m === "totp" || m === "passkey");
}

function explain(error: unknown, withCode: boolean): string {
  if (error instanceof passkeys.NoPasskey) return t("passkeyDismissed");
  if (!(error instanceof ApiError)) return failure(error);
  if (error.status === 429) return t("tooMany");
  if (secondFactor(error)) return methods(error).includes("passkey") ? t("passkeyNeeded") : t("otpNeeded");
  if (error.status === 401) return withCode ? t("badCode") : t("badLogin");
  return t("failed", { reason: error.message });
}
