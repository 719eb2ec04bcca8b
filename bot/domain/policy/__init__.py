"""policies.yaml as pure code: ``schema`` (its shapes), ``rules`` (the root and the resolved
rule of each role), ``checks`` (what `grantbot policy check` finds), ``decisions`` (a request
accepted or refused, auto-approved or not) and ``summary`` (the check's table)."""
