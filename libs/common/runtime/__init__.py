"""Targets, modules and the process lifecycle (the Loki/Mimir model).

Public surface: `Module`, `ModuleSpec`, `ModuleRegistry`, `Context`, `Runtime`, `Router`.

Exceptions:

    ModuleGraphError       unknown target, internal module asked for, or a dependency cycle
    ModuleFailedError      a module failed to start, or its background work ended
    MissingResourceError   a module used a resource no dependency provides (a programming error)
"""

from libs.common.runtime.context import Context, MissingResourceError
from libs.common.runtime.http import ASGIApp, HttpServer, Router
from libs.common.runtime.modules import Module, ModuleGraphError, ModuleRegistry, ModuleSpec
from libs.common.runtime.runtime import ModuleFailedError, Runtime

__all__ = [
    "ASGIApp",
    "Context",
    "HttpServer",
    "MissingResourceError",
    "Module",
    "ModuleFailedError",
    "ModuleGraphError",
    "ModuleRegistry",
    "ModuleSpec",
    "Router",
    "Runtime",
]
