/** What the links and requests pages share: a list of what the user made, and ending one. */

import { call } from "../api.js";
import { h, replace, status } from "../dom.js";
import { failure, t, type Key } from "../i18n.js";

/** Fill `list` with the items the API lists at `url`, newest first, each shown by `show`. */
export async function refreshList<T>(list: HTMLElement, url: string, show: (item: T) => HTMLElement): Promise<void> {
  try {
    const answer = await call<{ items: T[] }>("GET", url);
    replace(list, ...answer.items.map(show));
    if (!answer.items.length) replace(list, h("li", {}, t("empty")));
  } catch (error) {
    replace(list, h("li", {}, status("error", failure(error))));
  }
}

/** A button that ends something (revokes a link, closes a request), and what came of it. */
export function endButton(label: Key, done: Key, what: string, end: () => Promise<unknown>): HTMLElement {
  const button = h("button", { type: "button", class: "secondary", "aria-label": `${t(label)} ${what}` }, t(label));
  const line = h("span", { "aria-live": "polite" });
  button.addEventListener("click", () => {
    button.disabled = true;
    end().then(
      () => replace(line, t(done)),
      (error: unknown) => replace(line, failure(error)),
    );
  });
  return h("div", { class: "actions" }, button, line);
}

/** A new link's or request's whole address, shown once, with a Copy button. */
export function shownUrl(url: string, label: string): HTMLElement[] {
  const box = h("input", { type: "text", readonly: true, value: url, class: "url", "aria-label": label });
  const copy = h("button", { type: "button", class: "secondary" }, t("copy"));
  const done = h("span", { "aria-live": "polite" });
  copy.addEventListener("click", () => {
    box.select();
    void navigator.clipboard?.writeText(url).then(() => replace(done, t("copied")), () => undefined);
  });
  return [status("ok", label), box, h("div", { class: "actions" }, copy, done)];
}
