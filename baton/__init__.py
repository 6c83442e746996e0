"""Baton's typed Python client (`baton.client`) and the `baton` command line (`baton.cli`)."""
