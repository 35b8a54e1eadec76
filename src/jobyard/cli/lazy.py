"""Modules the server commands need, loaded on first use: a user command (`jobyard jobs ls`)
talks to a server through `jobyard.client` and should not pay for importing the server
(SQLAlchemy, the services, the worker) before it can start."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_module(name: str) -> ModuleType:
    """`name`, imported when one of its attributes is first read (`importlib`'s LazyLoader);
    the module already, if something imported it."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(name)
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
