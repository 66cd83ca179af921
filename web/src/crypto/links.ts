/**
 * Share links and file requests (docs/spec/links.md): what the fragment of their URL holds,
 * and the documents that go with them. The fragment (after `#`) never reaches a server: the
 * app cuts it off with `splitUrl` before anything is asked of one.
 *
 *     BASE/l/<id>#AGE-SECRET-KEY-1…            a link: its own age identity (Bech32)
 *     BASE/l/<id>#p1.<base64url>               the same identity in an age file, under a passphrase
 *     BASE/r/<id>#age1….<base64url(32 bytes)>  a request: its age recipient, and its secret
 *
 * URLs           splitUrl
 * Link getter    parseLinkFragment, openLinkFragment, openLinkManifest (steps 1–12; then
 *                checkFileList and checkNotExpired(…, LINK_GONE) of manifest.ts)
 * Link creator   newLinkIdentity, linkFragment, linkRecipientEntry (then sealManifest)
 * Request sender parseRequestFragment, senderToken, openRequestDocument, sealAnswer
 * Requester      newRequestKeys, requestFragment, requestFragmentText, sealRequestDocument,
 *                sealRequestKey, openRequestKey, openAnswer
 * Derivations    documentIdentity, answerMacKey, senderToken, answerMac
 *
 * A request's secret never serves directly: HKDF-SHA256 derives from it the age identity its
 * document is encrypted to, the HMAC-SHA256 key that authenticates answers, and the token a
 * sender shows the server. The server knows none of them, so it can neither read an answer
 * nor make up one the requester accepts. Refusals of a fragment never say which check failed.
 */

import { generateX25519Identity } from "age-encryption";
import { hkdf } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { b64decode, b64encode, base64url, fromBase64url } from "./b64.js";
import { canonical, hasMembers, isPlainObject, parseJson } from "./canonical.js";
import { DecryptError, IntegrityError, UsageError } from "./errors.js";
import {
  DEFAULT_WORK_FACTOR,
  ageDecrypt,
  ageEncrypt,
  ageIdentityOf,
  isUsableRecipient,
  parseAgeIdentity,
  passphraseDecrypt,
  passphraseEncrypt,
  publicKey,
  readAgeHeader,
  recipientOf,
  sameKeys,
  signDoc,
  utcNow,
  verifyDoc,
} from "./keys.js";
import type { Identity, PublicKey, Signed } from "./keys.js";
import {
  MAX_SEALED_BYTES,
  isDigestedFile,
  isKeyEntry,
  openManifest,
  verifyManifest,
} from "./manifest.js";
import type { DigestedFile, ManifestDoc } from "./manifest.js";

export const WRAPPED_PREFIX = "p1.";
export const REQUEST_KIND = "pli/request/v1";
export const REQUEST_KEY_KIND = "pli/request-key/v1";
export const ANSWER_KIND = "pli/answer/v1";
export const SECRET_SIZE = 32;
/** The server's one answer for a link that is unknown, expired, revoked or used up. */
export const LINK_GONE = "this link does not exist or is no longer available";

const ALTERED_LINK = "this link is incomplete or was altered: ask its sender for it again";
const WRONG_PASSPHRASE = "wrong passphrase for this link (or the link was altered)";
const ALTERED_REQUEST = "this request link is incomplete or was altered: ask for it again";
/** "AGE-SECRET-KEY-1" and 58 Bech32 characters. */
const IDENTITY_LENGTH = 74;
/** A wrapped identity's payload: nonce, the 74 characters, one Poly1305 tag. */
const WRAPPED_PAYLOAD = 16 + IDENTITY_LENGTH + 16;

// --- URLs -------------------------------------------------------------------------------------

/** A link's or request's URL, cut: only `base` and `id` may ever be used to build requests. */
export interface SplitUrl {
  base: string;
  id: string;
  fragment: string;
}

const ID = /^[A-Za-z0-9_-]{16,64}$/;

/** Loopback hosts, to which plain http:// carries nothing across a network. */
function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || /^127\.\d+\.\d+\.\d+$/.test(hostname) || hostname === "[::1]";
}

/**
 * `BASE/<kind>/<id>#<fragment>` cut into its parts, `kind` "l" for links and "r" for requests.
 * A UsageError for anything else: another path, an id outside [A-Za-z0-9_-]{16,64}, a query
 * string, a scheme other than https (http only to a loopback address, or with `allowHttp`).
 */
export function splitUrl(
  url: string,
  kind: "l" | "r",
  options: { allowHttp?: boolean } = {},
): SplitUrl {
  const what = kind === "l" ? "link" : "request link";
  const notOne = `this is not a pli ${what}: it should look like https://HOST/${kind}/ID#…`;
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    throw new UsageError(notOne);
  }
  const path = parsed.pathname.replace(/\/+$/, "");
  const at = path.lastIndexOf(`/${kind}/`);
  const id = path.slice(at + kind.length + 2);
  if (at < 0 || !ID.test(id) || parsed.search !== "") throw new UsageError(notOne);
  checkServer(parsed, options.allowHttp === true);
  const base = `${parsed.protocol}//${parsed.host}${path.slice(0, at)}`;
  return { base, id, fragment: parsed.hash.slice(1) };
}

/** Refuses plain http:// to anything but loopback unless explicitly allowed. */
function checkServer(url: URL, allowHttp: boolean): void {
  if ((url.protocol !== "https:" && url.protocol !== "http:") || url.hostname === "") {
    throw new UsageError("this is not a server address: write it like https://pli.example.org");
  }
  if (url.protocol === "http:" && !allowHttp && !isLoopback(url.hostname)) {
    throw new UsageError(`refusing plain http:// to ${url.hostname}: use https://`);
  }
}

// --- share links ------------------------------------------------------------------------------

/** A link's fragment, read: the identity itself, or the age file that wraps it. */
export type LinkFragment =
  | { kind: "plain"; identity: string }
  | { kind: "wrapped"; wrapped: Uint8Array };

/** A fresh age X25519 identity for a new link. */
export function newLinkIdentity(): Promise<string> {
  return generateX25519Identity();
}

/**
 * The fragment of a link's URL: its identity, or with `passphrase` "p1." and the base64url of
 * an age file of the identity under one scrypt stanza at 2^workFactor (1 to 20; 18 default).
 */
export async function linkFragment(
  identity: string,
  passphrase?: string,
  workFactor: number = DEFAULT_WORK_FACTOR,
): Promise<string> {
  if (parseAgeIdentity(identity) === null) throw new UsageError("this is not an age identity");
  if (passphrase === undefined) return identity;
  if (passphrase === "") throw new UsageError("the link passphrase must not be empty");
  const plain = new TextEncoder().encode(identity);
  return WRAPPED_PREFIX + base64url(await passphraseEncrypt(plain, passphrase, workFactor));
}

/**
 * Step 2–3 of a link's getter, before any passphrase is asked for or request made: an empty
 * fragment is a UsageError; an identity with a bad checksum or case, or a wrapping that is
 * not strict base64url of an age file with exactly one scrypt stanza and a payload of exactly
 * one identity, an IntegrityError (the link was cut or altered).
 */
export function parseLinkFragment(text: string): LinkFragment {
  if (text === "") {
    throw new UsageError("this link has no secret part (after #): copy the whole link");
  }
  if (!text.startsWith(WRAPPED_PREFIX)) {
    if (parseAgeIdentity(text) === null) throw new IntegrityError(ALTERED_LINK);
    return { kind: "plain", identity: text };
  }
  try {
    const wrapped = fromBase64url(text.slice(WRAPPED_PREFIX.length));
    const header = readAgeHeader(wrapped);
    const [stanza, ...others] = header.stanzas;
    const ok = stanza?.type === "scrypt" && others.length === 0;
    const payload = wrapped.length - header.length;
    if (ok && payload === WRAPPED_PAYLOAD) return { kind: "wrapped", wrapped };
  } catch {
    // reported below, as one refusal
  }
  throw new IntegrityError(ALTERED_LINK);
}

/**
 * The link's identity. Wrapped: a non-empty passphrase is needed (UsageError); a work factor
 * above 20 (refused before any derivation), a wrong passphrase or an altered payload are one
 * DecryptError; a plaintext that is not exactly an identity, an IntegrityError.
 */
export async function openLinkFragment(
  fragment: LinkFragment,
  passphrase?: string,
): Promise<string> {
  if (fragment.kind === "plain") return fragment.identity;
  if (passphrase === undefined || passphrase === "") {
    throw new UsageError("this link is protected by a passphrase: give it");
  }
  let plain: Uint8Array;
  try {
    plain = await passphraseDecrypt(fragment.wrapped, passphrase, WRONG_PASSPHRASE);
  } catch {
    throw new DecryptError(WRONG_PASSPHRASE);
  }
  const identity = plain.every((b) => b < 0x80) ? new TextDecoder().decode(plain) : "";
  if (parseAgeIdentity(identity) === null) throw new IntegrityError(ALTERED_LINK);
  return identity;
}

/** A link among a manifest's recipients: a key with no account behind it. */
export function linkRecipientEntry(recipient: string): PublicKey {
  return { email: "", device: "", age: recipient, ed25519: "" };
}

/**
 * Steps 8–12 of a link's getter on the link's manifest: at most 4 MiB and decrypts with the
 * link's identity (IntegrityError: the secret does not open it); the manifest's shape
 * (SignatureError); `doc.transfer` is the link's id (IntegrityError); the signature verifies
 * under `doc.sender.ed25519`, the manifest's own claim, with `doc.kind` (v2 or v1) as its
 * context (SignatureError); the link's recipient is among `doc.recipients` (IntegrityError).
 * Steps 13–14 are `checkFileList` and `checkNotExpired(doc.expires, now, LINK_GONE)`.
 */
export async function openLinkManifest(
  sealed: Uint8Array,
  linkId: string,
  identity: string,
): Promise<{ doc: ManifestDoc; envelope: Signed }> {
  let opened: { doc: ManifestDoc; envelope: Signed };
  try {
    opened = await openManifest(sealed, identity);
  } catch (error) {
    if (!(error instanceof DecryptError)) throw error;
    throw new IntegrityError(
      "this link's secret does not open it: the link is incomplete or was altered",
    );
  }
  const { doc, envelope } = opened;
  if (doc.transfer !== linkId) {
    throw new IntegrityError("the manifest belongs to another link (replayed by the server?)");
  }
  await verifyManifest(envelope, doc.sender);
  const recipient = await recipientOf(identity);
  if (!doc.recipients.some((r) => r.age === recipient)) {
    throw new IntegrityError("the manifest does not name this link as a recipient");
  }
  return opened;
}

// --- file requests: the fragment and what derives from it -------------------------------------

/** What a request's URL hands its senders: where answers go, and the secret that vouches. */
export interface RequestFragment {
  recipient: string;
  secret: Uint8Array;
}
/** The requester's half: the identity answers are encrypted to, and the secret. */
export interface RequestKeys {
  identity: string;
  secret: Uint8Array;
}

/** HKDF-SHA256(IKM = secret, salt = empty, info = "pli/request/v1 " + use, L = 32). */
function derive(secret: Uint8Array, use: "document" | "answer" | "sender"): Uint8Array {
  const info = new TextEncoder().encode(`pli/request/v1 ${use}`);
  return hkdf(sha256, secret, new Uint8Array(0), info, 32);
}

/** The age identity a request's document is encrypted to: whoever holds the URL reads it. */
export function documentIdentity(secret: Uint8Array): string {
  return ageIdentityOf(derive(secret, "document"));
}

/** The HMAC-SHA256 key that authenticates a request's answers. */
export function answerMacKey(secret: Uint8Array): Uint8Array {
  return derive(secret, "answer");
}

/**
 * What a sender shows the server (`Authorization: Bearer`) to read a request and reserve room
 * for an answer: proof of holding the URL, from which the secret cannot be found.
 */
export function senderToken(secret: Uint8Array): string {
  return base64url(derive(secret, "sender"));
}

/** HMAC-SHA256(MAC key, "pli/answer/v1" LF canonical(doc)). */
export function answerMac(secret: Uint8Array, doc: Record<string, unknown>): Uint8Array {
  const body = canonical(doc);
  const message = new Uint8Array(ANSWER_KIND.length + 1 + body.length);
  message.set(new TextEncoder().encode(`${ANSWER_KIND}\n`));
  message.set(body, ANSWER_KIND.length + 1);
  return hmac(sha256, answerMacKey(secret), message);
}

/** A fresh request key pair and secret. */
export async function newRequestKeys(): Promise<RequestKeys> {
  const secret = globalThis.crypto.getRandomValues(new Uint8Array(SECRET_SIZE));
  return { identity: await generateX25519Identity(), secret };
}

/** The fragment of a request's URL, from the requester's keys. */
export async function requestFragment(keys: RequestKeys): Promise<RequestFragment> {
  return { recipient: await recipientOf(keys.identity), secret: new Uint8Array(keys.secret) };
}

/** `recipient "." base64url(secret)`: the text after `#`. */
export function requestFragmentText(fragment: RequestFragment): string {
  return `${fragment.recipient}.${base64url(fragment.secret)}`;
}

/**
 * Steps 2–3 of a request's sender: an empty fragment is a UsageError; anything but one
 * age recipient (lowercase, checksum, 32 bytes, not a small-order point), ".", and strict
 * base64url of exactly 32 bytes is an IntegrityError (the URL was cut or altered).
 */
export async function parseRequestFragment(text: string): Promise<RequestFragment> {
  if (text === "") {
    throw new UsageError("this request link has no secret part (after #): copy the whole link");
  }
  const dot = text.indexOf(".");
  const recipient = dot < 0 ? "" : text.slice(0, dot);
  let secret: Uint8Array | null = null;
  try {
    secret = dot < 0 ? null : fromBase64url(text.slice(dot + 1));
  } catch {
    secret = null;
  }
  if (secret?.length !== SECRET_SIZE || !(await isUsableRecipient(recipient))) {
    throw new IntegrityError(ALTERED_REQUEST);
  }
  return { recipient, secret };
}

// --- file requests: documents -----------------------------------------------------------------

/** What a sender is shown before sending: who asks (their own claim), and for what. */
export interface RequestDoc {
  kind: "pli/request/v1";
  request: string;
  requester: PublicKey;
  title: string;
  recipient: string;
  created: string;
}
/** A request's answer: not signed, authenticated by the MAC key; its files have their `sha256`. */
export interface AnswerDoc {
  kind: "pli/answer/v1";
  request: string;
  transfer: string;
  name: string;
  message: string;
  files: DigestedFile[];
  created: string;
}
/** What a sender fills in for an answer. */
export type Answer = Omit<AnswerDoc, "kind">;

const REQUEST_FIELDS = ["kind", "request", "requester", "title", "recipient", "created"];
const ANSWER_FIELDS = ["kind", "request", "transfer", "name", "message", "files", "created"];

/** The plaintext of a sealed document for `identity`, parsed; at most 4 MiB. */
async function openJson(sealed: Uint8Array, identity: string): Promise<unknown> {
  if (sealed.length > MAX_SEALED_BYTES) throw new DecryptError("the document is too large");
  return parseJson(await ageDecrypt(sealed, identity));
}

/** Age-encrypts canonical `value` to `readers`, refusing what would exceed 4 MiB. */
async function sealJson(value: unknown, readers: readonly string[]): Promise<Uint8Array> {
  const sealed = await ageEncrypt(canonical(value), [...new Set(readers)]);
  if (sealed.length > MAX_SEALED_BYTES) throw new UsageError("this document is too large");
  return sealed;
}

/**
 * The request's public document, signed by the requesting device (context pli/request/v1)
 * and encrypted to the document key's recipient: readable with the URL, not by the server.
 */
export async function sealRequestDocument(
  me: Identity,
  requestId: string,
  title: string,
  keys: RequestKeys,
  created: string = utcNow(),
): Promise<Uint8Array> {
  const doc = {
    kind: REQUEST_KIND,
    request: requestId,
    requester: publicKey(me.device),
    title,
    recipient: await recipientOf(keys.identity),
    created,
  };
  const signed = await signDoc(REQUEST_KIND, doc, me.seed);
  return sealJson(signed, [await recipientOf(documentIdentity(keys.secret))]);
}

/** The signed request document inside `value`, verified under the key it names itself. */
async function verifiedRequestDoc(value: unknown): Promise<RequestDoc> {
  const claimed = isPlainObject(value) && isPlainObject(value.doc) ? value.doc.requester : null;
  if (!isKeyEntry(claimed)) throw new IntegrityError(ALTERED_REQUEST);
  const doc = await verifyDoc(REQUEST_KIND, value, claimed.ed25519);
  const members = ["request", "title", "recipient", "created"];
  const strings = members.every((k) => typeof doc[k] === "string");
  if (!hasMembers(doc, REQUEST_FIELDS) || !strings) throw new IntegrityError(ALTERED_REQUEST);
  return doc as unknown as RequestDoc;
}

/**
 * Steps 5–9 of a request's sender: the document decrypts with the fragment's document key,
 * is JSON, verifies under `doc.requester.ed25519` (pli/request/v1), has exactly its members,
 * names `requestId` and the fragment's recipient. Every failure is the same IntegrityError:
 * a URL whose recipient was replaced, secret kept, is found here. Show the requester's email
 * with `fingerprint(doc.requester)`: a claim to compare out of band.
 */
export async function openRequestDocument(
  sealed: Uint8Array,
  requestId: string,
  fragment: RequestFragment,
): Promise<RequestDoc> {
  let doc: RequestDoc;
  try {
    doc = await verifiedRequestDoc(await openJson(sealed, documentIdentity(fragment.secret)));
  } catch {
    throw new IntegrityError(ALTERED_REQUEST);
  }
  if (doc.request !== requestId || doc.recipient !== fragment.recipient) {
    throw new IntegrityError(ALTERED_REQUEST);
  }
  return doc;
}

/**
 * The requester's copy of the request's keys, signed by this device (pli/request-key/v1) and
 * encrypted to `readers` (the account's devices' age keys) and always to this device.
 */
export async function sealRequestKey(
  me: Identity,
  requestId: string,
  title: string,
  keys: RequestKeys,
  readers: readonly string[],
  created: string = utcNow(),
): Promise<Uint8Array> {
  const doc = {
    kind: REQUEST_KEY_KIND,
    request: requestId,
    signer: publicKey(me.device),
    identity: keys.identity,
    secret: b64encode(keys.secret),
    title,
    created,
  };
  return sealJson(await signDoc(REQUEST_KEY_KIND, doc, me.seed), [me.device.age, ...readers]);
}

const MALFORMED_KEY = "the server sent a malformed key for this request";

/** Requester steps 4–6 on a decrypted request key: a signer of ours, its signature, the keys. */
async function verifiedRequestKey(
  value: unknown,
  own: readonly PublicKey[],
): Promise<{ keys: RequestKeys; doc: Record<string, unknown> }> {
  const signer = isPlainObject(value) && isPlainObject(value.doc) ? value.doc.signer : null;
  if (!isKeyEntry(signer)) throw new IntegrityError(MALFORMED_KEY);
  if (!own.some((device) => sameKeys(device, signer))) {
    throw new IntegrityError("a request's key was signed by a device that is not yours");
  }
  const doc = await verifyDoc(REQUEST_KEY_KIND, value, signer.ed25519);
  const { identity, secret } = doc;
  const raw = typeof secret === "string" ? b64decode(secret) : null;
  const usable = typeof identity === "string" && parseAgeIdentity(identity) !== null;
  if (!usable || raw?.length !== SECRET_SIZE) throw new IntegrityError(MALFORMED_KEY);
  return { keys: { identity, secret: raw }, doc };
}

/**
 * Requester steps 3–7 on a request's sealed key: at most 4 MiB, decrypts with this device's
 * `ageIdentity`, is JSON; signed by this device or one of `own` (the account's pinned
 * devices, compared on device, age and ed25519); the signature verifies; the identity and a
 * 32-byte secret parse; it names `requestId` and has a string title. IntegrityError else.
 */
export async function openRequestKey(
  sealed: Uint8Array,
  ageIdentity: string,
  requestId: string,
  own: readonly PublicKey[],
): Promise<{ keys: RequestKeys; title: string }> {
  let opened: { keys: RequestKeys; doc: Record<string, unknown> };
  try {
    opened = await verifiedRequestKey(await openJson(sealed, ageIdentity), own);
  } catch (error) {
    if (error instanceof IntegrityError) throw error;
    throw new IntegrityError(MALFORMED_KEY);
  }
  const { keys, doc } = opened;
  if (doc.request !== requestId || typeof doc.title !== "string") {
    throw new IntegrityError("the server sent the key of another request");
  }
  return { keys, title: doc.title };
}

/** `doc` as an answer document if it has exactly the spec's shape; IntegrityError else. */
export function checkAnswerDoc(doc: unknown): AnswerDoc {
  const strings = ["request", "transfer", "name", "message", "created"];
  const ok =
    isPlainObject(doc) &&
    hasMembers(doc, ANSWER_FIELDS) &&
    doc.kind === ANSWER_KIND &&
    strings.every((k) => typeof doc[k] === "string") &&
    Array.isArray(doc.files) &&
    doc.files.every(isDigestedFile);
  if (!ok) throw new IntegrityError("malformed answer");
  return doc as unknown as AnswerDoc;
}

/**
 * A sender's answer: `{"doc", "mac"}` with the HMAC under the fragment's MAC key, encrypted to
 * the fragment's recipient alone, at most 4 MiB. `created` is the transfer's `created_at`.
 */
export async function sealAnswer(fragment: RequestFragment, answer: Answer): Promise<Uint8Array> {
  const doc = {
    kind: ANSWER_KIND,
    request: answer.request,
    transfer: answer.transfer,
    name: answer.name,
    message: answer.message,
    files: answer.files.map(({ id, name, size, sha256, ciphertext_size, ciphertext_sha256 }) => ({
      id,
      name,
      size,
      sha256,
      ciphertext_size,
      ciphertext_sha256,
    })),
    created: answer.created,
  };
  checkAnswerDoc(doc);
  const mac = b64encode(answerMac(fragment.secret, doc));
  return sealJson({ doc, mac }, [fragment.recipient]);
}

/** Constant-time equality, so a forged MAC learns nothing from timing. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.max(a.length, b.length); i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

const FORGED = "this answer was not made with the request's link (made up by the server?)";

/** The `doc` of an answer envelope whose MAC holds under `secret`; an IntegrityError else. */
function authenticated(envelope: unknown, secret: Uint8Array): Record<string, unknown> {
  const doc = isPlainObject(envelope) ? envelope.doc : null;
  const mac = isPlainObject(envelope) ? envelope.mac : null;
  const shaped = isPlainObject(envelope) && hasMembers(envelope, ["doc", "mac"]);
  if (!shaped || !isPlainObject(doc) || typeof mac !== "string") throw new IntegrityError(FORGED);
  if (!sameBytes(b64decode(mac), answerMac(secret, doc))) throw new IntegrityError(FORGED);
  return doc;
}

/**
 * Requester steps 2–5 on an answer: at most 4 MiB, decrypts with the request's identity, is
 * JSON, an envelope of exactly `doc` and `mac` whose MAC (recomputed over pli/answer/v1 LF
 * canonical(doc), compared in constant time) holds — else IntegrityError: not made with the
 * request's link; `doc` of exactly the spec's shape; it names `requestId` and `transferId`.
 * `name` is what the sender typed: show it as a claim.
 */
export async function openAnswer(
  sealed: Uint8Array,
  keys: RequestKeys,
  requestId: string,
  transferId: string,
): Promise<AnswerDoc> {
  let doc: Record<string, unknown>;
  try {
    doc = authenticated(await openJson(sealed, keys.identity), keys.secret);
  } catch {
    throw new IntegrityError(FORGED);
  }
  const answer = checkAnswerDoc(doc);
  if (answer.request !== requestId || answer.transfer !== transferId) {
    throw new IntegrityError("this answer belongs to another request or transfer (replayed?)");
  }
  return answer;
}
