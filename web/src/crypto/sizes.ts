/**
 * The length of an age file before it is made: the header (fixed for a given set of X25519
 * recipients), the 16-byte payload nonce, the plaintext and a 16-byte tag per 64 KiB chunk.
 * A request's sender reserves exactly this many bytes per file before uploading any.
 */

import { Encrypter } from "age-encryption";

export async function ciphertextSize(recipients: readonly string[], plaintextSize: number): Promise<number> {
  const encrypter = new Encrypter();
  for (const recipient of recipients) encrypter.addRecipient(recipient);
  const empty = new ReadableStream<Uint8Array>({ start: (c) => c.close() });
  const sealed = await encrypter.encrypt(empty);
  const size = sealed.size(plaintextSize);
  await sealed.cancel();
  return size;
}
