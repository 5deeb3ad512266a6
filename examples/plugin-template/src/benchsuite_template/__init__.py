"""A template benchsuite plugin: one classifier and one detector (see README.md)."""
