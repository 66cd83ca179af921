/**
 * Transfer manifests (docs/spec/manifest.md): what a transfer holds, signed by the sending
 * device, then age-encrypted to every device that may read it.
 *
 *     sealManifest(doc, identity)        sign (pli/manifest/v2), then encrypt to readers(doc)
 *     openManifest(sealed, ageIdentity)  receiver checks 3–4: size, decryption, JSON, shape
 *     verifyManifest(envelope, signer)   check 8, under the key the caller chose (check 7)
 *     checkTransfer, checkSender, checkAddressedTo, checkFileList, checkNotExpired
 *                                        checks 5, 6, 9, 10 and 11, each with its error
 *     readers(doc), keyEntry, isKeyEntry, isFileEntry, checkManifestDoc
 *
 * The signature comes before the encryption so that who signed stays hidden from the server;
 * the ciphertext hashes bind every stored file to it, and the transfer id binds the manifest
 * to one transfer. Manifests are written as pli/manifest/v2; pli/manifest/v1, whose files also
 * carry their plaintext's SHA-256, is still read, each verified under its own kind.
 */

import { canonical, hasMembers, isPlainObject, parseJson } from "./canonical.js";
import { DecryptError, GoneError, IntegrityError, SignatureError, UsageError } from "./errors.js";
import { ageDecrypt, ageEncrypt, publicKey, sameKeys, signDoc, verifyDoc } from "./keys.js";
import type { Identity, PublicKey, Signed } from "./keys.js";

/** The version clients write. */
export const MANIFEST_KIND = "pli/manifest/v2";
/** The version before it, still read: its files also carry their plaintext's SHA-256. */
export const MANIFEST_V1_KIND = "pli/manifest/v1";
export type ManifestKind = typeof MANIFEST_KIND | typeof MANIFEST_V1_KIND;
/** Largest encrypted manifest (or answer, request document, request key) read or written. */
export const MAX_SEALED_BYTES = 4 << 20;

/** One file of a transfer, as the sender signed it. */
export interface ManifestFile {
  id: string;
  name: string;
  size: number;
  /** The plaintext's SHA-256: only in pli/manifest/v1 (and in request answers). */
  sha256?: string;
  ciphertext_size: number;
  ciphertext_sha256: string;
}
/** A file entry with its plaintext's SHA-256, as v1 manifests and request answers have. */
export type DigestedFile = ManifestFile & { sha256: string };
/** A manifest's signed document: exactly these members. */
export interface ManifestDoc {
  kind: ManifestKind;
  transfer: string;
  sender: PublicKey;
  recipients: PublicKey[];
  files: ManifestFile[];
  created: string;
  expires: string;
  message: string;
}

const KEY_FIELDS = ["email", "device", "age", "ed25519"];
const FILE_FIELDS = ["id", "name", "size", "ciphertext_size", "ciphertext_sha256"];
const DIGESTED_FIELDS = [...FILE_FIELDS, "sha256"];
const FIELDS = [
  "kind",
  "transfer",
  "sender",
  "recipients",
  "files",
  "created",
  "expires",
  "message",
];
const HEX64 = /^[0-9a-f]{64}$/;

/** A key entry: exactly `email`, `device`, `age`, `ed25519`, all strings. */
export function isKeyEntry(value: unknown): value is PublicKey {
  return (
    isPlainObject(value) &&
    hasMembers(value, KEY_FIELDS) &&
    KEY_FIELDS.every((name) => typeof value[name] === "string")
  );
}

/** An integer ≥ 0; booleans are not integers here. */
function isCount(value: unknown): boolean {
  return typeof value === "number" && Number.isInteger(value) && value >= 0;
}

/** 64 lowercase hex digits. */
function isDigest(value: unknown): boolean {
  return typeof value === "string" && HEX64.test(value);
}

/**
 * A file entry of a `kind` manifest: exactly its five members, with `sha256` a sixth in v1;
 * sizes integers ≥ 0, digests 64 lowercase hex.
 */
export function isFileEntry(value: unknown, kind: ManifestKind): value is ManifestFile {
  const v1 = kind === MANIFEST_V1_KIND;
  if (!isPlainObject(value) || !hasMembers(value, v1 ? DIGESTED_FIELDS : FILE_FIELDS)) return false;
  const { id, name, size, sha256, ciphertext_size: cSize, ciphertext_sha256: cSha } = value;
  return (
    typeof id === "string" &&
    typeof name === "string" &&
    isCount(size) &&
    isCount(cSize) &&
    (!v1 || isDigest(sha256)) &&
    isDigest(cSha)
  );
}

/** A file entry with its plaintext's SHA-256: a v1 manifest's, or a request answer's. */
export function isDigestedFile(value: unknown): value is DigestedFile {
  return isFileEntry(value, MANIFEST_V1_KIND);
}

/** `value` if it is a manifest kind that is read (v2, or v1), else null. */
function manifestKind(value: unknown): ManifestKind | null {
  return value === MANIFEST_KIND || value === MANIFEST_V1_KIND ? value : null;
}

/** `doc` as a manifest document if it has exactly the shape of the spec; else SignatureError. */
export function checkManifestDoc(doc: unknown): ManifestDoc {
  const kind = isPlainObject(doc) ? manifestKind(doc.kind) : null;
  const ok =
    isPlainObject(doc) &&
    hasMembers(doc, FIELDS) &&
    kind !== null &&
    ["transfer", "created", "expires", "message"].every((k) => typeof doc[k] === "string") &&
    isKeyEntry(doc.sender) &&
    Array.isArray(doc.recipients) &&
    doc.recipients.every(isKeyEntry) &&
    Array.isArray(doc.files) &&
    doc.files.every((file) => isFileEntry(file, kind));
  if (!ok) throw new SignatureError("malformed manifest");
  return doc as unknown as ManifestDoc;
}

/** The key entry of a device: its four public members. */
export function keyEntry(key: PublicKey): PublicKey {
  return publicKey(key);
}

/** A copy of a file entry with exactly the five members of v2: a v1 entry loses its `sha256`. */
function fileEntry(file: ManifestFile): ManifestFile {
  const { id, name, size, ciphertext_size, ciphertext_sha256 } = file;
  return { id, name, size, ciphertext_size, ciphertext_sha256 };
}

/** A v2 copy of `doc` holding exactly the spec's members, so nothing else is signed. */
function plainDoc(doc: ManifestDoc): Record<string, unknown> {
  return {
    kind: MANIFEST_KIND,
    transfer: doc.transfer,
    sender: keyEntry(doc.sender),
    recipients: doc.recipients.map(keyEntry),
    files: doc.files.map(fileEntry),
    created: doc.created,
    expires: doc.expires,
    message: doc.message,
  };
}

/** Who can read a manifest and its files: every recipient's age key, then the sender's, once. */
export function readers(doc: ManifestDoc): string[] {
  return [...new Set([...doc.recipients.map((r) => r.age), doc.sender.age])];
}

/**
 * The encrypted manifest: `doc` as pli/manifest/v2 (whatever its kind: a v1 document's files
 * lose their `sha256`), signed by `identity` (which must be `doc.sender`) with that context,
 * then `canonical({"doc", "sig"})` age-encrypted to `readers(doc)`. A malformed document is a
 * SignatureError; one over 4 MiB once encrypted, a UsageError.
 */
export async function sealManifest(doc: ManifestDoc, identity: Identity): Promise<Uint8Array> {
  const plain = checkManifestDoc(plainDoc(doc));
  const me = identity.device;
  if (plain.sender.email !== me.email || !sameKeys(plain.sender, me)) {
    throw new UsageError("a manifest must name the device that signs it as its sender");
  }
  const envelope = await signDoc(MANIFEST_KIND, plainDoc(plain), identity.seed);
  const sealed = await ageEncrypt(canonical(envelope), readers(plain));
  if (sealed.length > MAX_SEALED_BYTES) {
    throw new UsageError("this transfer lists too many files for one manifest");
  }
  return sealed;
}

/**
 * Receiver checks 3–4: at most 4 MiB, decrypts with `ageIdentity` (header MAC, every chunk,
 * final chunk), else DecryptError; JSON within depth, an envelope of exactly `doc` and `sig`,
 * and `doc` of exactly the spec's shape, else SignatureError. The signature is NOT checked
 * yet: call `verifyManifest` with the key the receiver holds for the sender.
 */
export async function openManifest(
  sealed: Uint8Array,
  ageIdentity: string,
): Promise<{ doc: ManifestDoc; envelope: Signed }> {
  if (sealed.length > MAX_SEALED_BYTES) throw new DecryptError("the manifest is too large");
  const why = "this transfer was not encrypted to you, or it is damaged";
  const plain = await ageDecrypt(sealed, ageIdentity, why);
  const envelope = parseJson(plain);
  if (!isPlainObject(envelope) || !hasMembers(envelope, ["doc", "sig"])) {
    throw new SignatureError("malformed manifest");
  }
  const doc = checkManifestDoc(envelope.doc);
  if (typeof envelope.sig !== "string") throw new SignatureError("malformed manifest");
  return { doc, envelope: { doc: envelope.doc as Record<string, unknown>, sig: envelope.sig } };
}

/**
 * Check 8: the signature verifies under `signer.ed25519` with the document's own kind as its
 * context, v2 or v1; any other kind is a SignatureError.
 */
export async function verifyManifest(envelope: Signed, signer: PublicKey): Promise<void> {
  const kind = manifestKind(envelope.doc.kind);
  if (kind === null) throw new SignatureError("malformed manifest");
  await verifyDoc(kind, envelope, signer.ed25519);
}

/** Check 5: the manifest was signed for this transfer, not replayed from another. */
export function checkTransfer(doc: ManifestDoc, transferId: string): void {
  if (doc.transfer !== transferId) {
    throw new IntegrityError("the manifest belongs to another transfer (replayed by the server?)");
  }
}

/** Check 6: who signed is who the server says sent it. */
export function checkSender(doc: ManifestDoc, statedSender: unknown): void {
  if (doc.sender.email !== statedSender) {
    throw new IntegrityError("the manifest was signed by someone other than the stated sender");
  }
}

/** Check 9: this device (`myAge`) is the sender or one of the signed recipients. */
export function checkAddressedTo(doc: ManifestDoc, myAge: string): void {
  if (!readers(doc).includes(myAge)) {
    throw new IntegrityError("the manifest does not name this device as a recipient");
  }
}

/**
 * Check 10: the server's file list, as (`id`, `size`) pairs in order, equals the signed
 * (`id`, `ciphertext_size`) pairs: no file removed, added or reordered.
 */
export function checkFileList(listed: unknown, files: readonly ManifestFile[]): void {
  const same =
    Array.isArray(listed) &&
    listed.length === files.length &&
    listed.every((item: unknown, i) => {
      const file = files[i];
      return isPlainObject(item) && item.id === file?.id && item.size === file?.ciphertext_size;
    });
  if (!same) throw new IntegrityError("the server's file list does not match the signed manifest");
}

const ISO_TIME =
  /^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d)(?::(\d\d)(?:\.(\d{1,6}))?)?(Z|[+-]\d\d:?\d\d)$/;

/** Milliseconds since the epoch of an ISO 8601 time with a zone; NaN for anything else. */
export function parseTime(text: string): number {
  const m = ISO_TIME.exec(text);
  if (m === null) return NaN;
  const [, date, hhmm, seconds = "00", fraction = "", zone = "Z"] = m;
  const millis = fraction.padEnd(3, "0").slice(0, 3);
  const offset = zone === "Z" ? zone : `${zone.slice(0, 3)}:${zone.slice(-2)}`;
  return Date.parse(`${date}T${hhmm}:${seconds}.${millis}${offset}`);
}

/**
 * Check 11: `expires` is an ISO 8601 time with a zone (else IntegrityError), later than `now`
 * (else GoneError): a server that keeps serving past the signed expiry is not obeyed.
 */
export function checkNotExpired(
  expires: string,
  now: Date = new Date(),
  gone = "this transfer has expired",
): void {
  const moment = parseTime(expires);
  if (Number.isNaN(moment)) throw new IntegrityError("the manifest holds a malformed expiry time");
  if (moment <= now.getTime()) throw new GoneError(gone);
}
