"""Packed remote storage, format version 1 (docs/formats.md): pack files and their indexes."""
