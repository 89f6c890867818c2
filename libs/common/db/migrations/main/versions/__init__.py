"""Revisions of the "main" migration environment."""
