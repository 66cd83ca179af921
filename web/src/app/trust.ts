/**
 * Whose keys this browser trusts, as `pli` does (docs/spec/keys.md, "What a client checks"):
 * the first time, an account's set of device keys is pinned, unverified, and the user is told;
 * afterwards the server must return exactly that set, or sending and receiving with that account
 * stop until the user, shown the old and new fingerprints, trusts the new set. Pins are kept in
 * this browser's `localStorage`, per signed-in account; full keys, never fingerprints.
 */

import { TrustError } from "../crypto/errors.js";
import { parseBundle, type Device, type Identity, type PublicKey } from "../crypto/keys.js";
import { call, path, type DeviceKeys } from "./api.js";

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
  const text = localStorage.getItem(store(me));
  if (text === null) return new Map();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new PinsDamaged();
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) throw new PinsDamaged();
  const entries = Object.entries(value as Record<string, unknown>);
  if (!entries.every(([, keys]) => Array.isArray(keys) && keys.every(isKey))) throw new PinsDamaged();
  return new Map(entries as [string, PublicKey[]][]);
}

export function pin(me: string, email: string, devices: PublicKey[]): void {
  const all = pins(me);
  all.set(email, devices.map(({ email: e, device, age, ed25519 }) => ({ email: e, device, age, ed25519 })));
  localStorage.setItem(store(me), JSON.stringify(Object.fromEntries(all)));
}

/** The verified public bundles the server holds for `email`: at least one, one per device. */
export async function fetchKeys(email: string): Promise<Device[]> {
  const answer = await call<DeviceKeys>("GET", path`/api/v1/users/${email}/devices`);
  const devices = await Promise.all((answer.devices ?? []).map((bundle) => parseBundle(bundle, email)));
  if (devices.length === 0) throw new TrustError(`${email} has no keys yet: they must sign in once and create them`);
  if (new Set(devices.map((d) => d.device)).size !== devices.length) throw new TrustError(`the server listed a device of ${email} twice`);
  return devices;
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

/** The keys of `email`, checked against this browser's pins (pinned on first use). */
export async function pinnedKeys(me: string, email: string): Promise<Keys> {
  const devices = await fetchKeys(email);
  const pinned = pins(me).get(email);
  if (!pinned) {
    pin(me, email, devices);
    return { email, devices, firstUse: email !== me };
  }
  if (!sameSet(pinned, devices)) throw new KeysChanged(email, pinned, devices);
  return { email, devices, firstUse: false };
}

/** The account's other devices, which every transfer is also encrypted to. */
export async function ownOthers(identity: Identity): Promise<Device[]> {
  const keys = await pinnedKeys(identity.device.email, identity.device.email);
  return keys.devices.filter((d) => d.device !== identity.device.device);
}
