/**
 * Device keys, signed documents and the private bundle (docs/spec/keys.md).
 *
 * Signed documents
 *     signDoc(context, doc, seed)          {"doc", "sig"}: Ed25519 over context LF canonical(doc)
 *     verifyDoc(context, envelope, key)    the doc, or a SignatureError
 * Public key bundles
 *     parseBundle(envelope, email?)        checks 1–3 of "What a client checks"
 *     fingerprint(key), sameKeys(a, b), publicKey(device)
 * Device identities
 *     newIdentity, identityOf              a device from fresh or given secrets
 *     sealIdentity / unsealIdentity        the private bundle, an age scrypt file
 * age keys and files (over the age-encryption library)
 *     parseAgeIdentity, ageIdentityOf, parseAgeRecipient, isUsableRecipient, recipientOf
 *     ageEncrypt, ageDecrypt, passphraseEncrypt, passphraseDecrypt, readAgeHeader
 *
 * Ed25519 is WebCrypto's; X25519, scrypt, ChaCha20-Poly1305 and STREAM are age-encryption's.
 * This module only reads the text of age headers, so that an attacker-chosen scrypt work
 * factor is refused before any derivation.
 */

import { Decrypter, Encrypter, generateX25519Identity, identityToRecipient } from "age-encryption";
import { sha256 } from "@noble/hashes/sha2.js";
import { b64decode, b64encode, bech32Decode, bech32Encode } from "./b64.js";
import { fromBase64url, fromHex, hex } from "./b64.js";
import { canonical, hasMembers, isPlainObject, isWellFormed, parseJson } from "./canonical.js";
import { DecryptError, SignatureError, UsageError } from "./errors.js";

export const BUNDLE_KIND = "pli/key-bundle/v1";
export const PRIVATE_KIND = "pli/private-bundle/v1";
/** scrypt work factor (log2 N) written by default: 2^18. */
export const DEFAULT_WORK_FACTOR = 18;
/** Highest work factor written or opened: 2^20 already costs 1 GiB of memory. */
export const MAX_WORK_FACTOR = 20;

/** A device's public keys, as a manifest or request lists them. */
export interface PublicKey {
  email: string;
  device: string;
  age: string;
  ed25519: string;
}
/** A device as its verified public bundle describes it. */
export interface Device extends PublicKey {
  created: string;
}
/** A signed document: `sig` is b64 Ed25519 over `context LF canonical(doc)`. */
export interface Signed {
  doc: Record<string, unknown>;
  sig: string;
}
/** This device: its public description, its self-signed bundle and both secrets. */
export interface Identity {
  device: Device;
  bundle: Signed;
  ageIdentity: string;
  seed: Uint8Array;
}

const BUNDLE_FIELDS = ["kind", "email", "device", "age", "ed25519", "created"] as const;
const PRIVATE_FIELDS = [
  "kind",
  "email",
  "device",
  "age_identity",
  "ed25519_seed",
  "created",
] as const;
const DEVICE_ID = /^[0-9a-f]{32}$/;
const MAX_EMAIL = 254;
const PKCS8_ED25519 = fromHex("302e020100300506032b657004220420");
const ED25519 = { name: "Ed25519" } as const;

/** A copy WebCrypto accepts (a plain ArrayBuffer behind it, never a shared one). */
function buffer(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}

/** Fresh random bytes from the platform's CSPRNG. */
export function randomBytes(length: number): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(length));
}

/** Now, as pli writes times: `YYYY-MM-DDTHH:MM:SSZ`. */
export function utcNow(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, "Z");
}

// --- age keys ---------------------------------------------------------------------------------

/** The 32-byte X25519 secret of an age identity, written uppercase; null if it is not one. */
export function parseAgeIdentity(text: string): Uint8Array | null {
  if (text !== text.toUpperCase()) return null;
  const decoded = bech32Decode(text);
  const ok = decoded?.hrp === "age-secret-key-" && decoded.data.length === 32;
  return ok ? decoded.data : null;
}

/** The age identity (`AGE-SECRET-KEY-1…`) of a 32-byte X25519 secret. */
export function ageIdentityOf(secret: Uint8Array): string {
  if (secret.length !== 32) throw new UsageError("an age key is 32 bytes");
  return bech32Encode("age-secret-key-", secret).toUpperCase();
}

/** The 32-byte X25519 public key of an age recipient, written lowercase; null if not one. */
export function parseAgeRecipient(text: string): Uint8Array | null {
  if (text !== text.toLowerCase()) return null;
  const decoded = bech32Decode(text);
  return decoded?.hrp === "age" && decoded.data.length === 32 ? decoded.data : null;
}

/**
 * True when `text` is an age recipient that can be encrypted to. A small-order point gives an
 * all-zero shared secret, which age forbids; age-encryption finds it only when it wraps a
 * file key, so one is wrapped for an empty file, through the very code that will encrypt to it.
 */
export async function isUsableRecipient(text: string): Promise<boolean> {
  if (parseAgeRecipient(text) === null) return false;
  try {
    const probe = new Encrypter();
    probe.addRecipient(text);
    await probe.encrypt(new Uint8Array(0));
    return true;
  } catch {
    return false;
  }
}

/** The recipient (`age1…`) of a valid age identity. */
export async function recipientOf(identity: string): Promise<string> {
  if (parseAgeIdentity(identity) === null) throw new UsageError("this is not an age identity");
  return identityToRecipient(identity);
}

// --- age files ----------------------------------------------------------------------------------

/** One stanza of an age header: its type, arguments and decoded body. */
export interface AgeStanza {
  type: string;
  args: string[];
  body: Uint8Array;
}
/** An age header read as text: its stanzas, and its length in bytes (MAC line included). */
export interface AgeHeader {
  stanzas: AgeStanza[];
  length: number;
}

const INTRO = "age-encryption.org/v1\n";
const MAX_HEADER = 1 << 20;
const ARG = /^[\x21-\x7e]+$/;

/** Length of the header at the start of `file` (through the MAC line's newline), or null. */
function headerLength(file: Uint8Array): number | null {
  for (let nl = file.indexOf(0x0a); nl >= 0 && nl < MAX_HEADER; nl = file.indexOf(0x0a, nl + 1)) {
    const isMac = file[nl + 1] === 0x2d && file[nl + 2] === 0x2d && file[nl + 3] === 0x2d;
    if (isMac && file[nl + 4] === 0x20) {
      const end = file.indexOf(0x0a, nl + 1);
      return end < 0 ? null : end + 1;
    }
  }
  return null;
}

/**
 * The header of an age v1 file, parsed from its text alone (no key, no derivation), as age's
 * format defines it: the version line, stanzas of printable arguments with canonical base64
 * bodies in 64-column lines, and a MAC line of 32 bytes. Throws a DecryptError otherwise.
 */
export function readAgeHeader(file: Uint8Array): AgeHeader {
  const length = headerLength(file);
  const bytes = length === null ? null : file.subarray(0, length);
  if (bytes === null || bytes.some((b) => b > 0x7e || (b < 0x20 && b !== 0x0a))) {
    throw new DecryptError("the encrypted file has no valid header");
  }
  const text = new TextDecoder().decode(bytes);
  if (!text.startsWith(INTRO)) throw new DecryptError("this is not an age file");
  const lines = text.slice(INTRO.length).split("\n");
  const stanzas: AgeStanza[] = [];
  let at = 0;
  while (lines[at]?.startsWith("-> ")) at = readStanza(lines, at, stanzas);
  readMac(lines, at, stanzas.length);
  return { stanzas, length: bytes.length };
}

/** Appends the stanza starting at line `at` to `stanzas`; returns the line after it. */
function readStanza(lines: string[], at: number, stanzas: AgeStanza[]): number {
  const [type, ...args] = (lines[at] ?? "").slice(3).split(" ");
  if (type === undefined || ![type, ...args].every((part) => ARG.test(part))) {
    throw new DecryptError("malformed age header");
  }
  let body = "";
  for (;;) {
    at += 1;
    const line = lines[at];
    if (line === undefined || at >= lines.length - 1 || line.length > 64) {
      throw new DecryptError("malformed age header");
    }
    body += line;
    if (line.length < 64) break;
  }
  stanzas.push({ type, args, body: headerBase64(body) });
  return at + 1;
}

/** The MAC line must be the last line, hold 32 bytes, and follow at least one stanza. */
function readMac(lines: string[], at: number, stanzaCount: number): void {
  const mac = lines[at];
  const last = at === lines.length - 2 && lines[lines.length - 1] === "";
  if (mac === undefined || !mac.startsWith("--- ") || !last || stanzaCount === 0) {
    throw new DecryptError("malformed age header");
  }
  if (headerBase64(mac.slice(4)).length !== 32) throw new DecryptError("malformed age header");
}

/** base64 read from a header: any flaw is the file's, so a DecryptError. */
function headerBase64(text: string): Uint8Array {
  try {
    return b64decode(text);
  } catch {
    throw new DecryptError("malformed age header");
  }
}

/**
 * The work factor of a passphrase-encrypted file's header: exactly one stanza, of type
 * scrypt, with a 16-byte salt, a work factor written [1-9][0-9]? and a 32-byte body. A scrypt
 * stanza must stand alone, or a passphrase file could be silently re-shared. DecryptError else.
 */
export function scryptWorkFactor(header: AgeHeader): number {
  const [stanza, ...others] = header.stanzas;
  const [salt, work] = stanza?.args ?? [];
  const ok =
    stanza?.type === "scrypt" &&
    others.length === 0 &&
    stanza.args.length === 2 &&
    stanza.body.length === 32 &&
    /^[1-9][0-9]?$/.test(work ?? "") &&
    headerBase64(salt ?? "").length === 16;
  if (!ok) throw new DecryptError("this is not a passphrase-encrypted file");
  return Number(work);
}

/** An age v1 file of `plain` to every recipient, in order (one X25519 stanza each). */
export async function ageEncrypt(
  plain: Uint8Array,
  recipients: readonly string[],
): Promise<Uint8Array> {
  if (recipients.length === 0) throw new UsageError("there is nobody to encrypt to");
  const encrypter = new Encrypter();
  try {
    recipients.forEach((r) => encrypter.addRecipient(r));
    return await encrypter.encrypt(plain);
  } catch {
    throw new UsageError("a recipient's key cannot be encrypted to");
  }
}

/**
 * The plaintext of age file `file` for X25519 identity `identity`: header MAC, every chunk and
 * the final-chunk flag checked by age-encryption. Any failure is one DecryptError(`message`).
 */
export async function ageDecrypt(
  file: Uint8Array,
  identity: string,
  message = "this file was not encrypted to your keys, or it is damaged",
): Promise<Uint8Array> {
  try {
    const decrypter = new Decrypter();
    decrypter.addIdentity(identity);
    return await decrypter.decrypt(file);
  } catch {
    throw new DecryptError(message);
  }
}

/** Checks a work factor the caller asked for: an integer from 1 to 20. */
function checkWorkFactor(workFactor: number): void {
  if (!Number.isInteger(workFactor) || workFactor < 1 || workFactor > MAX_WORK_FACTOR) {
    throw new UsageError(`the work factor must be a whole number from 1 to ${MAX_WORK_FACTOR}`);
  }
}

/** An age v1 file of `plain` under `passphrase`: one scrypt stanza at 2^workFactor. */
export async function passphraseEncrypt(
  plain: Uint8Array,
  passphrase: string,
  workFactor: number = DEFAULT_WORK_FACTOR,
): Promise<Uint8Array> {
  checkWorkFactor(workFactor);
  if (passphrase === "" || !isWellFormed(passphrase)) {
    throw new UsageError("the passphrase must not be empty and must be valid text");
  }
  const encrypter = new Encrypter();
  encrypter.setPassphrase(passphrase);
  encrypter.setScryptWorkFactor(workFactor);
  return encrypter.encrypt(plain);
}

/**
 * The plaintext of a passphrase-encrypted age file. Its header is read first, as text: one
 * scrypt stanza and a work factor of at most 20, else a DecryptError before any derivation
 * (the work factor is chosen by whoever wrote the file: 2^21 would cost 2 GiB). A wrong
 * passphrase, a bad MAC or a damaged payload is the same DecryptError(`message`).
 */
export async function passphraseDecrypt(
  file: Uint8Array,
  passphrase: string,
  message = "wrong passphrase, or the file is damaged",
): Promise<Uint8Array> {
  if (scryptWorkFactor(readAgeHeader(file)) > MAX_WORK_FACTOR) {
    throw new DecryptError(`the passphrase work factor is above 2^${MAX_WORK_FACTOR}`);
  }
  if (!isWellFormed(passphrase)) throw new DecryptError(message);
  try {
    const decrypter = new Decrypter();
    decrypter.addPassphrase(passphrase);
    return await decrypter.decrypt(file);
  } catch {
    throw new DecryptError(message);
  }
}

// --- signed documents -------------------------------------------------------------------------

/** The signed message: the context names the kind of document, so no signature crosses kinds. */
function signedMessage(context: string, doc: Record<string, unknown>): Uint8Array<ArrayBuffer> {
  const body = canonical(doc);
  const out = new Uint8Array(context.length + 1 + body.length);
  out.set(new TextEncoder().encode(`${context}\n`));
  out.set(body, context.length + 1);
  return out;
}

/** WebCrypto's Ed25519 private key for a 32-byte RFC 8032 seed (PKCS #8 wrapping). */
async function signingKey(seed: Uint8Array, extractable: boolean): Promise<CryptoKey> {
  if (seed.length !== 32) throw new SignatureError("an Ed25519 seed is 32 bytes");
  const pkcs8 = new Uint8Array(PKCS8_ED25519.length + 32);
  pkcs8.set(PKCS8_ED25519);
  pkcs8.set(seed, PKCS8_ED25519.length);
  return globalThis.crypto.subtle.importKey("pkcs8", pkcs8, ED25519, extractable, ["sign"]);
}

/** The Ed25519 public key of `seed`: WebCrypto derives it, and JWK's `x` member carries it. */
export async function ed25519PublicOf(seed: Uint8Array): Promise<Uint8Array> {
  const jwk = await globalThis.crypto.subtle.exportKey("jwk", await signingKey(seed, true));
  if (typeof jwk.x !== "string") throw new SignatureError("the platform did not derive the key");
  return fromBase64url(jwk.x);
}

/** `{"doc", "sig"}`: `doc` signed for `context`, which `doc.kind` must name. */
export async function signDoc(
  context: string,
  doc: Record<string, unknown>,
  seed: Uint8Array,
): Promise<Signed> {
  if (doc.kind !== context) throw new SignatureError("a signed document must name its own kind");
  const key = await signingKey(seed, false);
  const sig = await globalThis.crypto.subtle.sign(ED25519, key, signedMessage(context, doc));
  return { doc, sig: b64encode(new Uint8Array(sig)) };
}

/** WebCrypto's Ed25519 public key for b64 `ed25519`; a SignatureError if it is not one. */
async function verifyingKey(ed25519: string): Promise<CryptoKey> {
  const raw = b64decode(ed25519);
  if (raw.length !== 32) throw new SignatureError("malformed signing key");
  try {
    return await globalThis.crypto.subtle.importKey("raw", buffer(raw), ED25519, false, ["verify"]);
  } catch {
    throw new SignatureError("malformed signing key");
  }
}

/**
 * The `doc` of `envelope` if it is exactly `{"doc": object, "sig": b64}`, `doc.kind` is
 * `context`, and the signature verifies under `ed25519` over `context LF canonical(doc)`,
 * recomputed here. Any other outcome is a SignatureError.
 */
export async function verifyDoc(
  context: string,
  envelope: unknown,
  ed25519: string,
): Promise<Record<string, unknown>> {
  const doc = isPlainObject(envelope) && hasMembers(envelope, ["doc", "sig"]) ? envelope.doc : null;
  const sig = isPlainObject(envelope) ? envelope.sig : null;
  if (!isPlainObject(doc) || typeof sig !== "string" || doc.kind !== context) {
    throw new SignatureError("malformed signed document");
  }
  const key = await verifyingKey(ed25519);
  const signature = b64decode(sig);
  const message = signedMessage(context, doc);
  const ok =
    signature.length === 64 &&
    (await globalThis.crypto.subtle.verify(ED25519, key, buffer(signature), message));
  if (!ok) throw new SignatureError("signature verification failed");
  return doc;
}

// --- public key bundles -----------------------------------------------------------------------

/** The members of `doc` named `names` if they are exactly its members and all strings. */
export function stringMembers<K extends string>(
  doc: unknown,
  names: readonly K[],
): Record<K, string> | null {
  if (!isPlainObject(doc) || !hasMembers(doc, names)) return null;
  return names.every((n) => typeof doc[n] === "string") ? (doc as Record<K, string>) : null;
}

/** Length in code points, as the spec and Python count characters. */
function codePoints(text: string): number {
  return Array.from(text).length;
}

/**
 * The device a signed public bundle describes, after checks 1–3 of docs/spec/keys.md "What a
 * client checks": exact shape, device id, email length, a usable age recipient; the
 * self-signature under its own `ed25519` key; and, when `email` is given, that it names that
 * account. Any failure is a SignatureError. Trust (check 4) is the caller's.
 */
export async function parseBundle(envelope: unknown, email?: string): Promise<Device> {
  const doc = stringMembers(isPlainObject(envelope) ? envelope.doc : null, BUNDLE_FIELDS);
  const valid =
    doc !== null &&
    doc.kind === BUNDLE_KIND &&
    DEVICE_ID.test(doc.device) &&
    codePoints(doc.email) <= MAX_EMAIL &&
    (await isUsableRecipient(doc.age));
  if (!valid) throw new SignatureError("malformed key bundle");
  await verifyDoc(BUNDLE_KIND, envelope, doc.ed25519);
  if (email !== undefined && doc.email !== email) {
    throw new SignatureError("a key bundle names another account than the one asked for");
  }
  const { email: owner, device, age, ed25519, created } = doc;
  return { email: owner, device, age, ed25519, created };
}

/** The four members a manifest or request copies from a device's bundle. */
export function publicKey(key: PublicKey): PublicKey {
  return { email: key.email, device: key.device, age: key.age, ed25519: key.ed25519 };
}

/** Same device, same keys: what pinning compares (never fingerprints). */
export function sameKeys(a: PublicKey, b: PublicKey): boolean {
  return a.device === b.device && a.age === b.age && a.ed25519 === b.ed25519;
}

/**
 * A short digest of both public keys for people to compare out of band: the first 128 bits of
 * SHA-256("pli/fingerprint/v1" LF age LF ed25519), as eight groups of four hex digits.
 */
export async function fingerprint(key: { age: string; ed25519: string }): Promise<string> {
  const input = new TextEncoder().encode(`pli/fingerprint/v1\n${key.age}\n${key.ed25519}`);
  const digits = hex(sha256(input)).slice(0, 32);
  return (digits.match(/.{4}/g) ?? []).join(" ");
}

// --- device identities ------------------------------------------------------------------------

/** What names a device and its two secrets. */
export interface IdentityParts {
  email: string;
  device: string;
  created: string;
  ageIdentity: string;
  seed: Uint8Array;
}

/**
 * The device identity of given secrets, with its self-signed public bundle (Ed25519 is
 * deterministic, so the same secrets always give the same bundle). The bundle goes through
 * `parseBundle`, so nothing is returned that a correspondent would refuse: a SignatureError.
 */
export async function identityOf(parts: IdentityParts): Promise<Identity> {
  if (parseAgeIdentity(parts.ageIdentity) === null) throw new SignatureError("malformed age key");
  const doc = {
    kind: BUNDLE_KIND,
    email: parts.email,
    device: parts.device,
    age: await identityToRecipient(parts.ageIdentity),
    ed25519: b64encode(await ed25519PublicOf(parts.seed)),
    created: parts.created,
  };
  const bundle = await signDoc(BUNDLE_KIND, doc, parts.seed);
  const device = await parseBundle(bundle, parts.email);
  return { device, bundle, ageIdentity: parts.ageIdentity, seed: new Uint8Array(parts.seed) };
}

/** A new device: fresh X25519 and Ed25519 keys and a random 16-byte device id. */
export async function newIdentity(email: string, created: string): Promise<Identity> {
  if (email === "" || codePoints(email) > MAX_EMAIL) {
    throw new UsageError(`an email address has 1 to ${MAX_EMAIL} characters`);
  }
  const ageIdentity = await generateX25519Identity();
  const device = hex(randomBytes(16));
  return identityOf({ email, device, created, ageIdentity, seed: randomBytes(32) });
}

/**
 * The private bundle: canonical JSON of both secrets, age-encrypted under `passphrase` with
 * one scrypt stanza at 2^workFactor (1 to 20; 18 by default). `age -d` opens it.
 */
export async function sealIdentity(
  identity: Identity,
  passphrase: string,
  workFactor: number = DEFAULT_WORK_FACTOR,
): Promise<Uint8Array> {
  const doc = {
    kind: PRIVATE_KIND,
    email: identity.device.email,
    device: identity.device.device,
    age_identity: identity.ageIdentity,
    ed25519_seed: b64encode(identity.seed),
    created: identity.device.created,
  };
  return passphraseEncrypt(canonical(doc), passphrase, workFactor);
}

/**
 * The identity in a private bundle. Refuses a work factor above 20 before deriving anything;
 * then the plaintext must be JSON with exactly the six members, `kind` right, a valid age
 * identity and a 32-byte seed. Every failure is a DecryptError, which the user sees as a
 * wrong passphrase: telling them more would help only someone guessing.
 */
export async function unsealIdentity(ageFile: Uint8Array, passphrase: string): Promise<Identity> {
  const plain = await passphraseDecrypt(ageFile, passphrase);
  try {
    const doc = stringMembers(parseJson(plain), PRIVATE_FIELDS);
    if (doc === null || doc.kind !== PRIVATE_KIND) throw new DecryptError("malformed");
    const { email, device, created, age_identity: ageIdentity } = doc;
    const seed = b64decode(doc.ed25519_seed);
    return await identityOf({ email, device, created, ageIdentity, seed });
  } catch {
    throw new DecryptError("the private key file is malformed");
  }
}
