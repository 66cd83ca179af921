/**
 * What an interrupted send leaves in this browser so that it can resume after a reload, in
 * IndexedDB (database "pli-resume"), per account, transfer and file slot. The page writes the
 * send's record; the worker writes each file's, as it uploads. Both go when the transfer is
 * sealed, cancelled or abandoned.
 *
 *     device     one AES-256-GCM CryptoKey, non-extractable, made once per browser
 *     sends      per [email, transfer]: the recipients' public keys and accounts, the expiry
 *                asked and the one the server set, the message (sealed), the files' names,
 *                sizes and modification times, and which slot each one fills
 *     files      per [email, transfer, slot]: the tus upload's address, the age header and
 *                payload nonce, the file key (sealed), the file's name, size and modification
 *                time, the SHA-256 of each 8 MiB part of plaintext and of its ciphertext,
 *                recorded before the part is sent; once the file is uploaded, only its entry
 *                for the manifest (sizes and digests) and no key
 *
 * A file key or a message is never stored in clear: each is sealed under the device key
 * (../crypto/devicekey.ts) with its record's names as additional data.
 */

import { openUnder, sealUnder, newDeviceKey, type Sealed } from "../crypto/devicekey.js";
import type { PublicKey } from "../crypto/keys.js";
import type { Sent } from "../worker/protocol.js";

const DB = "pli-resume";
const VERSION = 1;

/** The digests of one part, recorded before any of its bytes is sent: lowercase hex SHA-256. */
export interface PartDigest {
  plain: string;
  cipher: string;
}

/** A file as chosen: what is compared before its contents are. */
export interface Source {
  name: string;
  size: number;
  lastModified: number;
}

/** One file of an interrupted send. */
export interface PendingFile extends Source {
  email: string;
  transfer: string;
  slot: string;
  /** The age recipients its header wraps the file key to. */
  ages: string[];
  /** The tus upload (absent once the file is uploaded). */
  url?: string;
  /** The age header and payload nonce. */
  prefix?: Uint8Array;
  /** The file key, sealed under the device key. */
  key?: Sealed;
  /** Digests of the parts that may have left the browser, in order. */
  parts: PartDigest[];
  /** The manifest entry, once every byte is on the server. */
  entry?: Sent;
}

/** An interrupted send. */
export interface PendingSend {
  email: string;
  transfer: string;
  /** When this browser began it (ISO 8601). */
  started: string;
  /** The recipient accounts and groups (`group:org/group`), as asked. */
  to: string[];
  /** Members of those groups the sender chose to leave out. */
  without?: string[];
  /** Every device the files are encrypted to, as the manifest lists them. */
  recipients: PublicKey[];
  /** The age recipients of every file: those devices' and the sender's. */
  ages: string[];
  expiresIn: string;
  /** The server's creation and expiry times, checked when the transfer was made. */
  created: string;
  expires: string;
  message: Sealed;
  files: (Source & { slot: string })[];
}

function opened(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = globalThis.indexedDB.open(DB, VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      if (!db.objectStoreNames.contains("device")) db.createObjectStore("device");
      if (!db.objectStoreNames.contains("sends")) db.createObjectStore("sends", { keyPath: ["email", "transfer"] });
      if (!db.objectStoreNames.contains("files")) db.createObjectStore("files", { keyPath: ["email", "transfer", "slot"] });
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error ?? new Error("this browser keeps no data for the page"));
    request.onblocked = () => reject(new Error("the page's storage is busy"));
  });
}

let database: Promise<IDBDatabase> | null = null;

function db(): Promise<IDBDatabase> {
  database ??= opened().catch((error: unknown) => {
    database = null;
    throw error;
  });
  return database;
}

/** Run `work` in one transaction over `stores`; its result once the transaction committed. */
async function inTransaction<T>(
  stores: string[],
  mode: IDBTransactionMode,
  work: (tx: IDBTransaction) => Promise<T> | T,
): Promise<T> {
  const tx = (await db()).transaction(stores, mode);
  const done = new Promise<void>((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error ?? new Error("the page's storage refused a write"));
    tx.onabort = () => reject(tx.error ?? new Error("the page's storage refused a write"));
  });
  done.catch(() => undefined); // awaited below; never an unhandled rejection meanwhile
  const [result] = await Promise.all([work(tx), done]);
  return result;
}

function asked<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error ?? new Error("the page's storage failed"));
  });
}

/** Every key from [prefix…] to [prefix…, anything]: arrays sort after strings in IndexedDB. */
function under(...prefix: string[]): IDBKeyRange {
  return IDBKeyRange.bound(prefix, [...prefix, []]);
}

let device: Promise<CryptoKey> | null = null;

/** This browser's device key: made on first use, then always the same one. */
export function deviceKey(): Promise<CryptoKey> {
  device ??= (async () => {
    const found = await inTransaction(["device"], "readonly", (tx) => asked(tx.objectStore("device").get("key")));
    if (found instanceof CryptoKey) return found;
    const made = await newDeviceKey();
    // `add` refuses to replace: if another page or the worker made one meanwhile, use theirs.
    try {
      await inTransaction(["device"], "readwrite", (tx) => asked(tx.objectStore("device").add(made, "key")));
      return made;
    } catch {
      const other = await inTransaction(["device"], "readonly", (tx) => asked(tx.objectStore("device").get("key")));
      if (other instanceof CryptoKey) return other;
      throw new Error("this browser cannot keep a key for the page");
    }
  })().catch((error: unknown) => {
    device = null;
    throw error;
  });
  return device;
}

function fileKeyContext(f: { email: string; transfer: string; slot: string }): string {
  return `file-key\n${f.email}\n${f.transfer}\n${f.slot}`;
}

function messageContext(s: { email: string; transfer: string }): string {
  return `message\n${s.email}\n${s.transfer}`;
}

// --- sends ---------------------------------------------------------------------------------------

/** Record a send that has begun; `message` is sealed first. */
export async function saveSend(send: Omit<PendingSend, "message">, message: string): Promise<void> {
  const sealed = await sealUnder(await deviceKey(), new TextEncoder().encode(message), messageContext(send));
  const record: PendingSend = { ...send, message: sealed };
  await inTransaction(["sends"], "readwrite", (tx) => asked(tx.objectStore("sends").put(record)));
}

/** The interrupted sends of account `email`, oldest first. */
export async function pendingSends(email: string): Promise<PendingSend[]> {
  const found = await inTransaction(["sends"], "readonly", (tx) => asked(tx.objectStore("sends").getAll(under(email))));
  return (found as PendingSend[]).sort((a, b) => (a.started < b.started ? -1 : 1));
}

/** The message of an interrupted send; a DecryptError if this browser's key cannot open it. */
export async function openMessage(send: PendingSend): Promise<string> {
  const plain = await openUnder(await deviceKey(), send.message, messageContext(send));
  return new TextDecoder().decode(plain);
}

/** Forget a send and its files' records (the key of each with them). */
export async function forget(email: string, transfer: string): Promise<void> {
  await inTransaction(["sends", "files"], "readwrite", (tx) => {
    tx.objectStore("sends").delete([email, transfer]);
    tx.objectStore("files").delete(under(email, transfer));
  });
}

/** Forget everything kept for sends of `email` whose transfer expired before `now`. */
export async function forgetExpired(email: string, now = Date.now()): Promise<void> {
  for (const send of await pendingSends(email)) {
    const expires = Date.parse(send.expires);
    if (!Number.isNaN(expires) && expires <= now) await forget(email, send.transfer);
  }
}

// --- files ---------------------------------------------------------------------------------------

/** The record of one file slot of a send, if any. */
export async function pendingFile(email: string, transfer: string, slot: string): Promise<PendingFile | null> {
  const found = await inTransaction(["files"], "readonly", (tx) => asked(tx.objectStore("files").get([email, transfer, slot])));
  return (found as PendingFile | undefined) ?? null;
}

export async function putFile(record: PendingFile): Promise<void> {
  await inTransaction(["files"], "readwrite", (tx) => asked(tx.objectStore("files").put(record)));
}

export async function deleteFile(email: string, transfer: string, slot: string): Promise<void> {
  await inTransaction(["files"], "readwrite", (tx) => asked(tx.objectStore("files").delete([email, transfer, slot])));
}

/** `fileKey` sealed for the file slot `at` names. */
export async function sealFileKey(at: { email: string; transfer: string; slot: string }, fileKey: Uint8Array): Promise<Sealed> {
  return sealUnder(await deviceKey(), fileKey, fileKeyContext(at));
}

/** The file key of a record; a DecryptError if it cannot be opened. */
export async function openFileKey(record: PendingFile): Promise<Uint8Array> {
  if (!record.key) throw new Error("this record holds no key");
  return openUnder(await deviceKey(), record.key, fileKeyContext(record));
}

/** Whether a chosen file is the one a record describes, by name, size and modification time. */
export function sameSource(record: Source, file: Source): boolean {
  return record.name === file.name && record.size === file.size && record.lastModified === file.lastModified;
}

/**
 * The chosen files in the order of the send's slots: each slot takes the file with its name,
 * size and modification time, or else one with its name. Null unless every slot has one and
 * every file a slot. (A file with the same name but other contents is found out by the worker.)
 */
export function matchFiles<F extends Source>(slots: readonly Source[], chosen: readonly F[]): F[] | null {
  if (chosen.length !== slots.length) return null;
  const left = [...chosen];
  const take = (test: (f: F) => boolean): F | null => {
    const at = left.findIndex(test);
    return at < 0 ? null : (left.splice(at, 1)[0] ?? null);
  };
  const exact = slots.map((slot) => take((f) => sameSource(slot, f)));
  const matched = slots.map((slot, i) => exact[i] ?? take((f) => f.name === slot.name));
  return matched.every((f) => f !== null) ? (matched as F[]) : null;
}

// --- one sender per transfer -----------------------------------------------------------------------

/** The send is going on already, in this page or another one. */
export class Busy extends Error {
  constructor() {
    super("this send is going on in another tab or window");
  }
}

const LOCK = "pli-send:";
const here = new Set<string>(); // where the browser has no Web Locks: this page's sends only

/**
 * Run `work` as the only sender of `transfer` in this browser (a Web Lock, across tabs); Busy,
 * before anything runs, if another page or this one is sending it already.
 */
export async function whileSending<T>(transfer: string, work: () => Promise<T>): Promise<T> {
  const locks = globalThis.navigator?.locks;
  if (!locks) {
    if (here.has(transfer)) throw new Busy();
    here.add(transfer);
    try {
      return await work();
    } finally {
      here.delete(transfer);
    }
  }
  return (await locks.request(`${LOCK}${transfer}`, { ifAvailable: true }, async (lock) => {
    if (!lock) throw new Busy();
    return work();
  })) as T;
}

/** The transfers some page of this browser is sending now. */
export async function sendingNow(): Promise<Set<string>> {
  const locks = globalThis.navigator?.locks;
  if (!locks) return new Set(here);
  const { held = [] } = await locks.query();
  return new Set(held.map((l) => l.name ?? "").filter((n) => n.startsWith(LOCK)).map((n) => n.slice(LOCK.length)));
}
