/**
 * Signed group membership (docs/spec/groups.md), held to the `group_changes` member of
 * tests/vectors/key-log/vectors.json: every change, its digest and the members once it is
 * applied; every invalid history refused with exactly the stated error class; the key log
 * entries that record the changes; then pinning, names, and an administrator's signing.
 */

import { describe, expect, it } from "vitest";
import { IntegrityError, SignatureError, UsageError } from "../src/crypto/errors.js";
import {
  admins,
  checkExtends,
  claimed,
  digest,
  emptyState,
  expectedEntry,
  headOf,
  parseName,
  pinOf,
  replay,
  seqOf,
  signChange,
  type GroupState,
  type SignerKeys,
} from "../src/crypto/groups.js";
import { TamperingError, decodeEntry } from "../src/crypto/keylog.js";
import { parseBundle, signDoc, type PublicKey, type Signed } from "../src/crypto/keys.js";
import { alice } from "./played.js";
import { errorNamed, readVectors, refused, utf8 } from "./support.js";

interface ListedChange {
  signed: Signed;
  digest: string;
  members: Record<string, string>;
}
interface GroupVectors {
  group: string;
  name: string;
  bundles: Record<"alice" | "bob", Signed>;
  changes: ListedChange[];
  invalid: { name: string; why: string; changes: unknown[]; error: string }[];
}
interface Vectors {
  group_changes: GroupVectors;
  entries: { entries: { name: string; leaf: string }[] };
}

const V = readVectors<Vectors>("key-log/vectors.json");
const G = V.group_changes;
const CHAIN = G.changes.map((c) => c.signed);

/** The signers the vectors prove: Alice and Bob; anyone else is a SignatureError. */
async function signers(): Promise<SignerKeys> {
  const known = await Promise.all(Object.values(G.bundles).map((b) => parseBundle(b)));
  return (email, device) => {
    const found = known.find((k) => k.email === email && k.device === device);
    if (!found) throw new SignatureError("unknown signer");
    return found;
  };
}

const members = (state: GroupState) => Object.fromEntries(state.members);


describe("group vectors: replay", () => {
  it("gives each change's digest and the members once it is applied", async () => {
    const keys = await signers();
    for (const [n, listed] of G.changes.entries()) {
      expect(digest(listed.signed)).toBe(listed.digest);
      const state = await replay(CHAIN.slice(0, n + 1), G.group, G.name, keys);
      expect(members(state)).toEqual(listed.members);
      expect(seqOf(state)).toBe(n);
      expect(headOf(state)).toBe(listed.digest);
      expect(state.digests).toEqual(G.changes.slice(0, n + 1).map((c) => c.digest));
    }
  });

  it.each(G.invalid.map((c) => [c.name, c] as const))("refuses the history %s", async (_name, c) => {
    await refused(replay(c.changes, G.group, G.name, await signers()), errorNamed(c.error));
  });

  it("refuses the chain as another group's, or under another name", async () => {
    const keys = await signers();
    await refused(replay(CHAIN, "0".repeat(32), G.name, keys), IntegrityError);
    await refused(replay(CHAIN, G.group, "lab/autre", keys), IntegrityError);
  });

  it("refuses a history with no change at all", async () => {
    await refused(replay([], G.group, G.name, await signers()), IntegrityError);
  });

  it("refuses a signer the caller did not prove, and a bundle of another device", async () => {
    const nobody: SignerKeys = () => {
      throw new SignatureError("unknown signer");
    };
    await refused(replay(CHAIN, G.group, G.name, nobody), SignatureError);
    const bob = await parseBundle(G.bundles.bob);
    await refused(replay(CHAIN, G.group, G.name, () => bob), SignatureError);
    const posing: PublicKey = { ...bob, email: "alice@lab.example", device: String(G.bundles.alice.doc.device) };
    await refused(replay(CHAIN, G.group, G.name, () => posing), SignatureError);
  });
});

describe("group changes: form", () => {
  const first = CHAIN[0] as Signed;
  const altered = (change: Record<string, unknown>, drop: string[] = []) => {
    const doc: Record<string, unknown> = { ...first.doc, ...change };
    for (const name of drop) delete doc[name];
    return { doc, sig: first.sig };
  };

  it("reads the change it states", () => {
    const change = claimed(CHAIN[1]);
    expect(change).toMatchObject({ seq: 1, action: "add", email: "bob@ars.example", role: "member", by: "alice@lab.example" });
    expect(claimed(CHAIN[2]).role).toBeNull();
  });

  it("refuses every malformed change as a SignatureError", async () => {
    const bad = [
      null,
      [],
      { doc: first.doc },
      { ...first, extra: 1 },
      altered({ kind: "pli/group-change/v2" }),
      altered({ extra: "x" }),
      altered({}, ["role"]),
      altered({ action: "remove" }),
      altered({ action: "rename" }),
      altered({ seq: true }),
      altered({ seq: "0" }),
      altered({ seq: -1 }),
      altered({ seq: 10_000, prev: "a".repeat(64) }),
      altered({ seq: 1, prev: "" }),
      altered({ prev: "a".repeat(64) }),
      altered({ seq: 1, prev: "A".repeat(64) }),
      altered({ group: G.group.toUpperCase() }),
      altered({ device: "db62" }),
      altered({ name: "Lab/qualite" }),
      altered({ name: "lab/-qualite" }),
      altered({ name: "lab" }),
      altered({ role: "owner" }),
      altered({ email: "Alice@lab.example" }),
      altered({ email: " alice@lab.example" }),
      altered({ email: "alice@lab.example\u0085" }),
      altered({ email: "alice" }),
      altered({ email: "" }),
      altered({ by: `${"a".repeat(250)}@x.example` }),
      altered({ email: 7 }),
      { doc: first.doc, sig: 7 },
    ];
    for (const change of bad) await refused(() => claimed(change), SignatureError);
  });

  it("writes names as the spec does", () => {
    expect(parseName("group:ars-idf/veille")).toEqual({ organisation: "ars-idf", group: "veille" });
    expect(parseName(" ARS-IDF/Veille ")).toEqual({ organisation: "ars-idf", group: "veille" });
    expect(parseName(`${"a".repeat(64)}/b`).organisation).toHaveLength(64);
    for (const bad of ["ars-idf", "ars-idf/", "-ars/veille", "ars/veille-", "ars/vé", `${"a".repeat(65)}/b`, "a/b/c"]) {
      expect(() => parseName(bad)).toThrow(UsageError);
    }
  });
});

describe("group changes: the key log", () => {
  it("rebuilds the entries that record the founding and Bob's removal", () => {
    const logged = (name: string) => {
      const { time: _time, ...entry } = decodeEntry(utf8(V.entries.entries.find((e) => e.name === name)?.leaf ?? ""));
      return entry;
    };
    expect(expectedEntry(claimed(CHAIN[0]))).toEqual(logged("group_member_added"));
    expect(expectedEntry(claimed(CHAIN[2]))).toEqual(logged("group_member_removed"));
  });
});

describe("group changes: pinning", () => {
  async function full(): Promise<GroupState> {
    return replay(CHAIN, G.group, G.name, await signers());
  }

  it("accepts a chain that holds the pinned changes, at any later length", async () => {
    const keys = await signers();
    const early = pinOf(await replay(CHAIN.slice(0, 2), G.group, G.name, keys));
    expect(early).toEqual({ genesis: G.changes[0]?.digest, seq: 1, head: G.changes[1]?.digest });
    checkExtends(await full(), early);
    checkExtends(await full(), pinOf(await full()));
  });

  it("refuses a rewritten or shortened history as tampering", async () => {
    const state = await full();
    const pinned = pinOf(state);
    await refused(() => checkExtends(state, { ...pinned, genesis: "0".repeat(64) }), TamperingError);
    await refused(() => checkExtends(state, { ...pinned, head: "0".repeat(64) }), TamperingError);
    await refused(() => checkExtends(state, { ...pinned, seq: 3 }), TamperingError);
    const shorter = await replay(CHAIN.slice(0, 2), G.group, G.name, await signers());
    await refused(() => checkExtends(shorter, pinned), TamperingError);
  });
});

describe("group changes: signing", () => {
  it("rebuilds Alice's device from the generator's secrets", async () => {
    expect((await alice()).bundle).toEqual(G.bundles.alice);
  });

  it("signs exactly the vectors' chain, change by change", async () => {
    const me = await alice();
    const keys = await signers();
    const steps = [["add", "alice@lab.example", "admin"], ["add", "Bob@ars.example ", "member"], ["remove", "bob@ars.example", undefined]] as const;
    let state = emptyState(G.group, G.name);
    const chain: Signed[] = [];
    for (const [action, email, role] of steps) {
      chain.push(await signChange(me, state, action, email, role));
      state = await replay(chain, G.group, G.name, keys);
    }
    expect(chain).toEqual(CHAIN);
    expect(admins(state)).toEqual(["alice@lab.example"]);
  });

  it("refuses to sign what the group would refuse", async () => {
    const me = await alice();
    const keys = await signers();
    const founded = await replay(CHAIN.slice(0, 1), G.group, G.name, keys);
    const withBob = await replay(CHAIN.slice(0, 2), G.group, G.name, keys);
    await refused(signChange(me, emptyState(G.group, G.name), "add", "bob@ars.example", "admin"), IntegrityError);
    await refused(signChange(me, founded, "add", "alice@lab.example", "admin"), IntegrityError);
    await refused(signChange(me, founded, "add", "alice@lab.example", "member"), IntegrityError);
    await refused(signChange(me, founded, "remove", "alice@lab.example"), IntegrityError);
    await refused(signChange(me, founded, "remove", "carol@ars.example"), IntegrityError);
    await refused(signChange(me, withBob, "add", "bob@ars.example"), IntegrityError);
    const signed = await signChange(me, withBob, "add", "bob@ars.example", "admin");
    expect(members(await replay([...CHAIN.slice(0, 2), signed], G.group, G.name, keys))).toEqual({
      "alice@lab.example": "admin",
      "bob@ars.example": "admin",
    });
  });

  it("refuses a change signed by a device under another kind", async () => {
    const me = await alice();
    const doc = { ...(CHAIN[0] as Signed).doc, kind: "pli/device-approval/v1" };
    const signed = await signDoc("pli/device-approval/v1", doc, me.seed);
    await refused(replay([signed], G.group, G.name, await signers()), SignatureError);
  });
});
