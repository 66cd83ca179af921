/**
 * Share links and file requests (docs/spec/links.md), held to tests/vectors/links/vectors.json:
 * every derived value, canonical form, signature and MAC reproduced; every sealed copy opened
 * to its stated plaintext, and written again byte for byte when age-encryption is handed the
 * vector's randomness; every invalid case refused with exactly the stated error class.
 */

import { describe, expect, it } from "vitest";
import { sha256 } from "@noble/hashes/sha2.js";
import { b64decode, b64encode, base64url, bech32Encode } from "../src/crypto/b64.js";
import { fromBase64Padded, fromBase64url, fromHex, hex } from "../src/crypto/b64.js";
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
  ageIdentityOf,
  fingerprint,
  newIdentity,
  parseBundle,
  passphraseEncrypt,
  publicKey,
  readAgeHeader,
  recipientOf,
  scryptWorkFactor,
  signDoc,
  type Signed,
} from "../src/crypto/keys.js";
import {
  MANIFEST_KIND,
  MANIFEST_V1_KIND,
  checkFileList,
  checkNotExpired,
  sealManifest,
  type ManifestDoc,
} from "../src/crypto/manifest.js";
import {
  LINK_GONE,
  answerMac,
  answerMacKey,
  documentIdentity,
  linkFragment,
  linkRecipientEntry,
  newLinkIdentity,
  newRequestKeys,
  openAnswer,
  openLinkFragment,
  openLinkManifest,
  openRequestDocument,
  openRequestKey,
  parseLinkFragment,
  parseRequestFragment,
  requestFragment,
  requestFragmentText,
  sealAnswer,
  sealRequestDocument,
  sealRequestKey,
  senderToken,
  splitUrl,
  type AnswerDoc,
  type RequestKeys,
} from "../src/crypto/links.js";
import {
  errorNamed,
  readVectors,
  refused,
  text,
  utf8,
  vectorIdentity,
  webHkdf,
  withRandomness,
  type AgeParams,
  type DeviceInputs,
  type SealedParts,
  type SealedSignedParts,
} from "./support.js";

// --- the vector file ---------------------------------------------------------------------------

interface Sealed {
  name: string;
  plaintext: string;
  sealed_b64: string;
  error: string;
}
interface LinkVectors {
  link: {
    id: string;
    x25519_secret_hex: string;
    identity: string;
    recipient: string;
    fragment: string;
    url: string;
    recipient_entry: Record<string, string>;
    file: { plaintext_b64: string; sealed_b64: string; age_params: AgeParams };
  };
  wrapped_link: {
    passphrase: string;
    work_factor: number;
    plaintext: string;
    age_params: AgeParams;
    wrapped_b64: string;
    fragment: string;
    url: string;
    opens_to_identity: string;
    opens_to_recipient: string;
  };
  invalid_link_fragments: {
    name: string;
    fragment: string;
    passphrase: string | null;
    stage: "parse" | "open";
    error: string;
  }[];
  requester: DeviceInputs & { signed_bundle: Signed };
  request: {
    id: string;
    secret_hex: string;
    x25519_secret_hex: string;
    identity: string;
    recipient: string;
    fragment: string;
    url: string;
    document_info: string;
    document_x25519_secret_hex: string;
    document_identity: string;
    document_recipient: string;
    answer_info: string;
    answer_mac_key_hex: string;
    sender_info: string;
    sender_token: string;
  };
  invalid_request_fragments: { name: string; fragment: string; error: string }[];
  request_document: SealedSignedParts & {
    requester_fingerprint: string;
    invalid_in_context: { name: string; request_id: string; fragment: string; error: string }[];
    invalid_documents: Sealed[];
  };
  request_key: SealedSignedParts & {
    invalid_request_keys: Sealed[];
  };
  answer: SealedParts & {
    transfer: string;
    doc: Record<string, unknown>;
    canonical_doc: string;
    mac_message_hex: string;
    mac_hex: string;
    envelope: { doc: Record<string, unknown>; mac: string };
    file: { plaintext_b64: string; ciphertext_b64: string; age_params: AgeParams };
    invalid_answers: Sealed[];
  };
}

const V = readVectors<LinkVectors>("links/vectors.json");
const REQUEST_ID = V.request.id;
const TRANSFER_ID = V.answer.transfer;
const REQUEST_KEYS: RequestKeys = {
  identity: V.request.identity,
  secret: fromHex(V.request.secret_hex),
};

/** The requester of the vectors (the device of keys.json), rebuilt from its secrets. */
const requester = () => vectorIdentity(V.requester);

// --- share links -------------------------------------------------------------------------------

describe("vectors: plain link", () => {
  const vector = V.link;

  it("the fragment is the link's identity", async () => {
    expect(ageIdentityOf(fromHex(vector.x25519_secret_hex))).toBe(vector.identity);
    expect(vector.fragment).toBe(vector.identity);
    expect(await recipientOf(vector.identity)).toBe(vector.recipient);
    expect(await linkFragment(vector.identity)).toBe(vector.fragment);
    const parsed = parseLinkFragment(vector.fragment);
    expect(parsed).toEqual({ kind: "plain", identity: vector.identity });
    expect(await openLinkFragment(parsed)).toBe(vector.identity);
    expect(await openLinkFragment(parsed, "ignored without a wrapping")).toBe(vector.identity);
    expect(linkRecipientEntry(vector.recipient)).toEqual(vector.recipient_entry);
  });

  it("the URL splits into server, id and fragment", () => {
    expect(splitUrl(vector.url, "l")).toEqual({
      base: "https://pli.example.org",
      id: vector.id,
      fragment: vector.fragment,
    });
  });

  it("the link's file opens with the fragment, and is written again exactly", async () => {
    const sealed = fromBase64Padded(vector.file.sealed_b64);
    const plain = fromBase64Padded(vector.file.plaintext_b64);
    expect(await ageDecrypt(sealed, vector.fragment)).toEqual(plain);
    const again = await withRandomness(vector.file.age_params, () =>
      ageEncrypt(plain, [vector.recipient]),
    );
    expect(hex(again)).toBe(hex(sealed));
  });
});

describe("vectors: wrapped link", () => {
  const vector = V.wrapped_link;
  const wrapped = fromBase64Padded(vector.wrapped_b64);

  it("is p1. and the base64url of an age file with one scrypt stanza at work factor 10", () => {
    expect(vector.fragment).toBe(`p1.${base64url(wrapped)}`);
    const salt = b64encode(fromHex(vector.age_params.scrypt_salt_hex ?? ""));
    const header = readAgeHeader(wrapped);
    const lines = text(wrapped.subarray(0, header.length)).split("\n");
    expect(lines.slice(0, 2)).toEqual(["age-encryption.org/v1", `-> scrypt ${salt} 10`]);
    expect(lines[3]).toMatch(/^--- /);
    expect(scryptWorkFactor(header)).toBe(vector.work_factor);
    expect(wrapped.length - header.length).toBe(106);
    expect(wrapped.length).toBe(256);
    expect(vector.fragment).toHaveLength(345);
  });

  it("parses, and opens with the passphrase to the identity of the plain link", async () => {
    const parsed = parseLinkFragment(vector.fragment);
    expect(parsed).toEqual({ kind: "wrapped", wrapped });
    const identity = await openLinkFragment(parsed, vector.passphrase);
    expect(identity).toBe(vector.opens_to_identity);
    expect(identity).toBe(V.link.identity);
    expect(vector.plaintext).toBe(V.link.identity);
    expect(await recipientOf(identity)).toBe(vector.opens_to_recipient);
    expect(splitUrl(vector.url, "l").fragment).toBe(vector.fragment);
  });

  it("is written again exactly by linkFragment, given its randomness", async () => {
    const again = await withRandomness(vector.age_params, () =>
      linkFragment(V.link.identity, vector.passphrase, vector.work_factor),
    );
    expect(again).toBe(vector.fragment);
  });
});

describe("vectors: invalid link fragments", () => {
  it.each(V.invalid_link_fragments.map((c) => [c.name, c] as const))(
    "refuses %s",
    async (_name, invalid) => {
      const expected = errorNamed(invalid.error);
      if (invalid.stage === "parse") {
        await refused(() => parseLinkFragment(invalid.fragment), expected);
        return;
      }
      const parsed = parseLinkFragment(invalid.fragment);
      expect(parsed.kind).toBe("wrapped");
      await refused(openLinkFragment(parsed, invalid.passphrase ?? undefined), expected);
    },
  );
});

describe("link fragments", () => {
  it("round-trip with and without a passphrase", async () => {
    const identity = await newLinkIdentity();
    expect(await linkFragment(identity)).toBe(identity);
    for (const passphrase of ["a link passphrase", "é 🧪 ünïcode", " spaces "]) {
      const fragment = await linkFragment(identity, passphrase, 10);
      expect(fragment).toMatch(/^p1\.[A-Za-z0-9_-]+$/);
      expect(fragment).not.toContain(identity);
      expect(await openLinkFragment(parseLinkFragment(fragment), passphrase)).toBe(identity);
    }
  });

  it("wraps at work factor 18 by default", async () => {
    const fragment = await linkFragment(await newLinkIdentity(), "pw");
    const parsed = parseLinkFragment(fragment);
    expect(parsed.kind === "wrapped" && scryptWorkFactor(readAgeHeader(parsed.wrapped))).toBe(18);
  }, 60_000);

  it("refuses work factor 21 before deriving anything", async () => {
    const wrapped = fromBase64Padded(V.wrapped_link.wrapped_b64);
    const edited = utf8(text(wrapped.subarray(0, 60)).replace(" 10\n", " 21\n"));
    const bumped = new Uint8Array([...edited, ...wrapped.subarray(60)]);
    const parsed = parseLinkFragment(`p1.${base64url(bumped)}`);
    expect(parsed.kind === "wrapped" && scryptWorkFactor(readAgeHeader(parsed.wrapped))).toBe(21);
    const started = Date.now();
    await refused(openLinkFragment(parsed, V.wrapped_link.passphrase), DecryptError);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it("asks for a passphrase, never an empty one", async () => {
    const parsed = parseLinkFragment(V.wrapped_link.fragment);
    await refused(openLinkFragment(parsed), UsageError);
    await refused(openLinkFragment(parsed, ""), UsageError);
    await refused(linkFragment(V.link.identity, ""), UsageError);
    await refused(linkFragment(V.link.identity, "pw", 21), UsageError);
    await refused(linkFragment(V.link.recipient, "pw", 10), UsageError);
  });

  it("refuses a wrapping whose plaintext is not an identity", async () => {
    const notAnIdentity = await passphraseEncrypt(utf8("A".repeat(74)), "pw", 10);
    const parsed = parseLinkFragment(`p1.${base64url(notAnIdentity)}`);
    await refused(openLinkFragment(parsed, "pw"), IntegrityError);
  });

  it("refuses a wrapping with a scrypt stanza beside another, or of another length", async () => {
    const wrapped = fromBase64Padded(V.wrapped_link.wrapped_b64);
    await refused(() => parseLinkFragment(`p1.${base64url(wrapped.subarray(0, 255))}`), IntegrityError);
    const longer = new Uint8Array([...wrapped, 0]);
    await refused(() => parseLinkFragment(`p1.${base64url(longer)}`), IntegrityError);
    const lines = text(wrapped.subarray(0, readAgeHeader(wrapped).length)).split("\n");
    const extra = ["-> X25519 AAAA", b64encode(new Uint8Array(32))];
    const header = utf8([lines[0], ...extra, ...lines.slice(1)].join("\n"));
    const doubled = new Uint8Array([...header, ...wrapped.subarray(readAgeHeader(wrapped).length)]);
    await refused(() => parseLinkFragment(`p1.${base64url(doubled)}`), IntegrityError);
  });
});

describe("URLs", () => {
  const id = V.link.id;

  it.each([
    [`https://h.example/pli/l/${id}#x`, "https://h.example/pli", "x"],
    [`https://h.example/l/${id}/#x`, "https://h.example", "x"],
    [`  https://h.example:8443/l/${id}  `, "https://h.example:8443", ""],
    [`http://localhost:8080/l/${id}#x`, "http://localhost:8080", "x"],
    [`http://127.0.0.1/l/${id}#x`, "http://127.0.0.1", "x"],
    [`http://[::1]/l/${id}#x`, "http://[::1]", "x"],
  ])("splits %s", (url, base, fragment) => {
    expect(splitUrl(url, "l")).toEqual({ base, id, fragment });
  });

  it.each([
    [`https://h.example/r/${id}#x`, "another kind"],
    [`https://h.example/l/${id}?a=1#x`, "a query string"],
    [`https://h.example/l/short#x`, "a short id"],
    [`https://h.example/l/${id}/more#x`, "more path"],
    [`https://h.example/l/${id.slice(0, 30)}.!#x`, "characters outside the id's"],
    [`http://h.example/l/${id}#x`, "plain http to another host"],
    [`ftp://h.example/l/${id}#x`, "another scheme"],
    ["not a url", "not a URL"],
  ])("refuses %s (%s)", async (url) => {
    await refused(() => splitUrl(url, "l"), UsageError);
  });

  it("allows plain http to another host only when asked", () => {
    expect(splitUrl(`http://h.example/l/${id}#x`, "l", { allowHttp: true }).base).toBe(
      "http://h.example",
    );
  });

  it("splits the request vector's URL", () => {
    expect(splitUrl(V.request.url, "r")).toEqual({
      base: "https://pli.example.org",
      id: V.request.id,
      fragment: V.request.fragment,
    });
  });
});

describe("a link's manifest (getter steps 8–14)", () => {
  const linkId = V.link.id;

  const file = {
    id: "3d5ca776dd3693459326b07ddc0a46f8",
    name: "a.txt",
    size: 1,
    ciphertext_size: 201,
    ciphertext_sha256: "b".repeat(64),
  };

  async function linkManifest(change: Partial<ManifestDoc> = {}) {
    const me = await requester();
    const doc: ManifestDoc = {
      kind: MANIFEST_KIND,
      transfer: linkId,
      sender: publicKey(me.device),
      recipients: [linkRecipientEntry(V.link.recipient)],
      files: [file],
      created: "2026-03-01T09:00:00Z",
      expires: "2026-03-08T09:00:00Z",
      message: "",
      ...change,
    };
    return { me, doc, sealed: await sealManifest(doc, me) };
  }

  it("opens and verifies with the link's identity", async () => {
    const { doc, sealed } = await linkManifest();
    const opened = await openLinkManifest(sealed, linkId, V.link.identity);
    expect(opened.doc).toEqual(doc);
    checkFileList([{ id: doc.files[0]?.id, size: 201 }], opened.doc.files);
    checkNotExpired(opened.doc.expires, new Date("2026-03-02T00:00:00Z"), LINK_GONE);
    const gone = await refused(
      () => checkNotExpired(opened.doc.expires, new Date("2026-03-09T00:00:00Z"), LINK_GONE),
      GoneError,
    );
    expect(gone.message).toBe(LINK_GONE);
  });

  it("refuses another link's identity, id or recipients, and a forged signature", async () => {
    const { me, doc, sealed } = await linkManifest();
    const other = await newLinkIdentity();
    await refused(openLinkManifest(sealed, linkId, other), IntegrityError);
    await refused(openLinkManifest(sealed, "42f7597312ac7e9e726a159d380a7d39", V.link.identity), IntegrityError);
    // Encrypted to the link, but signed for recipients that do not name it.
    const elsewhere = { ...doc, recipients: [linkRecipientEntry(await recipientOf(other))] };
    const signed = await signDoc(MANIFEST_KIND, { ...elsewhere, sender: doc.sender }, me.seed);
    const misdirected = await ageEncrypt(canonical(signed), [V.link.recipient]);
    await refused(openLinkManifest(misdirected, linkId, V.link.identity), IntegrityError);
    const forged = { ...signed, doc: { ...signed.doc, recipients: doc.recipients } };
    const altered = await ageEncrypt(canonical(forged), [V.link.recipient]);
    await refused(openLinkManifest(altered, linkId, V.link.identity), SignatureError);
  });

  it("writes v2, whose files have no sha256, even from a v1 document", async () => {
    const v1File = { ...file, sha256: "a".repeat(64) };
    const { doc, sealed } = await linkManifest({ kind: MANIFEST_V1_KIND, files: [v1File] });
    const opened = await openLinkManifest(sealed, linkId, V.link.identity);
    expect(opened.doc).toEqual({ ...doc, kind: MANIFEST_KIND, files: [file] });
    expect(text(await ageDecrypt(sealed, V.link.identity))).not.toContain('"sha256"');
  });

  /** `doc` signed by its sender under `context`, sealed to the link. */
  async function sealedAs(context: string, doc: Record<string, unknown>): Promise<Uint8Array> {
    const me = await requester();
    return ageEncrypt(canonical(await signDoc(context, doc, me.seed)), [V.link.recipient]);
  }

  it("still opens and verifies a v1 manifest, under the v1 context only", async () => {
    const { doc } = await linkManifest();
    const v1 = { ...doc, kind: MANIFEST_V1_KIND, files: [{ ...file, sha256: "a".repeat(64) }] };
    const opened = await openLinkManifest(await sealedAs(MANIFEST_V1_KIND, v1), linkId, V.link.identity);
    expect(opened.doc).toEqual(v1);
    // The same v1 signature on the document relabelled v2 (without its sha256) does not verify.
    const signed = await signDoc(MANIFEST_V1_KIND, v1, (await requester()).seed);
    const relabelled = { ...signed, doc: { ...doc } };
    const sealed = await ageEncrypt(canonical(relabelled), [V.link.recipient]);
    await refused(openLinkManifest(sealed, linkId, V.link.identity), SignatureError);
  });

  it("refuses a v2 file with a sha256 and a v1 file without one", async () => {
    const { doc } = await linkManifest();
    const v2WithDigest = { ...doc, files: [{ ...file, sha256: "a".repeat(64) }] };
    await refused(openLinkManifest(await sealedAs(MANIFEST_KIND, v2WithDigest), linkId, V.link.identity), SignatureError);
    const v1WithoutDigest = { ...doc, kind: MANIFEST_V1_KIND };
    await refused(openLinkManifest(await sealedAs(MANIFEST_V1_KIND, v1WithoutDigest), linkId, V.link.identity), SignatureError);
  });
});

// --- file requests -----------------------------------------------------------------------------

describe("vectors: request fragment and derivations", () => {
  const vector = V.request;
  const secret = fromHex(vector.secret_hex);

  it("the fragment is the request's recipient and its secret", async () => {
    expect(ageIdentityOf(fromHex(vector.x25519_secret_hex))).toBe(vector.identity);
    expect(await recipientOf(vector.identity)).toBe(vector.recipient);
    expect(requestFragmentText({ recipient: vector.recipient, secret })).toBe(vector.fragment);
    expect(requestFragmentText(await requestFragment(REQUEST_KEYS))).toBe(vector.fragment);
    const parsed = await parseRequestFragment(vector.fragment);
    expect(parsed.recipient).toBe(vector.recipient);
    expect(hex(parsed.secret)).toBe(vector.secret_hex);
  });

  it("derives the document key, MAC key and sender token", async () => {
    expect(vector.document_info).toBe("pli/request/v1 document");
    expect(vector.answer_info).toBe("pli/request/v1 answer");
    expect(vector.sender_info).toBe("pli/request/v1 sender");
    expect(await webHkdf(secret, vector.document_info)).toBe(vector.document_x25519_secret_hex);
    expect(await webHkdf(secret, vector.answer_info)).toBe(vector.answer_mac_key_hex);
    expect(documentIdentity(secret)).toBe(vector.document_identity);
    expect(documentIdentity(secret)).toBe(ageIdentityOf(fromHex(vector.document_x25519_secret_hex)));
    expect(await recipientOf(documentIdentity(secret))).toBe(vector.document_recipient);
    expect(hex(answerMacKey(secret))).toBe(vector.answer_mac_key_hex);
    expect(senderToken(secret)).toBe(vector.sender_token);
    expect(hex(fromBase64url(vector.sender_token))).toBe(await webHkdf(secret, vector.sender_info));
  });

  it.each(V.invalid_request_fragments.map((c) => [c.name, c] as const))(
    "refuses the fragment %s",
    async (_name, invalid) => {
      await refused(parseRequestFragment(invalid.fragment), errorNamed(invalid.error));
    },
  );

  it("refuses a small-order recipient in the fragment", async () => {
    const zero = bech32Encode("age", new Uint8Array(32));
    const fragment = `${zero}.${base64url(secret)}`;
    await refused(parseRequestFragment(fragment), IntegrityError);
  });
});

describe("vectors: request document", () => {
  const vector = V.request_document;
  const sealed = fromBase64Padded(vector.sealed_b64);

  it("has the vector's canonical form, signed message and signature", async () => {
    expect(text(canonical(vector.signed.doc))).toBe(vector.canonical_doc);
    expect(hex(utf8(`${vector.context}\n${vector.canonical_doc}`))).toBe(vector.signed_message_hex);
    const me = await requester();
    expect(me.bundle).toEqual(V.requester.signed_bundle);
    expect(await signDoc(vector.context, vector.signed.doc, me.seed)).toEqual(vector.signed);
    expect(hex(b64decode(vector.signed.sig))).toBe(vector.signature_hex);
    expect(vector.sealed_to).toEqual([V.request.document_recipient]);
  });

  it("opens to the exact plaintext and the signed document", async () => {
    expect(text(await ageDecrypt(sealed, V.request.document_identity))).toBe(vector.plaintext);
    const fragment = await parseRequestFragment(V.request.fragment);
    const doc = await openRequestDocument(sealed, REQUEST_ID, fragment);
    expect(doc).toEqual(vector.signed.doc);
    expect(await fingerprint(doc.requester)).toBe(vector.requester_fingerprint);
  });

  it("is written again exactly by sealRequestDocument, given its randomness", async () => {
    const me = await requester();
    const { title, created } = vector.signed.doc as { title: string; created: string };
    const again = await withRandomness(vector.age_params, () =>
      sealRequestDocument(me, REQUEST_ID, title, REQUEST_KEYS, created),
    );
    expect(hex(again)).toBe(hex(sealed));
  });

  it.each(vector.invalid_in_context.map((c) => [c.name, c] as const))(
    "refuses it %s",
    async (_name, invalid) => {
      const fragment = await parseRequestFragment(invalid.fragment);
      await refused(openRequestDocument(sealed, invalid.request_id, fragment), errorNamed(invalid.error));
    },
  );

  it.each(vector.invalid_documents.map((c) => [c.name, c] as const))(
    "refuses the document %s",
    async (_name, invalid) => {
      const bad = fromBase64Padded(invalid.sealed_b64);
      expect(text(await ageDecrypt(bad, V.request.document_identity))).toBe(invalid.plaintext);
      const fragment = await parseRequestFragment(V.request.fragment);
      await refused(openRequestDocument(bad, REQUEST_ID, fragment), errorNamed(invalid.error));
    },
  );
});

describe("vectors: request key", () => {
  const vector = V.request_key;
  const sealed = fromBase64Padded(vector.sealed_b64);
  const myKey = ageIdentityOf(fromHex(V.requester.x25519_secret_hex));

  it("has the vector's canonical form, signed message and signature", async () => {
    expect(text(canonical(vector.signed.doc))).toBe(vector.canonical_doc);
    expect(hex(utf8(`${vector.context}\n${vector.canonical_doc}`))).toBe(vector.signed_message_hex);
    const me = await requester();
    expect(await signDoc(vector.context, vector.signed.doc, me.seed)).toEqual(vector.signed);
    expect(hex(b64decode(vector.signed.sig))).toBe(vector.signature_hex);
    expect(vector.signed.doc.identity).toBe(V.request.identity);
    expect(hex(b64decode(String(vector.signed.doc.secret)))).toBe(V.request.secret_hex);
    expect(vector.sealed_to).toEqual([me.device.age]);
  });

  it("opens to the request's keys, and the URL is rebuilt from them", async () => {
    expect(text(await ageDecrypt(sealed, myKey))).toBe(vector.plaintext);
    const own = [await parseBundle(V.requester.signed_bundle)];
    const { keys, title } = await openRequestKey(sealed, myKey, REQUEST_ID, own);
    expect(keys.identity).toBe(V.request.identity);
    expect(hex(keys.secret)).toBe(V.request.secret_hex);
    expect(requestFragmentText(await requestFragment(keys))).toBe(V.request.fragment);
    expect(title).toBe(vector.signed.doc.title);
    expect(title).toBe(V.request_document.signed.doc.title);
  });

  it("is written again exactly by sealRequestKey, given its randomness", async () => {
    const me = await requester();
    const { title, created } = vector.signed.doc as { title: string; created: string };
    const again = await withRandomness(vector.age_params, () =>
      sealRequestKey(me, REQUEST_ID, title, REQUEST_KEYS, [], created),
    );
    expect(hex(again)).toBe(hex(sealed));
  });

  it.each(vector.invalid_request_keys.map((c) => [c.name, c] as const))(
    "refuses the key %s",
    async (_name, invalid) => {
      const bad = fromBase64Padded(invalid.sealed_b64);
      expect(text(await ageDecrypt(bad, myKey))).toBe(invalid.plaintext);
      const own = [await parseBundle(V.requester.signed_bundle)];
      await refused(openRequestKey(bad, myKey, REQUEST_ID, own), errorNamed(invalid.error));
    },
  );

  it("refuses a key when the account's devices do not include its signer", async () => {
    const stranger = await newIdentity("alice@lab.example", "2026-01-01T00:00:00Z");
    await refused(openRequestKey(sealed, myKey, REQUEST_ID, [stranger.device]), IntegrityError);
  });
});

describe("vectors: answer", () => {
  const vector = V.answer;
  const sealed = fromBase64Padded(vector.sealed_b64);

  it("has the vector's canonical form, MAC message and MAC", () => {
    expect(text(canonical(vector.doc))).toBe(vector.canonical_doc);
    expect(hex(utf8(`pli/answer/v1\n${vector.canonical_doc}`))).toBe(vector.mac_message_hex);
    const mac = answerMac(fromHex(V.request.secret_hex), vector.doc);
    expect(hex(mac)).toBe(vector.mac_hex);
    expect(hex(mac)).toBe("015e3c7c64452342c252086615ab639d8721d70ca86ab4976f5c3eeecc02e395");
    expect(vector.envelope).toEqual({ doc: vector.doc, mac: b64encode(mac) });
    expect(vector.envelope.mac).toBe("AV48fGRFI0LCUghmFatjnYch1wyoarSXb1w+7swC45U");
    expect(text(canonical(vector.envelope))).toBe(vector.plaintext);
    expect(vector.sealed_to).toEqual([V.request.recipient]);
  });

  it("opens to the answer, whose file matches its entry", async () => {
    expect(text(await ageDecrypt(sealed, V.request.identity))).toBe(vector.plaintext);
    const answer = await openAnswer(sealed, REQUEST_KEYS, REQUEST_ID, TRANSFER_ID);
    expect(answer).toEqual(vector.doc);
    const ciphertext = fromBase64Padded(vector.file.ciphertext_b64);
    const plaintext = fromBase64Padded(vector.file.plaintext_b64);
    const entry = answer.files[0];
    expect([ciphertext.length, hex(sha256(ciphertext))]).toEqual([
      entry?.ciphertext_size,
      entry?.ciphertext_sha256,
    ]);
    expect([plaintext.length, hex(sha256(plaintext))]).toEqual([entry?.size, entry?.sha256]);
    expect(await ageDecrypt(ciphertext, V.request.identity)).toEqual(plaintext);
  });

  it("and its file are written again exactly, given their randomness", async () => {
    const fragment = await parseRequestFragment(V.request.fragment);
    const { kind: _kind, ...answer } = vector.doc as unknown as AnswerDoc;
    const again = await withRandomness(vector.age_params, () => sealAnswer(fragment, answer));
    expect(hex(again)).toBe(hex(sealed));
    const plaintext = fromBase64Padded(vector.file.plaintext_b64);
    const file = await withRandomness(vector.file.age_params, () =>
      ageEncrypt(plaintext, [fragment.recipient]),
    );
    expect(hex(file)).toBe(hex(fromBase64Padded(vector.file.ciphertext_b64)));
  });

  it.each(vector.invalid_answers.map((c) => [c.name, c] as const))(
    "refuses the answer %s",
    async (_name, invalid) => {
      const bad = fromBase64Padded(invalid.sealed_b64);
      expect(text(await ageDecrypt(bad, V.request.identity))).toBe(invalid.plaintext);
      await refused(openAnswer(bad, REQUEST_KEYS, REQUEST_ID, TRANSFER_ID), errorNamed(invalid.error));
    },
  );

  it("refuses an answer that is not for the request's key, or too large", async () => {
    const other = await newRequestKeys();
    await refused(openAnswer(sealed, other, REQUEST_ID, TRANSFER_ID), IntegrityError);
    await refused(openAnswer(new Uint8Array((4 << 20) + 1), REQUEST_KEYS, REQUEST_ID, TRANSFER_ID), IntegrityError);
  });
});

describe("a request, end to end", () => {
  it("requester creates, sender reads and answers, requester opens the answer", async () => {
    const me = await requester();
    const keys = await newRequestKeys();
    const requestId = "0123456789abcdef0123456789abcdef";
    const document = await sealRequestDocument(me, requestId, "Scans, please", keys);
    const sealedKey = await sealRequestKey(me, requestId, "Scans, please", keys, [me.device.age]);
    const url = `https://h.example/r/${requestId}#${requestFragmentText(await requestFragment(keys))}`;

    const { id, fragment: secretPart } = splitUrl(url, "r");
    const fragment = await parseRequestFragment(secretPart);
    const shown = await openRequestDocument(document, id, fragment);
    expect(shown.title).toBe("Scans, please");
    expect(shown.requester.email).toBe(me.device.email);
    expect(readAgeHeader(sealedKey).stanzas).toHaveLength(1);

    const file = {
      id: "3d5ca776dd3693459326b07ddc0a46f8",
      name: "scan.pdf",
      size: 3,
      sha256: "c".repeat(64),
      ciphertext_size: 203,
      ciphertext_sha256: "d".repeat(64),
    };
    const answer = {
      request: id,
      transfer: TRANSFER_ID,
      name: "Dr Martin",
      message: "",
      files: [file],
      created: "2026-03-03T15:30:00Z",
    };
    const sealed = await sealAnswer(fragment, answer);

    const own = [me.device];
    const opened = await openRequestKey(sealedKey, me.ageIdentity, requestId, own);
    expect(await openAnswer(sealed, opened.keys, requestId, TRANSFER_ID)).toEqual({
      kind: "pli/answer/v1",
      ...answer,
    });
    await refused(openAnswer(sealed, opened.keys, requestId, REQUEST_ID), IntegrityError);
    await refused(openRequestKey(sealedKey, me.ageIdentity, REQUEST_ID, own), IntegrityError);
    await refused(sealAnswer(fragment, { ...answer, files: [{ ...file, size: -1 }] }), IntegrityError);
    // An answer's files keep their plaintext's sha256 (pli/answer/v1): one without it is refused.
    const { sha256: _sha256, ...undigested } = file;
    const withoutDigest = { ...answer, files: [undigested] } as unknown as typeof answer;
    await refused(sealAnswer(fragment, withoutDigest), IntegrityError);
  });
});
