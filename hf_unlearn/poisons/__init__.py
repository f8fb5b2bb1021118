"""Poison generators; one module per attack."""
