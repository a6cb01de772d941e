"""The local SQLite store: one writer with group commit, read-only readers, versioned schema."""
