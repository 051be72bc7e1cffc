"""The public surface: a sorted, complete __all__ whose names all resolve."""

from __future__ import annotations

import subprocess
import sys

import threadline


def test_all_is_sorted_and_unique() -> None:
    assert threadline.__all__ == sorted(threadline.__all__)
    assert len(set(threadline.__all__)) == len(threadline.__all__)


def test_every_name_in_all_resolves() -> None:
    for name in threadline.__all__:
        assert getattr(threadline, name) is not None, name


def test_all_is_complete() -> None:
    public = {
        name
        for name, value in vars(threadline).items()
        if not name.startswith("_")
        and not isinstance(value, type(threadline))
        and name not in ("annotations", "importlib", "TYPE_CHECKING", "Any")
    }
    assert public <= set(threadline.__all__), public - set(threadline.__all__)
    assert set(threadline._LAZY) <= set(threadline.__all__)


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        threadline.DoesNotExist  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "DoesNotExist" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_import_does_not_pull_heavy_modules() -> None:
    code = (
        "import sys, threadline; "
        "heavy = [m for m in ('asyncio', 'httpx', 'sqlite3', 'psycopg', 'redis', 'pymysql', "
        "'concurrent.futures', 'threadline.stores') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_stores_all_is_sorted_and_resolves() -> None:
    import threadline.stores as stores

    assert stores.__all__ == sorted(stores.__all__)
    for name in stores.__all__:
        if name.endswith("Store") and name != "Store":
            continue  # backend classes need their driver; checked below by scheme
        assert getattr(stores, name) is not None, name


def test_stores_backend_classes_by_name() -> None:
    import threadline.stores as stores

    for scheme in ("memory", "file", "sqlite"):
        cls = stores.backend_class(scheme)
        assert getattr(stores, cls.__name__) is cls
    try:
        stores.NoSuchStore  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchStore" in str(exc)
    else:
        raise AssertionError("expected AttributeError")
