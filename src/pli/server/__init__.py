"""The ASGI server: routes per feature (auth, keys, transfers), problem responses, config.
It never imports private-key code: it has none to use."""
