"""Files and folders the command line keeps for the user are private, whatever the umask.

The data directory holds every conversation (the default SQLite database) and everything
typed into the chat (``input-history``, passwords pasted by mistake included). Under the
usual umask 022 a plain ``mkdir``/``open`` would leave them readable by every local user,
so the folder is made 0700 and the files 0600, explicitly: a umask can only take
permissions away, and 000 gives everything.

An existing folder or file is tightened (group and other bits removed) when it belongs to
the user running the command: earlier versions created them 0755/0644. Anything owned by
someone else is left as it is. Links are followed: pointing ``input-history`` at another
file of one's own is a choice to respect, and nobody else can plant a link inside a 0700
folder.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["private_dir", "private_file"]

DIR_MODE = 0o700
FILE_MODE = 0o600


def _own(info: os.stat_result) -> bool:
    geteuid = getattr(os, "geteuid", None)  # not on Windows, where modes mean little
    return geteuid is not None and info.st_uid == geteuid()


def private_dir(path: Path) -> Path:
    """Create ``path`` (and its missing parents, as the XDG spec asks) as 0700; remove
    the group and other permissions of an existing folder of the user's. Returns
    ``path``."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            os.mkdir(folder, DIR_MODE)
        except FileExistsError:  # created meanwhile (by another threadline, say)
            continue
        os.chmod(folder, DIR_MODE)  # the umask may have taken the owner's bits too
    if not missing:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode) and _own(info) and stat.S_IMODE(info.st_mode) & 0o077:
            os.chmod(path, stat.S_IMODE(info.st_mode) & 0o700)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty as 0600 if it does not exist; remove the group and other
    permissions of an existing regular file of the user's. Returns ``path``."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                     | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    except FileExistsError:
        try:
            info = os.stat(path)
        except FileNotFoundError:  # a dangling link of the user's: theirs to mend
            return path
        mode = stat.S_IMODE(info.st_mode)
        if stat.S_ISREG(info.st_mode) and _own(info) and mode & 0o077:
            os.chmod(path, mode & 0o700)
        return path
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path
