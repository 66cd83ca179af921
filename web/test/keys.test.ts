/**
 * The crypto core's encodings, canonical JSON, signed documents, key bundles and private
 * bundles (docs/spec/keys.md), held to tests/vectors/keys.json: every derived key, canonical
 * byte, signature and fingerprint must be the vector's exactly, and every invalid case must be
 * refused with exactly the stated error class.
 */

import { describe, expect, it } from "vitest";
import { Encrypter } from "age-encryption";
import {
  b64decode,
  b64encode,
  base64Padded,
  base64url,
  bech32Decode,
  bech32Encode,
  fromBase64Padded,
  fromBase64url,
  fromHex,
  hex,
} from "../src/crypto/b64.js";
import { canonical, parseJson } from "../src/crypto/canonical.js";
import { DecryptError, IntegrityError, SignatureError, UsageError } from "../src/crypto/errors.js";
import {
  ageIdentityOf,
  ed25519PublicOf,
  fingerprint,
  isUsableRecipient,
  newIdentity,
  parseAgeIdentity,
  parseAgeRecipient,
  parseBundle,
  passphraseDecrypt,
  passphraseEncrypt,
  readAgeHeader,
  recipientOf,
  sameKeys,
  scryptWorkFactor,
  sealIdentity,
  signDoc,
  unsealIdentity,
  verifyDoc,
  type Signed,
} from "../src/crypto/keys.js";
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
  type SignedParts,
} from "./support.js";

// --- the vector file ---------------------------------------------------------------------------

interface KeysVectors {
  inputs: DeviceInputs;
  derived: {
    age_identity: string;
    age_recipient: string;
    ed25519_public_hex: string;
    ed25519_public: string;
  };
  public_bundle: SignedParts & {
    fingerprint_input: string;
    fingerprint: string;
    stored_form: string;
  };
  private_bundle: {
    kind: string;
    passphrase: string;
    work_factor: number;
    doc: Record<string, string>;
    plaintext: string;
    age_params: AgeParams & { scrypt_salt_hex: string };
    sealed_b64: string;
  };
  invalid_public_bundles: { name: string; signed: unknown; error: string }[];
  invalid_private_bundles: { name: string; passphrase: string; sealed_b64: string; error: string }[];
}

const V = readVectors<KeysVectors>("keys.json");

// --- keys.json ---------------------------------------------------------------------------------

describe("keys.json: derived keys", () => {
  it("derives the age identity and recipient from the X25519 secret", async () => {
    const identity = ageIdentityOf(fromHex(V.inputs.x25519_secret_hex));
    expect(identity).toBe(V.derived.age_identity);
    expect(await recipientOf(identity)).toBe(V.derived.age_recipient);
    expect(hex(parseAgeIdentity(identity) ?? new Uint8Array())).toBe(V.inputs.x25519_secret_hex);
  });

  it("derives the Ed25519 public key from the seed", async () => {
    const pub = await ed25519PublicOf(fromHex(V.inputs.ed25519_seed_hex));
    expect(hex(pub)).toBe(V.derived.ed25519_public_hex);
    expect(b64encode(pub)).toBe(V.derived.ed25519_public);
  });
});

describe("keys.json: public bundle", () => {
  const vector = V.public_bundle;
  const seed = fromHex(V.inputs.ed25519_seed_hex);

  it("has the vector's canonical form and signed message", () => {
    expect(text(canonical(vector.signed.doc))).toBe(vector.canonical_doc);
    const message = utf8(`${vector.context}\n${vector.canonical_doc}`);
    expect(hex(message)).toBe(vector.signed_message_hex);
    expect(text(canonical(vector.signed))).toBe(vector.stored_form);
  });

  it("signs to the vector's exact signature", async () => {
    const signed = await signDoc(vector.context, vector.signed.doc, seed);
    expect(signed).toEqual(vector.signed);
    expect(hex(b64decode(signed.sig))).toBe(vector.signature_hex);
  });

  it("is the bundle the vector's device makes of itself", async () => {
    const identity = await vectorIdentity(V.inputs);
    expect(identity.bundle).toEqual(vector.signed);
    expect(identity.ageIdentity).toBe(V.derived.age_identity);
  });

  it("parses and verifies, naming the vector's device", async () => {
    const device = await parseBundle(vector.signed, V.inputs.email);
    const { kind: _kind, ...rest } = vector.signed.doc;
    expect(device).toEqual(rest);
    expect(await verifyDoc(vector.context, vector.signed, V.derived.ed25519_public)).toEqual(
      vector.signed.doc,
    );
  });

  it("has the vector's fingerprint", async () => {
    const key = { age: V.derived.age_recipient, ed25519: V.derived.ed25519_public };
    expect(vector.fingerprint_input).toBe(`pli/fingerprint/v1\n${key.age}\n${key.ed25519}`);
    expect(await fingerprint(key)).toBe(vector.fingerprint);
    expect(await fingerprint(key)).toBe("7e93 27d9 144b 3e09 3786 a18f ff03 4324");
  });

  it.each(V.invalid_public_bundles.map((c) => [c.name, c] as const))(
    "refuses %s",
    async (_name, invalid) => {
      await refused(parseBundle(invalid.signed), errorNamed(invalid.error));
    },
  );

  it("refuses a bundle for another account than the one asked for", async () => {
    await refused(parseBundle(vector.signed, "mallory@lab.example"), SignatureError);
  });
});

describe("keys.json: private bundle", () => {
  const vector = V.private_bundle;
  const sealed = fromBase64Padded(vector.sealed_b64);

  it("has the vector's canonical plaintext", () => {
    expect(text(canonical(vector.doc))).toBe(vector.plaintext);
    expect(vector.doc.ed25519_seed).toBe(b64encode(fromHex(V.inputs.ed25519_seed_hex)));
  });

  it("is an age file with one scrypt stanza at the vector's salt and work factor", () => {
    const header = readAgeHeader(sealed);
    expect(scryptWorkFactor(header)).toBe(vector.work_factor);
    const salt = b64encode(fromHex(vector.age_params.scrypt_salt_hex));
    const firstLines = text(sealed.subarray(0, header.length)).split("\n").slice(0, 2);
    expect(firstLines).toEqual(["age-encryption.org/v1", `-> scrypt ${salt} 10`]);
  });

  it("decrypts to the exact plaintext", async () => {
    expect(text(await passphraseDecrypt(sealed, vector.passphrase))).toBe(vector.plaintext);
  });

  it("is sealed by sealIdentity to the vector's exact bytes, given its randomness", async () => {
    const identity = await vectorIdentity(V.inputs);
    const again = await withRandomness(vector.age_params, () =>
      sealIdentity(identity, vector.passphrase, vector.work_factor),
    );
    expect(hex(again)).toBe(hex(sealed));
  });

  it("unseals to the vector's device", async () => {
    const identity = await unsealIdentity(sealed, vector.passphrase);
    expect(identity.ageIdentity).toBe(vector.doc.age_identity);
    expect(hex(identity.seed)).toBe(V.inputs.ed25519_seed_hex);
    expect(identity.bundle).toEqual(V.public_bundle.signed);
    expect(identity.device.device).toBe(V.inputs.device);
  });

  it.each(V.invalid_private_bundles.map((c) => [c.name, c] as const))(
    "refuses %s",
    async (_name, invalid) => {
      const file = fromBase64Padded(invalid.sealed_b64);
      await refused(unsealIdentity(file, invalid.passphrase), errorNamed(invalid.error));
    },
  );

  it("refuses work factor 21 from the header text, before any derivation", async () => {
    const invalid = V.invalid_private_bundles.find((c) => c.name === "work_factor_above_limit");
    const file = fromBase64Padded(invalid?.sealed_b64 ?? "");
    expect(scryptWorkFactor(readAgeHeader(file))).toBe(21);
    const started = Date.now();
    const error = await refused(passphraseDecrypt(file, V.private_bundle.passphrase), DecryptError);
    expect(error.message).toMatch(/work factor/);
    expect(Date.now() - started).toBeLessThan(1000); // 2^21 would take far longer, and 2 GiB
  });
});

// --- encodings ---------------------------------------------------------------------------------

describe("b64 (age's base64)", () => {
  it("round-trips every length", () => {
    for (let n = 0; n < 40; n++) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff);
      expect(b64decode(b64encode(bytes))).toEqual(bytes);
      expect(b64encode(bytes)).not.toMatch(/=/);
    }
  });

  it("writes the standard alphabet without padding", () => {
    expect(b64encode(utf8("\xfb\xff"))).toBe("w7vDvw");
    expect(b64encode(Uint8Array.of(0xfb, 0xff, 0xbf))).toBe("+/+/");
  });

  it.each([
    ["padding", "AA=="],
    ["a length of 1 mod 4", "AAAAA"],
    ["non-canonical trailing bits", "AB"],
    ["base64url characters", "-_-_"],
    ["whitespace", "AAAA AAAA"],
    ["a non-ASCII character", "AAA\u00e9"],
  ])("refuses %s with a SignatureError", async (_why, input) => {
    await refused(() => b64decode(input), SignatureError);
  });
});

describe("padded base64 and base64url", () => {
  it("round-trip", () => {
    for (let n = 0; n < 20; n++) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 91 + 7) & 0xff);
      expect(fromBase64Padded(base64Padded(bytes))).toEqual(bytes);
      expect(base64Padded(bytes).length % 4).toBe(0);
      if (n > 0) expect(fromBase64url(base64url(bytes))).toEqual(bytes);
    }
  });

  it.each(["AA", "AA=", "AB==", "A===", "AA==AA==", "-_8=", "AA\n=="])(
    "padded base64 refuses %j with an IntegrityError",
    async (input) => {
      await refused(() => fromBase64Padded(input), IntegrityError);
    },
  );

  it.each(["", "AA==", "+/8", "AB", "AAAAA", "AA AA"])(
    "base64url refuses %j with an IntegrityError",
    async (input) => {
      await refused(() => fromBase64url(input), IntegrityError);
    },
  );

  it("writes lowercase hex and reads it back", () => {
    expect(hex(Uint8Array.of(0, 15, 16, 255))).toBe("000f10ff");
    expect(fromHex("000f10ff")).toEqual(Uint8Array.of(0, 15, 16, 255));
  });
});

describe("Bech32 and age keys", () => {
  it("reads and writes the vector's keys", () => {
    const decoded = bech32Decode(V.derived.age_recipient);
    expect(decoded?.hrp).toBe("age");
    expect(bech32Encode("age", decoded?.data ?? new Uint8Array())).toBe(V.derived.age_recipient);
    expect(parseAgeRecipient(V.derived.age_recipient)).not.toBeNull();
  });

  it("refuses a changed character, mixed case, the wrong case and the wrong kind", () => {
    const identity = V.derived.age_identity;
    const changed = identity.slice(0, 30) + (identity[30] === "Q" ? "P" : "Q") + identity.slice(31);
    expect(parseAgeIdentity(changed)).toBeNull();
    expect(parseAgeIdentity(identity.toLowerCase())).toBeNull();
    expect(parseAgeIdentity(identity.slice(0, 20) + identity.slice(20).toLowerCase())).toBeNull();
    expect(parseAgeIdentity(V.derived.age_recipient)).toBeNull();
    expect(parseAgeRecipient(V.derived.age_recipient.toUpperCase())).toBeNull();
    expect(parseAgeRecipient(identity)).toBeNull();
    expect(bech32Decode(`${V.derived.age_recipient}q`)).toBeNull();
    const long = bech32Encode("age", new Uint8Array(60)); // valid checksum, but 104 characters
    expect(long.length).toBeGreaterThan(90);
    expect(bech32Decode(long)).toBeNull();
    expect(bech32Decode(bech32Encode("a ge", new Uint8Array(32)))).toBeNull();
  });

  it("refuses a small-order recipient", async () => {
    const zero = bech32Encode("age", new Uint8Array(32));
    expect(parseAgeRecipient(zero)).not.toBeNull(); // well-formed, but
    expect(await isUsableRecipient(zero)).toBe(false); // unusable: an all-zero shared secret
    expect(await isUsableRecipient(V.derived.age_recipient)).toBe(true);
  });
});

// --- canonical JSON ----------------------------------------------------------------------------

describe("canonical JSON", () => {
  it("sorts members, writes no whitespace and escapes exactly as pli's Python does", () => {
    const value = {
      b: 1,
      a: [true, null, 'x/\x7f\u00e9\u{1f9ea}"\\\b\t\n\f\r\x01\x1f\u2028'],
      A: { z: -5, y: 0, x: 2 ** 53 },
      _: "",
      "~": [],
    };
    const expected =
      "7b2241223a7b2278223a393030373139393235343734303939322c2279223a302c227a223a2d357d2c225f" +
      "223a22222c2261223a5b747275652c6e756c6c2c22782f7fc3a9f09fa7aa5c225c5c5c625c745c6e5c665c" +
      "725c75303030315c7530303166e280a8225d2c2262223a312c227e223a5b5d7d";
    expect(hex(canonical(value))).toBe(expected);
  });

  it("writes -0 as 0 and keeps 2^53", () => {
    expect(text(canonical([-0, -(2 ** 53), 2 ** 53]))).toBe("[0,-9007199254740992,9007199254740992]");
  });

  it.each([
    ["a float", { n: 1.5 }],
    ["NaN", { n: Number.NaN }],
    ["an infinity", { n: Number.POSITIVE_INFINITY }],
    ["an integer beyond 2^53", { n: 2 ** 53 + 2 }],
    ["an unpaired high surrogate", { s: "a\ud800" }],
    ["an unpaired low surrogate", { s: "\udc00b" }],
    ["a non-ASCII member name", { "é": 1 }],
    ["undefined", { u: undefined }],
    ["a Date", { d: new Date(0) }],
    ["a bigint", { b: BigInt(1) }],
  ])("refuses %s with a SignatureError", async (_why, value) => {
    await refused(() => canonical(value), SignatureError);
  });
});

describe("parseJson", () => {
  it("reads what canonical writes, strings holding brackets and escapes included", () => {
    const value = { a: '{["\\]}', b: [1, { c: "\u00e9\u{1f9ea}" }], "c\"d": -0 };
    expect(parseJson(canonical(value))).toEqual({ ...value, "c\"d": 0 });
  });

  it("accepts 2^53 and nesting up to the limit", () => {
    expect(parseJson(utf8("[9007199254740992,-9007199254740992]"))).toEqual([2 ** 53, -(2 ** 53)]);
    expect(parseJson(utf8("[[[1]]]"), 3)).toEqual([[[1]]]);
  });

  it.each([
    ["invalid UTF-8", Uint8Array.of(0x22, 0xff, 0x22)],
    ["a byte order mark", utf8("\ufeff{}")],
    ["not JSON", utf8("{a:1}")],
    ["trailing text", utf8("{} x")],
    ["a duplicate member name", utf8('{"a":1,"a":2}')],
    ["a duplicate name spelled with an escape", utf8('{"a":1,"\\u0061":2}')],
    ["a fraction", utf8('{"size":1.0}')],
    ["an exponent", utf8('{"size":1e3}')],
    ["an integer beyond 2^53", utf8("[9007199254740993]")],
    ["nesting deeper than the limit", utf8(`${"[".repeat(40)}${"]".repeat(40)}`)],
  ])("refuses %s with a SignatureError", async (_why, bytes) => {
    await refused(() => parseJson(bytes), SignatureError);
  });

  it("keeps duplicate names apart across objects", () => {
    expect(parseJson(utf8('{"a":{"a":1},"b":[{"a":2},{"a":3}]}'))).toEqual({
      a: { a: 1 },
      b: [{ a: 2 }, { a: 3 }],
    });
  });

  it("survives hostile nesting without exhausting the stack", async () => {
    await refused(() => parseJson(utf8("[".repeat(200000) + "]".repeat(200000))), SignatureError);
  });
});

// --- signed documents --------------------------------------------------------------------------

describe("signed documents", () => {
  const seed = fromHex(V.inputs.ed25519_seed_hex);
  const key = V.derived.ed25519_public;
  const doc = { kind: "pli/test/v1", n: 1, s: "x" };

  it("round-trip, and a signature for one context verifies as no other", async () => {
    const signed = await signDoc("pli/test/v1", doc, seed);
    expect(await verifyDoc("pli/test/v1", signed, key)).toEqual(doc);
    await refused(verifyDoc("pli/other/v1", signed, key), SignatureError);
  });

  it("refuses a doc that does not name its own kind", async () => {
    await refused(signDoc("pli/other/v1", doc, seed), SignatureError);
    // Validly signed for pli/test/v1, but the doc says it is another kind: refused all the same.
    const other = { ...doc, kind: "pli/other/v1" };
    const pkcs8 = new Uint8Array([...fromHex("302e020100300506032b657004220420"), ...seed]);
    const privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, "Ed25519", false, ["sign"]);
    const message = new Uint8Array([...utf8("pli/test/v1\n"), ...canonical(other)]);
    const sig = new Uint8Array(await crypto.subtle.sign("Ed25519", privateKey, message));
    await refused(verifyDoc("pli/test/v1", { doc: other, sig: b64encode(sig) }, key), SignatureError);
  });

  it.each([
    ["an extra envelope member", (s: Signed) => ({ ...s, extra: 1 })],
    ["a missing signature", (s: Signed) => ({ doc: s.doc })],
    ["a padded signature", (s: Signed) => ({ ...s, sig: `${s.sig}==` })],
    ["a short signature", (s: Signed) => ({ ...s, sig: b64encode(b64decode(s.sig).slice(1)) })],
    ["a doc changed after signing", (s: Signed) => ({ ...s, doc: { ...s.doc, n: 2 } })],
    ["a doc that is an array", (s: Signed) => ({ ...s, doc: [s.doc] })],
    ["an envelope that is an array", (s: Signed) => [s.doc, s.sig]],
  ])("refuses %s", async (_why, alter) => {
    const signed = await signDoc("pli/test/v1", doc, seed);
    await refused(verifyDoc("pli/test/v1", alter(signed), key), SignatureError);
  });

  it("refuses a malformed or wrong key", async () => {
    const signed = await signDoc("pli/test/v1", doc, seed);
    await refused(verifyDoc("pli/test/v1", signed, `${key}=`), SignatureError);
    await refused(verifyDoc("pli/test/v1", signed, b64encode(new Uint8Array(31))), SignatureError);
    const other = b64encode(await ed25519PublicOf(new Uint8Array(32).fill(1)));
    await refused(verifyDoc("pli/test/v1", signed, other), SignatureError);
  });
});

// --- bundles and identities --------------------------------------------------------------------

describe("public bundles", () => {
  const seed = fromHex(V.inputs.ed25519_seed_hex);
  const good = V.public_bundle.signed.doc;

  /** A bundle with `change` applied, validly self-signed: only the shape checks can refuse it. */
  async function resigned(change: Record<string, unknown>) {
    return signDoc("pli/key-bundle/v1", { ...good, ...change }, seed);
  }

  it.each([
    ["an uppercase device id", { device: String(good.device).toUpperCase() }],
    ["a short device id", { device: "db6291d8" }],
    ["an email of 255 characters", { email: `${"a".repeat(243)}@lab.example` }],
    ["a small-order age key", { age: bech32Encode("age", new Uint8Array(32)) }],
    ["an age identity instead of a recipient", { age: V.derived.age_identity }],
    ["a member that is not a string", { created: 1 }],
    ["an extra member", { extra: "x" }],
  ])("refuses %s with a SignatureError", async (_why, change) => {
    await refused(parseBundle(await resigned(change)), SignatureError);
  });

  it("accepts an email of 254 characters", async () => {
    const email = `${"a".repeat(242)}@lab.example`;
    expect((await parseBundle(await resigned({ email }))).email).toBe(email);
  });

  it("compares keys, never emails or times", () => {
    const a = { email: "a@x", device: "d", age: "age1x", ed25519: "k" };
    expect(sameKeys(a, { ...a, email: "b@x" })).toBe(true);
    expect(sameKeys(a, { ...a, device: "e" })).toBe(false);
    expect(sameKeys(a, { ...a, age: "age1y" })).toBe(false);
    expect(sameKeys(a, { ...a, ed25519: "l" })).toBe(false);
  });
});

describe("device identities", () => {
  it("makes a new device with a self-signed bundle", async () => {
    const identity = await newIdentity("bob@lab.example", "2026-04-01T12:00:00Z");
    expect(identity.device.device).toMatch(/^[0-9a-f]{32}$/);
    expect(await parseBundle(identity.bundle, "bob@lab.example")).toEqual(identity.device);
    expect(await recipientOf(identity.ageIdentity)).toBe(identity.device.age);
    expect(b64encode(await ed25519PublicOf(identity.seed))).toBe(identity.device.ed25519);
    const other = await newIdentity("bob@lab.example", "2026-04-01T12:00:00Z");
    expect(sameKeys(identity.device, other.device)).toBe(false);
  });

  it("seals and unseals, and refuses another passphrase", async () => {
    const identity = await newIdentity("bob@lab.example", "2026-04-01T12:00:00Z");
    const sealed = await sealIdentity(identity, "é 🧪 a passphrase", 10);
    expect(scryptWorkFactor(readAgeHeader(sealed))).toBe(10);
    const back = await unsealIdentity(sealed, "é 🧪 a passphrase");
    expect(back.device).toEqual(identity.device);
    expect(back.bundle).toEqual(identity.bundle);
    expect(back.seed).toEqual(identity.seed);
    await refused(unsealIdentity(sealed, "e 🧪 a passphrase"), DecryptError);
  });

  it("never reads a passphrase with an unpaired surrogate as its UTF-8 replacement", async () => {
    const identity = await newIdentity("bob@lab.example", "2026-04-01T12:00:00Z");
    await refused(sealIdentity(identity, "pw\ud800", 10), UsageError);
    const sealed = await sealIdentity(identity, "pw\ufffd", 10); // what TextEncoder makes of it
    await refused(unsealIdentity(sealed, "pw\ud800"), DecryptError);
    expect((await unsealIdentity(sealed, "pw\ufffd")).device).toEqual(identity.device);
  });

  it("seals at work factor 18 by default", async () => {
    const identity = await newIdentity("bob@lab.example", "2026-04-01T12:00:00Z");
    const sealed = await sealIdentity(identity, "a passphrase");
    expect(scryptWorkFactor(readAgeHeader(sealed))).toBe(18);
  }, 60_000);

  it.each([0, 21, 10.5])("refuses to seal at work factor %s", async (work) => {
    const identity = await newIdentity("bob@lab.example", "2026-04-01T12:00:00Z");
    await refused(sealIdentity(identity, "a passphrase", work), UsageError);
  });

  it("refuses an empty passphrase", async () => {
    const identity = await newIdentity("bob@lab.example", "2026-04-01T12:00:00Z");
    await refused(sealIdentity(identity, "", 10), UsageError);
  });

  it("refuses a passphrase file whose plaintext is not a private bundle", async () => {
    const notABundle = await passphraseEncrypt(utf8('{"kind":"pli/private-bundle/v1"}'), "pw", 10);
    await refused(unsealIdentity(notABundle, "pw"), DecryptError);
    const notJson = await passphraseEncrypt(utf8("hello"), "pw", 10);
    await refused(unsealIdentity(notJson, "pw"), DecryptError);
  });

  it("refuses a file encrypted to a key, or with a scrypt stanza beside another", async () => {
    const toKey = new Encrypter();
    toKey.addRecipient(V.derived.age_recipient);
    await refused(unsealIdentity(await toKey.encrypt(utf8("x")), "pw"), DecryptError);
    const sealed = await passphraseEncrypt(utf8("x"), "pw", 10);
    const header = text(sealed.subarray(0, readAgeHeader(sealed).length));
    const lines = header.split("\n");
    const extra = ["-> X25519 AAAA", b64encode(new Uint8Array(32))];
    const twoStanzas = [...lines.slice(0, 3), ...extra, ...lines.slice(3)].join("\n");
    const doubled = new Uint8Array([...utf8(twoStanzas), ...sealed.subarray(header.length)]);
    expect(readAgeHeader(doubled).stanzas).toHaveLength(2);
    await refused(() => scryptWorkFactor(readAgeHeader(doubled)), DecryptError);
    await refused(unsealIdentity(doubled, "pw"), DecryptError);
  });

  it.each([
    ["no stanza", "age-encryption.org/v1\n--- "],
    ["another version", "age-encryption.org/v2\n-> scrypt AAAAAAAAAAAAAAAAAAAAAA 10\nAA\n--- "],
    ["an empty argument", "age-encryption.org/v1\n-> scrypt  10\nAA\n--- "],
    ["a body line over 64 columns", `age-encryption.org/v1\n-> X\n${"A".repeat(68)}\nAA\n--- `],
    ["a body in padded base64", "age-encryption.org/v1\n-> X\nAA==\n--- "],
    ["a short MAC", "age-encryption.org/v1\n-> X\nAA\n--- AAAA\n"],
    ["a non-ASCII argument", "age-encryption.org/v1\n-> X é\nAA\n--- "],
  ])("reads no header from one with %s", async (_why, header) => {
    const mac = b64encode(new Uint8Array(32));
    const file = utf8(header.endsWith("--- ") ? `${header}${mac}\npayload` : header);
    await refused(() => readAgeHeader(file), DecryptError);
  });

  it("reads a header's stanzas, arguments and bodies", () => {
    const body = b64encode(new Uint8Array(48).fill(7)); // exactly 64 columns: an empty line ends it
    const mac = b64encode(new Uint8Array(32));
    const header = `age-encryption.org/v1\n-> a b c\n${body}\n\n-> d\nAA\n--- ${mac}\n`;
    const parsed = readAgeHeader(utf8(`${header}payload`));
    expect(parsed.length).toBe(header.length);
    expect(parsed.stanzas.map((s) => [s.type, s.args, s.body.length])).toEqual([
      ["a", ["b", "c"], 48],
      ["d", [], 1],
    ]);
  });

  it("refuses a truncated or garbled file", async () => {
    const sealed = await passphraseEncrypt(utf8("x"), "pw", 10);
    await refused(unsealIdentity(sealed.subarray(0, 40), "pw"), DecryptError);
    await refused(unsealIdentity(sealed.subarray(0, sealed.length - 1), "pw"), DecryptError);
    await refused(unsealIdentity(utf8("not an age file\n--- x\n"), "pw"), DecryptError);
  });
});
