"""Pipelines: stages declared in mlv.yaml, their recorded state in mlv.lock, the graph they
form, and running what changed (`mlv repro`)."""
