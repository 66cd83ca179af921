/**
 * The audit of one's own keys in the server's key log, as `pli keys audit` does it
 * (docs/spec/key-log.md): read the log from where this browser's last audit stopped to the
 * server's current head, check that those entries make up exactly that signed head, and find
 * among the entries naming this account any key that none of its known devices made or
 * approved. Where the audit stopped (the log's frontier) is kept in this browser's
 * `localStorage`, per account, and only when nothing was found: a finding is reported again
 * until it is resolved.
 */

import { fromHex, hex } from "../crypto/b64.js";
import { approverOf, checkApproval } from "../crypto/devices.js";
import { IntegrityError } from "../crypto/errors.js";
import { audit, bundleDigest, Frontier, TamperingError, unknownDevices, type Entry } from "../crypto/keylog.js";
import { parseBundle, sameKeys, type Identity, type PublicKey, type Signed } from "../crypto/keys.js";
import { call } from "./api.js";
import { freshHead, offeredKeys, pins, verifiedAccounts } from "./trust.js";

/** Entries asked for at a time: the most the server lists at once. */
export const PAGE = 1000;

export interface KeyAudit {
  /** The size of the head audited to. */
  size: number;
  /** The entries read this time. */
  read: number;
  /** The entries that publish or approve keys for this account that it does not know. */
  unknown: [number, Entry][];
  /** The server does not list this browser's keys among the account's. */
  notListed: boolean;
}

function store(email: string): string {
  return `pli:key-log-audit:${email}`;
}

/**
 * Where the last audit of `email` stopped: the empty tree at first, and also if what was kept
 * is damaged (the whole log is read again: that costs time, never safety).
 */
export function storedFrontier(email: string): Frontier {
  const text = localStorage.getItem(store(email));
  if (text === null) return new Frontier();
  try {
    const value = JSON.parse(text) as { size?: unknown; hashes?: unknown };
    const list = Array.isArray(value.hashes) ? (value.hashes as unknown[]) : [];
    if (typeof value.size !== "number" || !list.every((h) => typeof h === "string" && /^[0-9a-f]{64}$/.test(h))) return new Frontier();
    return new Frontier(value.size, (list as string[]).map(fromHex));
  } catch {
    return new Frontier();
  }
}

export function saveFrontier(email: string, frontier: Frontier): void {
  localStorage.setItem(store(email), JSON.stringify({ size: frontier.size, hashes: frontier.hashes.map(hex) }));
}

/** The log's entries [start, end), as logged, a page at a time. */
async function* leaves(start: number, end: number): AsyncGenerator<Uint8Array> {
  for (let first = start; first < end; first += PAGE) {
    const query = new URLSearchParams({ start: String(first), end: String(Math.min(first + PAGE, end)) });
    const answer = await call<{ leaves?: unknown }>("GET", `/api/v1/key-log/entries?${query}`);
    const listed = answer?.leaves;
    if (!Array.isArray(listed) || !listed.every((leaf) => typeof leaf === "string")) {
      throw new IntegrityError("the server sent a malformed list of key log entries");
    }
    for (const leaf of listed as string[]) yield new TextEncoder().encode(leaf);
  }
}

interface Listed {
  device: PublicKey;
  envelope: Signed;
  approval: unknown;
}

/** This account's devices as the server lists them, each bundle checked. */
async function ownDevices(email: string): Promise<Listed[]> {
  const answer = await call<{ items?: { bundle?: unknown; approval?: unknown }[] }>("GET", "/api/v1/me/devices");
  const items = Array.isArray(answer?.items) ? answer.items : [];
  return Promise.all(
    items.map(async (item) => ({ device: await parseBundle(item.bundle, email), envelope: item.bundle as Signed, approval: item.approval ?? null })),
  );
}

/**
 * device id -> bundle digest of every device this browser knows to be the account's: itself,
 * the device whose signed approval made it active, the account's keys if they were verified
 * here, and every device a known one approved. Keys pinned on first use alone are not
 * knowledge: the audit is there to check them.
 */
export async function knownDevices(me: Identity): Promise<Map<string, string>> {
  const email = me.device.email;
  const listed = await ownDevices(email);
  const known = new Map<string, Listed>([[me.device.device, { device: me.device, envelope: me.bundle, approval: null }]]);
  if (verifiedAccounts(email).has(email)) {
    for (const key of pins(email).get(email) ?? []) {
      const found = listed.find((l) => sameKeys(l.device, key));
      if (found) known.set(found.device.device, found);
    }
  }
  const mine = listed.find((l) => l.device.device === me.device.device && l.approval)?.approval;
  const approver = mine ? listed.find((l) => l.device.device === approverOf(mine)) : undefined;
  if (mine && approver) {
    await checkApproval(mine, approver.device, me.device, me.bundle);
    known.set(approver.device.device, approver);
  }
  await approvedByKnown(listed, known);
  return new Map([...known].map(([id, l]) => [id, bundleDigest(l.envelope)]));
}

/** Add to `known` every listed device that a known device approved, until none is left. */
async function approvedByKnown(listed: Listed[], known: Map<string, Listed>): Promise<void> {
  for (let grew = true; grew; ) {
    grew = false;
    for (const item of listed) {
      if (known.has(item.device.device) || !item.approval) continue;
      const by = known.get(approverOf(item.approval));
      if (!by) continue;
      await checkApproval(item.approval, by.device, item.device, item.envelope);
      known.set(item.device.device, item);
      grew = true;
    }
  }
}

/** Audit this account's keys in the key log, from where the last audit stopped. */
export async function auditKeys(me: Identity): Promise<KeyAudit> {
  const email = me.device.email;
  const head = await freshHead();
  const start = storedFrontier(email);
  if (start.size > head.size) {
    throw new TamperingError(`the key log has ${head.size} entries, fewer than the ${start.size} your last audit read: it was rewritten`);
  }
  const offered = await offeredKeys(email);
  const notListed = !offered.devices.some((d) => sameKeys(d, me.device));
  const mine = (entry: Entry): boolean => entry.email === email;
  const { frontier, entries } = await audit(start, head, leaves(start.size, head.size), mine);
  const unknown = unknownDevices(entries, email, await knownDevices(me));
  if (unknown.length === 0 && !notListed) saveFrontier(email, frontier);
  return { size: head.size, read: head.size - start.size, unknown, notListed };
}
