/**
 * Passkeys (WebAuthn) as a second factor: enrolled from the security page, used at sign-in and
 * to remove one. The server makes each challenge (single use, bound to the account and to what
 * it is for) and checks each answer; the browser and the authenticator keep the private key,
 * bound to this site's address, so a look-alike site cannot use it.
 */

import { call, path, type Session } from "./api.js";

export interface Passkey {
  id: string;
  name: string;
  created_at: string;
  last_used_at: string | null;
}

export interface SecondFactors {
  totp: boolean;
  passkeys: Passkey[];
  recovery_codes_left: number;
}

interface Challenge<T> {
  challenge_id: string;
  options: T;
}

/** What the server's "second factor required" answer says the account can use. */
export type Method = "totp" | "passkey";

export function available(): boolean {
  return typeof PublicKeyCredential !== "undefined" && "parseRequestOptionsFromJSON" in PublicKeyCredential;
}

export class NoPasskey extends Error {}

/** The browser's answer to a challenge for signing in, or null if the user dismissed it. */
async function assert(options: PublicKeyCredentialRequestOptionsJSON): Promise<PublicKeyCredentialJSON> {
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options);
  const credential = await ask(() => navigator.credentials.get({ publicKey }));
  return credential.toJSON();
}

async function ask(request: () => Promise<Credential | null>): Promise<PublicKeyCredential> {
  let credential: Credential | null;
  try {
    credential = await request();
  } catch (error) {
    // NotAllowedError: dismissed, timed out, or no passkey of this account on this device
    if (error instanceof DOMException && (error.name === "NotAllowedError" || error.name === "AbortError")) throw new NoPasskey();
    throw error;
  }
  if (!(credential instanceof PublicKeyCredential)) throw new NoPasskey();
  return credential;
}

/** Sign in with a password and a passkey: a session. */
export async function signIn(email: string, password: string): Promise<Session> {
  const challenge = await call<Challenge<PublicKeyCredentialRequestOptionsJSON>>("POST", "/api/v1/auth/passkey/options", { email, password });
  const credential = await assert(challenge.options);
  return call<Session>("POST", "/api/v1/auth/login", { email, password, passkey: { challenge_id: challenge.challenge_id, credential } });
}

export function factors(): Promise<SecondFactors> {
  return call<SecondFactors>("GET", "/api/v1/me/2fa");
}

/** Make a passkey on this device for the signed-in account; the recovery codes if it is the first factor. */
export async function enrol(name: string): Promise<{ passkey: Passkey; recovery_codes: string[] }> {
  const challenge = await call<Challenge<PublicKeyCredentialCreationOptionsJSON>>("POST", "/api/v1/me/2fa/passkeys/options");
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(challenge.options);
  const credential = await ask(() => navigator.credentials.create({ publicKey }));
  return call("POST", "/api/v1/me/2fa/passkeys", { challenge_id: challenge.challenge_id, credential: credential.toJSON(), name });
}

/** Remove a passkey, proving the second factor with a passkey (any of the account's) or a code. */
export async function remove(id: string, code: string | null): Promise<void> {
  if (code) {
    await call("POST", path`/api/v1/me/2fa/passkeys/${id}/remove`, { code, passkey: null });
    return;
  }
  const challenge = await call<Challenge<PublicKeyCredentialRequestOptionsJSON>>("POST", "/api/v1/me/2fa/passkeys/assertion-options");
  const credential = await assert(challenge.options);
  await call("POST", path`/api/v1/me/2fa/passkeys/${id}/remove`, { code: null, passkey: { challenge_id: challenge.challenge_id, credential } });
}
