/** Sign in with email and password, and the second factor when the account has one. */

import { ApiError, call, saveSession, type Session } from "../api.js";
import { field, h, replace, status } from "../dom.js";
import { failure, t } from "../i18n.js";
import { go } from "../router.js";

export function signIn(): HTMLElement {
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const otp = h("input", { type: "text", name: "otp", autocomplete: "one-time-code", inputmode: "numeric", maxlength: 32 });
  const otpField = field(t("otp"), otp, t("otpHint"));
  otpField.hidden = true;
  const message = h("div", { "aria-live": "polite" });
  const button = h("button", { type: "submit" }, t("signIn"));
  const form = h("form", { novalidate: true }, field(t("email"), email), field(t("password"), password), otpField, message, button);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void submit();
  });

  async function submit(): Promise<void> {
    button.disabled = true;
    replace(message, status("info", t("signingIn")));
    try {
      const body = { email: email.value.trim(), password: password.value, otp: otp.value.trim() || null };
      const answer = await call<Session>("POST", "/api/v1/auth/login", body);
      saveSession(answer);
      go({ page: "unlock" }, true);
    } catch (error) {
      replace(message, status("error", explain(error)));
      if (error instanceof ApiError && error.title === "Second factor required") {
        otpField.hidden = false;
        otp.focus();
      }
    } finally {
      button.disabled = false;
    }
  }

  return h("section", { class: "narrow" }, h("h1", {}, t("signInTitle")), form);
}

function explain(error: unknown): string {
  if (!(error instanceof ApiError)) return failure(error);
  if (error.status === 429) return t("tooMany");
  if (error.title === "Second factor required") return t("otpNeeded");
  if (error.status === 401) return t("badLogin");
  return t("failed", { reason: error.message });
}
