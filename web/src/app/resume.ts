/**
 * Resuming a send this browser began and did not finish: the page was reloaded or closed while
 * it uploaded. What is kept for it: ./pending.ts; how each file goes on: ../worker/upload.ts.
 *
 * The user chooses the same files again (the browser gives a page no file it was not handed
 * anew). The send goes on as it began: the same transfer, the same recipients' keys (the ones
 * pinned now must be exactly those the files are encrypted to), the same signed times, the
 * same message. When it cannot — the transfer is gone, the keys changed, or the server will not
 * take a new upload for a file — the transfer is abandoned and the same files are sent afresh,
 * as a new transfer, and the user is told.
 */

import { UsageError } from "../crypto/errors.js";
import type { Identity } from "../crypto/keys.js";
import type { ManifestDoc, ManifestFile } from "../crypto/manifest.js";
import { ApiError, call, path, type TransferOut } from "./api.js";
import * as jobs from "./jobs.js";
import * as pending from "./pending.js";
import { Control, deliver, manifest, sendWith, type SendProgress } from "./transfers.js";
import { resolveRecipients } from "./groups.js";
import { ownOthers, sameSet } from "./trust.js";

export type { PendingSend } from "./pending.js";

/** The files chosen are not the ones of the interrupted send (by name, and number). */
export class NotTheSameFiles extends UsageError {
  constructor(readonly expected: string[]) {
    super("choose the same files as before");
  }
}

/** This browser cannot open what it kept for the send (its storage was cleared or damaged). */
export class CannotResume extends UsageError {
  constructor() {
    super("this browser can no longer resume that send");
  }
}

export interface Resumed {
  id: string;
  firstUse: string[];
  firstGroups: string[];
  /** The interrupted transfer could not go on: the files were sent afresh, as a new transfer. */
  restarted: boolean;
  /** Files that were not the ones interrupted: sent again from their start, under a new key. */
  changed: string[];
}

export interface Resuming {
  done: Promise<Resumed>;
  cancel(): void;
}

/**
 * The interrupted sends of account `email`, oldest first: those no page of this browser is
 * sending now. None if this browser keeps none.
 */
export async function unfinished(email: string): Promise<pending.PendingSend[]> {
  try {
    await pending.forgetExpired(email);
    const now = await pending.sendingNow();
    return (await pending.pendingSends(email)).filter((s) => !now.has(s.transfer));
  } catch {
    return [];
  }
}

/** Abandon an interrupted send: the server drops the transfer, this browser what it kept. */
export async function discard(send: pending.PendingSend): Promise<void> {
  await call("DELETE", path`/api/v1/transfers/${send.transfer}`).catch(() => undefined);
  await pending.forget(send.email, send.transfer).catch(() => undefined);
}

/** The transfer as the server has it now, if it is still the one begun and still uploading. */
async function stillOpen(send: pending.PendingSend): Promise<TransferOut | null> {
  let transfer: TransferOut;
  try {
    transfer = await call<TransferOut>("GET", path`/api/v1/transfers/${send.transfer}`);
  } catch (error) {
    if (error instanceof ApiError && [403, 404, 410].includes(error.status)) return null;
    throw error;
  }
  const same =
    transfer.id === send.transfer &&
    transfer.state === "uploading" &&
    transfer.created_at === send.created &&
    transfer.expires_at === send.expires &&
    transfer.files.length === send.files.length &&
    transfer.files.every((f, i) => f.id === send.files[i]?.slot);
  return same ? transfer : null;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((item, i) => item === b[i]);
}

/** Go on with interrupted send `send` with the files the user chose again. */
export function resume(me: Identity, send: pending.PendingSend, chosen: File[], progress: (p: SendProgress) => void): Resuming {
  const control = new Control();
  const done = (async (): Promise<Resumed> => {
    const files = pending.matchFiles(send.files, chosen);
    if (!files) throw new NotTheSameFiles(send.files.map((f) => f.name));
    let message: string;
    try {
      message = await pending.openMessage(send);
    } catch {
      await discard(send);
      throw new CannotResume();
    }
    const afresh = async (): Promise<Resumed> => {
      await discard(send);
      const out = { files, recipients: send.to, expiresIn: send.expiresIn, message, without: send.without ?? [] };
      return { ...(await sendWith(me, out, progress, control)), restarted: true, changed: [] };
    };
    const transfer = await stillOpen(send);
    if (!transfer) return afresh();
    const resolved = await resolveRecipients(me, send.to, new Set(send.without ?? []));
    const everyone = [...resolved.direct, ...resolved.members];
    const recipients = [...everyone.flatMap((k) => k.devices), ...(await ownOthers(me))];
    const ages = [...new Set([...send.recipients.map((d) => d.age), me.device.age])];
    if (!sameSet(recipients, send.recipients) || !sameList(ages, send.ages)) return afresh();
    const signedTimes = { ...transfer, created_at: send.created, expires_at: send.expires };
    const signed = (entries: ManifestFile[]): ManifestDoc => manifest(signedTimes, me, send.recipients, entries, message);
    try {
      await deliver(me, transfer, files, send.ages, signed, progress, control, me.device.email);
    } catch (error) {
      // The server would not take a new upload for a file (deliver abandoned the transfer).
      if (error instanceof jobs.JobError && error.status === 409 && !control.cancelled) return afresh();
      throw error;
    }
    const firstUse = everyone.filter((k) => k.firstUse).map((k) => k.email);
    return { id: transfer.id, firstUse, firstGroups: resolved.firstGroups, restarted: false, changed: [...control.restarted] };
  })();
  return { done, cancel: () => control.cancel() };
}
