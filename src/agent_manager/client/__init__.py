"""Talking to a running agent: chat and bench."""
