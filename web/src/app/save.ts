/**
 * Where a downloaded file is saved, chosen before it is downloaded, and kept only once it passed
 * every check (see worker/sinks.ts):
 *
 * 1. where the browser has the File System Access API, a file the user picks: the worker writes
 *    the plaintext beside it and the browser puts it in place when the worker commits;
 * 2. else, through the app's service worker (web/src/sw.ts), as a download of the browser's own,
 *    streamed: it completes when the last check passed and fails otherwise;
 * 3. else, as Blobs the browser keeps (on disk when large), offered once every check passed.
 *
 * The name is the sender's, as signed: only its last path component is kept, without control
 * or direction characters, so it cannot choose a folder; the browser applies its own rules on top.
 */

import type { Sink } from "../worker/protocol.js";
import { scriptUrl, SERVICE_WORKER } from "./scripts.js";

export function safeName(name: string): string {
  const last = name.split(/[\\/]/).pop() ?? "";
  const clean = last.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, "").trim();
  return clean && clean !== "." && clean !== ".." ? clean : "file";
}

/** Where one download goes: the worker's sink, and what the page does once it is over. */
export interface Target {
  sink: Sink;
  /** The worker succeeded; `result` is its Blob for the Blob sink. */
  done(result: Blob | null): void;
  /** The worker failed or was cancelled. */
  failed(): void;
}

/** The user closed the save dialog: nothing to download. */
export class NotChosen extends Error {}

interface SavePicker {
  showSaveFilePicker?(options: { suggestedName: string }): Promise<FileSystemFileHandle>;
}

/**
 * The target for a file named `name` of `size` bytes. Call it first thing in a click handler:
 * the save dialog needs the click's user activation.
 */
export async function target(name: string, size: number): Promise<Target> {
  const suggestedName = safeName(name);
  const picker = (window as SavePicker).showSaveFilePicker;
  if (picker) {
    try {
      const handle = await picker.call(window, { suggestedName });
      return { sink: { kind: "file", handle }, done: () => undefined, failed: () => undefined };
    } catch (error) {
      if (error instanceof DOMException && error.name === "AbortError") throw new NotChosen();
      throw error;
    }
  }
  const worker = await serviceWorker();
  if (worker) return streamed(worker, suggestedName, size);
  return { sink: { kind: "blob" }, done: (blob) => blob && saveBlob(blob, suggestedName), failed: () => undefined };
}

let registration: Promise<ServiceWorker | null> | null = null;

/** Register the service worker early (at start-up), so that it is active by the first download. */
export function prepare(): void {
  void serviceWorker();
}

function serviceWorker(): Promise<ServiceWorker | null> {
  registration ??= (async () => {
    if (!("serviceWorker" in navigator)) return null;
    try {
      await navigator.serviceWorker.register(scriptUrl(SERVICE_WORKER), { scope: "/app/download/", type: "classic", updateViaCache: "none" });
      const ready = await navigator.serviceWorker.getRegistration("/app/download/");
      return ready?.active ?? (await activated(ready));
    } catch {
      return null; // private windows and some browsers refuse service workers: Blobs then
    }
  })();
  return registration;
}

/** The registration's worker once it is active (a first visit installs it), or null after 10 s. */
function activated(registration: ServiceWorkerRegistration | undefined): Promise<ServiceWorker | null> {
  const worker = registration?.installing ?? registration?.waiting;
  if (!worker) return Promise.resolve(null);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), 10_000);
    worker.addEventListener("statechange", () => {
      if (worker.state !== "activated") return;
      clearTimeout(timer);
      resolve(worker);
    });
  });
}

/** A download through the service worker: offered to it, then opened in a hidden frame. */
async function streamed(worker: ServiceWorker, name: string, size: number): Promise<Target> {
  const id = randomId();
  const data = new MessageChannel(); // the worker's plaintext to the service worker
  const ack = new MessageChannel(); // the service worker's word that it holds the offer
  const ready = new Promise<void>((resolve, reject) => {
    ack.port1.onmessage = () => resolve();
    setTimeout(() => reject(new Error("the page's service worker did not answer: reload the page")), 10_000);
  });
  worker.postMessage({ op: "download", id, name, size, port: data.port2, ack: ack.port2 }, [data.port2, ack.port2]);
  await ready.finally(() => ack.port1.close());
  const frame = document.createElement("iframe");
  frame.hidden = true;
  frame.title = name;
  frame.src = `/app/download/${id}`;
  document.body.appendChild(frame);
  const alive = setInterval(() => worker.postMessage({ op: "ping" }), 20_000);
  const end = (): void => {
    clearInterval(alive);
    setTimeout(() => frame.remove(), 60_000); // removing it at once could cancel the download
  };
  return { sink: { kind: "port", port: data.port1 }, done: end, failed: end };
}

function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(18));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_");
}

export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = safeName(name);
  a.hidden = true;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
