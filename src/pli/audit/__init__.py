"""The audit log: an append-only hash chain of typed events, checked against signed checkpoints.

- `chain`: records, their hashes, appending and verifying (pure: no database, no clock)

Checkpoints (a signed length and head hash, kept outside the server) come from
`pli.crypto.checkpoints`: only pli.crypto touches keys.
"""
