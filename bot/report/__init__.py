"""``grantbot report``: the access review built from the audit log, streamed in one pass.

``aggregate`` folds entries into figures (pure, bounded memory); ``standing``, ``stats`` and
``spool`` are its parts; ``svg`` draws the charts; ``html`` and ``csv_out`` write the page and
the tables; ``build`` reads the log page by page and ties them together.
"""
