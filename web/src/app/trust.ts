/**
 * Whose keys this browser trusts, as `pli` does (docs/spec/keys.md, "What a client checks"):
 * the first time, an account's set of device keys is pinned, unverified, and the user is told;
 * afterwards the server must return exactly that set, or sending and receiving with that account
 * stop until the user, shown the old and new fingerprints, trusts the new set. Pins are kept in
 * this browser's `localStorage`, per signed-in account; full keys, never fingerprints. Every key
 * must also be proved to be in the server's key log, against a head consistent with the last one
 * this browser verified; a new device its account approved, or a device that left, is accepted
 * without asking, as `pli` accepts it. Beside the pins, every device key ever pinned for an
 * account and the key log's size at its first pin are kept: a group change must be signed by
 * one of those devices, or by one older than that first pin (`trustedSigner`).
 */

import { fromHex } from "../crypto/b64.js";
import { IntegrityError, SignatureError, TrustError } from "../crypto/errors.js";
import { advance, checkLogged, logId, parseHead, TamperingError, type TreeHead } from "../crypto/keylog.js";
import { parseBundle, type Device, type Identity, type PublicKey, type Signed } from "../crypto/keys.js";
import { call, path, type DeviceKeys } from "./api.js";
import { checkApproval } from "../crypto/devices.js";

export class KeysChanged extends TrustError {
  constructor(
    readonly email: string,
    readonly pinned: PublicKey[],
    readonly offered: Device[],
  ) {
    super(`the keys of ${email} changed`);
  }
}

export class PinsDamaged extends TrustError {
  constructor() {
    super("this browser's record of your correspondents' keys is damaged: nothing is sent or opened until it is repaired");
  }
}

export interface Keys {
  email: string;
  devices: Device[];
  firstUse: boolean;
}

function store(me: string): string {
  return `pli:pins:${me}`;
}

function isKey(value: unknown): value is PublicKey {
  if (!value || typeof value !== "object") return false;
  const k = value as Record<string, unknown>;
  return ["email", "device", "age", "ed25519"].every((name) => typeof k[name] === "string");
}

/** Every pin of this account, checked: damage stops everything rather than re-pin silently. */
export function pins(me: string): Map<string, PublicKey[]> {
  return storedMap<PublicKey[]>(store(me), (keys) => Array.isArray(keys) && keys.every(isKey));
}

/** A map kept in localStorage under `key`, every value checked by `valid`: damage stops
 * everything (PinsDamaged) rather than re-pin silently. */
function storedMap<T>(key: string, valid: (value: unknown) => boolean): Map<string, T> {
  const text = localStorage.getItem(key);
  if (text === null) return new Map();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new PinsDamaged();
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) throw new PinsDamaged();
  const entries = Object.entries(value as Record<string, unknown>);
  if (!entries.every(([, item]) => valid(item))) throw new PinsDamaged();
  return new Map(entries as [string, T][]);
}

/**
 * Pin `devices` for `email`. Kept beside the pins, as `pli` keeps them: every device key ever
 * pinned for the account, and the size of the key log head this browser held when it first
 * pinned it (see `PinHistory`).
 */
export function pin(me: string, email: string, devices: PublicKey[]): void {
  const all = pins(me);
  const before = all.get(email);
  const kept = histories(me);
  const history = kept.get(email) ?? historyOf(before, keptHead()?.size ?? 0);
  const seen = new Map([...history.seen, ...devices.map((d): [string, string] => [d.device, d.ed25519])].map((k) => [JSON.stringify(k), k]));
  kept.set(email, { seen: [...seen.values()].sort(([a], [b]) => a.localeCompare(b)), since: history.since });
  all.set(email, devices.map(({ email: e, device, age, ed25519 }) => ({ email: e, device, age, ed25519 })));
  // The pins first: should the second write fail, a pin without its history counts as one
  // made before histories were kept, which trusts fewer signers, not more.
  localStorage.setItem(store(me), JSON.stringify(Object.fromEntries(all)));
  localStorage.setItem(historyStore(me), JSON.stringify(Object.fromEntries(kept)));
}

// --- what was ever pinned: the signers of a group's changes -------------------------------------

/**
 * What this browser ever pinned for an account, beside its current pins: every device key it
 * pinned (`seen`, [device id, ed25519 key]), and `since`, the size of the key log head it held
 * when it first pinned the account. A group change's signer is checked against them
 * (`trustedSigner`). For a pin made before they were kept: its devices, and 0.
 */
export interface PinHistory {
  seen: [string, string][];
  since: number;
}

function historyStore(me: string): string {
  return `pli:pin-history:${me}`;
}

function historyOf(pinned: PublicKey[] | undefined, size: number): PinHistory {
  return pinned ? { seen: pinned.map((k) => [k.device, k.ed25519]), since: 0 } : { seen: [], since: size };
}

function isHistory(value: unknown): value is PinHistory {
  if (!value || typeof value !== "object") return false;
  const { seen, since } = value as Record<string, unknown>;
  const isPair = (k: unknown) => Array.isArray(k) && k.length === 2 && k.every((part) => typeof part === "string");
  return Array.isArray(seen) && seen.every(isPair) && typeof since === "number" && Number.isSafeInteger(since) && since >= 0;
}

function histories(me: string): Map<string, PinHistory> {
  return storedMap<PinHistory>(historyStore(me), isHistory);
}

/** What this browser ever pinned for `email` (see `PinHistory`), or null if it never pinned it. */
export function pinHistory(me: string, email: string): PinHistory | null {
  const pinned = pins(me).get(email);
  return histories(me).get(email) ?? (pinned ? historyOf(pinned, 0) : null);
}

/**
 * Whether `device`, a device of `email` the key log made active at entry `activated`, may have
 * signed what the log recorded at entry `logged`: a device this browser pinned for the account
 * at some time, or one older than its first pin of the account here (trusted on first use with
 * the rest of its history, as keys are). A device the server made up for the account after
 * that is neither, even one it marks removed at once so as never to hand it out.
 */
export function trustedSigner(me: string, email: string, device: PublicKey, activated: number, logged: number): boolean {
  const history = pinHistory(me, email);
  if (history === null) return false;
  const current = (pins(me).get(email) ?? []).map((k): [string, string] => [k.device, k.ed25519]);
  if ([...history.seen, ...current].some(([id, key]) => id === device.device && key === device.ed25519)) return true;
  return activated < history.since && logged < history.since;
}

function verifiedStore(me: string): string {
  return `pli:verified:${me}`;
}

/** The accounts whose pinned keys this account compared a verification code for. */
export function verifiedAccounts(me: string): Set<string> {
  const text = localStorage.getItem(verifiedStore(me));
  if (text === null) return new Set();
  try {
    const value: unknown = JSON.parse(text);
    if (Array.isArray(value) && value.every((e) => typeof e === "string")) return new Set(value as string[]);
  } catch {
    // damaged: refused below
  }
  throw new PinsDamaged();
}

/** Pin exactly `devices` for `email`, verified: the two people compared the code over them. */
export function markVerified(me: string, email: string, devices: PublicKey[]): void {
  pin(me, email, devices);
  const all = verifiedAccounts(me);
  all.add(email);
  localStorage.setItem(verifiedStore(me), JSON.stringify([...all].sort()));
}

/**
 * Accept a changed set the user compared by fingerprint: pinned, unverified. A verified account's
 * keys are not replaced this way: only a new comparison of the code (`markVerified`) does.
 */
export function trustChanged(me: string, email: string, devices: PublicKey[]): void {
  if (verifiedAccounts(me).has(email)) throw new TrustError(`the verified keys of ${email} changed: compare the new verification code with them`);
  pin(me, email, devices);
}

/** What the server offers for an account: its devices, each proved in the key log, and the
 * approvals its devices signed for each other (device id -> signed approval). */
export interface Offered {
  devices: Device[];
  envelopes: Map<string, Signed>;
  approvals: Map<string, Signed>;
}

/** The verified public bundles the server holds for `email`: at least one, one per device. */
export async function fetchKeys(email: string): Promise<Device[]> {
  return (await offeredKeys(email)).devices;
}

/**
 * The server's answer for `email`, checked as `pli` checks it (docs/spec/key-log.md, "The
 * client"): every bundle self-signed and of `email`, its signed tree head consistent with the
 * one this browser kept, and every bundle proved to be in that log.
 */
export async function offeredKeys(email: string): Promise<Offered> {
  const kept = keptHead();
  const query = kept ? `?log_size=${kept.size}` : "";
  const answer = await call<DeviceKeys>("GET", path`/api/v1/users/${email}/devices` + query);
  const envelopes = answer.devices ?? [];
  const devices = await Promise.all(envelopes.map((bundle) => parseBundle(bundle, email)));
  if (devices.length === 0) throw new TrustError(`${email} has no keys yet: they must sign in once and create them`);
  if (new Set(devices.map((d) => d.device)).size !== devices.length) throw new TrustError(`the server listed a device of ${email} twice`);
  const log = answer.log;
  const approvals = answer.approvals ?? [];
  if (!log || !Array.isArray(log.proofs) || log.proofs.length !== devices.length || approvals.length !== devices.length) {
    throw new IntegrityError(`the server sent no key log proofs for ${email}'s keys`);
  }
  const head = await acceptHead(log.head, log.consistency);
  devices.forEach((device, i) => checkLogged(head, device, envelopes[i] as Signed, log.proofs[i]));
  const approved = new Map<string, Signed>();
  devices.forEach((device, i) => {
    const approval = approvals[i];
    if (approval && typeof approval === "object") approved.set(device.device, approval as Signed);
  });
  return { devices, envelopes: new Map(devices.map((d, i) => [d.device, envelopes[i] as Signed])), approvals: approved };
}

// --- the key log: the server's key, pinned at first contact, and the latest head verified ----

const LOG = "pli:key-log";
const FORK = "pli:key-log-fork";

interface LogState {
  key: string;
  head: unknown;
}

function logState(): LogState | null {
  const text = localStorage.getItem(LOG);
  if (text === null) return null;
  try {
    const value = JSON.parse(text) as Partial<LogState>;
    if (typeof value.key === "string") return { key: value.key, head: value.head ?? null };
  } catch {
    // damaged: refused below
  }
  throw new PinsDamaged();
}

/** The size of the head kept, unverified: only to ask for a proof from there. */
export function keptHead(): { size: number } | null {
  const head = logState()?.head as { doc?: { size?: unknown } } | null | undefined;
  const size = head?.doc?.size;
  return typeof size === "number" ? { size } : null;
}

/**
 * The signed head `signed` the server just gave, verified under the server key this browser
 * pinned (pinned now at first contact) and consistent with the head kept, by `consistency`
 * (hex hashes) from the kept head's size; the newer of the two is kept. A fork is kept as
 * evidence, and from then on no key from this server is used.
 */
export async function acceptHead(signed: unknown, consistency: string[] | null): Promise<TreeHead> {
  if (localStorage.getItem(FORK) !== null) {
    throw new TamperingError("this server's key log forked earlier: no key from it is used until your administrator has looked");
  }
  const doc = (signed as { doc?: { key?: unknown } } | null)?.doc;
  const claimed = typeof doc?.key === "string" ? doc.key : "";
  const state = logState();
  const key = state?.key ?? claimed;
  if (claimed !== key) throw new TamperingError("the server's key log is signed with another key than the one this browser pinned");
  const seen = await parseHead(signed, key, logId(key));
  const trusted = state?.head ? await parseHead(state.head, key, logId(key)) : null;
  let kept: TreeHead;
  try {
    kept = advance(trusted, seen, hashes(consistency ?? []));
  } catch (error) {
    if (error instanceof TamperingError && trusted) localStorage.setItem(FORK, JSON.stringify([trusted.signed, seen.signed]));
    throw error;
  }
  localStorage.setItem(LOG, JSON.stringify({ key, head: kept.signed }));
  return seen;
}

/** The key log's head as it is now (`GET /api/v1/key-log/head`), accepted as `acceptHead` does. */
export async function freshHead(): Promise<TreeHead> {
  const signed = await call<unknown>("GET", "/api/v1/key-log/head");
  const kept = keptHead();
  const size = (signed as { doc?: { size?: unknown } } | null)?.doc?.size;
  if (kept === null || typeof size !== "number" || kept.size > size) return acceptHead(signed, null);
  const query = new URLSearchParams({ first: String(kept.size), second: String(size) });
  const answer = await call<{ proof?: string[] }>("GET", `/api/v1/key-log/consistency?${query}`);
  return acceptHead(signed, answer.proof ?? null);
}

function hashes(values: string[]): Uint8Array[] {
  if (!Array.isArray(values) || !values.every((v) => typeof v === "string" && /^[0-9a-f]{64}$/.test(v))) {
    throw new IntegrityError("the server sent a malformed key log consistency proof");
  }
  return values.map(fromHex);
}

// --- changes the account vouched for -------------------------------------------------------

/**
 * Whether `offered` differs from `trusted` only as the account vouched for: devices that left,
 * and new devices each approved by a trusted device (or by a new one itself approved so).
 */
export async function approvedChange(trusted: PublicKey[], offered: Offered): Promise<boolean> {
  const known = new Map(trusted.filter((t) => offered.devices.some((o) => triple(o) === triple(t))).map((t) => [t.device, t]));
  if (offered.devices.some((o) => trusted.some((t) => t.device === o.device) && !known.has(o.device))) return false;
  let waiting = offered.devices.filter((o) => !known.has(o.device));
  while (waiting.length > 0) {
    const before = waiting.length;
    for (const device of [...waiting]) {
      const approval = offered.approvals.get(device.device);
      const by = (approval?.doc as { by?: unknown } | undefined)?.by;
      const approver = typeof by === "string" ? known.get(by) : undefined;
      if (!approval) return false;
      if (!approver) continue;
      const envelope = offered.envelopes.get(device.device);
      if (!envelope || !(await approves(approval, approver, device, envelope))) return false;
      known.set(device.device, device);
      waiting = waiting.filter((w) => w !== device);
    }
    if (waiting.length === before) return false;
  }
  return true;
}

async function approves(approval: Signed, approver: PublicKey, device: Device, envelope: Signed): Promise<boolean> {
  try {
    await checkApproval(approval, approver, device, envelope);
    return true;
  } catch (error) {
    if (error instanceof SignatureError) return false;
    throw error;
  }
}

function triple(k: PublicKey): string {
  return JSON.stringify([k.device, k.age, k.ed25519]);
}

/** The same keys, as sets of (device, age, ed25519), whatever the order or repetitions. */
export function sameSet(a: PublicKey[], b: PublicKey[]): boolean {
  const left = new Set(a.map(triple));
  const right = new Set(b.map(triple));
  return left.size === right.size && [...left].every((k) => right.has(k));
}

/**
 * The keys of `email`, checked against this browser's pins (pinned on first use). A change the
 * account vouched for (see `approvedChange`) is pinned; any other stops until the user trusts it.
 */
export async function pinnedKeys(me: string, email: string): Promise<Keys> {
  const offered = await offeredKeys(email);
  const devices = offered.devices;
  const pinned = pins(me).get(email);
  if (!pinned) {
    pin(me, email, devices);
    return { email, devices, firstUse: email !== me };
  }
  if (!sameSet(pinned, devices)) {
    if (!(await approvedChange(pinned, offered))) throw new KeysChanged(email, pinned, devices);
    pin(me, email, devices);
  }
  return { email, devices, firstUse: false };
}

/** The account's other devices, which every transfer is also encrypted to. */
export async function ownOthers(identity: Identity): Promise<Device[]> {
  const keys = await pinnedKeys(identity.device.email, identity.device.email);
  return keys.devices.filter((d) => d.device !== identity.device.device);
}
