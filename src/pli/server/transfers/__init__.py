"""Transfers: created (uploading) → sealed → expired or revoked, blobs purged."""
