/** File requests: create one (its address shown once), list them with their use, close them. */

import { call, path } from "../api.js";
import { field, h, replace, status } from "../dom.js";
import { failure, formatDate, reason, t } from "../i18n.js";
import { createRequest, requestKeys, type RequestOut } from "../requests.js";
import { unlocked } from "../state.js";
import { endButton, refreshList, shownUrl } from "./owned.js";
import { expirySelect } from "./send.js";

export function requestsPage(): HTMLElement {
  const list = h("ul", { class: "transfers" });
  const section = h("section", {}, h("h1", {}, t("requestsTitle")), h("p", {}, t("requestsIntro")), h("h2", {}, t("newRequest")), form(list), h("h2", {}, t("yourRequests")), list);
  void refreshList(list, "/api/v1/requests?limit=100", item);
  return section;
}

function form(list: HTMLElement): HTMLElement {
  const title = h("input", { type: "text", name: "title", maxlength: 500 });
  const expiry = expirySelect();
  const files = h("select", { name: "max-files" }, ...[1, 5, 10, 50].map((n) => h("option", { value: String(n), selected: n === 10 }, String(n))));
  const line = h("div", { "aria-live": "polite" });
  const submit = h("button", { type: "submit" }, t("createRequest"));
  const node = h("form", { novalidate: true }, field(t("requestTitleLabel"), title), field(t("expiry"), expiry), field(t("maxFiles"), files), line, submit);
  node.addEventListener("submit", (event) => {
    event.preventDefault();
    const me = unlocked();
    if (!me) return;
    submit.disabled = true;
    createRequest(me, title.value, expiry.value, Number(files.value)).then(
      (url) => {
        replace(line, ...shownUrl(url, t("requestReady")));
        title.value = "";
        void refreshList(list, "/api/v1/requests?limit=100", item);
      },
      (error: unknown) => replace(line, status("error", failure(error))),
    ).finally(() => (submit.disabled = false));
  });
  return node;
}

function item(request: RequestOut): HTMLElement {
  const heading = h("p", { class: "name" }, request.id);
  const address = h("div");
  const me = unlocked();
  if (me && request.state === "open") {
    requestKeys(me, request).then(
      ({ title, url }) => {
        if (title) replace(heading, title);
        replace(address, h("input", { type: "text", readonly: true, value: url, class: "url", "aria-label": title || request.id }));
      },
      (error: unknown) => replace(address, status("error", `${t("problem")}: ${reason(error)}`)),
    );
  }
  return h(
    "li",
    {},
    heading,
    h("p", { class: "meta" }, `${t("state")}: ${request.state} · ${t("filesUsed", { used: String(request.files_used), max: String(request.max_files) })} · ${t("expires")} ${formatDate(request.expires_at)}`),
    address,
    request.state === "open" ? endButton("closeRequest", "closed", request.id, () => call("POST", path`/api/v1/requests/${request.id}/close`)) : null,
  );
}
