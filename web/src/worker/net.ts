/** What the worker's uploads and downloads share: retrying through network cuts, and errors. */

export type Progress = (state: { done: number; total: number; retrying?: boolean; restarted?: boolean }) => void;

export class Cancelled extends Error {
  override name = "Cancelled";
  constructor() {
    super("cancelled");
  }
}

export class HttpError extends Error {
  override name = "HttpError";
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** How long a cut connection is retried before the send is given up (the CLI's default). */
const RETRY_MS = 60_000;

/**
 * `fetch`, retried while the network is down (a `TypeError`), for up to a minute, telling the
 * page it is retrying. An HTTP answer, whatever its status, is returned as is.
 */
export async function fetchRetrying(url: string, init: RequestInit, progress: Progress): Promise<Response> {
  const deadline = Date.now() + RETRY_MS;
  let wait = 250;
  for (;;) {
    try {
      return await fetch(url, { ...init, credentials: "omit", cache: "no-store" });
    } catch (error) {
      if (init.signal?.aborted) throw new Cancelled();
      if (!(error instanceof TypeError) || Date.now() > deadline) throw error;
      progress({ done: -1, total: -1, retrying: true });
      await new Promise((resolve) => setTimeout(resolve, wait));
      wait = Math.min(wait * 2, 4000);
    }
  }
}

/** An HTTP error answer as an error carrying the server's own explanation. */
export async function failure(response: Response): Promise<HttpError> {
  let detail = response.statusText;
  try {
    const body = (await response.json()) as { detail?: unknown; title?: unknown };
    if (typeof body.detail === "string" && body.detail) detail = body.detail;
    else if (typeof body.title === "string") detail = body.title;
  } catch {
    // not a problem document
  }
  return new HttpError(response.status, detail);
}
