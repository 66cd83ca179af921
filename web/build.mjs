// Builds the web app into the server's package: `npm run build` (from the Makefile's `web`).
//
// Output, in src/pli/server/webapp/dist/ (or the directory after `--outdir`):
//   assets/worker-HASH.js   web/src/worker.ts, bundled
//   assets/app-HASH.js      web/src/main.ts, bundled; it finds the worker at PLI_WORKER_URL
//   assets/app-HASH.css     web/src/style.css, bundled
//   assets/sw.js            web/src/sw.ts, bundled: the service worker, whose address must not
//                           change (the server serves it at /sw.js, never cached)
//   index.html              the app's one page, which loads them with Subresource Integrity
//   assets.json             every asset's name, its SHA-384 and its content type: the server
//                           serves these names and no others
//
// An asset's name holds the first 16 hex digits of the SHA-256 of its bytes, so a name always
// means the same bytes and the server lets browsers cache assets for good.

import { createHash } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const WEB = dirname(fileURLToPath(import.meta.url));
const DEFAULT_OUT = join(WEB, "..", "src", "pli", "server", "webapp", "dist");
const TYPES = { ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8" };
const COMMON = {
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: true,
  sourcemap: false,
  write: false,
  legalComments: "none",
  logLevel: "warning",
};

function outDir(argv) {
  const at = argv.indexOf("--outdir");
  if (at === -1) return DEFAULT_OUT;
  if (!argv[at + 1]) throw new Error("--outdir needs a directory");
  return resolve(argv[at + 1]);
}

/** Bundles one entry point, in memory: its bytes (exactly one output file is expected). */
async function bundle(entry, options = {}) {
  const result = await esbuild.build({
    ...COMMON,
    ...options,
    entryPoints: [join(WEB, entry)],
    outdir: "out", // required by esbuild to name outputs; nothing is written
  });
  if (result.outputFiles.length !== 1) {
    const names = result.outputFiles.map((file) => file.path).join(", ");
    throw new Error(`${entry} bundled into several files (${names}): only one is served`);
  }
  return Buffer.from(result.outputFiles[0].contents);
}

function digest(algorithm, bytes, encoding) {
  return createHash(algorithm).update(bytes).digest(encoding);
}

/** A content-addressed asset: `stem-HASH.ext`, where HASH starts the SHA-256 of the bytes. */
function asset(stem, ext, bytes) {
  const name = `${stem}-${digest("sha256", bytes, "hex").slice(0, 16)}${ext}`;
  return { name, ext, bytes, sha384: `sha384-${digest("sha384", bytes, "base64")}` };
}

/** The service worker keeps one name: browsers look for its updates at the address it was registered with. */
function serviceWorker(bytes) {
  return { name: "sw.js", ext: ".js", bytes, sha384: `sha384-${digest("sha384", bytes, "base64")}` };
}

// The icon is empty (`data:,`) so that browsers ask for no /favicon.ico.
function page(script, style) {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>pli</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/${style.name}" integrity="${style.sha384}">
<script type="module" src="/assets/${script.name}" integrity="${script.sha384}"></script>
</head>
<body>
<div id="app"></div>
<noscript>
<p lang="en">pli\u2019s web application needs JavaScript. The <code>pli</code> command line
works without it.</p>
<p lang="fr">L\u2019application web de pli a besoin de JavaScript. La ligne de commande
<code>pli</code> fonctionne sans.</p>
</noscript>
</body>
</html>
`;
}

/** Removes what a previous build left (only the files a build writes), then writes this one. */
function write(out, assets, html) {
  const dir = join(out, "assets");
  rmSync(dir, { recursive: true, force: true });
  rmSync(join(out, "index.html"), { force: true });
  rmSync(join(out, "assets.json"), { force: true });
  mkdirSync(dir, { recursive: true });
  const listed = {};
  for (const { name, ext, bytes, sha384 } of assets) {
    writeFileSync(join(dir, name), bytes);
    listed[name] = { sha384, type: TYPES[ext] };
  }
  writeFileSync(join(out, "assets.json"), `${JSON.stringify(listed, null, 2)}\n`);
  writeFileSync(join(out, "index.html"), html); // last: its presence means a whole build
}

async function main() {
  const out = outDir(process.argv.slice(2));
  const worker = asset("worker", ".js", await bundle("src/worker.ts"));
  const define = { PLI_WORKER_URL: JSON.stringify(`/assets/${worker.name}`) };
  const script = asset("app", ".js", await bundle("src/main.ts", { define }));
  const style = asset("app", ".css", await bundle("src/style.css"));
  const sw = serviceWorker(await bundle("src/sw.ts", { format: "iife" }));
  write(out, [worker, script, style, sw], page(script, style));
  console.log(`web app built in ${out}: ${script.name}, ${worker.name}, ${style.name}`);
}

main().catch((error) => {
  console.error(`web app build failed: ${error.message}`);
  process.exit(1);
});
