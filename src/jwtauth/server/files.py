"""Files only this server's user may read: the SQLite database (password hashes, sealed
keys, sessions), its ``-wal`` and ``-shm`` files (recent pages of the same data) and the
key-encryption key file beside it.

A file open to group or others is refused at start with the command that fixes it,
rather than served from silently (issue 13, point 9). SQLite creates ``-wal`` and
``-shm`` with the mode of the database file, so a database at 0600 keeps them at 0600
whatever the process's umask; they are checked too in case they predate that.
"""

from __future__ import annotations

import stat
from pathlib import Path

from ..errors import ConfigError


def require_private(path: Path) -> None:
    """Raise ``ConfigError`` if group or others have any access to ``path``."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"{path} is readable by others (mode {mode:o}); run `chmod 600 {path}`"
        )


def sqlite_files(database: Path) -> list[Path]:
    """The database file and its WAL companions that exist now."""
    candidates = [database, *(database.with_name(database.name + s) for s in ("-wal", "-shm"))]
    return [path for path in candidates if path.exists()]


__all__ = ["require_private", "sqlite_files"]
