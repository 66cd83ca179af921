"""File requests: people without an account send files to an account."""
