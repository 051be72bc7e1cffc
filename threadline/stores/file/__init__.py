"""Histories in local files: one implementation of a JSON Lines history file.

``_format`` is the file format and its I/O (parsing, torn-line repair, locks, atomic
replacement); ``_history`` is :class:`~threadline.FileChatMessageHistory` (one file);
``_store`` is the ``file://`` store (a directory of such files, one per session).
"""
