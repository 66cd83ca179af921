/**
 * The server's JSON API, as the CLI speaks it (`/api/v1`). The session token lives in this
 * tab's `sessionStorage` only: closing the tab ends it here, and no other site can read it
 * (the API sends no CORS header). Errors become `ApiError` with the server's problem detail.
 */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    detail: string,
    /** what else the problem document said, such as `methods` for a second factor */
    readonly extra: Record<string, unknown> = {},
  ) {
    super(detail || title);
  }
}

export interface Session {
  token: string;
  email: string;
  expires_at: string;
}

const STORE = "pli:session";

export function session(): Session | null {
  const text = sessionStorage.getItem(STORE);
  if (!text) return null;
  try {
    const value = JSON.parse(text) as Session;
    return typeof value.token === "string" && typeof value.email === "string" ? value : null;
  } catch {
    return null;
  }
}

export function saveSession(value: Session | null): void {
  if (value) sessionStorage.setItem(STORE, JSON.stringify(value));
  else sessionStorage.removeItem(STORE);
}

export function authHeader(): Record<string, string> {
  const current = session();
  return current ? { authorization: `Bearer ${current.token}` } : {};
}

/** Path segments are percent-encoded: an id from a server or a URL cannot add a segment. */
export function path(strings: TemplateStringsArray, ...parts: string[]): string {
  return strings.reduce((out, s, i) => out + s + (i < parts.length ? encodeURIComponent(parts[i] ?? "") : ""), "");
}

export async function call<T>(method: string, url: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json", ...authHeader() };
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  if (!response.ok) throw ended(await problem(response));
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

let onEnded: (() => void) | null = null;

/** What to do when the server says the session ended (expired, logged out elsewhere). */
export function whenSessionEnds(handler: () => void): void {
  onEnded = handler;
}

/** A 401 "Session ended" forgets the session here too, and lets the app send the user to sign in. */
function ended(error: ApiError): ApiError {
  if (error.status === 401 && error.title === "Session ended" && session()) {
    saveSession(null);
    onEnded?.();
  }
  return error;
}

export async function problem(response: Response): Promise<ApiError> {
  let title = response.statusText;
  let detail = "";
  let extra: Record<string, unknown> = {};
  try {
    const body = (await response.json()) as Record<string, unknown>;
    if (typeof body.title === "string") title = body.title;
    if (typeof body.detail === "string") detail = body.detail;
    if (body && typeof body === "object") extra = body;
  } catch {
    // not a problem document: keep the status line
  }
  return new ApiError(response.status, title, detail, extra);
}

// --- the shapes the pages use ----------------------------------------------------------------

export interface FileOut {
  id: string;
  size: number | null;
}

export interface TransferOut {
  id: string;
  kind: "direct" | "link" | "answer";
  state: string;
  sender: string;
  /** Sent by a service account (an unattended job), as the server says. */
  sender_service?: boolean;
  recipients: string[];
  created_at: string;
  expires_at: string;
  files: FileOut[];
  manifest: string | null;
  request: string | null;
}

export interface Listing {
  items: TransferOut[];
  next_cursor: string | null;
}

export interface DeviceKeys {
  email: string;
  devices: unknown[];
  /** One per device: the approval signed by another of the account's devices, or null. */
  approvals?: unknown[];
  /** The key log's signed head, and the proof that each device is in it. */
  log?: { head: unknown; consistency: string[] | null; proofs: unknown[] };
}

export interface Escrowed {
  device: string;
  escrow: string;
  /** pending: the device waits for one of the account's devices to approve it. */
  state?: "active" | "pending";
}
