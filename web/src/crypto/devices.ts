/**
 * What a device signs about another device of its own account (docs/spec/keys.md, "Devices"):
 *
 *     approval = {"doc": {"kind": "pli/device-approval/v1", "email", "device", "bundle", "by"}, "sig"}
 *     removal  = {"doc": {"kind": "pli/device-removal/v1", "email", "device", "by"}, "sig"}
 *
 * `bundle` is the approved bundle's digest (the key log's), `by` the signing device.
 */

import { canonical, isPlainObject } from "./canonical.js";
import { SignatureError } from "./errors.js";
import { bundleDigest } from "./keylog.js";
import { signDoc, verifyDoc, type Device, type Identity, type PublicKey, type Signed } from "./keys.js";

export const APPROVAL_KIND = "pli/device-approval/v1";
export const REMOVAL_KIND = "pli/device-removal/v1";

/** `identity`'s signature that the device of `envelope` (parsed as `device`) is its account's. */
export async function approveDevice(identity: Identity, device: Device, envelope: Signed): Promise<Signed> {
  if (device.email !== identity.device.email || device.device === identity.device.device) {
    throw new SignatureError("a device approves only another device of its own account");
  }
  const doc = { kind: APPROVAL_KIND, email: device.email, device: device.device, bundle: bundleDigest(envelope), by: identity.device.device };
  return signDoc(APPROVAL_KIND, doc, identity.seed);
}

/** `identity`'s signature that device `id` no longer belongs to its account. */
export async function removeDevice(identity: Identity, id: string): Promise<Signed> {
  if (!/^[0-9a-f]{32}$/.test(id) || id === identity.device.device) throw new SignatureError("a device removes only another device of its own account");
  const doc = { kind: REMOVAL_KIND, email: identity.device.email, device: id, by: identity.device.device };
  return signDoc(REMOVAL_KIND, doc, identity.seed);
}

/** The device that claims to have signed an approval or removal, before anything is checked:
 * to find the key to check it with. A SignatureError if there is none. */
export function approverOf(signed: unknown): string {
  const doc = isPlainObject(signed) ? signed.doc : null;
  const by = isPlainObject(doc) ? doc.by : null;
  if (typeof by !== "string" || !/^[0-9a-f]{32}$/.test(by)) throw new SignatureError("malformed device approval or removal");
  return by;
}

/** A SignatureError unless `approver` signed `approval` for exactly the device of `envelope`
 * (`device`), both devices of one account. */
export async function checkApproval(approval: unknown, approver: PublicKey, device: PublicKey, envelope: Signed): Promise<void> {
  const doc = await verifyDoc(APPROVAL_KIND, approval, approver.ed25519);
  const expected = { kind: APPROVAL_KIND, email: device.email, device: device.device, bundle: bundleDigest(envelope), by: approver.device };
  const same = new TextDecoder().decode(canonical(doc)) === new TextDecoder().decode(canonical(expected));
  if (!same || approver.email !== device.email || approver.device === device.device) {
    throw new SignatureError(`the approval of device ${device.device} does not match its keys or its approver`);
  }
}
