/**
 * Sending to a group (docs/spec/groups.md): `group:ORGANISATION/GROUP` stands for the members
 * this browser proves, never for the list the server shows. For each group:
 *
 *   1. the server's answer (`GET /api/v1/groups/{org}/{group}`) comes with a signed key log
 *      head, accepted as for device keys (consistent with the head this browser kept);
 *   2. every device that signed a change has its bundle proved in that log;
 *   3. every change has its key log entry proved, rebuilt from the change itself;
 *   4. the chain of signed changes is replayed: that gives the members;
 *   5. the chain must hold what this browser saw of the group before (`pli:group:<id>`);
 *   6. each member's keys are then checked as any correspondent's (./trust.ts).
 */

import { IntegrityError, PliError, TrustError, UsageError } from "../crypto/errors.js";
import { checkExtends, claimed, expectedEntry, parseName, pinOf, replay, type GroupPin, type GroupState, type Role } from "../crypto/groups.js";
import { checkEntry, checkLogged, type TreeHead } from "../crypto/keylog.js";
import { parseBundle, type Device, type Identity, type Signed } from "../crypto/keys.js";
import { call, path } from "./api.js";
import { acceptHead, keptHead, PinsDamaged, pinnedKeys, type Keys } from "./trust.js";

/** `GET /api/v1/groups/{org}/{group}`: the group, its history and the proofs. */
export interface GroupAnswer {
  id: string;
  name: string;
  title?: string | null;
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

/** The chain must hold what was pinned; then its last change is pinned. Whether it was the
 * group's first use here. */
function checkPinned(state: GroupState): boolean {
  const pinned = groupPin(state.group);
  if (pinned) checkExtends(state, pinned);
  if (!pinned || pinned.seq < state.digests.length - 1) localStorage.setItem(pinKey(state.group), JSON.stringify(pinOf(state)));
  return pinned === null;
}

// --- proving a group's members ------------------------------------------------------------------

/** The devices that signed changes, each bundle proved in the key log under `head`. */
async function provedSigners(head: TreeHead, signers: unknown): Promise<Map<string, Device>> {
  if (!Array.isArray(signers)) throw new IntegrityError("the server sent no signers' keys");
  const proved = new Map<string, Device>();
  for (const item of signers as { bundle?: unknown; proof?: unknown }[]) {
    const device = await parseBundle(item?.bundle);
    checkLogged(head, device, item.bundle as Signed, item.proof);
    proved.set(JSON.stringify([device.email, device.device]), device);
  }
  return proved;
}

/** Every change's key log entry, rebuilt from the change, proved under `head`. */
function checkEntries(head: TreeHead, name: string, changes: readonly unknown[], entries: unknown): void {
  if (!Array.isArray(entries) || entries.length !== changes.length) {
    throw new IntegrityError("the server sent no key log proof for some changes");
  }
  changes.forEach((signed, seq) => {
    const want = expectedEntry(claimed(signed));
    const missing = new IntegrityError(`the key log does not hold change ${seq} of group ${name}`);
    const matches = (e: { event: string; group?: string; email: string; change?: string }) =>
      e.event === want.event && e.group === want.group && e.email === want.email && e.change === want.change;
    checkEntry(head, entries[seq], matches, missing);
  });
}

async function proving(organisation: string, group: string): Promise<ProvedGroup> {
  const name = `${organisation}/${group}`;
  const kept = keptHead();
  const query = kept ? `?log_size=${kept.size}` : "";
  const answer = await call<GroupAnswer>("GET", path`/api/v1/groups/${organisation}/${group}` + query);
  if (typeof answer?.id !== "string" || !HEX32.test(answer.id) || answer.name !== name) {
    throw new IntegrityError("the server answered for another group");
  }
  const head = await acceptHead(answer.log?.head, answer.log?.consistency ?? null);
  const signers = await provedSigners(head, answer.signers);
  const signerKeys = (email: string, device: string): Device => {
    const found = signers.get(JSON.stringify([email, device]));
    if (!found) throw new IntegrityError(`the server did not prove the keys of device ${device} of ${email}, which signed a change`);
    return found;
  };
  const state = await replay(answer.changes, answer.id, name, signerKeys);
  checkEntries(head, name, answer.changes, answer.entries);
  const firstUse = checkPinned(state);
  return { id: answer.id, name, members: state.members, firstUse };
}

/** The members of group `text` (`group:org/group` or `org/group`), as this browser proves them. */
export async function provedGroup(text: string): Promise<ProvedGroup> {
  const { organisation, group } = parseName(text);
  try {
    return await proving(organisation, group);
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
    const group = await provedGroup(text);
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
