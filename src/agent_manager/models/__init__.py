"""Hugging Face cache: its layout, cache state per agent, file selection, downloads."""
