"""Helpers for tests and benchmarks that the installed package does not carry."""
