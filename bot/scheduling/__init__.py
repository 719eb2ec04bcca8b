"""Revocation timing: APScheduler as the clock over grantbot's job keys, one leader, and the
reconciler. Below :mod:`bot.revocation` (which implements :class:`~.jobs.JobRunner`); it
never imports it.

- :mod:`.jobs`: what a fired job calls (:class:`~.jobs.JobRunner`) and the job names.
- :mod:`.job_store`: the APScheduler job store over :class:`bot.store.job_index.JobIndex`.
- :mod:`.thread`: APScheduler in its own thread; fired jobs run on the event loop.
- :mod:`.lease`: one leader per Redis.
- :mod:`.reconciler`: the sweep that fixes what jobs missed.
- :mod:`.scheduler`: :class:`~.scheduler.RevocationScheduler`, all of it together.

The function every stored job names stays in :mod:`bot.scheduler` (see there why).
"""
