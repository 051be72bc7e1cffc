"""Histories in local files: one implementation of a JSON Lines history file.

``_format`` is the file format as pure functions (cutting a file into messages, decoding
them with bounds); ``_files`` its I/O (locks, atomic replacement, leftovers of killed
rewrites, opening without following links); ``_cache`` what a process knows of the files
it wrote (O(1) appends); ``_history`` is :class:`~threadline.FileChatMessageHistory` (one
file); ``_repair`` recovers the readable messages of a damaged file; ``_paths`` names
files after session ids (:func:`history_path`) and keeps store directories private;
``_store`` is the ``file://`` store (a directory of such files, one per session).
"""

from threadline.stores.file._format import DamagedMessageError
from threadline.stores.file._paths import history_path
from threadline.stores.file._repair import RepairReport, repair_history_file

__all__ = ["DamagedMessageError", "RepairReport", "history_path", "repair_history_file"]
