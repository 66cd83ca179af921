/**
 * What the tests of the crypto core have in common: Node's modules and the vector files in
 * tests/vectors, the shapes those files share, a vector's device rebuilt from its secrets, a
 * vector's randomness replayed through age-encryption, an independent HKDF, and the check that
 * a refusal is of exactly the expected error class.
 */

import { expect, vi } from "vitest";
import { fromHex, hex } from "../src/crypto/b64.js";
import {
  DecryptError,
  GoneError,
  IntegrityError,
  PliError,
  SignatureError,
  TrustError,
  UsageError,
} from "../src/crypto/errors.js";
import { ageIdentityOf, identityOf, type Identity, type Signed } from "../src/crypto/keys.js";

// --- Node and the vector files -------------------------------------------------------------------

/** A Node built-in module, imported at run time (the web app's types do not know Node). */
export async function nodeModule<T>(name: string): Promise<T> {
  return (await import(/* @vite-ignore */ name)) as T;
}

const { readFileSync } = await nodeModule<{
  readFileSync(path: URL, encoding: "utf8"): string;
}>("node:fs");

/** tests/vectors: the vectors that the Python and the web implementations both replay. */
export const VECTOR_DIR = new URL("../../tests/vectors/", import.meta.url);

/** The JSON file at `url`, parsed; `T` describes it, and nothing checks that it does. */
export function readJson<T>(url: URL): T {
  return JSON.parse(readFileSync(url, "utf8")) as T;
}

/** The vector file at `path` below tests/vectors, parsed (see `readJson`). */
export function readVectors<T>(path: string): T {
  return readJson<T>(new URL(path, VECTOR_DIR));
}

// --- what the vector files share -----------------------------------------------------------------

/** The secrets and names a device of the vectors is made of. */
export interface DeviceInputs {
  x25519_secret_hex: string;
  ed25519_seed_hex: string;
  email: string;
  device: string;
  created: string;
}

/**
 * The randomness age-encryption drew for one age file of the vectors: the file key, then one
 * ephemeral secret per X25519 recipient or the scrypt salt of a passphrase, then the payload nonce.
 */
export interface AgeParams {
  file_key_hex: string;
  ephemeral_secrets_hex?: string[];
  scrypt_salt_hex?: string;
  payload_nonce_hex: string;
}

/** A signed document as a vector states it: the envelope and every step to its signature. */
export interface SignedParts {
  context: string;
  signed: Signed;
  canonical_doc: string;
  signed_message_hex: string;
  signature_hex: string;
}

/** A plaintext sealed to the recipients `sealed_to` in an age file, with its randomness. */
export interface SealedParts {
  plaintext: string;
  sealed_to: string[];
  age_params: AgeParams;
  sealed_b64: string;
}

/** A signed document whose envelope, in canonical form, is the sealed plaintext. */
export interface SealedSignedParts extends SignedParts, SealedParts {}

// --- text ----------------------------------------------------------------------------------------

/** The UTF-8 bytes of `text`. */
export const utf8 = (text: string) => new TextEncoder().encode(text);

/** `bytes` decoded as UTF-8. */
export const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

// --- devices -------------------------------------------------------------------------------------

/** A device of the vectors, rebuilt from its secrets: its signed bundle is the vector's. */
export function vectorIdentity(inputs: DeviceInputs): Promise<Identity> {
  return identityOf({
    email: inputs.email,
    device: inputs.device,
    created: inputs.created,
    ageIdentity: ageIdentityOf(fromHex(inputs.x25519_secret_hex)),
    seed: fromHex(inputs.ed25519_seed_hex),
  });
}

// --- randomness ----------------------------------------------------------------------------------

/** The draws `params` states, in the order age-encryption makes them. */
export function randomnessOf(params: AgeParams): Uint8Array[] {
  const middle = params.scrypt_salt_hex ? [params.scrypt_salt_hex] : params.ephemeral_secrets_hex;
  return [params.file_key_hex, ...(middle ?? []), params.payload_nonce_hex].map(fromHex);
}

/**
 * Makes the platform CSPRNG hand out `chunks`, in order and each of exactly the size asked; any
 * other draw throws. Returns what is left of `chunks`, and the spy that `mockRestore` ends.
 */
export function fixRandomness(chunks: Uint8Array[]) {
  const queue = [...chunks];
  const spy = vi.spyOn(globalThis.crypto, "getRandomValues").mockImplementation(
    <T extends ArrayBufferView | null>(array: T) => {
      const next = queue.shift();
      if (array === null || next === undefined || next.length !== array.byteLength) {
        throw new Error("unexpected draw of randomness");
      }
      new Uint8Array(array.buffer, array.byteOffset, array.byteLength).set(next);
      return array;
    },
  );
  return { queue, spy };
}

/**
 * What `action` makes while age-encryption draws exactly the randomness of `params`, so that a
 * vector's fixed randomness reproduces its exact bytes through the library. Every stated draw
 * must be made; the platform CSPRNG is itself again afterwards.
 */
export async function withRandomness<T>(params: AgeParams, action: () => Promise<T>): Promise<T> {
  const { queue, spy } = fixRandomness(randomnessOf(params));
  try {
    const made = await action();
    expect(queue, "randomness stated but not drawn").toHaveLength(0);
    return made;
  } finally {
    spy.mockRestore();
  }
}

// --- derivations ---------------------------------------------------------------------------------

/**
 * HKDF-SHA256 of `secret` with `info` and `salt` (empty by default), 32 bytes in hex, by
 * WebCrypto: an independent check of the derivations of the crypto core.
 */
export async function webHkdf(
  secret: Uint8Array,
  info: string,
  salt: Uint8Array = new Uint8Array(0),
): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new Uint8Array(secret), "HKDF", false, [
    "deriveBits",
  ]);
  const params = { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(salt), info: utf8(info) };
  return hex(new Uint8Array(await crypto.subtle.deriveBits(params, key, 256)));
}

// --- refusals ------------------------------------------------------------------------------------

const ERRORS: Record<string, typeof PliError> = {
  UsageError,
  GoneError,
  TrustError,
  DecryptError,
  SignatureError,
  IntegrityError,
};

/** The error class a vector names, such as "SignatureError"; a name of no class fails the test. */
export function errorNamed(name: string): typeof PliError {
  const expected = ERRORS[name];
  expect(expected, name).toBeDefined();
  return expected ?? PliError;
}

/**
 * Awaits `attempt`, a promise or a function to call: it must fail with an error of exactly the
 * class `expected` (neither a subclass nor a parent) whose message is one line. Returns it.
 */
export async function refused(
  attempt: Promise<unknown> | (() => unknown),
  expected: typeof PliError,
): Promise<PliError> {
  let error: unknown = null;
  try {
    await (typeof attempt === "function" ? attempt() : attempt);
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(expected);
  expect((error as Error).constructor).toBe(expected);
  expect((error as Error).message).toMatch(/^[^\n]+$/);
  return error as PliError;
}
