/**
 * Paths of the single-page app. The server serves the same page at `/`, `/app/…`, `/l/…` and
 * `/r/…`; here the path picks what to show. Ids in paths are checked against the id alphabet
 * before use and always percent-encoded when they go into an API path.
 */

export type Route =
  | { page: "signin" }
  | { page: "unlock" }
  | { page: "inbox" }
  | { page: "outbox" }
  | { page: "send" }
  | { page: "keys" }
  | { page: "links" }
  | { page: "requests" }
  | { page: "security" }
  | { page: "groups" }
  | { page: "group"; organisation: string; group: string }
  | { page: "transfer"; id: string }
  | { page: "link"; id: string }
  | { page: "request"; id: string }
  | { page: "notfound" };

const ID = /^[A-Za-z0-9_-]{16,64}$/;
/** One part of a group's name (docs/spec/groups.md, "Names"). */
const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;

export function parse(pathname: string): Route {
  const parts = pathname.split("/").filter(Boolean);
  const [first, second, third] = parts;
  if (parts.length === 0 || (first === "app" && parts.length === 1)) return { page: "inbox" };
  if (first === "l" && second && ID.test(second) && parts.length === 2) return { page: "link", id: second };
  if (first === "r" && second && ID.test(second) && parts.length === 2) return { page: "request", id: second };
  if (first !== "app") return { page: "notfound" };
  if (second === "t" && third && ID.test(third) && parts.length === 3) return { page: "transfer", id: third };
  if (second === "groups" && parts.length === 4) return groupRoute(third, parts[3]);
  const simple = ["signin", "unlock", "inbox", "outbox", "send", "keys", "links", "requests", "security", "groups"] as const;
  const found = simple.find((name) => name === second);
  return found && parts.length === 2 ? { page: found } : { page: "notfound" };
}

/** The page of group `organisation/group`, or "notfound" for a name no group can have. */
function groupRoute(organisation = "", group = ""): Route {
  return SLUG.test(organisation) && SLUG.test(group) ? { page: "group", organisation, group } : { page: "notfound" };
}

export function href(route: Route): string {
  switch (route.page) {
    case "group":
      return `/app/groups/${encodeURIComponent(route.organisation)}/${encodeURIComponent(route.group)}`;
    case "transfer":
      return `/app/t/${encodeURIComponent(route.id)}`;
    case "link":
      return `/l/${encodeURIComponent(route.id)}`;
    case "request":
      return `/r/${encodeURIComponent(route.id)}`;
    case "notfound":
      return "/app/inbox";
    default:
      return `/app/${route.page}`;
  }
}

let listener: (() => void) | null = null;
let shown = location.pathname;

/**
 * Render on every change of page. A change of the fragment alone (the skip link, or a link's
 * key being read) is not one: re-rendering then would lose what the page holds.
 */
export function onNavigate(render: () => void): void {
  listener = () => {
    shown = location.pathname;
    render();
  };
  window.addEventListener("popstate", () => {
    if (location.pathname !== shown) listener?.();
  });
}

export function go(route: Route, replaceState = false): void {
  const url = href(route);
  if (replaceState) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  listener?.();
}

/** A link that navigates inside the app without reloading the page. */
export function linkTo(route: Route, text: string, attrs: Record<string, string> = {}): HTMLAnchorElement {
  const a = document.createElement("a");
  a.href = href(route);
  a.textContent = text;
  for (const [k, v] of Object.entries(attrs)) a.setAttribute(k, v);
  a.addEventListener("click", (event) => {
    if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    go(route);
  });
  return a;
}

const NEXT = "pli:next";

/** Where to return after signing in and unlocking: a page of the app, never another site. */
export function rememberNext(pathname: string): void {
  const route = parse(pathname);
  if (["transfer", "outbox", "send", "keys", "links", "requests", "groups", "group"].includes(route.page)) sessionStorage.setItem(NEXT, href(route));
}

export function takeNext(): Route {
  const next = sessionStorage.getItem(NEXT);
  sessionStorage.removeItem(NEXT);
  const route = next ? parse(next) : { page: "inbox" as const };
  return route.page === "notfound" || route.page === "signin" || route.page === "unlock" ? { page: "inbox" } : route;
}
