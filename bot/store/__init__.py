"""Redis: grant state with atomic transitions, indexes, and the hash-chained audit stream."""
