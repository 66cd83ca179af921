/**
 * The page's side of the worker (src/worker.ts): start a job, follow its progress, cancel it.
 *
 * The worker's address is the content-addressed bundle the build names, let through the page's
 * Trusted Types policy by ./scripts.ts.
 */

import { DecryptError, IntegrityError, PliError } from "../crypto/errors.js";
import type { GetFile, Job, Reply, SendFile, Sent } from "../worker/protocol.js";
import { scriptUrl, WORKER_URL } from "./scripts.js";

export class Cancelled extends PliError {}
export class JobError extends PliError {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface Progress {
  done: number;
  total: number;
  retrying?: boolean;
  /** An interrupted upload could not go on: this file is sent again from its start. */
  restarted?: boolean;
}

interface Pending {
  resolve(value: Sent | Blob | null): void;
  reject(error: Error): void;
  progress(state: Progress): void;
}

let worker: Worker | null = null;
let next = 1;
const pending = new Map<number, Pending>();

function start(): Worker {
  if (worker) return worker;
  worker = new Worker(scriptUrl(WORKER_URL), { type: "module", name: "pli" });
  worker.onmessage = (event: MessageEvent<Reply>) => settle(event.data);
  worker.onerror = () => failAll("the page's worker stopped: reload the page and try again");
  worker.onmessageerror = () => failAll("the page's worker sent an unreadable message");
  return worker;
}

/** A worker that failed to load or crashed ends every job it had, rather than leave them hanging. */
function failAll(message: string): void {
  for (const job of pending.values()) job.reject(new JobError(message));
  pending.clear();
  worker?.terminate();
  worker = null;
}

function settle(reply: Reply): void {
  const job = pending.get(reply.id);
  if (!job) return;
  if ("progress" in reply) return job.progress(reply.progress);
  pending.delete(reply.id);
  if ("result" in reply) return job.resolve(reply.result);
  job.reject(rebuilt(reply.error));
}

function rebuilt(error: { name: string; message: string; status?: number }): Error {
  if (error.name === "Cancelled") return new Cancelled("cancelled");
  if (error.name === "IntegrityError") return new IntegrityError(error.message);
  if (error.name === "DecryptError") return new DecryptError(error.message);
  return new JobError(error.message, error.status);
}

export interface Running<T> {
  done: Promise<T>;
  cancel(): void;
}

function run<T extends Sent | Blob | null>(job: Job, progress: (state: Progress) => void, transfer: Transferable[] = []): Running<T> {
  const w = start();
  const id = next++;
  const done = new Promise<T>((resolve, reject) => {
    pending.set(id, { resolve: resolve as (v: Sent | Blob | null) => void, reject, progress });
  });
  w.postMessage({ id, job }, transfer);
  return { done, cancel: () => w.postMessage({ id, cancel: true }) };
}

export function sendFile(job: Omit<SendFile, "op">, progress: (state: Progress) => void): Running<Sent> {
  return run<Sent>({ op: "send", ...job }, progress);
}

/** A download into `job.sink`; a Blob when the sink is Blobs, else null once the file is kept. */
export function getFile(job: Omit<GetFile, "op">, progress: (state: Progress) => void): Running<Blob | null> {
  const transfer = job.sink.kind === "port" ? [job.sink.port] : [];
  return run<Blob | null>({ op: "get", ...job }, progress, transfer);
}
