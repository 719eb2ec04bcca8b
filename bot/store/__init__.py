"""grantbot's own Redis, and the only code that talks to it: grant state with atomic
transitions, indexes, the hash-chained audit stream, and every other record grantbot keeps
(see docs/ARCHITECTURE.md, "Redis writers and Lua scripts"). Every key is named in
:mod:`.keys`, every Lua script is a file in ``lua/`` loaded through :mod:`.scripts`, and
every client is opened by :mod:`.connection`."""
