/**
 * The app's service worker, served at /sw.js with the scope /app/download/ and nothing else:
 * it turns a decrypted file into a download of the browser's own, streamed, so that a browser
 * without the File System Access API still saves a large file without holding it in memory.
 *
 * The page hands it a MessagePort and an unguessable id; the page's worker decrypts into that
 * port (web/src/worker/sinks.ts); the page then opens /app/download/ID in a hidden frame, and
 * this worker answers that navigation with a stream fed from the port, as an attachment. The
 * stream closes only after every check passed; if one fails it errors, and the browser fails
 * the download rather than keep a file. Each id is answered once. Nothing is cached, nothing
 * else is intercepted: every other request of the app never reaches this worker.
 */

interface Offer {
  op: "download";
  id: string;
  name: string;
  size: number;
  port: MessagePort;
  ack: MessagePort;
}

interface Ping {
  op: "ping";
}

interface Pending {
  stream: ReadableStream<Uint8Array>;
  name: string;
  size: number;
}

type Piece = { chunk: Uint8Array<ArrayBuffer> } | { done: true } | { error: string };

const scope = self as unknown as ServiceWorkerGlobalScope;
const pending = new Map<string, Pending>();
const ID = /^\/app\/download\/([A-Za-z0-9_-]{22,64})$/;
/** Slices asked for ahead of what the browser has written: a few MiB in flight at most. */
const AHEAD = 4;

scope.addEventListener("install", () => void scope.skipWaiting());
scope.addEventListener("activate", (event) => event.waitUntil(scope.clients.claim()));

scope.addEventListener("message", (event: ExtendableMessageEvent) => {
  const data = event.data as Offer | Ping;
  if (data.op === "ping") return; // an event keeps this worker alive during a long download
  if (data.op !== "download" || !ID.test(`/app/download/${data.id}`) || !(data.port instanceof MessagePort) || !(data.ack instanceof MessagePort)) return;
  pending.set(data.id, { stream: fed(data.port), name: data.name, size: data.size });
  data.ack.postMessage(true);
  data.ack.close();
});

/** A stream of what arrives on `port`, asking for each slice when the browser wants more. */
function fed(port: MessagePort): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        port.onmessage = (event: MessageEvent<Piece>) => {
          const piece = event.data;
          if ("chunk" in piece) return controller.enqueue(piece.chunk);
          port.close();
          if ("done" in piece) return controller.close();
          controller.error(new Error(piece.error));
        };
      },
      pull() {
        port.postMessage({ pull: true });
      },
      cancel() {
        port.postMessage({ cancel: true });
        port.close();
      },
    },
    { highWaterMark: AHEAD },
  );
}

scope.addEventListener("fetch", (event: FetchEvent) => {
  const url = new URL(event.request.url);
  const match = url.origin === scope.location.origin ? ID.exec(url.pathname) : null;
  if (!match?.[1]) return;
  const offer = pending.get(match[1]);
  pending.delete(match[1]);
  event.respondWith(offer ? answer(offer) : new Response("This download is no longer available.", { status: 404 }));
});

function answer(offer: Pending): Response {
  const headers = new Headers({
    "content-type": "application/octet-stream",
    "content-disposition": `attachment; filename="${ascii(offer.name)}"; filename*=UTF-8''${encodeURIComponent(offer.name)}`,
    "content-length": String(offer.size),
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "cross-origin-embedder-policy": "require-corp",
    "cross-origin-resource-policy": "same-origin",
  });
  return new Response(offer.stream, { headers });
}

/** A fallback name for old browsers: printable ASCII without quotes or backslashes. */
function ascii(name: string): string {
  return name.replace(/[^\x20-\x7e]|["\\]/g, "_");
}

export {};
