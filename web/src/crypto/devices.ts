/**
 * What a device signs about another device of its own account (docs/spec/keys.md, "Devices"):
 *
 *     approval = {"doc": {"kind": "pli/device-approval/v1", "email", "device", "bundle", "by"}, "sig"}
 *     removal  = {"doc": {"kind": "pli/device-removal/v1", "email", "device", "by"}, "sig"}
 *
 * `bundle` is the approved bundle's digest (the key log's), `by` the signing device.
 */

import { SignatureError } from "./errors.js";
import { bundleDigest } from "./keylog.js";
import { signDoc, type Device, type Identity, type Signed } from "./keys.js";

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
