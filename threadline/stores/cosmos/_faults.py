"""Cosmos DB driver faults: the SDK's errors raised as threadline's, lost write answers,
and the outcome of a failed transactional batch (shared by the sync and async driver)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from threadline._errors import (
    MissingDependencyError,
    StoreConnectionError,
    StoreError,
    StoreTimeoutError,
)
from threadline.stores.cosmos._ops import BatchFailure, _Batch, _Write

try:
    from azure.core.exceptions import (
        AzureError,
        ServiceRequestError,
        ServiceRequestTimeoutError,
        ServiceResponseError,
        ServiceResponseTimeoutError,
    )
    from azure.cosmos import exceptions
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError("azure-cosmos", "cosmos") from exc

__all__ = ["batch_failure", "lost_write", "quiet_insecure_warning", "translate_errors"]


def _lost(exc: Exception) -> bool:
    """The connection failed around a write, not by a timeout: it may have been sent
    (azure-core reports a TLS connection closed while awaiting the answer as a request
    error, "not sent", which is not always so)."""
    return isinstance(exc, ServiceRequestError | ServiceResponseError) and not isinstance(
        exc, ServiceRequestTimeoutError | ServiceResponseTimeoutError)


@contextmanager
def translate_errors(endpoint: str, connect_timeout: float,
                     timeout: float) -> Iterator[None]:
    """Raise the SDK's errors as threadline's: timeouts (connect or read),
    connection failures, a refused key, other HTTP errors."""
    try:
        yield
    except (ServiceRequestTimeoutError, ServiceResponseTimeoutError,
            exceptions.CosmosClientTimeoutError) as exc:
        inner = getattr(exc, "inner_exception", None)
        if isinstance(exc, ServiceRequestTimeoutError) or isinstance(
                inner, ServiceRequestError):
            raise StoreTimeoutError(
                f"Cosmos DB at {endpoint} is unreachable: no connection within "
                f"{connect_timeout:g} s", kind="connect",
                timeout=connect_timeout) from exc
        raise StoreTimeoutError(
            f"Cosmos DB at {endpoint} did not answer within {timeout:g} s "
            "(a write may or may not have been applied)", kind="read",
            timeout=timeout) from exc
    except ServiceResponseError as exc:
        raise StoreConnectionError(
            f"Cosmos DB at {endpoint} dropped the connection before answering "
            f"(a write may or may not have been applied): {type(exc).__name__}"
        ) from exc
    except ServiceRequestError as exc:
        raise StoreConnectionError(
            f"cannot reach Cosmos DB at {endpoint}: {type(exc).__name__}") from exc
    except exceptions.CosmosHttpResponseError as exc:
        if exc.status_code in (401, 403):
            raise StoreConnectionError(
                f"Cosmos DB at {endpoint} refused the key (HTTP {exc.status_code})"
            ) from exc
        raise StoreError(f"Cosmos DB request failed (HTTP {exc.status_code}): "
                         f"{str(exc.message).splitlines()[0][:200]}") from exc
    except AzureError as exc:
        raise StoreError(f"Cosmos DB request failed: {type(exc).__name__}") from exc



def lost_write(endpoint: str, request: _Batch | _Write,
               exc: Exception) -> tuple[int, Exception]:
    """A write whose connection failed: (0, exc) for the append to check and retry,
    or the error saying the write may have been applied; timeouts are raised as is."""
    if not _lost(exc):
        raise exc
    if request.lost_ok:
        return 0, exc
    raise StoreConnectionError(
        f"the connection to Cosmos DB at {endpoint} failed during a write, which "
        f"may or may not have been applied: {type(exc).__name__}") from exc


def quiet_insecure_warning(options: dict[str, Any]) -> None:
    # verify=false is an explicit choice (a local emulator's self-signed certificate);
    # urllib3 would otherwise warn on every request.
    if options.get("verify", True) is False:
        import warnings

        with suppress(ImportError):
            from urllib3.exceptions import InsecureRequestWarning

            warnings.filterwarnings("ignore", category=InsecureRequestWarning)


def batch_failure(exc: Any) -> tuple[int, BatchFailure]:
    """The status of a failed batch's failing operation, where it failed and what it
    created anyway (the emulator's batches are not atomic)."""
    responses = exc.operation_responses or []
    index = exc.error_index if exc.error_index is not None else 0
    created = [r["resourceBody"]["id"] for r in responses
               if 200 <= int(r.get("statusCode") or 0) < 300
               and isinstance(r.get("resourceBody"), dict) and "id" in r["resourceBody"]]
    status = int(exc.status_code or 500)
    if 0 <= index < len(responses):
        status = int(responses[index].get("statusCode") or status)
    return status, BatchFailure(index, created)
