"""Device key bundles: publication, lookup, escrowed private bundles (ciphertext only)."""
