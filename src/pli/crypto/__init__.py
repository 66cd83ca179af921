"""The only package that touches keys and ciphers.

- `age`: age v1 files (header, X25519 and scrypt recipients) over `cryptography`
- `stream`: age's STREAM payload (ChaCha20-Poly1305, 64 KiB chunks)
- `signing`: canonical JSON documents signed with Ed25519 under a context string
- `bundle`: public key bundles and fingerprints (public keys only: the server may use it)
- `identity`: a device's private keys, sealed under a passphrase (client only)
- `manifest`: signed, encrypted transfer manifests (client only)
- `passphrase`: strength estimates and generated phrases for escrowed keys
- `links`: share-link and file-request fragments, request documents, authenticated answers
- `checkpoints`: the server's own Ed25519 key, and the audit checkpoints it signs
- `passkeys`: WebAuthn options and the checks of an authenticator's answers (public keys only)
- `merkle`: RFC 6962 Merkle trees, their inclusion and consistency proofs (public data only)
- `keylog`: the key transparency log's entries, signed tree heads and a client's checks
- `verification`: the code two people compare to verify each other's keys (public keys only)
"""
