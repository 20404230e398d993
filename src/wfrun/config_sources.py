"""Where settings come from, checked before pydantic reads them.

``WFRUN_*`` environment variables (nested groups with ``__``) and the TOML file named by
``WFRUN_CONFIG`` are walked against the settings model: an unknown name or key, a missing or
unreadable file and bad TOML are each a :class:`~wfrun.errors.ConfigError` of one line naming
the key and the closest valid one. The walk also records where each value came from, which
``wfrun config show`` prints and which names the source of a value pydantic refuses.

Generic over the model (``wfrun.config`` passes ``Settings``): a new settings group is just a
new field there.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from wfrun.errors import ConfigError

PREFIX = "WFRUN_"
DELIMITER = "__"
CONFIG_VARIABLE = "WFRUN_CONFIG"
NOT_SETTINGS = frozenset(
    {
        CONFIG_VARIABLE,  # the TOML file of settings (read here)
        "WFRUN_VENV",  # ./dev: the virtualenv to install into
        "WFRUN_TEST_PG_DSN",  # tests and benchmarks: the PostgreSQL admin DSN
        "WFRUN_MUTANT",  # tests/support/mutants.py: the mutant a test run applies
        "WFRUN_BASE_URL",  # wfrun_client and wfrun-client: the server to talk to
        "WFRUN_API_KEY",  # wfrun_client and wfrun-client: the key to use
    }
)
"""``WFRUN_*`` variables that are not settings, so never refused as unknown ones."""
COMMAND_LINE = "command line"
DEFAULT = "default"
SECRET: dict[str, Any] = {"mask": "all"}
"""``json_schema_extra`` of a secret setting: ``wfrun config show`` prints it masked."""
URL_PASSWORD: dict[str, Any] = {"mask": "password"}
"""``json_schema_extra`` of a URL setting whose password ``wfrun config show`` masks."""
DATABASE_SCHEMES = frozenset(
    {"sqlite", "sqlite+pysqlite", "sqlite+aiosqlite", "postgresql", "postgres"}
    | {"postgresql+asyncpg", "postgresql+psycopg2"}
)


@dataclass(frozen=True)
class Sources:
    """One load's inputs: the config file read and where each value came from."""

    config_file: Path | None = None
    origins: dict[str, str] = field(default_factory=dict)
    """Dotted path (``worker.concurrency``) → ``command line``, ``env WFRUN_…`` or
    ``config file PATH``; a path that is absent came from its default."""

    def origin(self, path: str) -> str:
        """Where the value at dotted ``path`` came from (a group given whole counts)."""
        parts = path.split(".")
        for size in range(len(parts), 0, -1):
            found = self.origins.get(".".join(parts[:size]))
            if found is not None:
                return found
        return DEFAULT

    def explain(self, exc: ValidationError, *, hide: frozenset[str] = frozenset()) -> str:
        """One line for the first value pydantic refused, naming its source (never the value
        of a path in ``hide``)."""
        errors = exc.errors()
        first = errors[0]
        path = ".".join(str(part) for part in first["loc"])
        origin = self.origin(path)
        if origin.startswith("env "):
            where = origin.removeprefix("env ")
        elif origin == DEFAULT:
            where = path
        else:
            where = f"{path} ({origin})"
        message = str(first["msg"]).removeprefix("Value error, ")
        value = first.get("input")
        if isinstance(value, str | int | float) and path not in hide and len(str(value)) <= 60:
            message += f" (got {value!r})"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return f"invalid setting {where}: {message}{more}"


def gather(
    model: type[BaseModel], environ: Mapping[str, str], overrides: Mapping[str, Any]
) -> Sources:
    """Check the environment and the config file against ``model``; return their origins.

    Raises:
        ConfigError: an unknown ``WFRUN_*`` variable or TOML key (all of them, one line), a
            missing or unreadable config file, or bad TOML.
    """
    origins = {key: COMMAND_LINE for key in overrides}
    problems: list[str] = []
    for name in sorted(environ):
        if not name.upper().startswith(PREFIX) or name.upper() in NOT_SETTINGS:
            continue
        path = _env_path(model, name)
        if path is None:
            problems.append(_unknown(name, list(env_names(model))))
            continue
        origins.setdefault(".".join(path), f"env {name}")
        nested = _json_object(environ[name])
        target = _model_at(model, path)
        if nested is not None and target is not None:
            problems += _unknown_keys(target, nested, path, f"in {name}")
    config_file = environ.get(CONFIG_VARIABLE) or None
    path_of_file = Path(config_file) if config_file else None
    if path_of_file is not None:
        data = read_toml(path_of_file)
        problems += _unknown_keys(model, data, (), f"in {path_of_file}")
        for leaf in _leaves(model, data, ()):
            origins.setdefault(leaf, f"config file {path_of_file}")
    if problems:
        raise ConfigError("; ".join(problems))
    return Sources(config_file=path_of_file, origins=origins)


def read_toml(path: Path) -> dict[str, Any]:
    """The TOML document at ``path`` (named by ``WFRUN_CONFIG``), or a one-line ConfigError."""
    fix = f"fix it or unset {CONFIG_VARIABLE}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} ({CONFIG_VARIABLE}) does not exist; {fix}") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        message = f"cannot read config file {path} ({CONFIG_VARIABLE}): {reason}; {fix}"
        raise ConfigError(message) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\s*\(at line (\d+), column (\d+)\)$", str(exc))
        reason = str(exc)[: found.start()] if found else str(exc)
        where = f"{path}:{found.group(1)}:{found.group(2)}" if found else str(path)
        raise ConfigError(f"{where}: invalid TOML: {reason}; {fix}") from None


def database_scheme_problem(url: str | None) -> str | None:
    """Why ``url`` names no database wfrun speaks (never repeating the URL: it may hold a
    password), or None."""
    scheme = (url or "sqlite://").partition("://")[0].lower()
    if scheme in DATABASE_SCHEMES:
        return None
    return (
        f"unknown database scheme {scheme!r}; "
        "expected sqlite:///PATH or postgresql://USER@HOST:PORT/DATABASE"
    )


def mask_of(model: type[BaseModel], name: str) -> str | None:
    """``all``, ``password`` (of a URL) or None: how ``wfrun config show`` prints a field."""
    extra = model.model_fields[name].json_schema_extra
    return str(extra["mask"]) if isinstance(extra, dict) and "mask" in extra else None


def masked_paths(model: type[BaseModel], prefix: str = "") -> frozenset[str]:
    """Dotted paths of every masked field (their values never appear in messages)."""
    found: set[str] = set()
    for name, info in model.model_fields.items():
        sub = _submodel(info.annotation)
        if sub is not None:
            found |= masked_paths(sub, f"{prefix}{name}.")
        elif mask_of(model, name):
            found.add(prefix + name)
    return frozenset(found)


def env_names(model: type[BaseModel], prefix: str = PREFIX) -> Iterator[str]:
    """Every ``WFRUN_*`` name that is a setting or a group of settings."""
    for name, info in model.model_fields.items():
        full = prefix + name.upper()
        yield full
        sub = _submodel(info.annotation)
        if sub is not None:
            yield from env_names(sub, full + DELIMITER)


def _env_path(model: type[BaseModel], name: str) -> tuple[str, ...] | None:
    """The field path a variable sets (``WFRUN_WORKER__CONCURRENCY`` → worker.concurrency);
    None when it names no field. Below a ``dict[str, Model]`` field one part is a free key."""
    path: list[str] = []
    current: type[BaseModel] | None = model
    values: type[BaseModel] | None = None
    for part in name[len(PREFIX) :].lower().split(DELIMITER):
        if values is not None:
            path.append(part)
            current, values = values, None
            continue
        if current is None or part not in current.model_fields:
            return None
        annotation = current.model_fields[part].annotation
        path.append(part)
        current, values = _submodel(annotation), _values_model(annotation)
    return tuple(path)


def _model_at(model: type[BaseModel], path: tuple[str, ...]) -> type[BaseModel] | None:
    current: type[BaseModel] | None = model
    for part in path:
        info = current.model_fields.get(part) if current is not None else None
        current = _submodel(info.annotation) if info is not None else None
    return current


def _unknown_keys(
    model: type[BaseModel], data: Mapping[str, Any], prefix: tuple[str, ...], where: str
) -> list[str]:
    """Each key of ``data`` (at any depth) that is no field of ``model``, as one phrase."""
    problems: list[str] = []
    for key, value in data.items():
        info = model.model_fields.get(key)
        if info is None:
            known = [".".join((*prefix, name)) for name in model.model_fields]
            problems.append(_unknown(".".join((*prefix, key)), known, where))
            continue
        sub, values = _submodel(info.annotation), _values_model(info.annotation)
        if sub is not None and isinstance(value, Mapping):
            problems += _unknown_keys(sub, value, (*prefix, key), where)
        elif values is not None and isinstance(value, Mapping):
            for name, item in value.items():
                if isinstance(item, Mapping):
                    problems += _unknown_keys(values, item, (*prefix, key, name), where)
    return problems


def _leaves(model: type[BaseModel], data: Mapping[str, Any], prefix: tuple[str, ...]) -> list[str]:
    found: list[str] = []
    for key, value in data.items():
        info = model.model_fields.get(key)
        sub = _submodel(info.annotation) if info is not None else None
        if sub is not None and isinstance(value, Mapping):
            found += _leaves(sub, value, (*prefix, key))
        else:
            found.append(".".join((*prefix, key)))
    return found


def _unknown(name: str, known: list[str], where: str = "") -> str:
    location = f" {where}" if where else ""
    by_key = {k.upper().removeprefix(PREFIX): k for k in known}  # compare what differs
    close = difflib.get_close_matches(name.upper().removeprefix(PREFIX), list(by_key), n=1)
    if not close:
        return f"unknown setting {name}{location} (wfrun config show lists every setting)"
    suggestion = by_key[close[0]]
    return f"unknown setting {name}{location} (did you mean {suggestion}?)"


def _json_object(value: str) -> dict[str, Any] | None:
    if not value.lstrip().startswith("{"):
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None  # pydantic names the variable and the parse error
    return parsed if isinstance(parsed, dict) else None


def _submodel(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _values_model(annotation: Any) -> type[BaseModel] | None:
    """The value model of a ``dict[str, Model]`` field (e.g. Seedance prices)."""
    if get_origin(annotation) is dict and len(get_args(annotation)) == 2:
        return _submodel(get_args(annotation)[1])
    return None
