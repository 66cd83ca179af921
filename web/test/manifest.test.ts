/**
 * Transfer manifests (docs/spec/manifest.md), held to tests/vectors/manifest.json: canonical
 * bytes, signed message and signature exactly the vector's; the sealed copy opened by both
 * readers; with the vector's file key, ephemeral secrets and nonce fed to age-encryption as
 * its randomness, `sealManifest` writes the vector's sealed bytes exactly; every invalid
 * manifest refused with a SignatureError; and the receiver's other checks.
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

describe("manifest.json: the signed manifest", () => {
  const vector = V.manifest;

  it("has the vector's canonical form, signed message and signature", async () => {
    expect(text(canonical(vector.signed.doc))).toBe(vector.canonical_doc);
    expect(hex(utf8(`pli/manifest/v1\n${vector.canonical_doc}`))).toBe(vector.signed_message_hex);
    const sender = await vectorIdentity(V.sender.inputs);
    const signed = await signDoc(vector.context, vector.signed.doc, sender.seed);
    expect(signed).toEqual(vector.signed);
    expect(hex(b64decode(signed.sig))).toBe(vector.signature_hex);
    expect(text(canonical(signed))).toBe(vector.plaintext);
  });

  it("is sealed to the recipient, then the sender", () => {
    expect(readers(DOC)).toEqual(vector.sealed_to);
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
    const { doc, envelope } = await openManifest(sealed, key);
    expect(doc).toEqual(vector.signed.doc);
    expect(envelope).toEqual(vector.signed);
    const sender = await parseBundle(V.sender.signed_bundle, V.sender.inputs.email);
    await verifyManifest(envelope, sender);
  });

  it("does not open for a third device", async () => {
    const third = await newIdentity("carol@lab.example", "2026-01-01T00:00:00Z");
    await refused(openManifest(fromBase64Padded(vector.sealed_b64), third.ageIdentity), DecryptError);
  });

  it("is sealed by sealManifest to the vector's exact bytes, given its randomness", async () => {
    const sender = await vectorIdentity(V.sender.inputs);
    const sealed = await withRandomness(vector.age_params, () => sealManifest(DOC, sender));
    expect(hex(sealed)).toBe(hex(fromBase64Padded(vector.sealed_b64)));
  });

  it("seals with fresh randomness to both readers, to the same plaintext", async () => {
    const sender = await vectorIdentity(V.sender.inputs);
    const sealed = await sealManifest(DOC, sender);
    expect(hex(sealed)).not.toBe(hex(fromBase64Padded(vector.sealed_b64)));
    for (const key of [V.recipient.derived.age_identity, V.sender.derived.age_identity]) {
      expect(text(await ageDecrypt(sealed, key))).toBe(vector.plaintext);
    }
  });
});

describe("manifest.json: the files", () => {
  const entries = DOC.files;

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
      expect([plaintext.length, hex(sha256(plaintext))]).toEqual([entry?.size, entry?.sha256]);
      for (const key of [V.recipient.derived.age_identity, V.sender.derived.age_identity]) {
        expect(await ageDecrypt(ciphertext, key)).toEqual(plaintext);
      }
    },
  );

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

/** The vector's document with `change` applied to its first file (or itself). */
function altered(change: (doc: Record<string, unknown>) => void): Record<string, unknown> {
  const doc = JSON.parse(JSON.stringify(V.manifest.signed.doc)) as Record<string, unknown>;
  change(doc);
  return doc;
}

function firstFile(doc: Record<string, unknown>): Record<string, unknown> {
  return (doc.files as Record<string, unknown>[])[0] ?? {};
}

describe("manifest shape", () => {
  it.each([
    ["an extra member", (d: Record<string, unknown>) => void (d.extra = "")],
    ["a missing member", (d: Record<string, unknown>) => void delete d.message],
    ["another kind", (d: Record<string, unknown>) => void (d.kind = "pli/manifest/v2")],
    ["a boolean size", (d: Record<string, unknown>) => void (firstFile(d).size = true)],
    ["a negative size", (d: Record<string, unknown>) => void (firstFile(d).ciphertext_size = -1)],
    ["a fractional size", (d: Record<string, unknown>) => void (firstFile(d).size = 1.5)],
    ["an uppercase digest", (d: Record<string, unknown>) => void (firstFile(d).sha256 = "A".repeat(64))],
    ["a short digest", (d: Record<string, unknown>) => void (firstFile(d).sha256 = "ab")],
    ["a file with an extra member", (d: Record<string, unknown>) => void (firstFile(d).x = "")],
    ["a key with an extra member", (d: Record<string, unknown>) => void ((d.sender as Record<string, unknown>).x = "")],
    ["recipients that are not a list", (d: Record<string, unknown>) => void (d.recipients = {})],
    ["a message that is not a string", (d: Record<string, unknown>) => void (d.message = null)],
  ])("refuses %s with a SignatureError", async (_why, change) => {
    const doc = altered(change);
    await refused(() => checkManifestDoc(doc), SignatureError);
    const sender = await vectorIdentity(V.sender.inputs);
    // Signed when it can be (a float has no canonical form): only the shape check may refuse.
    const signed = await signDoc("pli/manifest/v1", doc, sender.seed).catch(() => null);
    const plain = signed ? canonical(signed) : utf8(JSON.stringify({ doc, sig: "AAAA" }));
    const sealed = await ageEncrypt(plain, [V.recipient.derived.age_recipient]);
    await refused(openManifest(sealed, V.recipient.derived.age_identity), SignatureError);
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
