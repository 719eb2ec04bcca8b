"""The requester's lifecycle after the ask (issue 13): reminders before a grant ends, with
one-click extension and ending (:mod:`bot.lifecycle.reminders`), and scheduled starts
(:mod:`bot.lifecycle.starts`), both timed by the revocation scheduler's leader through their
own job store (:mod:`bot.lifecycle.jobs`, :mod:`bot.scheduling.lifecycle_store`)."""
