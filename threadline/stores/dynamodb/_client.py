"""The boto3 client of a DynamoDB store: its timeouts and retries, and its errors.

``timeout`` (seconds, default 30) bounds each call: botocore's connect and read timeouts
default to ``min(5, timeout)`` and ``min(10, timeout)`` (``connect_timeout`` and
``read_timeout`` override them), and botocore's own retries (``max_attempts``, standard
mode, same ``ClientRequestToken`` on each try) only go on while another try still fits
in ``timeout``: a ``needs-retry`` hook, ahead of botocore's, says no once the time is
up. So a stalled server costs ``timeout`` (plus a connect timeout at most), never
``max_attempts`` times a read timeout.

:func:`wrap_error` turns botocore's exceptions into threadline's: timeouts into
:class:`~threadline.StoreTimeoutError` (``"connect"``: unreachable; ``"read"``: not
answering, and a write may or may not have been applied), other transport failures
into :class:`~threadline.StoreConnectionError`.
"""

from __future__ import annotations

import time
from typing import Any

from threadline._errors import (
    ConfigurationError,
    MissingDependencyError,
    StoreConnectionError,
    StoreError,
    StoreTimeoutError,
)

try:
    import boto3  # type: ignore[import-untyped]
    import botocore.config  # type: ignore[import-untyped]
    import botocore.exceptions  # type: ignore[import-untyped]
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError("boto3", "dynamodb") from exc

__all__ = ["DEFAULT_TIMEOUT", "DynamoError", "make_client", "wrap_error"]

DEFAULT_TIMEOUT = 30.0
_STARTED = "threadline_started"

# Refused, reset, closed before the answer, TLS failures: botocore's transport errors.
_CONNECTION_ERRORS = (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError)
_AUTH_CODES = {"UnrecognizedClientException", "InvalidSignatureException",
               "AccessDeniedException", "ExpiredTokenException"}
_WRITES = {"transactwriteitems", "putitem", "updateitem", "deleteitem", "batchwriteitem"}


class DynamoError(StoreError):
    """A DynamoDB error answer; ``code`` is its error code (for the cases we handle)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def timeouts(options: dict[str, Any]) -> tuple[float, float, float]:
    """``(timeout, connect_timeout, read_timeout)`` from a store's options."""
    timeout = options.get("timeout") or DEFAULT_TIMEOUT
    return (timeout, options.get("connect_timeout") or min(5.0, timeout),
            options.get("read_timeout") or min(10.0, timeout))


def make_client(options: dict[str, Any], key_id: str | None, secret: str | None) -> Any:
    """A boto3 DynamoDB client whose calls keep to the store's ``timeout``."""
    timeout, connect, read = timeouts(options)
    config = botocore.config.Config(
        connect_timeout=connect, read_timeout=read,
        retries={"max_attempts": options.get("max_attempts", 3), "mode": "standard"},
        max_pool_connections=options.get("pool_size", 16),
    )
    session = options.get("boto3_session") or boto3.session.Session(
        aws_access_key_id=key_id, aws_secret_access_key=secret)
    try:
        client = session.client("dynamodb", region_name=options.get("region"),
                                endpoint_url=options.get("endpoint_url"), config=config)
    except botocore.exceptions.NoRegionError as exc:
        raise ConfigurationError("no AWS region: add ?region=... to the DynamoDB URL "
                                 "or set AWS_DEFAULT_REGION") from exc
    except ValueError as exc:
        raise ConfigurationError(f"invalid DynamoDB endpoint_url: {exc}") from exc

    def start_clock(context: dict[str, Any], **_: Any) -> None:
        context[_STARTED] = time.monotonic()

    def retry_in_time(request_dict: dict[str, Any], caught_exception: Exception | None = None,
                      **_: Any) -> bool | None:
        """False (no retry) when another try would end after ``timeout``; None lets
        botocore's standard retry handler decide."""
        started = request_dict.get("context", {}).get(_STARTED)
        if started is None:
            return None
        needed = (read if isinstance(caught_exception, botocore.exceptions.ReadTimeoutError)
                  else connect if isinstance(caught_exception,
                                             botocore.exceptions.ConnectTimeoutError)
                  else 0.0)
        return False if time.monotonic() - started + needed > timeout else None

    client.meta.events.register("before-call.dynamodb", start_clock)
    client.meta.events.register_first("needs-retry.dynamodb", retry_in_time)
    return client


def wrap_error(exc: Exception, operation: str, where: str, table: str,
               options: dict[str, Any]) -> StoreError:
    """threadline's error for a botocore exception raised by ``operation``."""
    _, connect, read = timeouts(options)
    if isinstance(exc, botocore.exceptions.ConnectTimeoutError):
        return StoreTimeoutError(
            f"DynamoDB at {where} is unreachable: no connection within {connect:g} s "
            f"({operation})", kind="connect", timeout=connect)
    if isinstance(exc, botocore.exceptions.ReadTimeoutError):
        maybe = (" — the write may or may not have been applied"
                 if operation.replace("_", "").lower() in _WRITES else "")
        return StoreTimeoutError(
            f"DynamoDB at {where} did not answer {operation} within {read:g} s{maybe}",
            kind="read", timeout=read)
    if isinstance(exc, _CONNECTION_ERRORS):
        return StoreConnectionError(f"cannot reach DynamoDB at {where}: {type(exc).__name__}")
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return StoreConnectionError("no AWS credentials: pass dynamodb://KEY_ID:SECRET@"
                                    "TABLE, a boto3_session, or configure boto3")
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "?"), error.get("Message", "")
        if code in _AUTH_CODES:
            return StoreConnectionError(
                f"DynamoDB at {where} rejected the credentials ({code})")
        if code == "ResourceNotFoundException":
            return DynamoError(code, f"DynamoDB table {table!r} does not exist "
                                     f"({operation}): {message}")
        return DynamoError(code, f"DynamoDB {operation} failed: {code}: {message}")
    return StoreError(f"DynamoDB {operation} failed: {exc}")
