/**
 * Groups: the ones the account belongs to, and a group's page, which shows its members as this
 * browser proves them from the group's signed history (never the list the server sends along),
 * its founder and its history's digest. Its administrators (or its founder, before anyone was
 * added) add and remove members there, each change signed here (../membership.ts); anyone can
 * make this browser forget what it pinned of the group, after its administrator recreated it.
 */

import { PliError } from "../../crypto/errors.js";
import { headOf, normalEmail, parseName, type Action, type Role } from "../../crypto/groups.js";
import type { Identity } from "../../crypto/keys.js";
import { field, h, replace, status } from "../dom.js";
import { forgetGroup, GroupReplaced, UnknownSigner } from "../groups.js";
import { failure, t } from "../i18n.js";
import { canAdminister, changeGroup, myGroups, viewGroup, type GroupView, type OwnGroup } from "../membership.js";
import { go, linkTo, type Route } from "../router.js";
import { signedIn, unlocked } from "../state.js";
import { KeysChanged } from "../trust.js";
import { keysChanged } from "./changed.js";

function routeOf(name: string): Route {
  const { organisation, group } = parseName(name);
  return { page: "group", organisation, group };
}

// --- the list ------------------------------------------------------------------------------------

export function groupsPage(): HTMLElement {
  const list = h("div", {}, t("loading"));
  void myGroups().then(
    (groups) => replace(list, groups.length ? groupTable(groups) : h("p", {}, t("noGroups"))),
    (error: unknown) => replace(list, status("error", failure(error))),
  );
  return h("section", {}, h("h1", {}, t("groupsTitle")), h("p", { class: "hint" }, t("groupsIntro")), list, ...openForm());
}

function groupTable(groups: OwnGroup[]): HTMLElement {
  const head = h("tr", {}, ...[t("group"), t("groupTitle"), t("yourRole")].map((text) => h("th", { scope: "col" }, text)));
  const rows = groups.map((g) =>
    h("tr", {}, h("th", { scope: "row" }, linkTo(routeOf(g.name), g.name)), h("td", {}, g.title), h("td", {}, t(`role_${g.role}`))),
  );
  return h("table", { class: "groups" }, h("thead", {}, head), h("tbody", {}, ...rows));
}

/** A group by its name: the way to a group its founder has not added anyone to yet. */
function openForm(): HTMLElement[] {
  const input = h("input", { type: "text", name: "group", autocomplete: "off", spellcheck: "false", required: true });
  const line = h("div", { "aria-live": "polite" });
  const form = h("form", { novalidate: true }, field(t("groupNameLabel"), input, t("groupNameHint")), line, h("button", { type: "submit" }, t("openGroup")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    let route: Route;
    try {
      route = routeOf(input.value);
    } catch {
      return replace(line, status("error", t("badGroupName")));
    }
    go(route);
  });
  return [h("h2", {}, t("openGroupTitle")), form];
}

// --- a group -------------------------------------------------------------------------------------

/** What the parts of a group's page share. */
interface Shown {
  name: string;
  me: Identity | null;
  /** The signed-in account, whose pins the group is proved against. */
  account: string;
  /** The group's facts, members and form, as last proved. */
  body: HTMLElement;
  /** What the last action did. */
  line: HTMLElement;
  /** The group's id, once proved. */
  id: string | null;
  /** Prove the group again and show it, after `notices`. */
  reload(...notices: HTMLElement[]): void;
}

export function groupPage(organisation: string, group: string): HTMLElement {
  const name = `${organisation}/${group}`;
  const me = unlocked();
  const shown: Shown = {
    name,
    me,
    account: me?.device.email ?? signedIn() ?? "",
    body: h("div", {}, t("loading")),
    line: h("div", { "aria-live": "polite" }),
    id: null,
    reload: (...notices) =>
      void viewGroup(name, shown.account).then(
        (view) => show(shown, view, notices),
        (error: unknown) => replace(shown.body, ...notices, groupFailure(error, name, shown.account)),
      ),
  };
  shown.reload();
  const heading = h("h1", {}, t("groupHeading", { group: name }));
  return h("section", {}, heading, h("p", {}, linkTo({ page: "groups" }, t("allGroups"))), shown.line, shown.body, ...forgetting(shown));
}

/** What went wrong, said for this group; a signer whose keys changed can be trusted again here. */
function groupFailure(error: unknown, group: string, me: string): HTMLElement {
  if (error instanceof GroupReplaced) return status("error", t("groupReplaced", { group }));
  if (error instanceof UnknownSigner) return status("error", t("unknownSigner", { seq: String(error.seq), group: error.group, device: error.device, email: error.email }));
  if (error instanceof KeysChanged) return keysChanged(error, me);
  if (error instanceof PliError) return status("error", t("failed", { reason: error.message }));
  return status("error", failure(error));
}

function show(shown: Shown, view: GroupView, notices: HTMLElement[]): void {
  shown.id = view.id;
  const admin = shown.me !== null && canAdminister(view, shown.me.device.email);
  replace(
    shown.body,
    ...notices,
    view.firstUse && view.state.digests.length > 0 ? status("info", t("firstGroupView", { group: view.name })) : null,
    facts(view),
    h("h2", {}, t("members")),
    h("p", { class: "hint" }, t("membersProved")),
    membersTable(shown, view, admin),
    ...(admin ? addForm(shown, view) : []),
  );
}

function facts(view: GroupView): HTMLElement {
  const count = view.state.digests.length;
  const history = count ? [h("code", {}, `${headOf(view.state).slice(0, 16)}…`), " ", t("historyShort", { count: String(count) })] : [t("historyEmpty")];
  const fact = (term: string, ...value: (Node | string)[]) => [h("dt", {}, term), h("dd", {}, ...value)];
  return h(
    "dl",
    { class: "facts" },
    ...fact(t("groupTitle"), view.title || "—"),
    ...fact(t("organisation"), view.organisation),
    ...fact(t("founder"), view.founder || "—", view.founderProved ? "" : ` ${t("namedByServer")}`),
    ...fact(t("history"), ...history),
  );
}

function membersTable(shown: Shown, view: GroupView, admin: boolean): HTMLElement {
  const members = [...view.state.members].sort(([a], [b]) => a.localeCompare(b));
  if (!members.length) return h("p", {}, t("noMembersYet"));
  const head = h("tr", {}, h("th", { scope: "col" }, t("email")), h("th", { scope: "col" }, t("role")), admin ? h("th", { scope: "col" }, t("actions")) : null);
  const rows = members.map(([email, role]) =>
    h("tr", {}, h("th", { scope: "row" }, email), h("td", {}, t(`role_${role}`)), admin ? h("td", {}, removeButton(shown, email)) : null),
  );
  return h("table", { class: "members" }, h("thead", {}, head), h("tbody", {}, ...rows));
}

function removeButton(shown: Shown, email: string): HTMLButtonElement {
  const button = h("button", { type: "button", class: "secondary", "aria-label": t("removeMember", { email }) }, t("remove"));
  button.addEventListener("click", () => change(shown, button, "remove", email));
  return button;
}

function addForm(shown: Shown, view: GroupView): HTMLElement[] {
  const email = h("input", { type: "email", name: "member-email", autocomplete: "off", required: true });
  const admin = h("input", { type: "checkbox", name: "admin", id: "member-admin" });
  const submit = h("button", { type: "submit" }, t("add"));
  const form = h("form", { novalidate: true }, field(t("email"), email), h("p", {}, admin, " ", h("label", { for: admin.id }, t("asAdmin"))), submit);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!email.value.trim()) return replace(shown.line, status("error", t("needEmail")));
    change(shown, submit, "add", email.value, admin.checked ? "admin" : "member");
  });
  const hint = view.state.digests.length === 0 ? t("founderFirst") : t("addMemberHint");
  return [h("h2", {}, t("addMember")), h("p", { class: "hint" }, hint), form];
}

/** Sign and post one change, then show the group as it is now; on a refusal, show why and the
 * group as it is (a founder's change 0 may have gone through). */
function change(shown: Shown, button: HTMLButtonElement, action: Action, email: string, role?: Role): void {
  const me = shown.me;
  if (!me) return;
  button.disabled = true;
  replace(shown.line, status("info", t("signingChange")));
  const values = { email: normalEmail(email), group: shown.name };
  const done = action === "remove" ? t("memberRemoved", values) : role === "admin" ? t("adminAdded", values) : t("memberAdded", values);
  changeGroup(me, shown.name, action, email, role)
    .then(
      (view) => {
        replace(shown.line, status("ok", done));
        show(shown, view, []);
      },
      (error: unknown) => {
        replace(shown.line, groupFailure(error, shown.name, shown.account));
        shown.reload();
      },
    )
    .finally(() => (button.disabled = false));
}

/** Forget what this browser pinned of the group, once the user confirmed it. */
function forgetting(shown: Shown): HTMLElement[] {
  const ask = h("button", { type: "button", class: "secondary" }, t("forgetGroup"));
  const yes = h("button", { type: "button" }, t("forgetYes"));
  const no = h("button", { type: "button", class: "secondary" }, t("cancel"));
  const confirm = h("div", { class: "confirm", hidden: true }, h("p", {}, t("forgetConfirm", { group: shown.name })), h("div", { class: "actions" }, yes, no));
  const asking = (open: boolean): void => {
    confirm.hidden = !open;
    ask.hidden = open;
    (open ? yes : ask).focus();
  };
  ask.addEventListener("click", () => asking(true));
  no.addEventListener("click", () => asking(false));
  yes.addEventListener("click", () => {
    forgetGroup(shown.name, shown.id ?? undefined);
    asking(false);
    replace(shown.line);
    shown.reload(status("info", t("forgotten", { group: shown.name })));
  });
  return [h("h2", {}, t("forgetTitle")), h("p", { class: "hint" }, t("forgetIntro")), ask, confirm];
}
