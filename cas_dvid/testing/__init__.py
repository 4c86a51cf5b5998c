"""Test support shipped with the package: the backend conformance suite and an S3 server."""
