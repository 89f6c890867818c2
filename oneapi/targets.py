"""Every target a oneapi process can run, with what each depends on.

Services are imported when their target is built, not before: a relay process never imports
the admin's web framework, and `oneapi --version` imports no service at all.
"""

from __future__ import annotations

from libs.common.runtime import Module, ModuleRegistry, ModuleSpec
from libs.common.runtime.infrastructure import add_infrastructure

SERVICES = ("admin", "relay", "billing", "health")


def _admin() -> Module:
    from services.admin.target import AdminModule

    return AdminModule()


def _relay() -> Module:
    from services.relay.target import RelayModule

    return RelayModule()


def _billing() -> Module:
    from services.billing.target import BillingModule

    return BillingModule()


def _health() -> Module:
    from services.health.target import HealthModule

    return HealthModule()


def build_registry() -> ModuleRegistry:
    registry = ModuleRegistry()
    add_infrastructure(registry)
    registry.add(
        ModuleSpec(
            "admin",
            _admin,
            ("schema", "bus", "cache"),
            is_target=True,
            description="management API /api and the web UI; owns the schema and migrations",
        )
    )
    registry.add(
        ModuleSpec(
            "relay",
            _relay,
            ("schema", "bus", "cache"),
            is_target=True,
            description="OpenAI-compatible ingress /v1 and /dashboard; publishes usage",
        )
    )
    registry.add(
        ModuleSpec(
            "billing",
            _billing,
            ("schema", "bus"),
            is_target=True,
            description="consumes usage events and settles quota exactly once",
        )
    )
    registry.add(
        ModuleSpec(
            "health",
            _health,
            ("schema", "bus"),
            is_target=True,
            description="channel tests, balances, automatic disabling and enabling",
        )
    )
    registry.add(
        ModuleSpec(
            "all",
            None,
            SERVICES,
            is_target=True,
            description="every service in one process (the default)",
        )
    )
    return registry
