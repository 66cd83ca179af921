/**
 * The only script URLs this page may ever create, under its Trusted Types policy
 * (`require-trusted-types-for 'script'; trusted-types pli-worker`): the page's worker, the
 * content-addressed bundle the build names (`PLI_WORKER_URL`), and the service worker at
 * `SERVICE_WORKER`. Any other URL is refused.
 */

declare const PLI_WORKER_URL: string;

export const WORKER_URL = PLI_WORKER_URL;
export const SERVICE_WORKER = "/sw.js";

interface TrustedTypesLike {
  createPolicy(name: string, rules: { createScriptURL(url: string): string }): { createScriptURL(url: string): unknown };
}

let policy: { createScriptURL(url: string): unknown } | null = null;

/** `url` as the browser's sinks accept it: a TrustedScriptURL where Trusted Types exist. */
export function scriptUrl(url: string): string {
  const tt = (globalThis as { trustedTypes?: TrustedTypesLike }).trustedTypes;
  if (!tt) return url;
  policy ??= tt.createPolicy("pli-worker", {
    createScriptURL(candidate: string): string {
      if (candidate !== WORKER_URL && candidate !== SERVICE_WORKER) throw new TypeError("not one of the app's scripts");
      return candidate;
    },
  });
  return policy.createScriptURL(url) as string;
}
