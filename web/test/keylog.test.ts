/**
 * The client side of the key log (docs/spec/key-log.md), held to tests/vectors/key-log: every
 * RFC 6962 root and proof of the Certificate Transparency reference tree, every entry, leaf
 * hash and proof of the entries tree, the signed tree head, and every invalid case refused with
 * exactly the stated error class; then a client's two checks, inclusion and consistency.
 */

import { describe, expect, it } from "vitest";
import { fromHex, hex } from "../src/crypto/b64.js";
import { canonical } from "../src/crypto/canonical.js";
import { IntegrityError, SignatureError, UsageError } from "../src/crypto/errors.js";
import { signDoc, type Signed } from "../src/crypto/keys.js";
import {
  EMPTY_ROOT,
  Frontier,
  HEAD_KIND,
  TamperingError,
  advance,
  audit,
  bundleDigest,
  checkLogged,
  decodeEntry,
  leafHash,
  logId,
  nodeHash,
  parseHead,
  proofFromHex,
  unknownDevices,
  verifyConsistency,
  verifyInclusion,
  type TreeHead,
} from "../src/crypto/keylog.js";
import { errorNamed, readVectors, refused, text, utf8 } from "./support.js";

// --- the vector file ---------------------------------------------------------------------------

interface InclusionCase {
  index: number;
  size: number;
  proof_hex: string[];
}
interface ConsistencyCase {
  old_size: number;
  new_size: number;
  proof_hex: string[];
}
interface Refusal {
  name: string;
  why: string;
  error: string;
}
interface LoggedEntry {
  name: string;
  index: number;
  doc: Record<string, string>;
  leaf: string;
  leaf_hash_hex: string;
  inclusion_proof_hex: string[];
}
interface KeyLogVectors {
  rfc6962: {
    hasher: {
      empty_root_hex: string;
      empty_leaf_hash_hex: string;
      leaf: { leaf_hex: string; leaf_hash_hex: string };
      node: { left_hex: string; right_hex: string; node_hash_hex: string };
    };
    leaves_hex: string[];
    leaf_hashes_hex: string[];
    roots_hex: string[];
    reference_inclusion_proofs: InclusionCase[];
    reference_consistency_proofs: ConsistencyCase[];
    all_inclusion_proofs: InclusionCase[];
    all_consistency_proofs: ConsistencyCase[];
    invalid_inclusion_proofs: (InclusionCase &
      Refusal & { leaf_hash_hex: string; root_hex: string })[];
    invalid_consistency_proofs: (ConsistencyCase &
      Refusal & { old_root_hex: string; new_root_hex: string })[];
  };
  entries: {
    bundles: Record<"alice" | "alice_laptop", { signed_bundle: Signed; bundle_digest: string }>;
    entries: LoggedEntry[];
    size: number;
    root_hex: string;
    roots_hex: string[];
    consistency_proof_2_6_hex: string[];
    invalid_entries: (Refusal & { leaf: string })[];
  };
  tree_head: {
    log: string;
    server_ed25519_seed_hex: string;
    server_ed25519_public: string;
    time: string;
    size: number;
    root_hex: string;
    signed: Signed;
    canonical_doc: string;
    stored_form: string;
    invalid_tree_heads: (Refusal & { signed: unknown })[];
  };
}

const V = readVectors<KeyLogVectors>("key-log/vectors.json");
const CT = V.rfc6962;
const ENTRIES = V.entries;
const HEAD = V.tree_head;

const hashes = (values: string[]) => values.map(fromHex);

/** MTH(D[n]) by RFC 6962's recursion, independently of the verifiers under test. */
function mth(leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return EMPTY_ROOT;
  if (leaves.length === 1) return leaves[0] ?? EMPTY_ROOT;
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

// --- rfc6962 -----------------------------------------------------------------------------------

describe("key-log vectors: RFC 6962", () => {
  const leaves = hashes(CT.leaf_hashes_hex);
  const roots = [EMPTY_ROOT, ...hashes(CT.roots_hex)];

  it("hashes leaves and nodes as the reference hasher", () => {
    const { hasher } = CT;
    expect(hex(EMPTY_ROOT)).toBe(hasher.empty_root_hex);
    expect(hex(leafHash(new Uint8Array(0)))).toBe(hasher.empty_leaf_hash_hex);
    expect(hex(leafHash(fromHex(hasher.leaf.leaf_hex)))).toBe(hasher.leaf.leaf_hash_hex);
    const node = nodeHash(fromHex(hasher.node.left_hex), fromHex(hasher.node.right_hex));
    expect(hex(node)).toBe(hasher.node.node_hash_hex);
  });

  it("has the reference roots of sizes 1 to 8", () => {
    expect(CT.leaves_hex.map((leaf) => hex(leafHash(fromHex(leaf))))).toEqual(CT.leaf_hashes_hex);
    expect(CT.roots_hex).toHaveLength(8);
    CT.roots_hex.forEach((root, i) => expect(hex(mth(leaves.slice(0, i + 1)))).toBe(root));
  });

  it.each(["reference_inclusion_proofs", "all_inclusion_proofs"] as const)(
    "verifies the %s",
    (key) => {
      for (const { index, size, proof_hex } of CT[key]) {
        const leaf = leaves[index] ?? new Uint8Array(0);
        verifyInclusion(index, size, leaf, hashes(proof_hex), roots[size] ?? EMPTY_ROOT);
      }
      if (key === "all_inclusion_proofs") expect(CT[key]).toHaveLength(36);
    },
  );

  it.each(["reference_consistency_proofs", "all_consistency_proofs"] as const)(
    "verifies the %s",
    (key) => {
      for (const { old_size: old, new_size: size, proof_hex } of CT[key]) {
        const [oldRoot, newRoot] = [roots[old] ?? EMPTY_ROOT, roots[size] ?? EMPTY_ROOT];
        verifyConsistency(old, size, oldRoot, newRoot, hashes(proof_hex));
      }
      if (key === "all_consistency_proofs") expect(CT[key]).toHaveLength(44);
    },
  );

  it.each(CT.invalid_inclusion_proofs.map((c) => [c.name, c] as const))(
    "refuses the inclusion proof %s",
    async (_name, c) => {
      const attempt = () =>
        verifyInclusion(
          c.index,
          c.size,
          fromHex(c.leaf_hash_hex),
          hashes(c.proof_hex),
          fromHex(c.root_hex),
        );
      await refused(attempt, errorNamed(c.error));
    },
  );

  it.each(CT.invalid_consistency_proofs.map((c) => [c.name, c] as const))(
    "refuses the consistency proof %s",
    async (_name, c) => {
      const attempt = () =>
        verifyConsistency(
          c.old_size,
          c.new_size,
          fromHex(c.old_root_hex),
          fromHex(c.new_root_hex),
          hashes(c.proof_hex),
        );
      await refused(attempt, errorNamed(c.error));
    },
  );
});

describe("proof checks beyond RFC 9162", () => {
  const leaves = hashes(CT.leaf_hashes_hex);
  const root8 = fromHex(CT.roots_hex[7] ?? "");
  const proof = (index: number) =>
    hashes(CT.all_inclusion_proofs.find((c) => c.index === index && c.size === 8)?.proof_hex ?? []);

  it("refuses a proof element or a leaf hash that is not 32 bytes", async () => {
    const short = proof(4).map((h, i) => (i === 1 ? h.subarray(0, 31) : h));
    const leaf = leaves[4] ?? EMPTY_ROOT;
    await refused(() => verifyInclusion(4, 8, leaf, short, root8), IntegrityError);
    const cut = leaf.subarray(0, 31);
    await refused(() => verifyInclusion(4, 8, cut, proof(4), root8), IntegrityError);
  });

  it("refuses sizes and indexes that are not counts", async () => {
    const leaf = leaves[0] ?? EMPTY_ROOT;
    await refused(() => verifyInclusion(-1, 8, leaf, proof(0), root8), IntegrityError);
    await refused(() => verifyInclusion(0.5, 8, leaf, proof(0), root8), IntegrityError);
    await refused(() => verifyInclusion(0, 2 ** 53 + 2, leaf, [], root8), IntegrityError);
    await refused(() => verifyConsistency(-1, 8, EMPTY_ROOT, root8, []), IntegrityError);
  });

  it("needs an empty proof and equal roots for equal sizes", async () => {
    verifyConsistency(8, 8, root8, root8, []);
    await refused(() => verifyConsistency(8, 8, root8, root8, [root8]), IntegrityError);
    await refused(() => verifyConsistency(0, 8, EMPTY_ROOT, root8, [root8]), IntegrityError);
  });

  it("counts sizes beyond 32 bits without cutting them", () => {
    // Trees whose left subtree is perfect: the proof is one hash, whatever the size.
    const big = 2 ** 40;
    const left = fromHex("11".repeat(32));
    const right = leafHash(utf8("the last entry"));
    verifyInclusion(big, big + 1, right, [left], nodeHash(left, right));
    verifyConsistency(big, big + 1, left, nodeHash(left, right), [right]);
    verifyConsistency(2 ** 33, 3 * 2 ** 32, left, nodeHash(left, right), [right]);
    expect(() => verifyInclusion(big, big + 2, right, [left], nodeHash(left, right))).toThrow(
      IntegrityError,
    );
  });

  it("reads proofs as the server writes them, 64 lowercase hex digits each", async () => {
    expect(proofFromHex(CT.all_inclusion_proofs[5]?.proof_hex)).toEqual(
      hashes(CT.all_inclusion_proofs[5]?.proof_hex ?? []),
    );
    expect(proofFromHex([])).toEqual([]);
    for (const bad of [null, "00", ["AB".repeat(32)], ["ab".repeat(31)], [1]]) {
      await refused(() => proofFromHex(bad), IntegrityError);
    }
  });
});

// --- entries -----------------------------------------------------------------------------------

describe("key-log vectors: entries", () => {
  const roots = hashes(ENTRIES.roots_hex);

  it("decodes every entry, with its leaf hash and inclusion proof", () => {
    for (const item of ENTRIES.entries) {
      const leaf = utf8(item.leaf);
      const { kind, event, ...members } = item.doc;
      expect(kind).toBe("pli/key-log-entry/v1");
      expect(decodeEntry(leaf)).toEqual({ event, ...members });
      expect(text(canonical(item.doc))).toBe(item.leaf);
      expect(hex(leafHash(leaf))).toBe(item.leaf_hash_hex);
      const proof = hashes(item.inclusion_proof_hex);
      verifyInclusion(item.index, ENTRIES.size, leafHash(leaf), proof, fromHex(ENTRIES.root_hex));
    }
  });

  it("has the roots of every size and the consistency proof from 2 to 6", () => {
    const leaves = ENTRIES.entries.map((item) => leafHash(utf8(item.leaf)));
    expect(ENTRIES.roots_hex).toHaveLength(ENTRIES.size + 1);
    ENTRIES.roots_hex.forEach((root, n) => expect(hex(mth(leaves.slice(0, n)))).toBe(root));
    expect(ENTRIES.root_hex).toBe(ENTRIES.roots_hex[ENTRIES.size]);
    const proof = hashes(ENTRIES.consistency_proof_2_6_hex);
    verifyConsistency(2, 6, roots[2] ?? EMPTY_ROOT, roots[6] ?? EMPTY_ROOT, proof);
  });

  it("has the bundle digests of both signed bundles", () => {
    for (const { signed_bundle: signed, bundle_digest: digest } of Object.values(ENTRIES.bundles)) {
      expect(bundleDigest(signed)).toBe(digest);
    }
  });

  it.each(ENTRIES.invalid_entries.map((c) => [c.name, c] as const))(
    "refuses the entry %s",
    async (_name, c) => {
      await refused(() => decodeEntry(utf8(c.leaf)), errorNamed(c.error));
    },
  );

  it("refuses leaves the strict JSON reader refuses, and malformed emails", async () => {
    const first = ENTRIES.entries[0]?.leaf ?? "";
    const leaves = [
      new Uint8Array([0xff, 0xfe]),
      utf8(`\ufeff${first}`),
      utf8(first.replace('"time":"2026-01-15T08:31:00Z"', '"time":1.5')),
      utf8(first.replace('"email":', '"email":"x","email":')),
      utf8(first.replace("alice@lab.example", "")),
      utf8(first.replace("alice@lab.example", "a".repeat(255))),
      utf8(first.replace("alice@lab.example", "\\ud800@lab.example")),
      utf8(first.replace("2026-01-15", "٢٠٢٦-01-15")),
    ];
    for (const leaf of leaves) await refused(() => decodeEntry(leaf), IntegrityError);
    const longest = first.replace("alice@lab.example", "é".repeat(254));
    expect(decodeEntry(utf8(longest)).email).toHaveLength(254);
  });
});

// --- the signed tree head ----------------------------------------------------------------------

describe("key-log vectors: the signed tree head", () => {
  const key = HEAD.server_ed25519_public;

  it("parses under the server key and log", async () => {
    const head = await parseHead(HEAD.signed, key, HEAD.log);
    expect(head.size).toBe(HEAD.size);
    expect(hex(head.root)).toBe(HEAD.root_hex);
    expect(hex(head.root)).toBe(ENTRIES.root_hex);
    expect(head.time).toBe(HEAD.time);
    expect([head.log, head.key]).toEqual([HEAD.log, key]);
    expect(text(canonical(head.signed.doc))).toBe(HEAD.canonical_doc);
    expect(text(canonical(head.signed))).toBe(HEAD.stored_form);
  });

  it.each(HEAD.invalid_tree_heads.map((c) => [c.name, c] as const))(
    "refuses the head %s",
    async (_name, c) => {
      await refused(parseHead(c.signed, key, HEAD.log), errorNamed(c.error));
    },
  );

  it("refuses the valid head under another key or as another log's", async () => {
    const other = ENTRIES.bundles.alice.signed_bundle.doc.ed25519;
    expect(typeof other).toBe("string");
    await refused(parseHead(HEAD.signed, String(other), HEAD.log), SignatureError);
    await refused(parseHead(HEAD.signed, key, "other.example.org"), SignatureError);
  });

  it("refuses validly signed heads of the wrong forms", async () => {
    const seed = fromHex(HEAD.server_ed25519_seed_hex);
    const changes: Record<string, unknown>[] = [
      { size: -1 },
      { size: true },
      { size: "6" },
      { root: HEAD.root_hex.toUpperCase() },
      { root: HEAD.root_hex.slice(2) },
      { time: "2026-03-01T09:00:00.0000001Z" },
      { time: "2026-03-01 09:00:00Z" },
      { key: ENTRIES.bundles.alice.signed_bundle.doc.ed25519 },
    ];
    for (const change of changes) {
      const signed = await signDoc(HEAD_KIND, { ...HEAD.signed.doc, ...change }, seed);
      await refused(parseHead(signed, key, HEAD.log), SignatureError);
    }
    // Above 2^53 a size has no canonical form, so nothing can sign it.
    const huge = { doc: { ...HEAD.signed.doc, size: 2 ** 53 + 2 }, sig: HEAD.signed.sig };
    await refused(parseHead(huge, key, HEAD.log), SignatureError);
  });

  it("accepts the bounds: an empty tree, a size of 2^53, a time without a fraction", async () => {
    const seed = fromHex(HEAD.server_ed25519_seed_hex);
    const bounds = [
      { size: 0, root: hex(EMPTY_ROOT) },
      { size: 2 ** 53 },
      { time: "2026-03-01T09:00:00Z" },
    ];
    for (const change of bounds) {
      const doc = { ...HEAD.signed.doc, ...change };
      const head = await parseHead(await signDoc(HEAD_KIND, doc, seed), key, HEAD.log);
      expect(head.signed.doc).toEqual(doc);
    }
  });

  it("derives the log id from the server key", () => {
    expect(logId("aY6nQIntF9C7RKLHoiXANlMi4xS7/IggW2ivynV00Wc")).toBe(
      "pli-30da12be70fb7db07e10f283bafd9418",
    );
    expect(logId(key)).toBe("pli-30da12be70fb7db07e10f283bafd9418");
    expect(() => logId("clé")).toThrow(UsageError);
  });
});

// --- what a client checks ----------------------------------------------------------------------

/** A head of the vectors' log signed by the vectors' server key. */
async function signedHead(size: number, rootHex: string): Promise<TreeHead> {
  const doc = { ...HEAD.signed.doc, size, root: rootHex };
  const signed = await signDoc(HEAD_KIND, doc, fromHex(HEAD.server_ed25519_seed_hex));
  return parseHead(signed, HEAD.server_ed25519_public, HEAD.log);
}

describe("check 2: advance", () => {
  const proof26 = hashes(ENTRIES.consistency_proof_2_6_hex);
  const rootOf = (size: number) => ENTRIES.roots_hex[size] ?? "";

  it("keeps the first head seen", async () => {
    const seen = await signedHead(2, rootOf(2));
    expect(advance(null, seen, [])).toBe(seen);
  });

  it("moves to a larger head given a consistency proof, keeps it over a smaller", async () => {
    const [small, large] = [await signedHead(2, rootOf(2)), await signedHead(6, rootOf(6))];
    expect(advance(small, large, proof26)).toBe(large);
    expect(advance(large, small, proof26)).toBe(large);
    expect(advance(large, await signedHead(6, rootOf(6)), []).size).toBe(6);
  });

  it("calls two heads of one size with different roots a fork", async () => {
    const [ours, theirs] = [await signedHead(6, rootOf(6)), await signedHead(6, rootOf(5))];
    const error = await refused(() => advance(ours, theirs, []), TamperingError);
    expect(error).toBeInstanceOf(IntegrityError);
    expect(error.message).toContain("forked");
    expect(error.message).toContain("size 6");
  });

  it("calls a larger head that does not extend the kept one a fork", async () => {
    const [small, large] = [await signedHead(2, rootOf(2)), await signedHead(6, rootOf(6))];
    const error = await refused(() => advance(small, large, proof26.slice(1)), TamperingError);
    expect(error.message).toContain("forked");
    const other = await signedHead(2, rootOf(1));
    expect((await refused(() => advance(other, large, proof26), TamperingError)).message).toContain(
      "forked",
    );
  });

  it("refuses heads of two different logs", async () => {
    const ours = await signedHead(2, rootOf(2));
    const theirs = { ...ours, log: "other.example.org" };
    await refused(() => advance(ours, theirs, []), UsageError);
  });
});

describe("check 1: checkLogged", () => {
  const { alice, alice_laptop: laptop } = ENTRIES.bundles;
  const owner = (b: { signed_bundle: Signed }) => ({
    email: String(b.signed_bundle.doc.email),
    device: String(b.signed_bundle.doc.device),
  });
  const item = (index: number) => {
    const entry = ENTRIES.entries[index];
    return { index, leaf: entry?.leaf, path: entry?.inclusion_proof_hex };
  };
  const head = () => parseHead(HEAD.signed, HEAD.server_ed25519_public, HEAD.log);

  async function refusedFor(b: typeof alice, given: unknown): Promise<void> {
    const { email, device } = owner(b);
    const error = await refused(
      async () => checkLogged(await head(), owner(b), b.signed_bundle, given),
      IntegrityError,
    );
    const message = `the key log does not hold the keys of device ${device} of ${email}`;
    expect(error.message).toBe(message);
  }

  it("accepts the publication of the first device and the approval of the second", async () => {
    checkLogged(await head(), owner(alice), alice.signed_bundle, item(0));
    checkLogged(await head(), owner(laptop), laptop.signed_bundle, item(2));
    checkLogged(await head(), owner(laptop), laptop.signed_bundle, item(1));
  });

  it("refuses another device's entry, and another bundle", async () => {
    await refusedFor(alice, item(1));
    await refusedFor(laptop, item(0));
    const altered = { ...alice.signed_bundle, sig: laptop.signed_bundle.sig };
    const error = await refused(
      async () => checkLogged(await head(), owner(alice), altered, item(0)),
      IntegrityError,
    );
    expect(error.message).toContain("does not hold the keys of device");
  });

  it("refuses a removal, and group entries", async () => {
    await refusedFor(laptop, item(5));
    await refusedFor(alice, item(3));
  });

  it("refuses an altered path, another index, and malformed items", async () => {
    const good = item(0);
    const path = [...(good.path ?? [])];
    path[1] = `${(path[1] ?? "").slice(0, -1)}${path[1]?.endsWith("0") ? "1" : "0"}`;
    await refusedFor(alice, { ...good, path });
    await refusedFor(alice, { ...good, path: good.path?.slice(1) });
    await refusedFor(alice, { ...good, path: good.path?.map((h) => h.toUpperCase()) });
    await refusedFor(alice, { ...good, index: 1 });
    await refusedFor(alice, { ...good, index: 6 });
    await refusedFor(alice, { ...good, index: "0" });
    await refusedFor(alice, { ...good, leaf: good.leaf?.replace(/,/g, ", ") });
    await refusedFor(alice, { index: 0, leaf: good.leaf });
    await refusedFor(alice, null);
  });

  it("refuses a proof against another head than the one it was made for", async () => {
    const smaller = await signedHead(5, ENTRIES.roots_hex[5] ?? "");
    const error = await refused(
      () => checkLogged(smaller, owner(alice), alice.signed_bundle, item(0)),
      IntegrityError,
    );
    expect(error.message).toContain(owner(alice).device);
  });
});

describe("the audit of one's own entries", () => {
  const leaves = ENTRIES.entries.map((item) => utf8(item.leaf));
  const head = () => parseHead(HEAD.signed, HEAD.server_ed25519_public, HEAD.log);
  const grown = (n: number) => {
    const frontier = new Frontier();
    leaves.slice(0, n).forEach((leaf) => frontier.append(leafHash(leaf)));
    return frontier;
  };

  it("keeps the root of every size in O(log n) hashes", () => {
    ENTRIES.roots_hex.forEach((root, n) => {
      const frontier = grown(n);
      expect(frontier.size).toBe(n);
      expect(hex(frontier.root())).toBe(root);
      expect(new Frontier(n, frontier.hashes).root()).toEqual(frontier.root());
    });
    const big = hashes(CT.leaf_hashes_hex);
    const frontier = new Frontier();
    big.forEach((leaf) => frontier.append(leaf));
    expect(hex(frontier.root())).toBe(CT.roots_hex[7]);
  });

  it("refuses a frontier without one 32-byte hash per set bit of its size", () => {
    expect(() => new Frontier(3, [EMPTY_ROOT])).toThrow(IntegrityError);
    expect(() => new Frontier(2, [EMPTY_ROOT.subarray(1)])).toThrow(IntegrityError);
    expect(() => new Frontier(-1, [])).toThrow(IntegrityError);
  });

  it("reads the entries from any frontier to the head, and keeps those asked for", async () => {
    for (let start = 0; start <= ENTRIES.size; start++) {
      const result = await audit(grown(start), await head(), leaves.slice(start), (e) => e.email === "alice@lab.example");
      expect(result.frontier.size).toBe(ENTRIES.size);
      expect(hex(result.frontier.root())).toBe(ENTRIES.root_hex);
      const expected = ENTRIES.entries.filter((e) => e.index >= start && e.doc.email === "alice@lab.example");
      expect(result.entries.map(([index]) => index)).toEqual(expected.map((e) => e.index));
    }
  });

  it("refuses a list with an entry left out, added, changed or reordered", async () => {
    const from2 = leaves.slice(2);
    const lists = [
      from2.slice(1),
      [...from2, leaves[0] ?? new Uint8Array(0)],
      [from2[1], from2[0], ...from2.slice(2)],
      [leaves[1], ...from2.slice(1)],
    ];
    for (const list of lists) {
      await refused(audit(grown(2), await head(), list.map((l) => l ?? new Uint8Array(0))), IntegrityError);
    }
    await refused(audit(grown(1), await head(), from2), IntegrityError);
  });

  it("names the devices of an account that it does not know", async () => {
    const { entries } = await audit(new Frontier(), await head(), leaves);
    const { alice, alice_laptop: laptop } = ENTRIES.bundles;
    const id = (b: typeof alice) => String(b.signed_bundle.doc.device);
    const both = new Map([alice, laptop].map((b) => [id(b), b.bundle_digest]));
    expect(unknownDevices(entries, "alice@lab.example", both)).toEqual([]);
    const onlyFirst = new Map([[id(alice), alice.bundle_digest]]);
    expect(unknownDevices(entries, "alice@lab.example", onlyFirst).map(([i]) => i)).toEqual([1, 2]);
    const wrongBundle = new Map([...both, [id(laptop), alice.bundle_digest]]);
    expect(unknownDevices(entries, "alice@lab.example", wrongBundle).map(([i]) => i)).toEqual([1, 2]);
    expect(unknownDevices(entries, "bob@ars.example", new Map())).toEqual([]);
  });
});
