/**
 * The page's worker: each job (send or get one file) runs here, off the page's thread, and can
 * be cancelled. See worker/protocol.ts for the messages.
 */

import { getFile } from "./worker/download.js";
import type { Job, Reply, Request } from "./worker/protocol.js";
import { sendFile } from "./worker/upload.js";
import { Cancelled } from "./worker/net.js";
import { DecryptError, IntegrityError } from "./crypto/errors.js";

const running = new Map<number, AbortController>();
const scope = self as unknown as { postMessage(message: Reply): void; onmessage: ((event: MessageEvent<Request>) => void) | null };

scope.onmessage = (event) => {
  const request = event.data;
  if ("cancel" in request) {
    running.get(request.id)?.abort();
    return;
  }
  void run(request.id, request.job);
};

async function run(id: number, job: Job): Promise<void> {
  const controller = new AbortController();
  running.set(id, controller);
  const progress = (state: { done: number; total: number; retrying?: boolean }): void => scope.postMessage({ id, progress: state });
  try {
    const result =
      job.op === "send" ? await sendFile(job, progress, controller.signal) : await getFile(job, progress, controller.signal);
    scope.postMessage({ id, result });
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    const status = "status" in e && typeof e.status === "number" ? e.status : undefined;
    const name = controller.signal.aborted || e instanceof Cancelled ? "Cancelled" : kind(e);
    scope.postMessage({ id, error: { name, message: e.message, status } });
  } finally {
    running.delete(id);
  }
}

/** The error's kind by class, not by name: minified class names mean nothing. */
function kind(error: Error): string {
  if (error instanceof IntegrityError) return "IntegrityError";
  if (error instanceof DecryptError) return "DecryptError";
  return "Error";
}
