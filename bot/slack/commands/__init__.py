"""The ``/access`` command (and ``@grantbot``): Slack text parsed into commands
(``grammar``, with ``escapes``, ``reasons`` and ``usage``; the results in ``parsed``) and
carried out for the person who typed it (``dispatch``)."""
