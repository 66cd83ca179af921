/**
 * A server played in the tests of the web app's pages logic (src/app): storage kept in memory,
 * a `fetch` that answers the routes a test serves, a key log built from given entries with its
 * proofs and its head signed by the vectors' server key, and Alice's device of the vectors,
 * rebuilt from the secrets tests/vectors/key-log/generate_key_log.py fixes.
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { vi } from "vitest";
import { fromHex, hex } from "../src/crypto/b64.js";
import { canonical } from "../src/crypto/canonical.js";
import { digest } from "../src/crypto/groups.js";
import { bundleDigest, EMPTY_ROOT, HEAD_KIND, leafHash, logId, nodeHash } from "../src/crypto/keylog.js";
import { ageIdentityOf, identityOf, signDoc, type Identity, type Signed } from "../src/crypto/keys.js";
import { readVectors, text, utf8 } from "./support.js";

interface Vectors {
  group_changes: { group: string; name: string; bundles: Record<"alice" | "bob", Signed>; changes: { signed: Signed }[] };
  entries: { bundles: Record<"alice" | "alice_laptop", { signed_bundle: Signed }> };
  tree_head: { server_ed25519_seed_hex: string; server_ed25519_public: string };
}

export const V = readVectors<Vectors>("key-log/vectors.json");

/** A Storage kept in memory, for localStorage and sessionStorage. */
export class MemoryStorage {
  readonly items = new Map<string, string>();
  get length(): number {
    return this.items.size;
  }
  key(i: number): string | null {
    return [...this.items.keys()][i] ?? null;
  }
  getItem(name: string): string | null {
    return this.items.get(name) ?? null;
  }
  setItem(name: string, value: string): void {
    this.items.set(name, String(value));
  }
  removeItem(name: string): void {
    this.items.delete(name);
  }
  clear(): void {
    this.items.clear();
  }
}

// --- a key log --------------------------------------------------------------------------------

export function entryOf(doc: Record<string, string>): string {
  return text(canonical({ kind: "pli/key-log-entry/v1", time: "2026-02-01T14:05:00Z", ...doc }));
}

export function published(bundle: Signed): string {
  return entryOf({ event: "device-published", email: String(bundle.doc.email), device: String(bundle.doc.device), bundle: bundleDigest(bundle) });
}

export function changeEntry(signed: Signed): string {
  const doc = signed.doc as Record<string, string>;
  const event = doc.action === "add" ? "group-member-added" : "group-member-removed";
  return entryOf({ event, group: doc.group ?? "", email: doc.email ?? "", change: digest(signed) });
}

function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function mth(hashes: Uint8Array[]): Uint8Array {
  if (hashes.length === 0) return EMPTY_ROOT;
  if (hashes.length === 1) return hashes[0] ?? EMPTY_ROOT;
  const k = split(hashes.length);
  return nodeHash(mth(hashes.slice(0, k)), mth(hashes.slice(k)));
}

/** RFC 6962's PATH(m, D[n]), leaf side first. */
function path(m: number, hashes: Uint8Array[]): Uint8Array[] {
  if (hashes.length <= 1) return [];
  const k = split(hashes.length);
  return m < k ? [...path(m, hashes.slice(0, k)), mth(hashes.slice(k))] : [...path(m - k, hashes.slice(k)), mth(hashes.slice(0, k))];
}

/** RFC 6962's SUBPROOF(m, D[n], b). */
function subproof(m: number, hashes: Uint8Array[], whole: boolean): Uint8Array[] {
  if (m === hashes.length) return whole ? [] : [mth(hashes)];
  const k = split(hashes.length);
  return m <= k ? [...subproof(m, hashes.slice(0, k), whole), mth(hashes.slice(k))] : [...subproof(m - k, hashes.slice(k), false), mth(hashes.slice(0, k))];
}

/** A key log of `leaves`, with its proofs and its head signed by the vectors' server key. */
export class Log {
  readonly hashes: Uint8Array[];
  constructor(readonly leaves: string[]) {
    this.hashes = leaves.map((leaf) => leafHash(utf8(leaf)));
  }

  proof(index: number): { index: number; leaf: string; path: string[] } {
    return { index, leaf: this.leaves[index] ?? "", path: path(index, this.hashes).map(hex) };
  }

  /** RFC 6962's PROOF(size, D[n]): that this log extends its first `size` leaves, in hex. */
  consistency(size: number): string[] {
    return size === 0 || size >= this.leaves.length ? [] : subproof(size, this.hashes, true).map(hex);
  }

  head(): Promise<Signed> {
    const key = V.tree_head.server_ed25519_public;
    const doc = { kind: HEAD_KIND, log: logId(key), size: this.leaves.length, root: hex(mth(this.hashes)), time: "2026-03-01T09:00:00Z", key };
    return signDoc(HEAD_KIND, doc, fromHex(V.tree_head.server_ed25519_seed_hex));
  }
}

// --- the played server ----------------------------------------------------------------------------

/** What a route is asked: its URL, and the method and JSON body of the request. */
export interface Asked {
  url: URL;
  method: string;
  body: unknown;
}

/** A route's answer: JSON sent with status 200, or a Response sent as it is. */
type Answer = (url: URL, request: Asked) => unknown;

const routes = new Map<string, Answer>();
/** Every URL asked, in order. */
export const asked: string[] = [];

/** Answer `route` (a path, percent-decoded, without its query) with what `answer` gives. */
export function serve(route: string, answer: Answer): void {
  routes.set(route, answer);
}

/** A problem document (RFC 9457), as the server refuses. */
export function refusal(status: number, title: string, detail: string): Response {
  return new Response(JSON.stringify({ title, detail, status }), { status, headers: { "content-type": "application/problem+json" } });
}

/** A fresh played server and browser storage: call in `beforeEach`, and `vi.unstubAllGlobals` after. */
export function playServer(): void {
  vi.stubGlobal("localStorage", new MemoryStorage());
  vi.stubGlobal("sessionStorage", new MemoryStorage());
  routes.clear();
  asked.length = 0;
  vi.stubGlobal("fetch", async (url: string, init?: RequestInit) => {
    const route = decodeURIComponent(url.split("?")[0] ?? "");
    asked.push(url);
    const answer = routes.get(route);
    if (!answer) return new Response(JSON.stringify({ title: "Not Found" }), { status: 404 });
    const request = { url: new URL(url, "https://pli.test"), method: init?.method ?? "GET", body: typeof init?.body === "string" ? (JSON.parse(init.body) as unknown) : undefined };
    const answered = await answer(request.url, request);
    if (answered instanceof Response) return answered;
    return new Response(JSON.stringify(answered), { status: 200, headers: { "content-type": "application/json" } });
  });
}

// --- Alice's device ----------------------------------------------------------------------------

const fixed = (label: string, size = 32) => sha256(utf8(`pli test vector/${label}`)).slice(0, size);

export function alice(): Promise<Identity> {
  return identityOf({
    email: "alice@lab.example",
    device: hex(fixed("alice/device", 16)),
    created: "2026-01-15T08:30:00Z",
    ageIdentity: ageIdentityOf(fixed("alice/x25519")),
    seed: fixed("alice/ed25519"),
  });
}

