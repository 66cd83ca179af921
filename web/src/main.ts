/**
 * pli's web app: the page's shell (header, navigation, language switch) and which page a path
 * shows. Pages that need an account send a visitor to sign in; pages that need keys, to unlock
 * them. Nothing here is a framework: pages are functions that return elements.
 */

import { h, replace } from "./app/dom.js";
import { chosenLang, lang, setLang, t } from "./app/i18n.js";
import { box } from "./app/pages/boxes.js";
import { groupPage, groupsPage } from "./app/pages/groups.js";
import { keysPage } from "./app/pages/keys.js";
import { linkPage } from "./app/pages/link.js";
import { linksPage } from "./app/pages/links.js";
import { requestLanding } from "./app/pages/answer.js";
import { requestsPage } from "./app/pages/requests.js";
import { securityPage } from "./app/pages/security.js";
import { sendPage } from "./app/pages/send.js";
import { noteSessionEnded, signIn } from "./app/pages/signin.js";
import { transfer } from "./app/pages/transfer.js";
import { unlock } from "./app/pages/unlock.js";
import { go, linkTo, onNavigate, parse, rememberNext, type Route } from "./app/router.js";
import { setIdentity, signOut, signedIn, unlocked } from "./app/state.js";
import { whenSessionEnds } from "./app/api.js";
import { prepare as prepareSaving } from "./app/save.js";

const root = document.getElementById("app") ?? document.body;

function render(): void {
  const route = guarded(parse(location.pathname));
  const main = h("main", { id: "main", tabindex: -1 }, page(route));
  const skip = h("a", { href: "#main", class: "skip" }, t("skip"));
  skip.addEventListener("click", (event) => {
    event.preventDefault(); // the fragment may be a link's key: never replace it
    main.focus();
  });
  replace(root, skip, header(route), main);
  document.title = `${title(route)} · pli`;
  if (rendered++ > 0) main.focus(); // after a navigation, screen readers start from the page
}

let rendered = 0;

/** Where a visitor without a session, or without unlocked keys, is sent instead. */
function guarded(route: Route): Route {
  if (route.page === "link" || route.page === "request" || route.page === "notfound") return route;
  if (!signedIn()) return route.page === "signin" ? route : redirect({ page: "signin" });
  if (route.page === "signin") return redirect({ page: "inbox" });
  if (!unlocked() && route.page !== "unlock" && route.page !== "security") return redirect({ page: "unlock" });
  return route;
}

function redirect(route: Route): Route {
  if (route.page === "signin" || route.page === "unlock") rememberNext(location.pathname);
  history.replaceState(null, "", route.page === "signin" ? "/app/signin" : `/app/${route.page}`);
  return route;
}

function page(route: Route): HTMLElement {
  switch (route.page) {
    case "signin":
      return signIn();
    case "unlock":
      return unlock();
    case "inbox":
    case "outbox":
      return box(route.page);
    case "send":
      return sendPage();
    case "keys":
      return keysPage();
    case "security":
      return securityPage();
    case "groups":
      return groupsPage();
    case "group":
      return groupPage(route.organisation, route.group);
    case "transfer":
      return transfer(route.id);
    case "links":
      return linksPage();
    case "requests":
      return requestsPage();
    case "link":
      return linkPage(route.id);
    case "request":
      return requestLanding(route.id);
    case "notfound":
      return h("section", {}, h("h1", {}, t("notFound")), linkTo({ page: "inbox" }, t("back")));
  }
}

function title(route: Route): string {
  const titles: Partial<Record<Route["page"], Parameters<typeof t>[0]>> = {
    signin: "signInTitle",
    unlock: "unlockTitle",
    inbox: "inboxTitle",
    outbox: "outboxTitle",
    send: "sendTitle",
    keys: "keysTitle",
    security: "securityTitle",
    groups: "groupsTitle",
    group: "groupsTitle",
    transfer: "transferTitle",
    links: "linksTitle",
    requests: "requestsTitle",
    link: "linkOpenTitle",
    request: "answerTitle",
  };
  const key = titles[route.page];
  return key ? t(key) : t("tagline");
}

function header(route: Route): HTMLElement {
  const switcher = h("button", { type: "button", class: "lang", lang: lang() === "en" ? "fr" : "en", "aria-label": t("switchLabel") }, t("switchTo"));
  switcher.addEventListener("click", () => {
    setLang(lang() === "en" ? "fr" : "en", true);
    render();
  });
  const email = signedIn();
  const nav = email && unlocked() ? navigation(route) : null;
  const out = email ? h("button", { type: "button", class: "link" }, t("navSignOut")) : null;
  out?.addEventListener("click", () => void signOut().then(() => go({ page: "signin" }, true)));
  return h(
    "header",
    {},
    h("p", { class: "brand" }, h("strong", {}, "pli"), h("span", {}, ` · ${t("tagline")}`)),
    nav,
    h("div", { class: "account" }, email ? h("span", { class: "who" }, t("signedInAs", { email })) : null, out, switcher),
  );
}

function navigation(route: Route): HTMLElement {
  const items: [Route, Parameters<typeof t>[0]][] = [
    [{ page: "inbox" }, "navInbox"],
    [{ page: "outbox" }, "navOutbox"],
    [{ page: "send" }, "navSend"],
    [{ page: "links" }, "navLinks"],
    [{ page: "requests" }, "navRequests"],
    [{ page: "groups" }, "navGroups"],
    [{ page: "keys" }, "navKeys"],
    [{ page: "security" }, "navSecurity"],
  ];
  return h(
    "nav",
    { "aria-label": t("navigation") },
    h("ul", {}, ...items.map(([target, key]) => h("li", {}, linkTo(target, t(key), current(route, target))))),
  );
}

/** How the navigation's entry `target` marks where `route` is: a group's page is under Groups. */
function current(route: Route, target: Route): Record<string, string> {
  if (route.page === target.page) return { "aria-current": "page" };
  return route.page === "group" && target.page === "groups" ? { "aria-current": "true" } : {};
}

setLang(chosenLang(), false);
whenSessionEnds(() => {
  setIdentity(null);
  noteSessionEnded();
  rememberNext(location.pathname);
  go({ page: "signin" }, true);
});
onNavigate(render);
render();
prepareSaving();
