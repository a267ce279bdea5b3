"""calpool's configuration: one TOML file in, one typed ``Config`` out.

``load_config(path)`` is the entry: it reads, checks and converts the whole
file and returns the ``Config`` (``settings.py``) or raises ``ConfigError``
naming every problem by its key path.  The other modules are its parts:
``schema`` (the file's shape, pydantic), ``values`` and ``durations`` (value
syntaxes), ``sections`` and ``entries`` (cross-key rules), ``checker`` (the
problem collector).
"""

from daemon.config.load import ConfigError, load_config, resolve_secret
from daemon.config.settings import Config

__all__ = ["Config", "ConfigError", "load_config", "resolve_secret"]
