/**
 * Every error the crypto core throws, in one tree (the web app's mirror of `pli.errors`).
 *
 *     PliError          base: `message` is one sentence a person can act on
 *     ├── UsageError    the caller or the user gave something unusable (an empty passphrase,
 *     │                 a URL that is not a pli link, a fragment that is missing)
 *     ├── GoneError     a transfer or link that existed, past its signed expiry
 *     ├── TrustError    a correspondent's key is not the one pinned
 *     ├── DecryptError  not for our keys, a wrong passphrase, or corrupted
 *     ├── SignatureError a signature or a signed document does not verify, or is malformed
 *     └── IntegrityError bytes do not match what a signed document or the URL commits to
 *
 * Messages never hold secrets (keys, passphrases, fragments, plaintext), and refusals of
 * crypto checks deliberately do not say which internal check failed: a prober learns nothing.
 * Each class sets `name` explicitly so that minified bundles keep readable names.
 */

/** Base of every error of the crypto core. */
export class PliError extends Error {
  override name = "PliError";
}

/** Something the caller or the user supplied cannot be used as it is. */
export class UsageError extends PliError {
  override name = "UsageError";
}

/** It existed, but its signed expiry has passed: a server that still serves it is not obeyed. */
export class GoneError extends PliError {
  override name = "GoneError";
}

/** A correspondent's key is not the one pinned (trust on first use). */
export class TrustError extends PliError {
  override name = "TrustError";
}

/** Not for our keys, a wrong passphrase, or corrupted: deliberately not more precise. */
export class DecryptError extends PliError {
  override name = "DecryptError";
}

/** A signature or a signed document does not verify, or does not have the expected shape. */
export class SignatureError extends PliError {
  override name = "SignatureError";
}

/** Bytes do not match what a signed document, a MAC or a URL commits to. */
export class IntegrityError extends PliError {
  override name = "IntegrityError";
}
