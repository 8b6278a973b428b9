"""Load ``function_app.py`` and read its functions the way the Python worker indexes them."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import sys
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from azure.functions.decorators.function_app import Function, FunctionRegister

from devhost.local_queue import validate_queue_name
from devhost.local_settings import LocalSettings
from devhost.ncrontab import Schedule, parse_schedule
from shared.errors import ConfigError

# get_functions() may run only once per app object (a second call fails on "duplicate" names).
_INDEXED: weakref.WeakKeyDictionary[FunctionRegister, list[Function]] = (
    weakref.WeakKeyDictionary()
)


@dataclass(frozen=True, slots=True)
class IndexedFunction:
    name: str
    arg_name: str
    call: Callable[..., Any] = field(repr=False)
    wants_context: bool


@dataclass(frozen=True, slots=True)
class TimerFunction(IndexedFunction):
    schedule: Schedule
    run_on_startup: bool


@dataclass(frozen=True, slots=True)
class QueueFunction(IndexedFunction):
    queue: str
    connection: str
    many: bool
    argument_kind: str  # "message", "str" or "bytes"
    auto_complete: bool = True
    sessions: bool = False  # is_sessions_enabled: one session at a time per receiver, in order


@dataclass(frozen=True, slots=True)
class HttpFunction(IndexedFunction):
    route: str
    methods: frozenset[str] | None  # None: every method
    auth_level: str  # "anonymous", "function" or "admin"


@dataclass(frozen=True, slots=True)
class FunctionIndex:
    timers: Sequence[TimerFunction]
    queues: Sequence[QueueFunction]
    http: Sequence[HttpFunction]

    def names(self) -> list[str]:
        return [f.name for f in (*self.timers, *self.queues, *self.http)]


def load_function_app(script: str, *, app_dir: str | Path | None = None) -> FunctionRegister:
    """Import the app script (a module name or a ``.py`` path) and return its one app object."""
    module = _import(script, Path(app_dir) if app_dir else None)
    apps = [value for value in vars(module).values() if isinstance(value, FunctionRegister)]
    if not apps:
        raise ConfigError(f"{script}: could not find a top-level func.FunctionApp instance")
    if len(apps) > 1:
        raise ConfigError(f"{script}: more than one function app instance is defined")
    return apps[0]


def _import(script: str, app_dir: Path | None) -> ModuleType:
    if script.endswith(".py"):
        path = Path(script) if app_dir is None else app_dir / script
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None or not path.exists():
            raise ConfigError(f"function app script {path} does not exist")
        if str(path.parent) not in sys.path:
            sys.path.insert(0, str(path.parent))  # the worker imports the app from its folder
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module
    if app_dir is not None and str(app_dir) not in sys.path:
        sys.path.insert(0, str(app_dir))
    return importlib.import_module(script)


def functions_of(app: FunctionRegister) -> list[Function]:
    """``app.get_functions()``, called at most once per app object."""
    if app not in _INDEXED:
        _INDEXED[app] = app.get_functions()
    return _INDEXED[app]


def index_functions(app: FunctionRegister, settings: LocalSettings) -> FunctionIndex:
    """Read every function's trigger, resolving ``%SETTING%`` expressions from ``settings``."""
    timers: list[TimerFunction] = []
    queues: list[QueueFunction] = []
    http: list[HttpFunction] = []
    for function in functions_of(app):
        name = str(function.get_function_name())
        # Any: the attributes (schedule, queue_name, route ...) belong to each trigger subclass.
        trigger: Any = function.get_trigger()
        if trigger is None:  # the library refuses this at build time; kept for the type checker
            raise ConfigError(f"function {name} has no trigger")
        user = function.get_user_function()
        parameters = inspect.signature(user).parameters
        common: dict[str, Any] = {
            "name": name, "arg_name": trigger.name, "call": user,
            "wants_context": "context" in parameters,
        }
        for binding in function.get_bindings():
            if binding is not trigger and binding.type != "http":
                raise ConfigError(
                    f"function {name}: the dev host does not support {binding.type} bindings"
                )
        if trigger.type == "timerTrigger":
            expression = settings.resolve(str(trigger.schedule), what=f"function {name} schedule")
            timers.append(TimerFunction(
                **common, schedule=parse_schedule(expression),
                run_on_startup=bool(trigger.run_on_startup),
            ))
        elif trigger.type == "serviceBusTrigger":
            queues.append(_queue_function(name, trigger, parameters, common, settings))
        elif trigger.type == "httpTrigger":
            methods = trigger.methods
            http.append(HttpFunction(
                **common,
                route=settings.resolve(str(trigger.route), what=f"function {name} route"),
                methods=None if not methods else frozenset(str(m).upper() for m in methods),
                auth_level=str(getattr(trigger.auth_level, "value", trigger.auth_level)).lower(),
            ))
        else:
            raise ConfigError(f"function {name}: the dev host does not run {trigger.type} triggers")
    _check_session_flags(queues)
    return FunctionIndex(timers, queues, http)


def _check_session_flags(queues: Sequence[QueueFunction]) -> None:
    """A queue either requires sessions or not, so its triggers must all agree."""
    first: dict[str, QueueFunction] = {}
    for function in queues:
        other = first.setdefault(function.queue, function)
        if other.sessions != function.sessions:
            raise ConfigError(
                f"functions {other.name} and {function.name} both listen on queue"
                f" {function.queue}, but only one of them has is_sessions_enabled"
            )


def _queue_function(
    name: str,
    trigger: Any,
    parameters: Any,
    common: dict[str, Any],
    settings: LocalSettings,
) -> QueueFunction:
    if getattr(trigger, "queue_name", None) is None:
        raise ConfigError(f"function {name}: topic subscriptions are not supported by the dev host")
    queue = settings.resolve(str(trigger.queue_name), what=f"function {name} queue_name")
    validate_queue_name(queue)
    connection = settings.resolve(str(trigger.connection), what=f"function {name} connection")
    many = str(getattr(trigger.cardinality, "value", trigger.cardinality)).lower() == "many"
    kind = _argument_kind(getattr(parameters.get(trigger.name), "annotation", ""))
    auto_complete = getattr(trigger, "auto_complete_messages", None)
    return QueueFunction(**common, queue=queue, connection=connection, many=many,
                         argument_kind=kind, auto_complete=auto_complete is not False,
                         sessions=bool(trigger.is_sessions_enabled))


def _argument_kind(annotation: object) -> str:
    """What the function's parameter wants: the message object, or just its body."""
    text = annotation.__name__ if isinstance(annotation, type) else str(annotation)
    match = re.fullmatch(r"(?:typing\.)?(?:[Ll]ist\[)?(str|bytes)\]?", text)
    return match.group(1) if match else "message"
