"""For auditors: signed checkpoints of the audit chain, verifying against them, and shipping
the log off the box. Redis access stays in :mod:`bot.store`."""
