/**
 * Sending and receiving, with the receiver's checks of docs/spec/manifest.md. The page calls
 * these; the worker (./jobs.ts) does the per-file work.
 */

import { base64Padded, fromBase64Padded } from "../crypto/b64.js";
import { IntegrityError, PliError, SignatureError, TrustError } from "../crypto/errors.js";
import { sameKeys, type Device, type Identity, type PublicKey } from "../crypto/keys.js";
import {
  checkAddressedTo,
  checkFileList,
  checkSender,
  checkTransfer,
  openManifest,
  parseTime,
  sealManifest,
  verifyManifest,
  type ManifestDoc,
  type ManifestFile,
} from "../crypto/manifest.js";
import type { Sent } from "../worker/protocol.js";
import { authHeader, call, path, session, type TransferOut } from "./api.js";
import * as jobs from "./jobs.js";
import { ownOthers, pinnedKeys, type Keys } from "./trust.js";

export interface Verified {
  transfer: TransferOut;
  doc: ManifestDoc;
  /** true when the sender's key was pinned just now, by this very check */
  firstUse: boolean;
}

/** Checks 2-10: the manifest is for this transfer, signed by a key we hold for its sender. */
export async function verify(transfer: TransferOut, me: Identity): Promise<Verified> {
  if (!transfer.manifest) throw new IntegrityError("this transfer has no manifest yet: it is still being sent");
  const { doc, envelope } = await openManifest(fromBase64Padded(transfer.manifest), me.ageIdentity);
  checkTransfer(doc, transfer.id);
  checkSender(doc, transfer.sender);
  const { key, firstUse } = await signer(doc.sender, me);
  await verifyManifest(envelope, key);
  checkAddressedTo(doc, me.device.age);
  checkFileList(transfer.files, doc.files);
  return { transfer, doc, firstUse };
}

async function signer(claimed: PublicKey, me: Identity): Promise<{ key: PublicKey; firstUse: boolean }> {
  if (sameKeys(claimed, me.device)) return { key: me.device, firstUse: false };
  const keys = await pinnedKeys(me.device.email, claimed.email);
  const key = keys.devices.find((d) => sameKeys(d, claimed));
  if (!key) throw new TrustError(`the transfer is signed with a key ${claimed.email} does not have`);
  return { key, firstUse: keys.firstUse };
}

export interface Outgoing {
  files: File[];
  recipients: string[];
  expiresIn: string;
  message: string;
}

export interface SendProgress {
  file: number;
  done: number;
  total: number;
  retrying: boolean;
}

export interface Sending {
  done: Promise<{ id: string; firstUse: string[] }>;
  cancel(): void;
}

/** What a running send can be told: stop, between files or within one. */
export class Control {
  cancelled = false;
  current: jobs.Running<Sent> | null = null;

  cancel(): void {
    this.cancelled = true;
    this.current?.cancel();
  }
}

/**
 * Encrypt and upload every file of a created transfer to `ages`, one after the other; the
 * manifest entries. `token` is the account's session, or a request's guest token.
 */
export async function uploadAll(
  transfer: { id: string; files: { id: string }[] },
  files: File[],
  ages: string[],
  token: string,
  progress: (p: SendProgress) => void,
  control: Control,
): Promise<ManifestFile[]> {
  const entries: ManifestFile[] = [];
  for (const [i, file] of files.entries()) {
    if (control.cancelled) throw new jobs.Cancelled("cancelled");
    const slot = transfer.files[i];
    if (!slot) throw new IntegrityError("the server made fewer file slots than asked");
    control.current = jobs.sendFile({ file, recipients: ages, transfer: transfer.id, slot: slot.id, token }, (p) =>
      progress({ file: i, done: p.done, total: p.total, retrying: p.retrying ?? false }),
    );
    entries.push({ id: slot.id, name: file.name, ...(await control.current.done) });
  }
  return entries;
}

/** Upload, then seal what `manifest` makes of the entries; the transfer is abandoned on failure. */
export async function deliver(
  me: Identity,
  transfer: TransferOut,
  files: File[],
  ages: string[],
  manifest: (entries: ManifestFile[]) => ManifestDoc,
  progress: (p: SendProgress) => void,
  control: Control,
): Promise<void> {
  try {
    const entries = await uploadAll(transfer, files, ages, session()?.token ?? "", progress, control);
    const sealed = await sealManifest(manifest(entries), me);
    await call("POST", path`/api/v1/transfers/${transfer.id}/seal`, { manifest: base64Padded(sealed) });
  } catch (error) {
    await call("DELETE", path`/api/v1/transfers/${transfer.id}`).catch(() => undefined);
    throw error;
  }
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };
const CLOCK_SKEW_MS = 5 * 60_000;

/**
 * The sender signs the expiry the server assigned: it must be the one asked for (`expiresIn`,
 * such as "7d"), give or take the clocks' skew, or a server could make a transfer outlive what
 * its sender chose. Throws IntegrityError.
 */
export function checkAssignedExpiry(assigned: string, expiresIn: string, now = Date.now()): void {
  const match = /^(\d+)([smhd])$/.exec(expiresIn);
  const at = parseTime(assigned);
  if (!match || Number.isNaN(at)) throw new IntegrityError("the server's expiry could not be checked");
  const asked = Number(match[1]) * (UNITS[match[2] ?? "d"] ?? 86400) * 1000;
  if (at > now + asked + CLOCK_SKEW_MS) throw new IntegrityError("the server set a later expiry than the one asked for");
}

/** Encrypt and upload every file, then seal the signed manifest (as `pli send`). */
export function send(me: Identity, out: Outgoing, progress: (p: SendProgress) => void): Sending {
  const control = new Control();
  const done = (async () => {
    const everyone = await Promise.all([...new Set(out.recipients)].sort().map((e) => pinnedKeys(me.device.email, e)));
    const mine = await ownOthers(me);
    const recipients = [...everyone.flatMap((k: Keys) => k.devices), ...mine];
    const ages = [...new Set([...recipients.map((d) => d.age), me.device.age])];
    const body = { recipients: everyone.map((k) => k.email), files: out.files.length, expires_in: out.expiresIn };
    const transfer = await call<TransferOut>("POST", "/api/v1/transfers", body);
    try {
      checkAssignedExpiry(transfer.expires_at, out.expiresIn);
    } catch (error) {
      await call("DELETE", path`/api/v1/transfers/${transfer.id}`).catch(() => undefined);
      throw error;
    }
    const signed = (entries: ManifestFile[]): ManifestDoc => manifest(transfer, me, recipients, entries, out.message);
    await deliver(me, transfer, out.files, ages, signed, progress, control);
    return { id: transfer.id, firstUse: everyone.filter((k) => k.firstUse).map((k) => k.email) };
  })();
  return { done, cancel: () => control.cancel() };
}

export function manifest(transfer: TransferOut, me: Identity, recipients: PublicKey[], files: ManifestFile[], message: string): ManifestDoc {
  const key = (d: PublicKey): PublicKey => ({ email: d.email, device: d.device, age: d.age, ed25519: d.ed25519 });
  return {
    kind: "pli/manifest/v1",
    transfer: transfer.id,
    sender: key(me.device),
    recipients: recipients.map(key),
    files,
    created: transfer.created_at,
    expires: transfer.expires_at,
    message,
  };
}

/** Download, decrypt and check one file of a checked transfer; a Blob once all passed. */
export function download(transferId: string, ageIdentity: string, file: ManifestFile, progress: (p: jobs.Progress) => void): jobs.Running<Blob> {
  const url = path`/api/v1/transfers/${transferId}/files/${file.id}`;
  const token = authHeader().authorization?.slice("Bearer ".length) ?? null;
  return jobs.getFile({ url, token, ageIdentity, expected: file }, progress);
}

/** Tell the server the transfer was received (as `pli get` does), for its audit and retention. */
export async function receipt(transferId: string): Promise<void> {
  await call("POST", path`/api/v1/transfers/${transferId}/receipt`).catch(() => undefined);
}

/**
 * Tell the server a check failed here (as `pli get` does), so that repeated failures raise the
 * account's alerts; what failed, never what was read.
 */
export async function reportFailure(transferId: string, error: PliError): Promise<void> {
  const reason = error instanceof SignatureError || error instanceof TrustError ? "signature" : error instanceof IntegrityError ? "digest" : "decrypt";
  await call("POST", path`/api/v1/transfers/${transferId}/failures`, { reason }).catch(() => undefined);
}
