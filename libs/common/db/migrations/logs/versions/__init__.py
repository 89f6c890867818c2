"""Revisions of the "logs" migration environment."""
