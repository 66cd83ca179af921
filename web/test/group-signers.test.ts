/**
 * Who may sign a group's changes, as this browser checks it (src/app/groups.ts, src/app/trust.ts),
 * against a server played here whose key log grows as the story goes: a device this browser
 * pinned for the signer at some time, or one the key log made active, and the change logged,
 * before this browser first pinned the signer's account. A device the server makes up for an
 * administrator, logs, and marks removed at once so as never to hand it out with their keys, is
 * refused, as `pli` refuses it (pli.client.pins.PinStore.trusted_signer).
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { hex } from "../src/crypto/b64.js";
import { applyChange, emptyState, signChange, type GroupState } from "../src/crypto/groups.js";
import { TamperingError } from "../src/crypto/keylog.js";
import { ageIdentityOf, identityOf, type Identity, type PublicKey, type Signed } from "../src/crypto/keys.js";
import { GroupRefused, groupPin, provedGroup, UnknownSigner } from "../src/app/groups.js";
import { pin, pinHistory, pins, PinsDamaged, trustedSigner } from "../src/app/trust.js";
import { alice, changeEntry, Log, playServer, published, serve, V } from "./played.js";
import { utf8 } from "./support.js";

const G = V.group_changes;
const CHAIN = G.changes.map((c) => c.signed);
const { alice: ALICE, bob: BOB } = G.bundles;
const ANNE = "alice@lab.example";
/** The account this browser is signed in as: it only sends to the group. */
const ME = "carol@lab.example";
const MALLORY = "mallory@evil.example";

/** Another device of Alice's account, its secrets fixed by `label`. */
function aliceDevice(label: string): Promise<Identity> {
  const fixed = (part: string, size = 32) => sha256(utf8(`pli test signers/${label}/${part}`)).slice(0, size);
  return identityOf({ email: ANNE, device: hex(fixed("device", 16)), created: "2026-02-01T14:00:00Z", ageIdentity: ageIdentityOf(fixed("x25519")), seed: fixed("ed25519") });
}

/** The played server: a key log that only grows, group lab/qualite logged in it, and the
 * devices it hands out for Alice's account. */
class Story {
  readonly leaves: string[] = [];
  readonly changes: Signed[] = [];
  readonly logged: number[] = [];
  readonly bundles = new Map<string, { bundle: Signed; index: number }>();
  /** What the server hands out as Alice's devices, by device id. */
  aliceHas: string[] = [];
  state: GroupState = emptyState(G.group, G.name);

  /** Log `bundle` as a device published: its index. */
  publish(bundle: Signed): number {
    this.bundles.set(String(bundle.doc.device), { bundle, index: this.leaves.length });
    this.leaves.push(published(bundle));
    return this.leaves.length - 1;
  }

  /** Add `signed` to the group's history, and its entry to the log. */
  change(signed: Signed): void {
    applyChange(this.state, signed);
    this.changes.push(signed);
    this.logged.push(this.leaves.length);
    this.leaves.push(changeEntry(signed));
  }

  async sign(by: Identity, email: string, role: "admin" | "member" = "member"): Promise<void> {
    this.change(await signChange(by, this.state, "add", email, role));
  }

  private bundle(device: string): { bundle: Signed; index: number } {
    const found = this.bundles.get(device);
    if (!found) throw new Error(`device ${device} was never published`);
    return found;
  }

  private async logOf(url: URL): Promise<{ log: Log; head: Signed; consistency: string[] | null }> {
    const log = new Log([...this.leaves]);
    const size = url.searchParams.get("log_size");
    return { log, head: await log.head(), consistency: size === null ? null : log.consistency(Number(size)) };
  }

  play(): this {
    serve("/api/v1/groups/lab/qualite", async (url) => {
      const { log, head, consistency } = await this.logOf(url);
      const signing = [...new Set(this.changes.map((c) => String(c.doc.device)))];
      return {
        id: G.group,
        name: G.name,
        changes: this.changes,
        signers: signing.map((device) => ({ bundle: this.bundle(device).bundle, proof: log.proof(this.bundle(device).index) })),
        entries: this.logged.map((index) => log.proof(index)),
        log: { head, consistency },
      };
    });
    serve(`/api/v1/users/${ANNE}/devices`, async (url) => {
      const { log, head, consistency } = await this.logOf(url);
      const devices = this.aliceHas.map((device) => this.bundle(device));
      return { email: ANNE, devices: devices.map((d) => d.bundle), approvals: devices.map(() => null), log: { head, consistency, proofs: devices.map((d) => log.proof(d.index)) } };
    });
    return this;
  }
}

beforeEach(() => playServer());
afterEach(() => vi.unstubAllGlobals());

async function refused(attempt: Promise<unknown>): Promise<Error> {
  const error = await attempt.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(GroupRefused);
  return (error as GroupRefused).problem;
}

const members = async () => [...(await provedGroup("group:lab/qualite", ME)).members.keys()].sort();

describe("the signers of a group's changes", () => {
  it("refuses a device made up for an administrator after this browser pinned her, logged and removed", async () => {
    const story = new Story().play();
    story.publish(ALICE);
    story.publish(BOB);
    story.change(CHAIN[0] as Signed);
    story.change(CHAIN[1] as Signed);
    story.aliceHas = [String(ALICE.doc.device)];
    expect(await members()).toEqual([ANNE, "bob@ars.example"]); // pins the group, and Alice
    expect(pinHistory(ME, ANNE)).toEqual({ seen: [[ALICE.doc.device, ALICE.doc.ed25519]], since: 4 });

    const madeUp = await aliceDevice("made up");
    story.publish(madeUp.bundle); // never handed out with Alice's keys
    await story.sign(madeUp, MALLORY);
    const problem = await refused(provedGroup("group:lab/qualite", ME));
    expect(problem).toBeInstanceOf(UnknownSigner);
    expect(problem).toBeInstanceOf(TamperingError);
    expect(problem).toMatchObject({ group: G.name, seq: 2, device: madeUp.device.device, email: ANNE });
    expect(problem.message).toContain(
      `change 2 of group lab/qualite is signed by device ${madeUp.device.device} of ${ANNE}, which this browser never saw among ` +
        `${ANNE}'s keys and which the key log made active after it pinned them`,
    );
    expect(groupPin(G.group)).toMatchObject({ seq: 1 }); // the change is not pinned
    // and again: nothing was pinned on the way
    expect(await refused(provedGroup("group:lab/qualite", ME))).toBeInstanceOf(UnknownSigner);

    // as `pli` does, a browser that meets Alice's account only now trusts its history on first use
    localStorage.clear();
    expect(await members()).toContain(MALLORY);
  });

  it("accepts an old device, removed, that made its changes before this browser first pinned its account", async () => {
    const story = new Story().play();
    story.publish(ALICE);
    story.publish(BOB);
    const phone = await aliceDevice("old phone");
    story.publish(phone.bundle);
    story.change(CHAIN[0] as Signed);
    await story.sign(phone, "bob@ars.example");
    story.aliceHas = [String(ALICE.doc.device)]; // the phone was removed since
    expect(await members()).toEqual([ANNE, "bob@ars.example"]);
    expect(pinHistory(ME, ANNE)?.since).toBe(story.leaves.length);

    await story.sign(await alice(), "dan@lab.example"); // Alice goes on from her device
    expect(await members()).toEqual([ANNE, "bob@ars.example", "dan@lab.example"]);
    expect(groupPin(G.group)).toMatchObject({ seq: 2 });
  });

  it("accepts a device this browser pinned for its account, since removed", async () => {
    const story = new Story().play();
    story.publish(ALICE);
    story.publish(BOB);
    const laptop = await aliceDevice("laptop");
    story.publish(laptop.bundle);
    story.change(CHAIN[0] as Signed);
    story.aliceHas = [String(ALICE.doc.device), laptop.device.device];
    expect(await members()).toEqual([ANNE]); // pins both of Alice's devices
    const since = story.leaves.length;

    await story.sign(laptop, "bob@ars.example"); // logged after the pin
    story.aliceHas = [String(ALICE.doc.device)]; // then the laptop left
    expect(await members()).toEqual([ANNE, "bob@ars.example"]);
    expect(pins(ME).get(ANNE)?.map((k) => k.device)).toEqual([ALICE.doc.device]);
    const history = pinHistory(ME, ANNE);
    expect(history?.since).toBe(since);
    expect(history?.seen).toContainEqual([laptop.device.device, laptop.device.ed25519]);
    expect(story.logged[1]).toBeGreaterThanOrEqual(since);
  });
});

describe("what this browser kept of its pins", () => {
  const key = (device: string, ed25519: string): PublicKey => ({ email: ANNE, device, age: "age1x", ed25519 });
  const ANNE_1 = key("1".repeat(32), "one");
  const ANNE_2 = key("2".repeat(32), "two");

  it("reads pins kept before their history was: their devices seen, since the log's start", () => {
    localStorage.setItem(`pli:pins:${ME}`, JSON.stringify({ [ANNE]: [ANNE_1] }));
    expect(pinHistory(ME, ANNE)).toEqual({ seen: [[ANNE_1.device, "one"]], since: 0 });
    expect(trustedSigner(ME, ANNE, ANNE_1, 10, 11)).toBe(true);
    expect(trustedSigner(ME, ANNE, ANNE_2, 0, 0)).toBe(false);
    pin(ME, ANNE, [ANNE_2]);
    expect(pinHistory(ME, ANNE)).toEqual({ seen: [[ANNE_1.device, "one"], [ANNE_2.device, "two"]], since: 0 });
    expect(pins(ME).get(ANNE)).toEqual([ANNE_2]); // the pins themselves keep their shape
    expect(trustedSigner(ME, ANNE, ANNE_1, 10, 11)).toBe(true);
    expect(trustedSigner(ME, "bob@ars.example", ANNE_1, 0, 0)).toBe(false); // never pinned
  });

  it("trusts a device it never pinned only if both its activation and the change precede the first pin", () => {
    localStorage.setItem("pli:key-log", JSON.stringify({ key: "k", head: { doc: { size: 7 } } }));
    pin(ME, ANNE, [ANNE_1]);
    expect(pinHistory(ME, ANNE)?.since).toBe(7);
    expect(trustedSigner(ME, ANNE, ANNE_2, 3, 6)).toBe(true);
    expect(trustedSigner(ME, ANNE, ANNE_2, 3, 7)).toBe(false);
    expect(trustedSigner(ME, ANNE, ANNE_2, 7, 8)).toBe(false);
    expect(trustedSigner(ME, ANNE, { ...ANNE_1, ed25519: "other" }, 7, 8)).toBe(false); // same id, other key
  });

  it("stops on a damaged history rather than trust again", () => {
    pin(ME, ANNE, [ANNE_1]);
    localStorage.setItem(`pli:pin-history:${ME}`, JSON.stringify({ [ANNE]: { seen: [["x"]], since: 0 } }));
    expect(() => trustedSigner(ME, ANNE, ANNE_1, 0, 0)).toThrow(PinsDamaged);
    expect(() => pin(ME, ANNE, [ANNE_1])).toThrow(PinsDamaged);
  });
});
