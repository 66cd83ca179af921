/**
 * A group's members as the Groups page shows them, and its administration from the browser, as
 * `pli groups show|add|remove` do it (pli.client.sdk.Client.group and change_group):
 *
 *   - the members shown are those the group's signed history proves here (./groups.ts), never
 *     the list the server sends along, and viewing a group pins its history as a send does;
 *   - a change is signed here, by the unlocked device, against the history just proved, and
 *     checked as the group would check it before anything is posted
 *     (`POST /api/v1/groups/{org}/{group}/changes`); the group is then proved again, and must
 *     hold what was posted;
 *   - on a group without any change yet, its founder's first change comes after change 0: the
 *     founder, added as administrator.
 */

import { IntegrityError, SignatureError, UsageError } from "../crypto/errors.js";
import { applyChange, claimed, copyState, digest, normalEmail, parseName, signChange, type Action, type GroupState, type Role } from "../crypto/groups.js";
import { TamperingError } from "../crypto/keylog.js";
import type { Identity, Signed } from "../crypto/keys.js";
import { call, path } from "./api.js";
import { provedHistory } from "./groups.js";

/** A group as the Groups page shows it: what the server says of it, and what is proved. */
export interface GroupView {
  id: string;
  /** `org/group` */
  name: string;
  title: string;
  organisation: string;
  /** Who signed change 0; before it, the account the server says its administrator named. */
  founder: string;
  /** Whether `founder` is proved (the signer of change 0), not only the server's word. */
  founderProved: boolean;
  /** The members, administrators and history its signed changes prove. */
  state: GroupState;
  /** This browser had not pinned the group's history before. */
  firstUse: boolean;
}

/** A group the signed-in account belongs to, as the server lists it. */
export interface OwnGroup {
  name: string;
  title: string;
  role: Role;
}

/** Group `text` (`org/group` or `group:org/group`), proved for the signed-in account `me` and
 * pinned. */
export async function viewGroup(text: string, me: string): Promise<GroupView> {
  const { organisation, group } = parseName(text);
  const { answer, state, firstUse } = await provedHistory(organisation, group, me);
  const str = (value: unknown): string => (typeof value === "string" ? value : "");
  const founding = state.digests.length ? claimed(answer.changes[0]).by : null;
  return {
    id: state.group,
    name: state.name,
    title: str(answer.title),
    organisation: str(answer.organisation?.name) || organisation,
    founder: founding ?? normalEmail(str(answer.founder)),
    founderProved: founding !== null,
    state,
    firstUse,
  };
}

/** Whether `email` may sign the group's next change: one of its proved administrators, or its
 * founder while its history is empty. The server checks it again. */
export function canAdminister(view: GroupView, email: string): boolean {
  const me = normalEmail(email);
  if (view.state.digests.length === 0) return view.founder !== "" && view.founder === me;
  return view.state.members.get(me) === "admin";
}

/** `identity`'s next change to the group in `state`, applied to `state`; a change the group
 * would refuse is a UsageError instead, for nothing to be posted. */
async function nextChange(identity: Identity, state: GroupState, action: Action, email: string, role?: Role): Promise<Signed> {
  try {
    const signed = await signChange(identity, state, action, email, role);
    applyChange(state, signed);
    return signed;
  } catch (error) {
    if (error instanceof IntegrityError || error instanceof SignatureError) throw new UsageError(`group ${state.name}: ${error.message}`);
    throw error;
  }
}

/** The changes `changeGroup` posts, in order, signed and checked against `view`. */
async function changesFor(me: Identity, view: GroupView, action: Action, email: string, role?: Role): Promise<Signed[]> {
  const mine = me.device.email;
  const state = copyState(view.state);
  const changes: Signed[] = [];
  let asked = true;
  if (state.digests.length === 0) {
    if (view.founder !== mine) throw new UsageError(`group ${view.name} has no members yet: only its founder starts it`);
    changes.push(await nextChange(me, state, "add", mine, "admin"));
    asked = !(action === "add" && normalEmail(email) === mine && (role ?? "admin") === "admin");
  }
  if (asked) changes.push(await nextChange(me, state, action, email, role));
  return changes;
}

/**
 * As an administrator of group `text`, sign and post one change: add `email` (or change its
 * role; "member" unless `role` says), or remove it. On a group without any change yet, its
 * founder's change is preceded by change 0, which adds the founder as administrator (and is all
 * there is to do if that is the change asked). The group as it is afterwards, which must hold
 * every change posted (a TamperingError otherwise).
 */
export async function changeGroup(me: Identity, text: string, action: Action, email: string, role?: Role): Promise<GroupView> {
  if (!normalEmail(email).includes("@")) throw new UsageError(`${JSON.stringify(email)} is not an email address`);
  const view = await viewGroup(text, me.device.email);
  const changes = await changesFor(me, view, action, email, role);
  const { organisation, group } = parseName(view.name);
  for (const change of changes) await call("POST", path`/api/v1/groups/${organisation}/${group}/changes`, { change });
  const after = await viewGroup(view.name, me.device.email);
  if (changes.some((change) => after.state.digests[claimed(change).seq] !== digest(change))) {
    throw new TamperingError(`the server accepted a change to group ${view.name} but does not show it: tell your administrator`);
  }
  return after;
}

/** The groups the signed-in account belongs to (`GET /api/v1/me/groups`), by name. */
export async function myGroups(): Promise<OwnGroup[]> {
  const answer = await call<{ items?: unknown }>("GET", "/api/v1/me/groups");
  const items = Array.isArray(answer?.items) ? (answer.items as Partial<OwnGroup>[]) : [];
  return items
    .filter((g): g is OwnGroup => typeof g?.name === "string" && typeof g.title === "string" && (g.role === "admin" || g.role === "member"))
    .sort((a, b) => a.name.localeCompare(b.name));
}
