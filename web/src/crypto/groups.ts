/**
 * Signed group membership (docs/spec/groups.md), as pli.crypto.groups checks it:
 *
 *     change = {"doc": {"kind": "pli/group-change/v1", "group": id, "name": "org/group",
 *                       "seq": n, "prev": digest of change n-1 ("" for n = 0),
 *                       "action": "add" | "remove", "email", "role": "admin" | "member"
 *                       (add only), "by": signer's email, "device": signer's device id}, "sig"}
 *
 *     parseName(text)                      (organisation, group) of `group:org/group`
 *     digest(signed)                       SHA-256 hex of canonical(envelope)
 *     claimed(signed)                      the change, well formed, signature not yet checked
 *     replay(changes, group, name, keys)   the members the chain proves, or a refusal
 *     replayHistory(…)                     the same, an empty history allowed (no members)
 *     checkExtends(state, pinned)          the chain still holds what this browser saw before
 *     signChange(identity, state, …)       an administrator's next change
 *     applyChange(state, signed)           that change applied, its signature not checked
 *     expectedEntry(change)                the key log entry that records a change
 *
 * A malformed change or a bad signature is a SignatureError; a change out of order, of another
 * group, by a non-administrator or not allowed is an IntegrityError; a chain that no longer
 * holds the pinned changes is a TamperingError. Public keys only, except `signChange`.
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { hex } from "./b64.js";
import { canonical, hasMembers, isPlainObject, isWellFormed } from "./canonical.js";
import { IntegrityError, SignatureError, UsageError } from "./errors.js";
import { TamperingError, type KeyEvent } from "./keylog.js";
import { signDoc, verifyDoc, type Identity, type PublicKey, type Signed } from "./keys.js";

export const CHANGE_KIND = "pli/group-change/v1";
export const MAX_CHANGES = 10_000;

export type Role = "admin" | "member";
export type Action = "add" | "remove";

const SLUG = "[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?";
const NAME = new RegExp(`^(${SLUG})/(${SLUG})$`);
const HEX32 = /^[0-9a-f]{32}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const COMMON = ["kind", "group", "name", "seq", "prev", "action", "email", "by", "device"] as const;
/** What Python's `str.strip()` removes: the characters `str.isspace()` accepts. */
const SPACE = "[\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
const EDGES = new RegExp(`^${SPACE}+|${SPACE}+$`, "g");

/** One change of a group's membership, as its signed document states it. */
export interface Change {
  group: string;
  name: string;
  seq: number;
  prev: string;
  action: Action;
  email: string;
  role: Role | null;
  by: string;
  device: string;
  signed: Signed;
}

/**
 * A group's membership after its changes so far: `members` (email -> role) and `digests`, the
 * digest of every change in order; `seq` is the last one's position, `head` its digest.
 */
export interface GroupState {
  group: string;
  name: string;
  members: Map<string, Role>;
  digests: string[];
}

/** What a browser keeps of a group at its first use: change 0 and the last change replayed. */
export interface GroupPin {
  genesis: string;
  seq: number;
  head: string;
}

/** The public bundle of device `device` of account `email`, proved in the key log by the
 * caller; a SignatureError if it has none. */
export type SignerKeys = (email: string, device: string) => PublicKey | Promise<PublicKey>;

/** A new, empty state of group `group` named `name`. */
export function emptyState(group: string, name: string): GroupState {
  return { group, name, members: new Map(), digests: [] };
}

/** The position of the last change of `state`: -1 before change 0. */
export function seqOf(state: GroupState): number {
  return state.digests.length - 1;
}

/** The digest of the last change of `state`, "" before change 0. */
export function headOf(state: GroupState): string {
  return state.digests[state.digests.length - 1] ?? "";
}

/** The administrators of `state`, sorted. */
export function admins(state: GroupState): string[] {
  return [...state.members].filter(([, role]) => role === "admin").map(([email]) => email).sort();
}

/** Python's `text.strip().lower()`: how an email is written in a change. */
export function normalEmail(text: string): string {
  return text.replace(EDGES, "").toLowerCase();
}

/** (organisation, group) of `org/group`, a leading `group:` allowed; a UsageError otherwise. */
export function parseName(text: string): { organisation: string; group: string } {
  const name = normalEmail(text.startsWith("group:") ? text.slice("group:".length) : text);
  const match = NAME.exec(name);
  if (!match?.[1] || !match[2]) {
    throw new UsageError(
      `${JSON.stringify(text)} is not a group name: write ORGANISATION/GROUP, e.g. group:ars-idf/veille ` +
        "(lowercase letters, digits and hyphens)",
    );
  }
  return { organisation: match[1], group: match[2] };
}

/** SHA-256 of the change's stored form, canonical(envelope), in hex: what the next change and
 * the key log entry commit to. */
export function digest(signed: unknown): string {
  return hex(sha256(canonical(signed)));
}

function validEmail(value: string): boolean {
  const length = Array.from(value).length;
  return length > 0 && length <= 254 && isWellFormed(value) && value === normalEmail(value) && value.includes("@");
}

function isSeq(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 && value < MAX_CHANGES;
}

/** Whether `doc` has exactly the members and forms of a change (docs/spec/groups.md rule 1). */
function wellFormed(doc: Record<string, unknown>): boolean {
  const { action, seq, prev, role } = doc;
  const names: readonly string[] = action === "add" ? [...COMMON, "role"] : COMMON;
  if (!hasMembers(doc, names) || (action !== "add" && action !== "remove") || !isSeq(seq)) return false;
  if (!names.every((name) => name === "seq" || typeof doc[name] === "string")) return false;
  const text = doc as Record<string, string>;
  return (
    HEX32.test(text.group ?? "") &&
    HEX32.test(text.device ?? "") &&
    NAME.test(text.name ?? "") &&
    (seq === 0 ? prev === "" : HEX64.test(text.prev ?? "")) &&
    (action !== "add" || role === "admin" || role === "member") &&
    validEmail(text.email ?? "") &&
    validEmail(text.by ?? "")
  );
}

/**
 * The change `signed` states, well formed but its signature not yet checked: to find the key
 * to check it with. A SignatureError if it is malformed.
 */
export function claimed(signed: unknown): Change {
  const envelope = isPlainObject(signed) && hasMembers(signed, ["doc", "sig"]) ? signed : null;
  const doc = envelope?.doc;
  const sig = envelope?.sig;
  if (!isPlainObject(doc) || doc.kind !== CHANGE_KIND || !wellFormed(doc) || typeof sig !== "string") {
    throw new SignatureError("malformed group change");
  }
  const text = doc as Record<string, string>;
  return {
    group: text.group ?? "",
    name: text.name ?? "",
    seq: doc.seq as number,
    prev: text.prev ?? "",
    action: doc.action as Action,
    email: text.email ?? "",
    role: doc.action === "add" ? (doc.role as Role) : null,
    by: text.by ?? "",
    device: text.device ?? "",
    signed: { doc, sig },
  };
}

function lastAdmin(members: ReadonlyMap<string, Role>, email: string): boolean {
  return members.get(email) === "admin" && [...members.values()].filter((r) => r === "admin").length === 1;
}

/** Rule 4: who may sign `change` in `state`. */
function checkSigner(state: GroupState, change: Change): void {
  if (change.seq === 0) {
    if (change.action !== "add" || change.role !== "admin" || change.email !== change.by) {
      throw new IntegrityError(`group ${state.name} does not start with its founding administrator`);
    }
  } else if (state.members.get(change.by) !== "admin") {
    throw new IntegrityError(`${change.by} changed group ${state.name} without being one of its administrators`);
  }
}

/** Apply `change` to `state` in place; an IntegrityError if the group must refuse it (rules 4, 5). */
function apply(state: GroupState, change: Change): void {
  checkSigner(state, change);
  const members = state.members;
  const current = members.get(change.email);
  if (change.action === "add") {
    if (current === change.role) throw new IntegrityError(`${change.email} is already a ${change.role} of ${state.name}`);
    if (lastAdmin(members, change.email)) throw new IntegrityError(`group ${state.name} would be left without an administrator`);
    members.set(change.email, change.role ?? "member");
    return;
  }
  if (current === undefined) throw new IntegrityError(`${change.email} is not a member of ${state.name}`);
  if (lastAdmin(members, change.email)) throw new IntegrityError(`group ${state.name} would be left without an administrator`);
  members.delete(change.email);
}

/** Rule 2: `change` is the next change of the group `state` is. */
function checkPlace(state: GroupState, change: Change): void {
  if (change.group !== state.group || change.name !== state.name) {
    throw new IntegrityError(`the server mixed a change of another group into ${state.name}`);
  }
  if (change.seq !== state.digests.length || change.prev !== headOf(state)) {
    throw new IntegrityError(
      `the membership history of group ${state.name} is out of order or has a gap at change ${state.digests.length}`,
    );
  }
}

/** Rule 3: `change` is signed by the device it names, under a bundle the caller proved. */
async function checkSignature(state: GroupState, change: Change, signerKeys: SignerKeys): Promise<void> {
  const bundle = await signerKeys(change.by, change.device);
  if (bundle.email !== change.by || bundle.device !== change.device) {
    throw new SignatureError(`change ${change.seq} of group ${state.name} names another signer`);
  }
  await verifyDoc(CHANGE_KIND, change.signed, bundle.ed25519);
}

/**
 * The membership `changes` make of group `group` named `name`: each change well formed, in
 * sequence, linked to the one before, signed by a device of an administrator of the group as
 * it stood before it, and allowed. An IntegrityError or a SignatureError otherwise, and an
 * IntegrityError for a group without any change (nobody to send to yet).
 */
export async function replay(
  changes: readonly unknown[],
  group: string,
  name: string,
  signerKeys: SignerKeys,
): Promise<GroupState> {
  const state = await replayHistory(changes, group, name, signerKeys);
  if (state.digests.length === 0) throw noMembersYet(name);
  return state;
}

/** The refusal of a group without any signed change: nobody to send to until its founder
 * signs change 0. */
export function noMembersYet(name: string): IntegrityError {
  return new IntegrityError(`group ${name} has no signed members yet: its administrator adds the first members`);
}

/**
 * `replay`, but a history without any change is a group without members, whose founder has
 * not signed its first change yet (what its administration starts from), not a refusal.
 */
export async function replayHistory(
  changes: readonly unknown[],
  group: string,
  name: string,
  signerKeys: SignerKeys,
): Promise<GroupState> {
  if (!Array.isArray(changes) || changes.length > MAX_CHANGES) {
    throw new IntegrityError(`the server sent a malformed membership history for group ${name}`);
  }
  const state = emptyState(group, name);
  for (const signed of changes) {
    const change = claimed(signed);
    checkPlace(state, change);
    await checkSignature(state, change, signerKeys);
    apply(state, change);
    state.digests.push(digest(change.signed));
  }
  return state;
}

/**
 * For a browser that pinned change `pinned.seq` (digest `pinned.head`) and change 0 (digest
 * `pinned.genesis`) of the group: `state`'s chain must hold both, else the server rewrote the
 * group's history or hid its recent changes (a TamperingError naming the group).
 */
export function checkExtends(state: GroupState, pinned: GroupPin): void {
  const { digests } = state;
  if (digests[0] !== pinned.genesis || pinned.seq >= digests.length || digests[pinned.seq] !== pinned.head) {
    throw new TamperingError(
      `the membership history of group ${state.name} differs from the one this browser saw before: ` +
        "the server rewrote it or hid recent changes. Send nothing to this group and tell your administrator.",
    );
  }
}

/** What a browser pins of `state`: change 0 and the last change. */
export function pinOf(state: GroupState): GroupPin {
  return { genesis: state.digests[0] ?? "", seq: seqOf(state), head: headOf(state) };
}

/**
 * `identity`'s next change to the group in `state`: `add` (with `role`, "member" unless
 * given) or `remove` of `email`. Checked as a replay would check it, so that a change the group
 * would refuse is never sent: an IntegrityError then.
 */
export async function signChange(
  identity: Identity,
  state: GroupState,
  action: Action,
  email: string,
  role?: Role,
): Promise<Signed> {
  const doc: Record<string, unknown> = {
    kind: CHANGE_KIND,
    group: state.group,
    name: state.name,
    seq: seqOf(state) + 1,
    prev: headOf(state),
    action,
    email: normalEmail(email),
    by: identity.device.email,
    device: identity.device.device,
  };
  if (action === "add") doc.role = role ?? "member";
  const signed = await signDoc(CHANGE_KIND, doc, identity.seed);
  applyChange(copyState(state), signed);
  return signed;
}

/** A copy of `state` that changes apply to without touching `state`. */
export function copyState(state: GroupState): GroupState {
  return { ...state, members: new Map(state.members), digests: [...state.digests] };
}

/**
 * Apply `signed`, the next change of the group in `state`, to `state` in place: well formed, in
 * place in the chain, by an administrator and allowed (its signature is the caller's to check:
 * `replay` does). A SignatureError or an IntegrityError if the group must refuse it.
 */
export function applyChange(state: GroupState, signed: unknown): void {
  const change = claimed(signed);
  checkPlace(state, change);
  apply(state, change);
  state.digests.push(digest(change.signed));
}

/** The key log entry that records `change` (docs/spec/groups.md, "The key log"), but its time. */
export function expectedEntry(change: Change): { event: KeyEvent; group: string; email: string; change: string } {
  const event: KeyEvent = change.action === "add" ? "group-member-added" : "group-member-removed";
  return { event, group: change.group, email: change.email, change: digest(change.signed) };
}
