"""Where the command line finds its settings: flags, environment, config file, defaults.

Each setting is resolved once, in this order of precedence, and remembers where its
value came from (``threadline doctor`` and error messages show it):

1. a command-line flag (``--store``, ``--model``, ``--system``, ``--context-window``);
2. the environment (``THREADLINE_STORE``, ``THREADLINE_MODEL``, ``THREADLINE_SYSTEM``,
   ``THREADLINE_CONTEXT_WINDOW``);
3. the config file, TOML: ``store = "..."``, ``model = "..."``, ``system = "..."``,
   ``context_window = 32768``;
4. the built-in default: the embedded local model and a SQLite file in the data dir
   (and the model's own or known context window, :mod:`threadline.models._window`).

The data and config directories are the platform's (platformdirs, when installed; the
XDG rules otherwise). ``THREADLINE_HOME`` puts both under one folder instead
(``$THREADLINE_HOME/data``, ``$THREADLINE_HOME/config``), which is how tests stay in a
temporary directory; ``THREADLINE_CONFIG`` names the config file itself.

>>> resolve(store="memory://", environ={}).store
Setting(value='memory://', source='--store')
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from threadline._errors import InputError

__all__ = [
    "CONFIG_KEYS",
    "DEFAULT_MODEL",
    "Config",
    "Setting",
    "config_dir",
    "config_path",
    "data_dir",
    "default_store_url",
    "load_config_file",
    "resolve",
]

APP = "threadline"
DEFAULT_MODEL = "local"
#: Keys a config file may set, with what each means (for errors and docs).
CONFIG_KEYS = {
    "store": "store URL, e.g. 'sqlite:///chat.db' or 'postgresql://localhost/app'",
    "model": "model name, e.g. 'local', 'gguf:/path/model.gguf', 'openai:gpt-4o-mini'",
    "system": "system prompt sent first in every conversation",
    "context_window": "the model's context window in tokens, a whole number, e.g. 32768 "
                      "(default: the model's own, or known for its name)",
}
#: Keys whose value is a whole number (TOML integer), not a string.
_INT_KEYS = frozenset({"context_window"})


def _home(environ: Mapping[str, str]) -> Path | None:
    home = environ.get("THREADLINE_HOME")
    return Path(home).expanduser() if home else None


def _app_dir(environ: Mapping[str, str] | None, kind: str, xdg: str,
             fallback: tuple[str, ...]) -> Path:
    environ = os.environ if environ is None else environ
    home = _home(environ)
    if home is not None:
        return home / kind
    try:
        import platformdirs
    except ImportError:
        base = environ.get(xdg) or str(Path.home().joinpath(*fallback))
        return Path(base) / APP
    finder = platformdirs.user_data_dir if kind == "data" else platformdirs.user_config_dir
    return Path(finder(APP, appauthor=False))


def data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The folder for the default database and the chat's input history (not created)."""
    return _app_dir(environ, "data", "XDG_DATA_HOME", (".local", "share"))


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The folder the config file is looked for in."""
    return _app_dir(environ, "config", "XDG_CONFIG_HOME", (".config",))


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """The config file: ``$THREADLINE_CONFIG``, else ``config.toml`` in :func:`config_dir`."""
    environ = os.environ if environ is None else environ
    named = environ.get("THREADLINE_CONFIG")
    return Path(named).expanduser() if named else config_dir(environ) / "config.toml"


def default_store_url(environ: Mapping[str, str] | None = None) -> str:
    """``sqlite:///`` + the ``threadline.db`` file in the data dir."""
    return f"sqlite:///{(data_dir(environ) / 'threadline.db').resolve()}"


def load_config_file(path: Path) -> dict[str, str]:
    """The settings of a config file, as strings; ``{}`` if there is none. Unknown keys
    and values of the wrong type are errors, so a typo does not silently do nothing."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"config file {str(path)!r} is not valid TOML: {exc}") from exc
    except OSError as exc:
        raise InputError(f"cannot read config file {str(path)!r}: {exc.strerror}") from exc
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise InputError(f"config file {str(path)!r} has unknown keys {unknown}; "
                         f"accepted keys: {sorted(CONFIG_KEYS)}")
    values = {}
    for key, value in data.items():
        if key in _INT_KEYS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"config file {str(path)!r}: {key} must be a whole number "
                                 f">= 1 ({CONFIG_KEYS[key]}), got {value!r}")
            values[key] = str(value)
        elif not isinstance(value, str):
            raise InputError(f"config file {str(path)!r}: {key} must be a string "
                             f"({CONFIG_KEYS[key]}), got {value!r}")
        else:
            values[key] = value
    return values


@dataclass(frozen=True)
class Setting:
    """A resolved value and where it came from (``--model``, ``THREADLINE_MODEL``,
    ``config file /path``, ``default``)."""

    value: str | None
    source: str


@dataclass(frozen=True)
class Config:
    """The resolved settings of one command."""

    store: Setting
    model: Setting
    system: Setting
    path: Path
    #: ``None`` value: the model's own or known window (see :func:`context_window`).
    context_window: Setting = Setting(None, "default")

    @property
    def store_url(self) -> str:
        assert self.store.value is not None  # always has a default
        return self.store.value

    @property
    def model_name(self) -> str:
        assert self.model.value is not None
        return self.model.value

    @property
    def context_tokens(self) -> int | None:
        """The context window set by flag, environment or file, checked; else ``None``."""
        value = self.context_window.value
        if value is None:
            return None
        try:
            tokens = int(value)
        except ValueError:
            tokens = 0
        if tokens < 1:
            raise InputError(f"{self.context_window.source} must be a whole number of "
                             f"tokens >= 1, e.g. 32768, got {value!r:.40}")
        return tokens

    @property
    def context_source(self) -> str:
        """Where the context window came from, short, for the chat's banner."""
        source = self.context_window.source
        return "config" if source.startswith("config file") else source


def resolve(*, store: str | None = None, model: str | None = None,
            system: str | None = None, context_window: int | None = None,
            environ: Mapping[str, str] | None = None) -> Config:
    """Resolve the settings; the arguments are the flags (``None``: not given).

    The config file is read only when a flag and the environment leave a setting open.
    """
    environ = os.environ if environ is None else environ
    path = config_path(environ)
    file_values: dict[str, str] | None = None

    def pick(key: str, flag: str | None, default: str | None) -> Setting:
        nonlocal file_values
        if flag is not None:
            return Setting(flag, f"--{key.replace('_', '-')}")
        env_name = f"THREADLINE_{key.upper()}"
        if environ.get(env_name):
            return Setting(environ[env_name], env_name)
        if file_values is None:
            file_values = load_config_file(path)
        if key in file_values:
            return Setting(file_values[key], f"config file {path}")
        return Setting(default, "default")

    return Config(
        store=pick("store", store, default_store_url(environ)),
        model=pick("model", model, DEFAULT_MODEL),
        system=pick("system", system, None),
        path=path,
        context_window=pick("context_window", None if context_window is None
                            else str(context_window), None),
    )
