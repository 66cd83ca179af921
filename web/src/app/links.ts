/**
 * Share links, from both ends (docs/spec/links.md): creating one (files encrypted to a key made
 * for the link, whose secret goes only into the URL's fragment) and getting one without an
 * account (the fragment opens the signed manifest, then each file).
 */

import { fromBase64Padded } from "../crypto/b64.js";
import { linkFragment, linkRecipientEntry, newLinkIdentity, openLinkManifest } from "../crypto/links.js";
import { recipientOf, type Identity } from "../crypto/keys.js";
import { checkFileList, checkNotExpired, type ManifestDoc, type ManifestFile } from "../crypto/manifest.js";
import { IntegrityError } from "../crypto/errors.js";
import { call, path, problem, type TransferOut } from "./api.js";
import * as jobs from "./jobs.js";
import type { Sink } from "../worker/protocol.js";
import { checkAssignedExpiry, Control, deliver, manifest, type SendProgress } from "./transfers.js";
import { ownOthers } from "./trust.js";

export interface LinkOut {
  id: string;
  url: string;
  state: string;
  created_at: string;
  expires_at: string;
  max_downloads: number | null;
  downloads: number;
  downloads_left: number | null;
  transfer: TransferOut;
}

export interface NewLink {
  files: File[];
  expiresIn: string;
  maxDownloads: number | null;
  passphrase: string | null;
}

/** Create a link (as `pli link create`): the whole URL, fragment included, shown once. */
export function createLink(me: Identity, wanted: NewLink, progress: (p: SendProgress) => void): { done: Promise<string>; cancel(): void } {
  const control = new Control();
  const done = (async () => {
    const identity = await newLinkIdentity();
    const recipient = await recipientOf(identity);
    const mine = await ownOthers(me);
    const body = { files: wanted.files.length, expires_in: wanted.expiresIn, max_downloads: wanted.maxDownloads };
    const link = await call<LinkOut>("POST", "/api/v1/links", body);
    try {
      checkAssignedExpiry(link.transfer.expires_at, wanted.expiresIn);
    } catch (error) {
      await call("DELETE", path`/api/v1/links/${link.id}`).catch(() => undefined);
      throw error;
    }
    const readers = [linkRecipientEntry(recipient), ...mine];
    const ages = [...new Set([recipient, me.device.age, ...mine.map((d) => d.age)])];
    const signed = (entries: ManifestFile[]): ManifestDoc => manifest(link.transfer, me, readers, entries, "");
    await deliver(me, link.transfer, wanted.files, ages, signed, progress, control);
    const fragment = await linkFragment(identity, wanted.passphrase ?? undefined);
    return `${location.origin}/l/${link.id}#${fragment}`;
  })();
  return { done, cancel: () => control.cancel() };
}

interface PublicTransfer {
  id: string;
  expires_at: string;
  files: { id: string; size: number | null }[];
  manifest: string;
}

interface Ticket {
  ticket: string | null;
  expires_at: string;
  transfer: PublicTransfer;
}

export interface OpenedLink {
  id: string;
  ticket: string;
  identity: string;
  doc: ManifestDoc;
}

const TICKETS = "pli:tickets";

function keptTicket(id: string): string | null {
  const kept = JSON.parse(sessionStorage.getItem(TICKETS) ?? "{}") as Record<string, string>;
  return kept[id] ?? null;
}

function keepTicket(id: string, ticket: string): void {
  const kept = JSON.parse(sessionStorage.getItem(TICKETS) ?? "{}") as Record<string, string>;
  kept[id] = ticket;
  sessionStorage.setItem(TICKETS, JSON.stringify(kept));
}

/**
 * Open a link with its identity: take a ticket (one of its downloads; a ticket already taken in
 * this tab is used again), then steps 7-14 of the getter's checks.
 */
export async function openLink(id: string, identity: string): Promise<OpenedLink> {
  let ticket = keptTicket(id);
  let answer: Ticket | null = null;
  if (ticket) answer = await publicCall<Ticket>("GET", path`/api/v1/public/links/${id}`, ticket).catch(() => null);
  if (!answer) {
    answer = await publicCall<Ticket>("POST", path`/api/v1/public/links/${id}/tickets`, null);
    ticket = answer.ticket;
  }
  if (!ticket || !answer.transfer || answer.transfer.id !== id) throw new IntegrityError("the server answered for another link");
  keepTicket(id, ticket);
  const { doc } = await openLinkManifest(fromBase64Padded(answer.transfer.manifest), id, identity);
  checkFileList(answer.transfer.files, doc.files);
  checkNotExpired(doc.expires, new Date(), "this link has expired");
  return { id, ticket, identity, doc };
}

async function publicCall<T>(method: string, url: string, bearer: string | null): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  const response = await fetch(url, { method, headers, credentials: "omit", cache: "no-store" });
  if (!response.ok) throw await problem(response);
  return (await response.json()) as T;
}

export function linkDownload(link: OpenedLink, file: ManifestFile, sink: Sink, progress: (p: jobs.Progress) => void): jobs.Running<Blob | null> {
  const url = path`/api/v1/public/links/${link.id}/files/${file.id}`;
  return jobs.getFile({ url, token: link.ticket, ageIdentity: link.identity, expected: file, sink }, progress);
}

