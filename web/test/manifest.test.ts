/**
 * Transfer manifests (docs/spec/manifest.md), held to tests/vectors/manifest.json: for the v2
 * manifest clients write and the v1 one they still read, canonical bytes, signed message and
 * signature exactly the vector's, and the sealed copy opened by both readers and verified;
 * with the vector's file key, ephemeral secrets and nonce fed to age-encryption as its
 * randomness, `sealManifest` writes the v2 vector's sealed bytes exactly, from either version's
 * document; every invalid manifest refused with a SignatureError; and the receiver's other checks.
 */

import { describe, expect, it } from "vitest";
import { sha256 } from "@noble/hashes/sha2.js";
import { b64decode, fromBase64Padded, hex } from "../src/crypto/b64.js";
import { canonical } from "../src/crypto/canonical.js";
import {
  DecryptError,
  GoneError,
  IntegrityError,
  SignatureError,
  UsageError,
} from "../src/crypto/errors.js";
import {
  ageDecrypt,
  ageEncrypt,
  newIdentity,
  parseBundle,
  readAgeHeader,
  signDoc,
  type Signed,
} from "../src/crypto/keys.js";
import {
  MANIFEST_KIND,
  MANIFEST_V1_KIND,
  MAX_SEALED_BYTES,
  checkAddressedTo,
  checkFileList,
  checkManifestDoc,
  checkNotExpired,
  checkSender,
  checkTransfer,
  openManifest,
  readers,
  sealManifest,
  verifyManifest,
  type ManifestDoc,
  type ManifestKind,
} from "../src/crypto/manifest.js";
import {
  errorNamed,
  readVectors,
  refused,
  text,
  utf8,
  vectorIdentity,
  withRandomness,
  type AgeParams,
  type DeviceInputs,
  type SealedSignedParts,
} from "./support.js";

interface Device {
  inputs: DeviceInputs;
  derived: { age_identity: string; age_recipient: string };
  signed_bundle: Signed;
}
interface ManifestVectors {
  sender: Device;
  recipient: Device;
  files: { id: string; plaintext_b64: string; ciphertext_b64: string; age_params: AgeParams }[];
  manifest: SealedSignedParts;
  manifest_v1: SealedSignedParts;
  invalid_manifests: {
    name: string;
    signed: Signed;
    plaintext: string;
    sealed_b64: string;
    error: string;
  }[];
}

const V = readVectors<ManifestVectors>("manifest.json");
const DOC = V.manifest.signed.doc as unknown as ManifestDoc;
const DOC_V1 = V.manifest_v1.signed.doc as unknown as ManifestDoc;
/** Each version's vector, with its kind: the one written, then the one still read. */
const VERSIONS: [ManifestKind, SealedSignedParts][] = [
  [MANIFEST_KIND, V.manifest],
  [MANIFEST_V1_KIND, V.manifest_v1],
];

// --- manifest.json -----------------------------------------------------------------------------

describe("manifest.json: the devices", () => {
  it("rebuilds both devices' signed bundles from their inputs", async () => {
    for (const vector of [V.sender, V.recipient]) {
      const identity = await vectorIdentity(vector.inputs);
      expect(identity.bundle).toEqual(vector.signed_bundle);
      expect(identity.ageIdentity).toBe(vector.derived.age_identity);
      expect(await parseBundle(vector.signed_bundle, vector.inputs.email)).toEqual(identity.device);
    }
  });
});

describe("manifest.json: the kinds", () => {
  it("writes v2 and still reads v1", () => {
    expect(MANIFEST_KIND).toBe("pli/manifest/v2");
    expect(MANIFEST_V1_KIND).toBe("pli/manifest/v1");
    expect([DOC.kind, V.manifest.context]).toEqual([MANIFEST_KIND, MANIFEST_KIND]);
    expect([DOC_V1.kind, V.manifest_v1.context]).toEqual([MANIFEST_V1_KIND, MANIFEST_V1_KIND]);
  });

  it("v1 is v2 with each file's plaintext sha256", () => {
    const { kind: _v2, files, ...rest } = DOC;
    const { kind: _v1, files: v1Files, ...v1Rest } = DOC_V1;
    expect(v1Rest).toEqual(rest);
    expect(v1Files.map(({ sha256: _sha256, ...file }) => file)).toEqual(files);
    expect(files.every((f) => !("sha256" in f))).toBe(true);
    expect(v1Files.every((f) => typeof f.sha256 === "string")).toBe(true);
  });
});

describe.each(VERSIONS)("manifest.json: the signed manifest %s", (kind, vector) => {
  const doc = vector.signed.doc as unknown as ManifestDoc;

  it("has the vector's canonical form, signed message and signature", async () => {
    expect(text(canonical(vector.signed.doc))).toBe(vector.canonical_doc);
    expect(hex(utf8(`${kind}\n${vector.canonical_doc}`))).toBe(vector.signed_message_hex);
    const sender = await vectorIdentity(V.sender.inputs);
    const signed = await signDoc(kind, vector.signed.doc, sender.seed);
    expect(signed).toEqual(vector.signed);
    expect(hex(b64decode(signed.sig))).toBe(vector.signature_hex);
    expect(text(canonical(signed))).toBe(vector.plaintext);
  });

  it("is sealed to the recipient, then the sender", () => {
    expect(readers(doc)).toEqual(vector.sealed_to);
    const sealed = fromBase64Padded(vector.sealed_b64);
    const stanzas = readAgeHeader(sealed).stanzas;
    expect(stanzas.map((s) => s.type)).toEqual(["X25519", "X25519"]);
  });

  it.each([
    ["recipient", () => V.recipient],
    ["sender", () => V.sender],
  ])("opens with the %s's key to the exact plaintext and verifies", async (_who, pick) => {
    const sealed = fromBase64Padded(vector.sealed_b64);
    const key = pick().derived.age_identity;
    expect(text(await ageDecrypt(sealed, key))).toBe(vector.plaintext);
    const opened = await openManifest(sealed, key);
    expect(opened.doc).toEqual(vector.signed.doc);
    expect(opened.doc.kind).toBe(kind);
    expect(opened.envelope).toEqual(vector.signed);
    const sender = await parseBundle(V.sender.signed_bundle, V.sender.inputs.email);
    await verifyManifest(opened.envelope, sender);
  });

  it("does not verify under another device's key", async () => {
    const { envelope } = await openManifest(fromBase64Padded(vector.sealed_b64), V.recipient.derived.age_identity);
    const recipient = await parseBundle(V.recipient.signed_bundle, V.recipient.inputs.email);
    await refused(verifyManifest(envelope, recipient), SignatureError);
  });

  it("does not open for a third device", async () => {
    const third = await newIdentity("carol@lab.example", "2026-01-01T00:00:00Z");
    await refused(openManifest(fromBase64Padded(vector.sealed_b64), third.ageIdentity), DecryptError);
  });

  it("is sealed by sealManifest as the v2 vector's exact bytes, given its randomness", async () => {
    const sender = await vectorIdentity(V.sender.inputs);
    const sealed = await withRandomness(V.manifest.age_params, () => sealManifest(doc, sender));
    expect(hex(sealed)).toBe(hex(fromBase64Padded(V.manifest.sealed_b64)));
  });

  it("seals with fresh randomness to both readers, as v2 without sha256", async () => {
    const sender = await vectorIdentity(V.sender.inputs);
    const sealed = await sealManifest(doc, sender);
    expect(hex(sealed)).not.toBe(hex(fromBase64Padded(V.manifest.sealed_b64)));
    for (const key of [V.recipient.derived.age_identity, V.sender.derived.age_identity]) {
      expect(text(await ageDecrypt(sealed, key))).toBe(V.manifest.plaintext);
      const opened = await openManifest(sealed, key);
      expect(opened.doc.kind).toBe(MANIFEST_KIND);
      expect(opened.doc.files.map((f) => Object.keys(f).sort())).toEqual(
        doc.files.map(() => ["ciphertext_sha256", "ciphertext_size", "id", "name", "size"]),
      );
      await verifyManifest(opened.envelope, sender.device);
    }
  });
});

describe("manifest versions", () => {
  /** A document signed by the vector's sender under `context`, opened by the recipient. */
  async function signedAs(context: string, doc: Record<string, unknown>): Promise<Signed> {
    const sender = await vectorIdentity(V.sender.inputs);
    const signed = await signDoc(context, doc, sender.seed);
    const sealed = await ageEncrypt(canonical(signed), [V.recipient.derived.age_recipient]);
    return (await openManifest(sealed, V.recipient.derived.age_identity)).envelope;
  }

  it("verifies each version under its own kind only", async () => {
    const sender = await parseBundle(V.sender.signed_bundle, V.sender.inputs.email);
    // The v1 vector's signature on the same document relabelled as v2: under v2's context, it fails.
    const relabelled = { ...V.manifest_v1.signed, doc: { ...V.manifest_v1.signed.doc, kind: MANIFEST_KIND } };
    await refused(verifyManifest(relabelled, sender), SignatureError);
    const v2AsV1 = { ...V.manifest.signed, doc: { ...V.manifest.signed.doc, kind: MANIFEST_V1_KIND } };
    await refused(verifyManifest(v2AsV1, sender), SignatureError);
    await verifyManifest(await signedAs(MANIFEST_V1_KIND, V.manifest_v1.signed.doc), sender);
  });

  it("refuses to verify a document of another kind", async () => {
    const sender = await parseBundle(V.sender.signed_bundle, V.sender.inputs.email);
    const sealer = await vectorIdentity(V.sender.inputs);
    const v3 = { ...V.manifest.signed.doc, kind: "pli/manifest/v3" };
    await refused(verifyManifest(await signDoc("pli/manifest/v3", v3, sealer.seed), sender), SignatureError);
  });
});

describe.each(VERSIONS)("manifest.json: the files of %s", (kind, vector) => {
  const entries = (vector.signed.doc as unknown as ManifestDoc).files;

  it.each(V.files.map((f, i) => [f.id, f, i] as const))(
    "file %s decrypts to its plaintext, and both match the signed entry",
    async (_id, file, index) => {
      const entry = entries[index];
      const ciphertext = fromBase64Padded(file.ciphertext_b64);
      const plaintext = fromBase64Padded(file.plaintext_b64);
      expect(entry?.id).toBe(file.id);
      expect([ciphertext.length, hex(sha256(ciphertext))]).toEqual([
        entry?.ciphertext_size,
        entry?.ciphertext_sha256,
      ]);
      expect(plaintext.length).toBe(entry?.size);
      const digest = kind === MANIFEST_V1_KIND ? hex(sha256(plaintext)) : undefined;
      expect(entry?.sha256).toBe(digest);
      for (const key of [V.recipient.derived.age_identity, V.sender.derived.age_identity]) {
        expect(await ageDecrypt(ciphertext, key)).toEqual(plaintext);
      }
    },
  );
});

describe("manifest.json: the files' ciphertexts", () => {
  it.each(V.files.map((f) => [f.id, f] as const))(
    "file %s is written exactly by age-encryption given its randomness",
    async (_id, file) => {
      const plaintext = fromBase64Padded(file.plaintext_b64);
      const sealed = await withRandomness(file.age_params, () =>
        ageEncrypt(plaintext, V.manifest.sealed_to),
      );
      expect(hex(sealed)).toBe(hex(fromBase64Padded(file.ciphertext_b64)));
    },
  );
});

describe("manifest.json: invalid manifests", () => {
  it("include the cases of the two versions", () => {
    const names = V.invalid_manifests.map((c) => c.name);
    const versions = ["v2_signed_under_v1_context", "v2_file_with_sha256", "v1_file_without_sha256"];
    expect(names).toEqual(expect.arrayContaining(versions));
  });

  it.each(V.invalid_manifests.map((c) => [c.name, c] as const))("refuses %s", async (_n, c) => {
    const expected = errorNamed(c.error);
    const sealed = fromBase64Padded(c.sealed_b64);
    const key = V.recipient.derived.age_identity;
    expect(text(await ageDecrypt(sealed, key))).toBe(c.plaintext);
    const sender = await parseBundle(V.sender.signed_bundle, V.sender.inputs.email);
    await refused(
      (async () => {
        const { envelope } = await openManifest(sealed, key);
        await verifyManifest(envelope, sender);
      })(),
      expected,
    );
  });
});

// --- shape and size ----------------------------------------------------------------------------

type Change = (doc: Record<string, unknown>) => void;

/** A copy of the vector's document `base` (v2's unless told), with `change` applied. */
function altered(change: Change, base: Record<string, unknown> = V.manifest.signed.doc): Record<string, unknown> {
  const doc = JSON.parse(JSON.stringify(base)) as Record<string, unknown>;
  change(doc);
  return doc;
}

function firstFile(doc: Record<string, unknown>): Record<string, unknown> {
  return (doc.files as Record<string, unknown>[])[0] ?? {};
}

/** `doc` refused by the shape check alone, and once signed (under its kind) and sealed. */
async function refusedShape(doc: Record<string, unknown>): Promise<void> {
  await refused(() => checkManifestDoc(doc), SignatureError);
  const sender = await vectorIdentity(V.sender.inputs);
  // Signed when it can be (a float has no canonical form): only the shape check may refuse.
  const signed = await signDoc(String(doc.kind), doc, sender.seed).catch(() => null);
  const plain = signed ? canonical(signed) : utf8(JSON.stringify({ doc, sig: "AAAA" }));
  const sealed = await ageEncrypt(plain, [V.recipient.derived.age_recipient]);
  await refused(openManifest(sealed, V.recipient.derived.age_identity), SignatureError);
}

describe("manifest shape", () => {
  it.each([
    ["an extra member", (d: Record<string, unknown>) => void (d.extra = "")],
    ["a missing member", (d: Record<string, unknown>) => void delete d.message],
    ["another kind", (d: Record<string, unknown>) => void (d.kind = "pli/manifest/v3")],
    ["a kind that is not a string", (d: Record<string, unknown>) => void (d.kind = 2)],
    ["a boolean size", (d: Record<string, unknown>) => void (firstFile(d).size = true)],
    ["a negative size", (d: Record<string, unknown>) => void (firstFile(d).ciphertext_size = -1)],
    ["a fractional size", (d: Record<string, unknown>) => void (firstFile(d).size = 1.5)],
    ["an uppercase digest", (d: Record<string, unknown>) => void (firstFile(d).ciphertext_sha256 = "A".repeat(64))],
    ["a short digest", (d: Record<string, unknown>) => void (firstFile(d).ciphertext_sha256 = "ab")],
    ["a file with a sha256", (d: Record<string, unknown>) => void (firstFile(d).sha256 = "a".repeat(64))],
    ["the v1 kind, without sha256", (d: Record<string, unknown>) => void (d.kind = MANIFEST_V1_KIND)],
    ["a file with an extra member", (d: Record<string, unknown>) => void (firstFile(d).x = "")],
    ["a key with an extra member", (d: Record<string, unknown>) => void ((d.sender as Record<string, unknown>).x = "")],
    ["recipients that are not a list", (d: Record<string, unknown>) => void (d.recipients = {})],
    ["a message that is not a string", (d: Record<string, unknown>) => void (d.message = null)],
  ])("refuses %s with a SignatureError", async (_why, change) => {
    await refusedShape(altered(change));
  });

  it.each([
    ["a file without its sha256", (d: Record<string, unknown>) => void delete firstFile(d).sha256],
    ["an uppercase sha256", (d: Record<string, unknown>) => void (firstFile(d).sha256 = "A".repeat(64))],
    ["a short sha256", (d: Record<string, unknown>) => void (firstFile(d).sha256 = "ab")],
    ["a sha256 that is not a string", (d: Record<string, unknown>) => void (firstFile(d).sha256 = null)],
    ["the v2 kind, with sha256", (d: Record<string, unknown>) => void (d.kind = MANIFEST_KIND)],
  ])("refuses a v1 manifest with %s with a SignatureError", async (_why, change) => {
    await refusedShape(altered(change, V.manifest_v1.signed.doc));
  });

  it("accepts each version's document as it is", () => {
    expect(checkManifestDoc(altered(() => undefined))).toEqual(V.manifest.signed.doc);
    expect(checkManifestDoc(altered(() => undefined, V.manifest_v1.signed.doc))).toEqual(V.manifest_v1.signed.doc);
  });

  it.each([
    ["not JSON", utf8("not json")],
    ["an envelope without its signature", canonical({ doc: V.manifest.signed.doc })],
    ["an envelope with an extra member", canonical({ ...V.manifest.signed, x: 1 })],
    ["a signature that is not a string", canonical({ ...V.manifest.signed, sig: 1 })],
    ["a doc that is a string", canonical({ doc: "x", sig: V.manifest.signed.sig })],
    ["JSON nested without end", utf8("[".repeat(100) + "]".repeat(100))],
  ])("refuses a plaintext that is %s with a SignatureError", async (_why, plain) => {
    const sealed = await ageEncrypt(plain, [V.recipient.derived.age_recipient]);
    await refused(openManifest(sealed, V.recipient.derived.age_identity), SignatureError);
  });

  it("refuses more than 4 MiB before decrypting, and a damaged copy when decrypting", async () => {
    const key = V.recipient.derived.age_identity;
    await refused(openManifest(new Uint8Array(MAX_SEALED_BYTES + 1), key), DecryptError);
    const sealed = fromBase64Padded(V.manifest.sealed_b64);
    const damaged = Uint8Array.from(sealed);
    damaged[damaged.length - 1] = (damaged[damaged.length - 1] ?? 0) ^ 1;
    await refused(openManifest(damaged, key), DecryptError);
    await refused(openManifest(sealed.subarray(0, sealed.length - 1), key), DecryptError);
  });

  it("refuses a valid manifest that is over 4 MiB encrypted", async () => {
    const padded = `${V.manifest.plaintext}${" ".repeat(MAX_SEALED_BYTES)}`; // JSON allows it
    const sealed = await ageEncrypt(utf8(padded), [V.recipient.derived.age_recipient]);
    await refused(openManifest(sealed, V.recipient.derived.age_identity), DecryptError);
  });

  it("refuses to seal a manifest whose sender is not the signing device", async () => {
    const other = await newIdentity("alice@lab.example", "2026-01-01T00:00:00Z");
    await refused(sealManifest(DOC, other), UsageError);
  });

  it("refuses to seal a malformed manifest", async () => {
    const sender = await vectorIdentity(V.sender.inputs);
    const doc = { ...DOC, files: [{ ...DOC.files[0], size: -1 }] } as ManifestDoc;
    await refused(sealManifest(doc, sender), SignatureError);
  });

  it("lists each reader once", () => {
    const doc = { ...DOC, recipients: [DOC.recipients[0], DOC.sender, DOC.recipients[0]] } as ManifestDoc;
    expect(readers(doc)).toEqual([V.recipient.derived.age_recipient, V.sender.derived.age_recipient]);
  });
});

// --- the receiver's other checks ----------------------------------------------------------------

describe("receiver checks", () => {
  it("5: the transfer id", async () => {
    checkTransfer(DOC, "f5d6e0a31356fb2ebf0ba314f6b7de83");
    await refused(() => checkTransfer(DOC, "19d300edf0bc6e8241f06fe829d94392"), IntegrityError);
  });

  it("6: the stated sender", async () => {
    checkSender(DOC, "alice@lab.example");
    await refused(() => checkSender(DOC, "bob@ars.example"), IntegrityError);
  });

  it("9: addressed to this device", async () => {
    checkAddressedTo(DOC, V.recipient.derived.age_recipient);
    checkAddressedTo(DOC, V.sender.derived.age_recipient);
    const third = await newIdentity("carol@lab.example", "2026-01-01T00:00:00Z");
    await refused(() => checkAddressedTo(DOC, third.device.age), IntegrityError);
  });

  it("10: the server's file list", async () => {
    const listed = DOC.files.map((f) => ({ id: f.id, size: f.ciphertext_size, other: 1 }));
    checkFileList(listed, DOC.files);
    await refused(() => checkFileList([...listed].reverse(), DOC.files), IntegrityError);
    await refused(() => checkFileList(listed.slice(1), DOC.files), IntegrityError);
    await refused(() => checkFileList([...listed, listed[0]], DOC.files), IntegrityError);
    const resized = listed.map((f, i) => (i === 0 ? { ...f, size: f.size + 1 } : f));
    await refused(() => checkFileList(resized, DOC.files), IntegrityError);
    await refused(() => checkFileList("files", DOC.files), IntegrityError);
  });

  it("11: the signed expiry", async () => {
    const before = new Date("2026-03-08T08:59:59Z");
    checkNotExpired(DOC.expires, before);
    checkNotExpired("2026-03-08T10:00:00+01:00", new Date("2026-03-08T08:00:00Z"));
    await refused(() => checkNotExpired(DOC.expires, new Date("2026-03-08T09:00:00Z")), GoneError);
    await refused(() => checkNotExpired("2026-03-08T09:00:00", before), IntegrityError);
    await refused(() => checkNotExpired("next week", before), IntegrityError);
  });
});
