"""The file ``grantbot request --output`` writes a credential to: always mode 0600, never
through a symlink, never half-written.

The text goes to a new file beside the target (``O_CREAT | O_EXCL | O_NOFOLLOW``, mode
0600, so no other user can open it at any moment) that then replaces the target with
``os.replace``: an existing file (whatever its mode) or symlink at the path is replaced, and
a symlink's target is never written.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from bot.errors import UsageError


def check_destination(path: Path) -> None:
    """UsageError, one line, when ``path`` cannot be written (its directory is missing or
    not writable): checked before asking, so nothing is asked for that cannot be kept."""
    directory = path.parent
    if not directory.is_dir():
        raise UsageError(f"--output {path}: the directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(f"--output {path}: the directory {directory} is not writable")


def write_secret(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` as described above; OSError when it cannot be (nothing
    is left behind then)."""
    temp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o600)  # the mode asked for, whatever the umask
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
