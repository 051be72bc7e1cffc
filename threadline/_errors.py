"""The one exception tree of threadline.

Every error threadline raises on purpose derives from :class:`ThreadlineError`, so
``except ThreadlineError`` catches them all. Errors that wrap a driver or OS error are
raised ``from`` it, so the original stays in ``__cause__``.

Some classes also derive from the built-in exception that LangChain raised in the same
situation (``KeyError`` for a missing prompt variable, ``ValueError`` for bad input, ``TypeError``
for an argument of the wrong type,
``ImportError`` for a missing extra), so ported ``except`` clauses keep working::

    ThreadlineError
    ├── InputError (ValueError)            wrong type or value passed in
    │   ├── InputTypeError (TypeError)       an argument of a type it cannot take
    │   ├── MissingVariableError (KeyError)  a prompt variable was not given
    │   └── MissingConfigError (KeyError)    a session key is missing from the config
    ├── MessageFormatError (ValueError)    a message dict is malformed or of unknown type
    │                                        (a stored one names its session and position)
    ├── HistoryFileError                   a history file is unreadable or not ours
    │   └── DamagedMessageError (also MessageFormatError)  one of its messages is damaged
    ├── StoreError                         a store backend failed
    │   ├── ConfigurationError (ValueError)  bad URL, unknown scheme or option
    │   └── StoreConnectionError             the server cannot be reached
    │       └── StoreTimeoutError (TimeoutError)  unreachable, not answering, or pool exhausted
    ├── ModelError                         a chat model failed
    │   ├── ModelHTTPError                   the model's server answered 4xx/5xx
    │   │   └── ModelRateLimitError          ... 429, still after the retries
    │   ├── ModelTimeoutError (TimeoutError)  no answer within the timeout
    │   ├── ModelConnectionError (ConnectionError)  server unreachable, connection broke
    │   └── ModelResponseError               the answer or stream is malformed
    └── MissingDependencyError (ImportError) an optional extra is not installed

One warning: :class:`SkippedMessageWarning`, for each stored message a read with
``skip_invalid=True`` left out (its ``error`` is the :class:`MessageFormatError`).
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "DamagedMessageError",
    "HistoryFileError",
    "InputError",
    "InputTypeError",
    "MessageFormatError",
    "MissingConfigError",
    "MissingDependencyError",
    "MissingVariableError",
    "ModelConnectionError",
    "ModelError",
    "ModelHTTPError",
    "ModelRateLimitError",
    "ModelResponseError",
    "ModelTimeoutError",
    "SkippedMessageWarning",
    "StoreConnectionError",
    "StoreError",
    "StoreTimeoutError",
    "ThreadlineError",
]


class ThreadlineError(Exception):
    """Base class of every error threadline raises on purpose."""

    def __str__(self) -> str:
        # KeyError would otherwise repr() its message, quoting it.
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class InputError(ThreadlineError, ValueError):
    """A value of the wrong type or shape was passed in."""


class InputTypeError(InputError, TypeError):
    """An argument of a type that cannot be used (e.g. a prompt invoked with a number)."""


class MissingVariableError(InputError, KeyError):
    """A prompt template was formatted without one of its variables."""

    def __init__(self, message: str, *, missing: list[str], given: list[str]) -> None:
        super().__init__(message)
        self.missing = missing
        self.given = given


class MissingConfigError(InputError, KeyError):
    """A key the history factory needs is missing from ``config["configurable"]``."""

    def __init__(self, message: str, *, missing: list[str]) -> None:
        super().__init__(message)
        self.missing = missing


class MessageFormatError(ThreadlineError, ValueError):
    """A stored or given message dict cannot be turned into a message.

    When a store read finds it, ``session_id`` names the session and ``position`` the
    message: its index from the start (0 = oldest), or counting back from the newest
    (-1 = newest) when the read asked for the last N only.
    """

    def __init__(self, message: str, *, session_id: str | None = None,
                 position: int | None = None) -> None:
        super().__init__(message)
        self.session_id = session_id
        self.position = position

    def located(self, session_id: str | None, position: int) -> MessageFormatError:
        """This error, saying where the bad stored message is."""
        where = (f"message {position}" if position >= 0
                 else f"message {position} (counting back from the newest, -1)")
        sid = f" of session {session_id!r:.200}" if session_id is not None else ""
        located = MessageFormatError(f"{where}{sid} cannot be read: {self}",
                                     session_id=session_id, position=position)
        located.__cause__ = self.__cause__ or self
        return located


class SkippedMessageWarning(UserWarning):
    """A stored message that cannot be read was left out (``skip_invalid=True``)."""

    def __init__(self, error: MessageFormatError) -> None:
        super().__init__(f"skipped: {error}")
        self.error = error


class HistoryFileError(ThreadlineError):
    """A chat history file is not valid UTF-8 JSON in a format threadline reads."""


class DamagedMessageError(HistoryFileError, MessageFormatError):
    """A stored message of a history file cannot be read.

    Both a :class:`HistoryFileError` (the file is not all readable) and a
    :class:`MessageFormatError` whose ``session_id`` (for a ``file://`` store) and
    ``position`` say which message; ``line`` is its line number in a JSON Lines file.
    """

    def __init__(self, message: str, *, session_id: str | None = None,
                 position: int | None = None, line: int | None = None) -> None:
        super().__init__(message, session_id=session_id, position=position)
        self.line = line


class StoreError(ThreadlineError):
    """A store backend failed; the driver's exception is in ``__cause__``."""


class ConfigurationError(StoreError, ValueError):
    """A store URL, scheme or option is invalid."""


class StoreConnectionError(StoreError, ConnectionError):
    """The store's server could not be reached (within the connect timeout), or would
    not let us in; ``part`` says which part of connecting failed:

    - ``"server"``: unreachable, refused, down (start it, or fix the host and port);
    - ``"authentication"``: the server answered and refused the user or password;
    - ``"database"``: the server let us in, but the database named does not exist.
    """

    def __init__(self, message: str, *, part: str = "server") -> None:
        super().__init__(message)
        self.part = part


class StoreTimeoutError(StoreConnectionError, TimeoutError):
    """A store call ran out of time; ``kind`` says how:

    - ``"connect"``: the server could not be reached within the timeout;
    - ``"read"``: the server took the request but did not answer within the timeout;
    - ``"pool"``: every pooled connection stayed busy for the timeout (``pool_size``
      connections; raise ``pool_size`` or lower the load).
    """

    def __init__(self, message: str, *, kind: str, timeout: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.timeout = timeout


class ModelError(ThreadlineError):
    """A chat model failed to answer."""


class ModelHTTPError(ModelError):
    """The model's server answered with an HTTP error status (``status_code``)."""

    def __init__(self, message: str, *, status_code: int, body: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body


class ModelRateLimitError(ModelHTTPError):
    """The server kept answering 429 Too Many Requests after the retries."""


class ModelTimeoutError(ModelError, TimeoutError):
    """The model's server did not answer (or stopped streaming) within the timeout."""


class ModelConnectionError(ModelError, ConnectionError):
    """The model's server could not be reached, or the connection broke mid-answer."""


class ModelResponseError(ModelError):
    """The server's answer or stream is not the JSON or events the protocol expects."""


class MissingDependencyError(ThreadlineError, ImportError):
    """An optional dependency is missing; the message says what to install."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"{package} is not installed; install it with: pip install \"threadline[{extra}]\""
        )
        self.package = package
        self.extra = extra
