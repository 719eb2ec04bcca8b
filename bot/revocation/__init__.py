"""The path from due grants to revoked ones, above :mod:`bot.scheduling` (whose job runner
protocol :class:`~.revoker.Revoker` implements; scheduling never imports this package).

- :mod:`.revoker`: :class:`~.revoker.Revoker`, the entry points (fired jobs, restart
  recovery, a person ending a grant, force-close) and the batch path.
- :mod:`.batcher`: submissions gathered into batches, one future per grant.
- :mod:`.targets`: revoking at the targets (bounded concurrency, bulk where possible).
- :mod:`.failures`: a failed attempt recorded, retried or given up.
- :mod:`.retry`: when to try again (pure).
- :mod:`.notices`: telling the service what was stored.

The pacing of its loops is :mod:`bot.pacing`'s (the store's bulk path and the end announcer
pace themselves by it too, so it stays below both).
"""
