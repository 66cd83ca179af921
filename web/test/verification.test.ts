/**
 * The verification code, held to the vector of docs/spec/keys.md ("Verification code"): the same
 * digits as `pli keys verify`, whichever way round and in whatever order the devices come.
 */

import { describe, expect, it } from "vitest";
import { hex } from "../src/crypto/b64.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { accountMessage, codesMatch, half, normalizeCode, verificationCode } from "../src/crypto/verification.js";

const ALICE = "alice@lab.example";
const BOB = "bob@ars.example";
const A = [
  { email: ALICE, device: "c64dd533463b4b4da41a26371cdc84c5", age: "age1cr0rcdspzrervm47q8lnnh0fgs8rpfhlf0la39rw23uy3xatpfksgg394u", ed25519: "VaXmjgtdbEfSbshssH+H55Jyr7AVG3bEVjGhj7ExVeY" },
];
const B = [
  { email: BOB, device: "754cdb00f7cbb7c52c81f169dae83749", age: "age15yynxfuhzz0pg0ah0j0j3vnz7z99t25uwzhxa35p9j9rr3yv8pqsjqts04", ed25519: "y0onoWTu7euvXiX+WYYzacTUYJauPbrBGbVmj3Z4aR8" },
  { email: BOB, device: "388654c7385859f94d034040941a2346", age: "age1nv55m7nrqt25tguvd73nvx5mtcncpfya9kmnhzhpfhurmct8kf3sw4tn54", ed25519: "2pDsC63uuyHlirvYV404cOy2ftYPt/abNuIpLn/Emr0" },
];
const CODE = "04844 74175 65777 05101 75311 36415 17068 54329 11671 70724 25847 66286";

describe("verification code", () => {
  it("reproduces the vector's digests, halves and code", () => {
    expect(hex(sha256(accountMessage(ALICE, A)))).toBe("97e875ef8c4da32ad19f444afff9f1110cb4946d50aa6bcd4f936c09399f7702");
    expect(hex(sha256(accountMessage(BOB, B)))).toBe("088e5ed18cdd2b0584992411921f974d50e81c84ac5b513df732121eb1ced81c");
    expect(half(ALICE, A).join(" ")).toBe("04844 74175 65777 05101 75311 36415");
    expect(half(BOB, B).join(" ")).toBe("17068 54329 11671 70724 25847 66286");
    expect(verificationCode(ALICE, A, BOB, B)).toBe(CODE);
  });

  it("is the same whichever way round, in any device order, with repeats", () => {
    expect(verificationCode(BOB, [...B].reverse(), ALICE, [...A, ...A])).toBe(CODE);
  });

  it("changes with any key, device or email", () => {
    const moved = [{ ...B[0]!, ed25519: B[1]!.ed25519 }, B[1]!];
    expect(verificationCode(ALICE, A, BOB, moved)).not.toBe(CODE);
    expect(verificationCode(ALICE, A, BOB, [B[0]!])).not.toBe(CODE);
    expect(verificationCode(ALICE, A, "bob@ars.example.org", B)).not.toBe(CODE);
  });

  it("compares typed codes on their 60 digits only", () => {
    expect(codesMatch(CODE, CODE.replaceAll(" ", "-"))).toBe(true);
    expect(codesMatch(CODE, `${CODE.replaceAll(" ", "\t")}\n`)).toBe(true);
    expect(codesMatch(CODE, CODE.replace("04844", "04845"))).toBe(false);
    expect(codesMatch(CODE, CODE.slice(0, -1))).toBe(false);
    expect(codesMatch(CODE, CODE.replace("0", "٠"))).toBe(false);
    expect(normalizeCode("abc")).toBeNull();
  });
});
