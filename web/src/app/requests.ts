/**
 * File requests, from both ends (docs/spec/links.md): the requester creates one (a key pair
 * and a secret made here, the URL's fragment shown once, the keys kept encrypted to the
 * account's devices), lists and closes them and opens their answers; a sender without an
 * account answers one from the request's page.
 */

import { base64Padded, fromBase64Padded } from "../crypto/b64.js";
import { IntegrityError, UsageError } from "../crypto/errors.js";
import type { Identity } from "../crypto/keys.js";
import {
  newRequestKeys,
  openAnswer,
  openRequestDocument,
  openRequestKey,
  requestFragment,
  requestFragmentText,
  sealAnswer,
  sealRequestDocument,
  sealRequestKey,
  senderToken,
  type AnswerDoc,
  type RequestDoc,
  type RequestFragment,
  type RequestKeys,
} from "../crypto/links.js";
import { checkFileList, type DigestedFile, type ManifestFile } from "../crypto/manifest.js";
import { ciphertextSize } from "../crypto/sizes.js";
import { call, path, problem, type TransferOut } from "./api.js";
import { checkAssignedExpiry, Control, uploadAll, type SendProgress } from "./transfers.js";
import { ownOthers } from "./trust.js";

export interface RequestOut {
  id: string;
  url: string;
  state: string;
  created_at: string;
  expires_at: string;
  max_files: number;
  max_bytes: number;
  files_used: number;
  bytes_used: number;
  document: string | null;
  sealed_key: string | null;
}

async function own(me: Identity): Promise<Identity["device"][]> {
  return [me.device, ...(await ownOthers(me))];
}

/** Create a request (as `pli request create`): its whole URL, shown once. */
export async function createRequest(me: Identity, title: string, expiresIn: string, maxFiles: number): Promise<string> {
  const devices = await own(me);
  const made = await call<RequestOut>("POST", "/api/v1/requests", { expires_in: expiresIn, max_files: maxFiles, max_bytes: null });
  try {
    checkAssignedExpiry(made.expires_at, expiresIn);
  } catch (error) {
    await call("POST", path`/api/v1/requests/${made.id}/close`).catch(() => undefined);
    throw error;
  }
  const keys = await newRequestKeys();
  const readers = [...new Set(devices.map((d) => d.age))];
  const body = {
    document: base64Padded(await sealRequestDocument(me, made.id, title, keys)),
    sealed_key: base64Padded(await sealRequestKey(me, made.id, title, keys, readers)),
    sender_token: senderToken(keys.secret),
  };
  await call("POST", path`/api/v1/requests/${made.id}/seal`, body);
  return `${location.origin}/r/${made.id}#${requestFragmentText(await requestFragment(keys))}`;
}

/** A listed request's keys and title, checked (the requester's checks 1-7). */
export async function requestKeys(me: Identity, request: RequestOut): Promise<{ keys: RequestKeys; title: string; url: string }> {
  if (!request.sealed_key) throw new IntegrityError("this request has no key yet");
  const opened = await openRequestKey(fromBase64Padded(request.sealed_key), me.ageIdentity, request.id, await own(me));
  const url = `${location.origin}/r/${request.id}#${requestFragmentText(await requestFragment(opened.keys))}`;
  return { ...opened, url };
}

/** An answer in the inbox, opened with its request's keys and checked (steps 1-6). */
export async function verifiedAnswer(me: Identity, transfer: TransferOut): Promise<{ answer: AnswerDoc; keys: RequestKeys }> {
  if (!transfer.request || !transfer.manifest) throw new IntegrityError("this answer is not complete");
  const request = await call<RequestOut>("GET", path`/api/v1/requests/${transfer.request}`);
  if (request.id !== transfer.request) throw new IntegrityError("the server answered with another request");
  const { keys } = await requestKeys(me, request);
  const answer = await openAnswer(fromBase64Padded(transfer.manifest), keys, transfer.request, transfer.id);
  checkFileList(transfer.files, answer.files);
  return { answer, keys };
}

// --- the sender's side, without an account ---------------------------------------------------

interface OpenRequest {
  id: string;
  document: string;
  expires_at: string;
  files_left: number;
  bytes_left: number;
}

export interface ReadRequest {
  id: string;
  fragment: RequestFragment;
  token: string;
  doc: RequestDoc;
  filesLeft: number;
  bytesLeft: number;
  expiresAt: string;
}

async function publicCall<T>(method: string, url: string, bearer: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json", authorization: `Bearer ${bearer}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "omit", cache: "no-store" });
  if (!response.ok) throw await problem(response);
  return (await response.json()) as T;
}

/** Steps 4-9 of a request's sender: the signed document, opened with the fragment. */
export async function readRequest(id: string, fragment: RequestFragment): Promise<ReadRequest> {
  const token = senderToken(fragment.secret);
  const open = await publicCall<OpenRequest>("GET", path`/api/v1/public/requests/${id}`, token);
  if (typeof open.document !== "string" || !Number.isSafeInteger(open.files_left) || !Number.isSafeInteger(open.bytes_left)) {
    throw new IntegrityError("the server sent a malformed request");
  }
  const doc = await openRequestDocument(fromBase64Padded(open.document), id, fragment);
  return { id, fragment, token, doc, filesLeft: open.files_left, bytesLeft: open.bytes_left, expiresAt: open.expires_at };
}

interface Reserved {
  token: string;
  transfer: { id: string; created_at: string; files: { id: string; size: number | null }[] };
}

/** Reserve room, upload every file encrypted to the request's key alone, seal the answer. */
export function answerRequest(
  request: ReadRequest,
  files: File[],
  name: string,
  message: string,
  progress: (p: SendProgress) => void,
): { done: Promise<void>; cancel(): void } {
  const control = new Control();
  const done = (async () => {
    const recipients = [request.fragment.recipient];
    const sizes = await Promise.all(files.map((f) => ciphertextSize(recipients, f.size)));
    if (files.length > request.filesLeft || sizes.reduce((a, b) => a + b, 0) > request.bytesLeft) {
      throw new UsageError("these files are more than this request still accepts");
    }
    const reserved = await publicCall<Reserved>("POST", path`/api/v1/public/requests/${request.id}/answers`, request.token, { files: sizes });
    const entries = await uploadAll(reserved.transfer, files, recipients, reserved.token, progress, control, { digestPlaintext: true });
    const answer = { request: request.id, transfer: reserved.transfer.id, name, message, files: entries.map(digested), created: reserved.transfer.created_at };
    const sealed = await sealAnswer(request.fragment, answer);
    await publicCall("POST", path`/api/v1/public/answers/${reserved.transfer.id}/seal`, reserved.token, { manifest: base64Padded(sealed) });
  })();
  return { done, cancel: () => control.cancel() };
}

/** An answer's entry, which has its plaintext's `sha256` (pli/answer/v1): the worker hashed it. */
function digested(entry: ManifestFile): DigestedFile {
  const { sha256 } = entry;
  if (sha256 === undefined) throw new Error("a file's digest is missing from its upload");
  return { ...entry, sha256 };
}
