/**
 * The web app's `pli keys audit` (src/app/audit.ts), against a played server: the entries it
 * lists must make up the signed head exactly, every key of the account must be one of its
 * known devices (this one, and those it approved), and the audit's place is kept only when
 * nothing was found.
 */

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { approveDevice } from "../src/crypto/devices.js";
import { IntegrityError } from "../src/crypto/errors.js";
import { bundleDigest, TamperingError } from "../src/crypto/keylog.js";
import { parseBundle, type Signed } from "../src/crypto/keys.js";
import { auditKeys, storedFrontier } from "../src/app/audit.js";
import { alice, asked, entryOf, Log, playServer, published, serve, V } from "./played.js";

const ALICE = V.group_changes.bundles.alice;
const BOB = V.group_changes.bundles.bob;
const LAPTOP = V.entries.bundles.alice_laptop.signed_bundle;

function approved(bundle: Signed, by: Signed): string {
  const doc = bundle.doc as Record<string, string>;
  return entryOf({ event: "device-approved", email: doc.email ?? "", device: doc.device ?? "", bundle: bundleDigest(bundle), by: String(by.doc.device) });
}

const LOG = new Log([published(ALICE), published(BOB), published(LAPTOP), approved(LAPTOP, ALICE)]);

/** The played server's log, and what it lists of it. */
function serveLog(log: Log, listed: string[] = log.leaves): void {
  serve("/api/v1/key-log/head", () => log.head());
  serve("/api/v1/key-log/consistency", () => ({ proof: [] }));
  serve("/api/v1/key-log/entries", (url) => {
    const start = Number(url.searchParams.get("start"));
    return { leaves: listed.slice(start, Number(url.searchParams.get("end"))) };
  });
}

/** The account's devices as the server offers and lists them; the laptop approved or not. */
async function serveDevices(options: { approval: boolean; offered?: Signed[] }): Promise<void> {
  const offered = options.offered ?? [ALICE];
  const proofs = offered.map((b) => LOG.proof(b === ALICE ? 0 : 2));
  serve("/api/v1/users/alice@lab.example/devices", async () => ({
    email: "alice@lab.example",
    devices: offered,
    approvals: offered.map(() => null),
    log: { head: await LOG.head(), consistency: null, proofs },
  }));
  const approval = options.approval ? await approveDevice(await alice(), await parseBundle(LAPTOP), LAPTOP) : null;
  serve("/api/v1/me/devices", () => ({ items: [{ bundle: ALICE, approval: null }, { bundle: LAPTOP, approval }] }));
}

beforeEach(() => {
  playServer();
  serveLog(LOG);
});

afterEach(() => vi.unstubAllGlobals());

describe("the audit of one's own keys", () => {
  it("finds no unknown key when every device of the account was approved by a known one", async () => {
    await serveDevices({ approval: true });
    const found = await auditKeys(await alice());
    expect(found).toEqual({ size: 4, read: 4, unknown: [], notListed: false });
    expect(storedFrontier("alice@lab.example").size).toBe(4);
    asked.length = 0;
    expect((await auditKeys(await alice())).read).toBe(0);
    expect(asked.some((url) => url.startsWith("/api/v1/key-log/entries"))).toBe(false);
  });

  it("names the keys no known device made or approved, and audits them again next time", async () => {
    await serveDevices({ approval: false });
    const found = await auditKeys(await alice());
    expect(found.unknown.map(([index, entry]) => [index, entry.event, entry.device])).toEqual([
      [2, "device-published", LAPTOP.doc.device],
      [3, "device-approved", LAPTOP.doc.device],
    ]);
    expect(storedFrontier("alice@lab.example").size).toBe(0);
    expect((await auditKeys(await alice())).read).toBe(4);
  });

  it("says so when the server does not list this browser's keys for the account", async () => {
    await serveDevices({ approval: true, offered: [LAPTOP] });
    const found = await auditKeys(await alice());
    expect(found.notListed).toBe(true);
    expect(storedFrontier("alice@lab.example").size).toBe(0);
  });

  it("refuses a list of entries that does not make up the signed head", async () => {
    await serveDevices({ approval: true });
    const leaves = LOG.leaves;
    const altered = entryOf({ event: "device-removed", email: "alice@lab.example", device: String(LAPTOP.doc.device) });
    for (const listed of [leaves.slice(0, 3), [leaves[0] ?? "", leaves[2] ?? "", leaves[1] ?? "", leaves[3] ?? ""], [...leaves.slice(0, 3), altered]]) {
      serveLog(LOG, listed);
      await expect(auditKeys(await alice())).rejects.toBeInstanceOf(IntegrityError);
    }
    serve("/api/v1/key-log/entries", () => ({ leaves: [...leaves, leaves[0]] }));
    await expect(auditKeys(await alice())).rejects.toBeInstanceOf(IntegrityError);
    expect(storedFrontier("alice@lab.example").size).toBe(0);
  });

  it("refuses a log shorter than the one the last audit read", async () => {
    await serveDevices({ approval: true });
    await auditKeys(await alice());
    const shorter = new Log(LOG.leaves.slice(0, 2));
    serveLog(shorter);
    localStorage.removeItem("pli:key-log");
    await expect(auditKeys(await alice())).rejects.toBeInstanceOf(TamperingError);
  });
});
