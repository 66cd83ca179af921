/**
 * Sending and receiving, with the receiver's checks of docs/spec/manifest.md. The page calls
 * these; the worker (./jobs.ts) does the per-file work.
 */

import { base64Padded, fromBase64Padded } from "../crypto/b64.js";
import { IntegrityError, PliError, SignatureError, TrustError } from "../crypto/errors.js";
import { sameKeys, type Device, type Identity, type PublicKey } from "../crypto/keys.js";
import {
  MANIFEST_KIND,
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
import type { Sent, Sink } from "../worker/protocol.js";
import { authHeader, call, path, session, type TransferOut } from "./api.js";
import * as jobs from "./jobs.js";
import * as pending from "./pending.js";
import { resolveRecipients, type GroupSend } from "./groups.js";
import { ownOthers, pinnedKeys } from "./trust.js";

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
  /** Emails, and groups written `group:org/group`. */
  recipients: string[];
  expiresIn: string;
  message: string;
  /** Members of the groups that the sender chose to leave out of this send. */
  without?: string[];
}

export interface SendProgress {
  file: number;
  done: number;
  total: number;
  retrying: boolean;
}

/** A send's outcome: the transfer, and the accounts and groups pinned by it, on first use. */
export interface SendResult {
  id: string;
  firstUse: string[];
  firstGroups: string[];
}

export interface Sending {
  done: Promise<SendResult>;
  cancel(): void;
}

/** What a running send can be told: stop, between files or within one. */
export class Control {
  cancelled = false;
  current: jobs.Running<Sent> | null = null;
  /** Files whose interrupted upload could not go on: sent again from their start, under a new key. */
  restarted: string[] = [];

  cancel(): void {
    this.cancelled = true;
    this.current?.cancel();
  }
}

/** How `uploadAll` uploads: see `SendFile` in ../worker/protocol.ts. */
export interface UploadOptions {
  keep?: string;
  digestPlaintext?: boolean;
}

/**
 * Encrypt and upload every file of a created transfer to `ages`, one after the other; the
 * manifest entries. `token` is the account's session, or a request's guest token. With `keep`
 * (the account's email), each upload is kept resumable in this browser (./pending.ts); with
 * `digestPlaintext` (a request's answer), each entry has its plaintext's `sha256`.
 */
export async function uploadAll(
  transfer: { id: string; files: { id: string }[] },
  files: File[],
  ages: string[],
  token: string,
  progress: (p: SendProgress) => void,
  control: Control,
  options: UploadOptions = {},
): Promise<ManifestFile[]> {
  const entries: ManifestFile[] = [];
  for (const [i, file] of files.entries()) {
    if (control.cancelled) throw new jobs.Cancelled("cancelled");
    const slot = transfer.files[i];
    if (!slot) throw new IntegrityError("the server made fewer file slots than asked");
    control.current = jobs.sendFile({ file, recipients: ages, transfer: transfer.id, slot: slot.id, token, ...options }, (p) => {
      if (p.restarted) control.restarted.push(file.name);
      progress({ file: i, done: p.done, total: p.total, retrying: p.retrying ?? false });
    });
    entries.push({ id: slot.id, name: file.name, ...(await control.current.done) });
  }
  return entries;
}

/**
 * Upload, then seal what `manifest` makes of the entries; the transfer is abandoned on failure.
 * With `keep` (the account's email), what this browser kept to resume the send is forgotten
 * either way, once the transfer is sealed or abandoned; and one page at a time sends a transfer
 * (pending.Busy, before anything is sent or abandoned, if another is sending it).
 */
export async function deliver(
  me: Identity,
  transfer: TransferOut,
  files: File[],
  ages: string[],
  manifest: (entries: ManifestFile[]) => ManifestDoc,
  progress: (p: SendProgress) => void,
  control: Control,
  keep?: string,
): Promise<void> {
  if (keep) {
    const work = (): Promise<void> => delivering(me, transfer, files, ages, manifest, progress, control, keep);
    return pending.whileSending(transfer.id, work);
  }
  return delivering(me, transfer, files, ages, manifest, progress, control);
}

async function delivering(
  me: Identity,
  transfer: TransferOut,
  files: File[],
  ages: string[],
  manifest: (entries: ManifestFile[]) => ManifestDoc,
  progress: (p: SendProgress) => void,
  control: Control,
  keep?: string,
): Promise<void> {
  const forget = async (): Promise<void> => {
    if (keep) await pending.forget(keep, transfer.id).catch(() => undefined);
  };
  try {
    const entries = await uploadAll(transfer, files, ages, session()?.token ?? "", progress, control, { keep });
    const sealed = await sealManifest(manifest(entries), me);
    await call("POST", path`/api/v1/transfers/${transfer.id}/seal`, { manifest: base64Padded(sealed) });
  } catch (error) {
    await call("DELETE", path`/api/v1/transfers/${transfer.id}`).catch(() => undefined);
    await forget();
    throw error;
  }
  await forget();
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
  return { done: sendWith(me, out, progress, control), cancel: () => control.cancel() };
}

/**
 * `send`, under a given control. What resuming it after a reload needs is kept in this browser
 * (./pending.ts) from when the transfer is created until it is sealed or abandoned.
 */
export function sendWith(me: Identity, out: Outgoing, progress: (p: SendProgress) => void, control: Control): Promise<SendResult> {
  return (async () => {
    const resolved = await resolveRecipients(me, out.recipients, new Set(out.without ?? []));
    const everyone = [...resolved.direct, ...resolved.members];
    const mine = await ownOthers(me);
    const recipients = [...everyone.flatMap((k) => k.devices), ...mine];
    const ages = [...new Set([...recipients.map((d) => d.age), me.device.age])];
    const body = transferBody(resolved.direct.map((k) => k.email), resolved.groups, out);
    const transfer = await call<TransferOut>("POST", "/api/v1/transfers", body);
    try {
      checkAssignedExpiry(transfer.expires_at, out.expiresIn);
    } catch (error) {
      await call("DELETE", path`/api/v1/transfers/${transfer.id}`).catch(() => undefined);
      throw error;
    }
    const signed = (entries: ManifestFile[]): ManifestDoc => manifest(transfer, me, recipients, entries, out.message);
    const to = [...resolved.direct.map((k) => k.email), ...resolved.groups.map((g) => `group:${g.name}`)];
    const keep = await kept(me, transfer, out, to, recipients, ages);
    await deliver(me, transfer, out.files, ages, signed, progress, control, keep);
    return { id: transfer.id, firstUse: everyone.filter((k) => k.firstUse).map((k) => k.email), firstGroups: resolved.firstGroups };
  })();
}

/** What `POST /api/v1/transfers` is asked: the accounts named, and each group's members sent to. */
function transferBody(direct: string[], groups: GroupSend[], out: Outgoing): Record<string, unknown> {
  const reached = groups.filter((g) => g.members.length > 0);
  const body: Record<string, unknown> = { recipients: direct, files: out.files.length, expires_in: out.expiresIn };
  if (reached.length > 0) body.groups = reached;
  return body;
}

/**
 * Record a send that has begun, so that it can resume after a reload; the account's email, or
 * undefined when this browser cannot keep it (the send then goes on, without resuming).
 */
async function kept(
  me: Identity,
  transfer: TransferOut,
  out: Outgoing,
  to: string[],
  recipients: PublicKey[],
  ages: string[],
): Promise<string | undefined> {
  const email = me.device.email;
  const files = out.files.map((f, i) => ({ slot: transfer.files[i]?.id ?? "", name: f.name, size: f.size, lastModified: f.lastModified }));
  if (files.some((f) => !f.slot)) return undefined;
  const started = new Date().toISOString();
  const keys = recipients.map((d) => ({ email: d.email, device: d.device, age: d.age, ed25519: d.ed25519 }));
  const without = out.without?.length ? { without: [...out.without] } : {};
  const send = { email, transfer: transfer.id, started, to, recipients: keys, ages, expiresIn: out.expiresIn, created: transfer.created_at, expires: transfer.expires_at, files, ...without };
  try {
    await pending.saveSend(send, out.message);
    return email;
  } catch {
    return undefined;
  }
}

export function manifest(transfer: TransferOut, me: Identity, recipients: PublicKey[], files: ManifestFile[], message: string): ManifestDoc {
  const key = (d: PublicKey): PublicKey => ({ email: d.email, device: d.device, age: d.age, ed25519: d.ed25519 });
  return {
    kind: MANIFEST_KIND,
    transfer: transfer.id,
    sender: key(me.device),
    recipients: recipients.map(key),
    files,
    created: transfer.created_at,
    expires: transfer.expires_at,
    message,
  };
}

/** Download, decrypt and check one file of a checked transfer into `sink` (see ./save.ts). */
export function download(transferId: string, ageIdentity: string, file: ManifestFile, sink: Sink, progress: (p: jobs.Progress) => void): jobs.Running<Blob | null> {
  const url = path`/api/v1/transfers/${transferId}/files/${file.id}`;
  const token = authHeader().authorization?.slice("Bearer ".length) ?? null;
  return jobs.getFile({ url, token, ageIdentity, expected: file, sink }, progress);
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
