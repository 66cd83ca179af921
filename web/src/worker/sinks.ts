/**
 * Where a download's plaintext goes while it is decrypted and checked, and how it is kept only
 * once every check passed (check 16 of docs/spec/manifest.md): `commit` after the last check,
 * `abort` on any failure, so that a file that failed never appears under its name.
 *
 * - a file the user chose (File System Access): the browser writes into a temporary file beside
 *   it and puts it in place on `close()`; `abort()` deletes the temporary file;
 * - the page's service worker (web/src/sw.ts): the bytes flow through a MessagePort into the
 *   browser's own download, which completes only when the stream closes and fails (its partial
 *   file removed by the browser) when the stream errors;
 * - Blobs handed back to the page, the fallback where neither exists.
 *
 * In every case the page's memory never holds the file: at most one slice of it is in the worker.
 */

import { Cancelled } from "./net.js";
import type { Sink } from "./protocol.js";

export interface Writer {
  write(chunk: Uint8Array): Promise<void>;
  /** Every check passed: keep the file (a Blob when it went to Blobs). */
  commit(): Promise<Blob | null>;
  /** Something failed or was cancelled: nothing is kept. Never throws. */
  abort(reason: string): Promise<void>;
}

/** Bytes gathered into slices of `size`, each handed to `flush`, which may keep it until it resolves. */
class Slices {
  private readonly staging: Uint8Array<ArrayBuffer>;
  private filled = 0;

  constructor(
    size: number,
    private readonly flush: (slice: Uint8Array<ArrayBuffer>) => Promise<void>,
  ) {
    this.staging = new Uint8Array(size);
  }

  async write(chunk: Uint8Array): Promise<void> {
    let rest = chunk;
    while (rest.length > 0) {
      const n = Math.min(rest.length, this.staging.length - this.filled);
      this.staging.set(rest.subarray(0, n), this.filled);
      this.filled += n;
      rest = rest.subarray(n);
      if (this.filled === this.staging.length) await this.drain();
    }
  }

  async drain(): Promise<void> {
    if (this.filled === 0) return;
    const slice = this.staging.subarray(0, this.filled);
    this.filled = 0;
    await this.flush(slice);
  }
}

export async function open(sink: Sink, signal: AbortSignal): Promise<Writer> {
  if (sink.kind === "file") return FileWriter.open(sink.handle);
  if (sink.kind === "port") return new PortWriter(sink.port, signal);
  return new BlobWriter();
}

class BlobWriter implements Writer {
  private readonly blobs: Blob[] = [];
  private readonly slices = new Slices(16 << 20, async (slice) => {
    this.blobs.push(new Blob([slice])); // copies: the slice's buffer is reused
  });

  write(chunk: Uint8Array): Promise<void> {
    return this.slices.write(chunk);
  }

  async commit(): Promise<Blob> {
    await this.slices.drain();
    return new Blob(this.blobs, { type: "application/octet-stream" });
  }

  async abort(): Promise<void> {
    this.blobs.length = 0;
  }
}

class FileWriter implements Writer {
  private readonly slices: Slices;

  private constructor(private readonly out: FileSystemWritableFileStream) {
    this.slices = new Slices(4 << 20, (slice) => out.write(slice));
  }

  static async open(handle: FileSystemFileHandle): Promise<FileWriter> {
    return new FileWriter(await handle.createWritable({ keepExistingData: false }));
  }

  write(chunk: Uint8Array): Promise<void> {
    return this.slices.write(chunk);
  }

  async commit(): Promise<null> {
    await this.slices.drain();
    await this.out.close();
    return null;
  }

  async abort(reason: string): Promise<void> {
    await this.out.abort(reason).catch(() => undefined);
  }
}

/** What the service worker's stream asks for: one more slice, or nothing more (the user cancelled). */
type Demand = { pull: true } | { cancel: true };

class PortWriter implements Writer {
  private credit = 0;
  private stopped = false;
  private wake: (() => void) | null = null;
  private readonly slices = new Slices(1 << 20, (slice) => this.send(slice));

  constructor(
    private readonly port: MessagePort,
    private readonly signal: AbortSignal,
  ) {
    port.onmessage = (event: MessageEvent<Demand>) => {
      if ("pull" in event.data) this.credit += 1;
      else this.stopped = true;
      this.wake?.();
    };
    signal.addEventListener("abort", () => this.wake?.());
  }

  write(chunk: Uint8Array): Promise<void> {
    return this.slices.write(chunk);
  }

  private async send(slice: Uint8Array): Promise<void> {
    while (this.credit === 0 && !this.stopped && !this.signal.aborted) {
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    if (this.stopped || this.signal.aborted) throw new Cancelled();
    this.credit -= 1;
    const copy = slice.slice();
    this.port.postMessage({ chunk: copy }, [copy.buffer]);
  }

  async commit(): Promise<null> {
    await this.slices.drain();
    this.port.postMessage({ done: true });
    this.port.close();
    return null;
  }

  async abort(reason: string): Promise<void> {
    this.port.postMessage({ error: reason });
    this.port.close();
  }
}
