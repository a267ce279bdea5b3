"""Config sites for tests that run calpool over a config file on disk: the
console script as a process, and a config written and its database migrated
in-process.  Tests build the config text with
``tests.support.config_builder.SiteConfig``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from daemon.config import load_config
from daemon.config.settings import Config
from engine.store import migrate

# The console script installed next to this interpreter.
CALPOOL = Path(sys.executable).parent / "calpool"


def plain_environment() -> dict[str, str]:
    """This process's environment without what would point calpool at
    another config or make it print tracebacks."""
    return {k: v for k, v in os.environ.items() if k not in ("CALPOOL_CONFIG", "CALPOOL_TRACEBACK")}


def run_calpool(config: Path, *argv: str, timeout: float = 90,
                env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``calpool --config CONFIG ARGV…`` as a process (environment ``env``,
    default :func:`plain_environment`); fails the test on a traceback,
    which no input may cause."""
    result = subprocess.run(
        [str(CALPOOL), "--config", str(config), *argv],
        capture_output=True, text=True, timeout=timeout,
        env=dict(env) if env is not None else plain_environment(), check=False,
    )
    assert "Traceback" not in result.stdout + result.stderr
    return result


def write_config(folder: Path, text: str) -> Path:
    """``text`` written to ``folder/calpool.toml``; returns its path."""
    path = folder / "calpool.toml"
    path.write_text(text, encoding="utf-8")
    return path


def migrated_config(folder: Path, text: str) -> Config:
    """:func:`write_config`, then the config loaded and its database
    migrated to the current schema."""
    settings = load_config(write_config(folder, text))
    migrate.upgrade(settings.daemon.database_url)
    return settings
