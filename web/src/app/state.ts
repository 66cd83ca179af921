/**
 * What the page knows while it is open: the session (in this tab's sessionStorage, see api.ts)
 * and the unlocked identity, which lives in this page's memory only and is gone on reload.
 */

import type { Identity } from "../crypto/keys.js";
import { call, saveSession, session } from "./api.js";

let identity: Identity | null = null;

export function unlocked(): Identity | null {
  return identity;
}

export function setIdentity(value: Identity | null): void {
  identity = value;
}

export function signedIn(): string | null {
  return session()?.email ?? null;
}

export async function signOut(): Promise<void> {
  await call("POST", "/api/v1/auth/logout").catch(() => undefined);
  saveSession(null);
  identity = null;
}
