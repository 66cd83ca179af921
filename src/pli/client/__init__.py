"""The SDK (`pli.client.sdk.Client`) and the CLI on top of it (`pli.client.cli`)."""
