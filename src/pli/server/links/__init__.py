"""Share links: files anyone holding the URL downloads, without an account."""
