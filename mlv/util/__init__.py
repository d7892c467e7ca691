"""Utilities every layer may use: atomic local writes (localfs) and URL redaction (urls).

Below storage in the layer order (docs/decisions.md, "Layers"): they import nothing from mlv.
"""
