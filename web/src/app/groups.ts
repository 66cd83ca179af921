/**
 * Sending to a group (docs/spec/groups.md): `group:ORGANISATION/GROUP` stands for the members
 * this browser proves, never for the list the server shows. For each group:
 *
 *   1. the server's answer (`GET /api/v1/groups/{org}/{group}`) comes with a signed key log
 *      head, accepted as for device keys (consistent with the head this browser kept);
 *   2. every device that signed a change has its bundle proved in that log;
 *   3. every change has its key log entry proved, rebuilt from the change itself;
 *   4. the chain of signed changes is replayed: that gives the members;
 *   4b. every change must be signed by a device this browser trusts for its signer: one it
 *      pinned for the account at some time (the account's keys are refreshed first, as for a
 *      send), or one the key log made active, and the change logged, before this browser first
 *      pinned the account (./trust.ts, `trustedSigner`). A device the server made up for an
 *      administrator, logged and at once marked removed so as never to be handed out with
 *      their keys, is neither (UnknownSigner);
 *   5. the chain must hold what this browser saw of the group before (`pli:group:<id>`), and
 *      the name must still lead to the group this browser saw under it (`pli:group-name:<name>`);
 *   6. each member's keys are then checked as any correspondent's (./trust.ts).
 *
 * The Groups page (./pages/groups.ts) shows a group as proved here, its history possibly still
 * empty, and lets its administrators sign changes (./membership.ts).
 */

import { IntegrityError, PliError, TrustError, UsageError } from "../crypto/errors.js";
import { checkExtends, claimed, expectedEntry, noMembersYet, parseName, pinOf, replayHistory, seqOf, type GroupPin, type GroupState, type Role } from "../crypto/groups.js";
import { checkLogged, provedEntry, TamperingError, type TreeHead } from "../crypto/keylog.js";
import { parseBundle, type Device, type Identity, type Signed } from "../crypto/keys.js";
import { call, path } from "./api.js";
import { acceptHead, keptHead, PinsDamaged, pinnedKeys, trustedSigner, type Keys } from "./trust.js";

/** `GET /api/v1/groups/{org}/{group}`: the group, its history and the proofs. */
export interface GroupAnswer {
  id: string;
  name: string;
  title?: string | null;
  organisation?: { slug?: string; name?: string } | null;
  /** The account the server's administrator named founder: trusted on first use only. */
  founder?: string | null;
  changes: unknown[];
  signers: { bundle: unknown; proof: unknown }[];
  entries: unknown[];
  log: { head: unknown; consistency: string[] | null };
}

/** A group whose members this browser proved. */
export interface ProvedGroup {
  id: string;
  name: string;
  members: ReadonlyMap<string, Role>;
  /** This browser had not seen the group before: its history is now pinned. */
  firstUse: boolean;
}

/** What a send names for one group: its name and the members it encrypted to. */
export interface GroupSend {
  name: string;
  members: string[];
}

/** Something about group `group` could not be proved: nothing is sent to it. */
export class GroupRefused extends PliError {
  override name = "GroupRefused";
  constructor(
    readonly group: string,
    readonly problem: PliError,
  ) {
    super(`group ${group}: ${problem.message}`);
  }
}

/** The server now answers the name of a group this browser used with another group. */
export class GroupReplaced extends TrustError {
  override name = "GroupReplaced";
  constructor(readonly group: string) {
    super(
      `group ${group} is not the group this browser sent to before: the server now gives it another identity ` +
        "and history. Ask its administrator whether it was recreated; if it was, forget it on the Groups page " +
        "and check its members before sending.",
    );
  }
}

/**
 * Change `seq` of group `group` is signed by device `device` of `email`, which this browser never
 * pinned for `email` and which the key log made active after it first pinned the account: a key
 * the server may have made up for an administrator to sign in whom it wants.
 */
export class UnknownSigner extends TamperingError {
  override name = "UnknownSigner";
  constructor(
    readonly group: string,
    readonly seq: number,
    readonly device: string,
    readonly email: string,
  ) {
    super(
      `change ${seq} of group ${group} is signed by device ${device} of ${email}, which this browser never saw among ` +
        `${email}'s keys and which the key log made active after it pinned them. Send nothing to this group; ask ${email} ` +
        "(checking their keys in the key log, on their Keys page, names a device they did not make) and tell your administrator.",
    );
  }
}

/** The keys of `email`, a member of group `group`, cannot be used as they are. */
export class MemberRefused extends TrustError {
  override name = "MemberRefused";
  constructor(
    readonly group: string,
    readonly email: string,
    readonly problem: TrustError,
  ) {
    super(`the keys of ${email}, a member of group ${group}, cannot be used: ${problem.message}`);
  }
}

/** Once groups are expanded, nobody but the sender is left to send to. */
export class NobodyToSend extends UsageError {
  constructor() {
    super("nobody but you is left to send to");
  }
}

const HEX32 = /^[0-9a-f]{32}$/;

export function isGroup(recipient: string): boolean {
  return recipient.startsWith("group:");
}

// --- what this browser keeps of each group ------------------------------------------------------

function pinKey(id: string): string {
  return `pli:group:${id}`;
}

function nameKey(name: string): string {
  return `pli:group-name:${name}`;
}

/** What this browser saw of group `id` before, or null; damage stops rather than re-pin. */
export function groupPin(id: string): GroupPin | null {
  const text = localStorage.getItem(pinKey(id));
  if (text === null) return null;
  try {
    const value = JSON.parse(text) as Partial<GroupPin>;
    const { genesis, seq, head } = value;
    if (typeof genesis === "string" && typeof head === "string" && typeof seq === "number" && Number.isInteger(seq) && seq >= 0) {
      return { genesis, seq, head };
    }
  } catch {
    // damaged: refused below
  }
  throw new PinsDamaged();
}

/** The id of the group this browser used under `name` (`org/group`), or null. */
export function pinnedId(name: string): string | null {
  const id = localStorage.getItem(nameKey(name));
  if (id !== null && !HEX32.test(id)) throw new PinsDamaged();
  return id;
}

/**
 * `state` against what this browser pinned: its name must lead to the group it led to before
 * (GroupReplaced), its chain must hold the changes pinned (TamperingError), even when the server
 * now shows none. Then its last change and its name are pinned, unless it has no change yet.
 * Whether it is the group's first use here.
 */
export function checkPinned(state: GroupState): boolean {
  const before = pinnedId(state.name);
  if (before !== null && before !== state.group) throw new GroupReplaced(state.name);
  const pinned = groupPin(state.group);
  if (pinned) checkExtends(state, pinned);
  if (state.digests.length === 0) return true;
  if (!pinned || pinned.seq < seqOf(state)) localStorage.setItem(pinKey(state.group), JSON.stringify(pinOf(state)));
  if (before === null) localStorage.setItem(nameKey(state.name), state.group);
  return pinned === null;
}

/** Drop what this browser pinned of group `name` (`org/group`): its name and its history, and
 * the history of the group `id` the server gives for it now, if any. Whether anything was. */
export function forgetGroup(name: string, id?: string): boolean {
  const keys = [nameKey(name), ...[localStorage.getItem(nameKey(name)), id].flatMap((g) => (g ? [pinKey(g)] : []))];
  const held = keys.filter((key) => localStorage.getItem(key) !== null);
  keys.forEach((key) => localStorage.removeItem(key));
  return held.length > 0;
}

// --- proving a group's members ------------------------------------------------------------------

/** A device that signed changes, its bundle proved in the key log, and the index of the key log
 * entry that made it active. */
interface Signer {
  device: Device;
  activated: number;
}

/** The devices that signed changes, by [email, device id], each proved under `head`. */
async function provedSigners(head: TreeHead, signers: unknown): Promise<Map<string, Signer>> {
  if (!Array.isArray(signers)) throw new IntegrityError("the server sent no signers' keys");
  const proved = new Map<string, Signer>();
  for (const item of signers as { bundle?: unknown; proof?: unknown }[]) {
    const device = await parseBundle(item?.bundle);
    const activated = checkLogged(head, device, item.bundle as Signed, item.proof);
    proved.set(JSON.stringify([device.email, device.device]), { device, activated });
  }
  return proved;
}

/** Every change's key log entry, rebuilt from the change, proved under `head`: their indexes. */
function checkEntries(head: TreeHead, name: string, changes: readonly unknown[], entries: unknown): number[] {
  if (!Array.isArray(entries) || entries.length !== changes.length) {
    throw new IntegrityError("the server sent no key log proof for some changes");
  }
  return changes.map((signed, seq) => {
    const want = expectedEntry(claimed(signed));
    const missing = new IntegrityError(`the key log does not hold change ${seq} of group ${name}`);
    const matches = (e: { event: string; group?: string; email: string; change?: string }) =>
      e.event === want.event && e.group === want.group && e.email === want.email && e.change === want.change;
    return provedEntry(head, entries[seq], matches, missing).index;
  });
}

/**
 * Every change of group `name` signed by a device this browser trusts for its signer, `me`'s
 * pins checked (./trust.ts, `trustedSigner`): each signer's keys are refreshed first, once per
 * account, as a send refreshes them (pinned on first use, a change the account approved
 * accepted), for a device since added with the account's approval to count. UnknownSigner
 * otherwise.
 */
async function checkSigners(me: string, name: string, changes: readonly unknown[], signerOf: (email: string, device: string) => Signer, logged: number[]): Promise<void> {
  const refreshed = new Set<string>();
  for (const [seq, signed] of changes.entries()) {
    const change = claimed(signed);
    if (!refreshed.has(change.by)) {
      await pinnedKeys(me, change.by);
      refreshed.add(change.by);
    }
    const { device, activated } = signerOf(change.by, change.device);
    if (!trustedSigner(me, change.by, device, activated, logged[seq] ?? Number.MAX_SAFE_INTEGER)) {
      throw new UnknownSigner(name, change.seq, change.device, change.by);
    }
  }
}

/** A group as this browser proved it: the server's answer, and the state its history makes. */
export interface ProvedHistory {
  answer: GroupAnswer;
  state: GroupState;
  /** This browser had not pinned the group's history before. */
  firstUse: boolean;
}

/**
 * Group `organisation/group`, its history replayed under the proofs the server gave (an empty
 * history is a group whose founder has not signed in its first member yet), every change signed
 * by a device the signed-in account `me` trusts for its signer, checked against what this
 * browser pinned, and pinned.
 */
export async function provedHistory(organisation: string, group: string, me: string): Promise<ProvedHistory> {
  const name = `${organisation}/${group}`;
  const kept = keptHead();
  const query = kept ? `?log_size=${kept.size}` : "";
  const answer = await call<GroupAnswer>("GET", path`/api/v1/groups/${organisation}/${group}` + query);
  if (typeof answer?.id !== "string" || !HEX32.test(answer.id) || answer.name !== name) {
    throw new IntegrityError("the server answered for another group");
  }
  const head = await acceptHead(answer.log?.head, answer.log?.consistency ?? null);
  const signers = await provedSigners(head, answer.signers);
  const signerOf = (email: string, device: string): Signer => {
    const found = signers.get(JSON.stringify([email, device]));
    if (!found) throw new IntegrityError(`the server did not prove the keys of device ${device} of ${email}, which signed a change`);
    return found;
  };
  const state = await replayHistory(answer.changes, answer.id, name, (email, device) => signerOf(email, device).device);
  const logged = checkEntries(head, name, answer.changes, answer.entries);
  await checkSigners(me, name, answer.changes, signerOf, logged);
  return { answer, state, firstUse: checkPinned(state) };
}

async function proving(organisation: string, group: string, me: string): Promise<ProvedGroup> {
  const { state, firstUse } = await provedHistory(organisation, group, me);
  if (state.digests.length === 0) throw noMembersYet(state.name);
  return { id: state.group, name: state.name, members: state.members, firstUse };
}

/** The members of group `text` (`group:org/group` or `org/group`), as this browser proves them
 * for the signed-in account `me`. */
export async function provedGroup(text: string, me: string): Promise<ProvedGroup> {
  const { organisation, group } = parseName(text);
  try {
    return await proving(organisation, group, me);
  } catch (error) {
    if (error instanceof PliError && !(error instanceof PinsDamaged)) throw new GroupRefused(`${organisation}/${group}`, error);
    throw error;
  }
}

// --- a send's recipients ------------------------------------------------------------------------

/** Who a send reaches: the accounts named directly, the members of each group, their keys. */
export interface Resolved {
  direct: Keys[];
  members: Keys[];
  groups: GroupSend[];
  /** The groups this browser sent to for the first time: their history is now pinned. */
  firstGroups: string[];
}

async function memberKeys(me: string, group: string, email: string): Promise<Keys> {
  try {
    return await pinnedKeys(me, email);
  } catch (error) {
    if (error instanceof TrustError && !(error instanceof PinsDamaged)) throw new MemberRefused(group, email, error);
    throw error;
  }
}

/**
 * The keys of every recipient in `to`: emails, and groups written `group:org/group`, whose
 * proved members are sent to but the sender and those in `without`. A member whose keys
 * cannot be used stops the send (MemberRefused), for the sender to go on without them or not.
 */
export async function resolveRecipients(me: Identity, to: readonly string[], without: ReadonlySet<string> = new Set()): Promise<Resolved> {
  const mine = me.device.email;
  const emails = [...new Set(to.filter((r) => !isGroup(r)))].sort();
  const direct = await Promise.all(emails.map((e) => pinnedKeys(mine, e)));
  const groups: GroupSend[] = [];
  const firstGroups: string[] = [];
  const wanted = new Map<string, string>();
  for (const text of new Set(to.filter(isGroup))) {
    const group = await provedGroup(text, mine);
    if (groups.some((g) => g.name === group.name)) continue;
    const members = [...group.members.keys()].filter((e) => e !== mine && !without.has(e)).sort();
    members.filter((e) => !emails.includes(e) && !wanted.has(e)).forEach((e) => wanted.set(e, group.name));
    groups.push({ name: group.name, members });
    if (group.firstUse) firstGroups.push(group.name);
  }
  const members = await Promise.all([...wanted].map(([email, group]) => memberKeys(mine, group, email)));
  if (direct.length + members.length === 0) throw new NobodyToSend();
  return { direct, members, groups, firstGroups };
}
