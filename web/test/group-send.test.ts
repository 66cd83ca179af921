/**
 * A group's members as the web app proves them before a send (src/app/groups.ts), against a
 * server played here: the vectors' signed changes and bundles, in a key log built and signed
 * with the vectors' server key. Every proof must hold, the chain must extend what this browser
 * pinned, and a member whose keys changed stops the send until the sender leaves them out.
 */

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { IntegrityError, SignatureError } from "../src/crypto/errors.js";
import { digest } from "../src/crypto/groups.js";
import { TamperingError } from "../src/crypto/keylog.js";
import type { Signed } from "../src/crypto/keys.js";
import { GroupRefused, MemberRefused, NobodyToSend, provedGroup, resolveRecipients } from "../src/app/groups.js";
import { KeysChanged } from "../src/app/trust.js";
import { alice, asked, changeEntry, Log, playServer, published, serve, V } from "./played.js";
const G = V.group_changes;
const ME = "alice@lab.example";
const CHAIN = G.changes.map((c) => c.signed);
const { alice: ALICE, bob: BOB } = G.bundles;

const LEAVES = [published(ALICE), published(BOB), ...CHAIN.map(changeEntry)];
const LOG = new Log(LEAVES);
const proof = (index: number) => LOG.proof(index);
const signedHead = () => LOG.head();

// --- the played server ---------------------------------------------------------------------------

async function groupAnswer(count = CHAIN.length): Promise<Record<string, unknown>> {
  return {
    id: G.group,
    name: G.name,
    title: "Qualité",
    changes: CHAIN.slice(0, count),
    signers: [{ bundle: ALICE, proof: proof(0) }],
    entries: CHAIN.slice(0, count).map((_, seq) => proof(2 + seq)),
    log: { head: await signedHead(), consistency: null },
  };
}

async function devicesAnswer(bundle: Signed, index: number): Promise<Record<string, unknown>> {
  return { email: bundle.doc.email, devices: [bundle], approvals: [null], log: { head: await signedHead(), consistency: null, proofs: [proof(index)] } };
}

beforeEach(() => {
  playServer();
  serve("/api/v1/groups/lab/qualite", () => groupAnswer());
  serve("/api/v1/users/alice@lab.example/devices", () => devicesAnswer(ALICE, 0)); // the signer's
});

afterEach(() => vi.unstubAllGlobals());

/** What provedGroup refused, and why. */
async function refusal(attempt: Promise<unknown>): Promise<Error> {
  const error = await attempt.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(GroupRefused);
  return (error as GroupRefused).problem;
}

describe("a group's members, proved", () => {
  it("replays the chain under its proofs and pins it", async () => {
    const group = await provedGroup("group:lab/qualite", ME);
    expect(group.id).toBe(G.group);
    expect(Object.fromEntries(group.members)).toEqual({ "alice@lab.example": "admin" });
    const pinned = JSON.parse(localStorage.getItem(`pli:group:${G.group}`) ?? "null") as unknown;
    expect(pinned).toEqual({ genesis: digest(CHAIN[0]), seq: 2, head: digest(CHAIN[2]) });
    await provedGroup("lab/qualite", ME);
    const groupAsked = asked.filter((url) => url.startsWith("/api/v1/groups/"));
    expect(groupAsked).toEqual(["/api/v1/groups/lab/qualite", `/api/v1/groups/lab/qualite?log_size=${LEAVES.length}`]);
    // the signer's keys, refreshed each time the group is proved
    expect(asked.filter((url) => url.startsWith("/api/v1/users/"))).toHaveLength(2);
  });

  it("refuses a history shorter than the one pinned, or rewritten", async () => {
    await provedGroup("group:lab/qualite", ME);
    serve("/api/v1/groups/lab/qualite", () => groupAnswer(2));
    expect(await refusal(provedGroup("group:lab/qualite", ME))).toBeInstanceOf(TamperingError);
    localStorage.setItem(`pli:group:${G.group}`, JSON.stringify({ genesis: "0".repeat(64), seq: 0, head: "0".repeat(64) }));
    serve("/api/v1/groups/lab/qualite", () => groupAnswer());
    expect(await refusal(provedGroup("group:lab/qualite", ME))).toBeInstanceOf(TamperingError);
  });

  it("accepts a longer history than the one pinned, and pins it", async () => {
    serve("/api/v1/groups/lab/qualite", () => groupAnswer(2));
    expect(Object.fromEntries((await provedGroup("group:lab/qualite", ME)).members)).toHaveProperty("bob@ars.example", "member");
    serve("/api/v1/groups/lab/qualite", () => groupAnswer());
    await provedGroup("group:lab/qualite", ME);
    expect(JSON.parse(localStorage.getItem(`pli:group:${G.group}`) ?? "null")).toMatchObject({ seq: 2 });
  });

  it("refuses a change whose key log entry is missing or another's", async () => {
    const altered = async (change: (answer: Record<string, unknown>) => void) => {
      const answer = await groupAnswer();
      change(answer);
      serve("/api/v1/groups/lab/qualite", async () => answer);
      return refusal(provedGroup("group:lab/qualite", ME));
    };
    expect(await altered((a) => (a.entries = [proof(2), proof(4), proof(3)]))).toBeInstanceOf(IntegrityError);
    expect(await altered((a) => (a.entries = [proof(2), proof(3)]))).toBeInstanceOf(IntegrityError);
    expect(await altered((a) => (a.entries = [proof(0), proof(3), proof(4)]))).toBeInstanceOf(IntegrityError);
    expect(await altered((a) => (a.signers = []))).toBeInstanceOf(IntegrityError);
    expect(await altered((a) => (a.signers = [{ bundle: ALICE, proof: proof(1) }]))).toBeInstanceOf(IntegrityError);
    expect(await altered((a) => (a.changes = [CHAIN[0], { ...CHAIN[1], sig: CHAIN[0]?.sig }, CHAIN[2]]))).toBeInstanceOf(SignatureError);
    expect(await altered((a) => (a.name = "lab/autre"))).toBeInstanceOf(IntegrityError);
  });
});

describe("a send's recipients", () => {
  beforeEach(() => {
    serve("/api/v1/groups/lab/qualite", () => groupAnswer(2));
    serve("/api/v1/users/bob@ars.example/devices", () => devicesAnswer(BOB, 1));
  });

  it("sends to every member but the sender, with each group's members named", async () => {
    const resolved = await resolveRecipients(await alice(), ["group:lab/qualite"]);
    expect(resolved.direct).toEqual([]);
    expect(resolved.members.map((k) => k.email)).toEqual(["bob@ars.example"]);
    expect(resolved.groups).toEqual([{ name: "lab/qualite", members: ["bob@ars.example"] }]);
    expect(resolved.firstGroups).toEqual(["lab/qualite"]);
    const both = await resolveRecipients(await alice(), ["bob@ars.example", "group:lab/qualite"]);
    expect(both.direct.map((k) => k.email)).toEqual(["bob@ars.example"]);
    expect(both.members).toEqual([]);
    expect(both.groups).toEqual([{ name: "lab/qualite", members: ["bob@ars.example"] }]);
    expect(both.firstGroups).toEqual([]);
  });

  it("stops at a member whose keys changed, and goes on without them when asked", async () => {
    const other = { email: "bob@ars.example", device: "0".repeat(32), age: "age1x", ed25519: "x" };
    localStorage.setItem("pli:pins:alice@lab.example", JSON.stringify({ "bob@ars.example": [other] }));
    const error = await resolveRecipients(await alice(), ["group:lab/qualite"]).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(MemberRefused);
    expect((error as MemberRefused).email).toBe("bob@ars.example");
    expect((error as MemberRefused).group).toBe("lab/qualite");
    expect((error as MemberRefused).problem).toBeInstanceOf(KeysChanged);
    const without = resolveRecipients(await alice(), ["group:lab/qualite"], new Set(["bob@ars.example"]));
    await expect(without).rejects.toBeInstanceOf(NobodyToSend);
    const withAlice = await resolveRecipients(await alice(), ["alice@lab.example", "group:lab/qualite"], new Set(["bob@ars.example"]));
    expect(withAlice.groups).toEqual([{ name: "lab/qualite", members: [] }]);
  });
});
