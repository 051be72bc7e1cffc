"""Settings resolution for the command line (threadline.cli._config)."""

from __future__ import annotations

from pathlib import Path

import pytest

from threadline import InputError
from threadline.cli._config import (
    config_path,
    data_dir,
    default_store_url,
    load_config_file,
    resolve,
)


def test_defaults_without_home_use_the_platform_dirs(tmp_path: Path) -> None:
    environ = {"XDG_DATA_HOME": str(tmp_path / "share"),
               "XDG_CONFIG_HOME": str(tmp_path / "conf")}
    config = resolve(environ=environ)
    assert config.model.value == "local" and config.model.source == "default"
    assert config.system.value is None
    assert config.store.value == default_store_url(environ)
    assert config.store_url.startswith("sqlite:///") and config.store_url.endswith(
        "threadline/threadline.db")
    assert data_dir(environ).name == config_path(environ).parent.name == "threadline"


def test_threadline_home_holds_data_and_config(tmp_path: Path) -> None:
    environ = {"THREADLINE_HOME": str(tmp_path)}
    assert data_dir(environ) == tmp_path / "data"
    assert config_path(environ) == tmp_path / "config" / "config.toml"
    assert default_store_url(environ) == f"sqlite:///{tmp_path / 'data' / 'threadline.db'}"
    named = {"THREADLINE_HOME": str(tmp_path), "THREADLINE_CONFIG": str(tmp_path / "x.toml")}
    assert config_path(named) == tmp_path / "x.toml"


def test_precedence_flag_env_file_default(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    path = tmp_path / "config" / "config.toml"
    path.write_text('store = "memory://"\nmodel = "fake"\nsystem = "Be brief."\n')
    environ = {"THREADLINE_HOME": str(tmp_path), "THREADLINE_MODEL": "echo"}
    config = resolve(model=None, environ=environ)
    assert (config.store.value, config.store.source) == ("memory://", f"config file {path}")
    assert (config.model.value, config.model.source) == ("echo", "THREADLINE_MODEL")
    assert config.system.value == "Be brief."
    config = resolve(model="local", system="Be long.", environ=environ)
    assert (config.model.value, config.model.source) == ("local", "--model")
    assert (config.system.value, config.system.source) == ("Be long.", "--system")


def test_config_file_errors(tmp_path: Path) -> None:
    assert load_config_file(tmp_path / "absent.toml") == {}
    bad = tmp_path / "bad.toml"
    bad.write_text("model = \n")
    with pytest.raises(InputError, match="is not valid TOML"):
        load_config_file(bad)
    bad.write_text("model = 3\n")
    with pytest.raises(InputError, match="model must be a string"):
        load_config_file(bad)
    bad.write_text('colour = "blue"\n')
    with pytest.raises(InputError, match=r"unknown keys \['colour'\]; accepted keys"):
        load_config_file(bad)


def test_context_window_from_flag_env_or_file(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    path = tmp_path / "config" / "config.toml"
    path.write_text("context_window = 32768\n")
    environ = {"THREADLINE_HOME": str(tmp_path)}
    config = resolve(environ=environ)
    assert (config.context_tokens, config.context_source) == (32768, "config")
    assert config.context_window.source == f"config file {path}"
    config = resolve(context_window=4096, environ=environ)
    assert (config.context_tokens, config.context_source) == (4096, "--context-window")
    config = resolve(environ={**environ, "THREADLINE_CONTEXT_WINDOW": "16000"})
    assert (config.context_tokens, config.context_source) == (16000,
                                                              "THREADLINE_CONTEXT_WINDOW")
    config = resolve(environ={**environ, "THREADLINE_CONTEXT_WINDOW": "-5"})
    with pytest.raises(InputError, match=r"THREADLINE_CONTEXT_WINDOW must be a whole number "
                                         r"of tokens >= 1, e\.g\. 32768, got '-5'"):
        config.context_tokens  # noqa: B018
    path.write_text('model = "fake"\n')
    assert resolve(environ=environ).context_tokens is None


@pytest.mark.parametrize("value", ['"32768"', "0", "true", "1.5"])
def test_context_window_in_the_file_is_a_whole_number(tmp_path: Path, value: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"context_window = {value}\n")
    with pytest.raises(InputError, match=r"context_window must be a whole number >= 1 \(the "
                                         r"model's context window in tokens"):
        load_config_file(path)
