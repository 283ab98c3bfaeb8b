"""Multi-table writes: each action owns one transaction and publishes its events only after
that transaction commits."""
