"""Every target a oneapi process can run, with what each depends on."""

from __future__ import annotations

from libs.common.runtime import ModuleRegistry, ModuleSpec
from libs.common.runtime.infrastructure import add_infrastructure
from services.admin.target import AdminModule
from services.billing.target import BillingModule
from services.health.target import HealthModule
from services.relay.target import RelayModule

SERVICES = ("admin", "relay", "billing", "health")


def build_registry() -> ModuleRegistry:
    registry = ModuleRegistry()
    add_infrastructure(registry)
    registry.add(
        ModuleSpec(
            "admin",
            AdminModule,
            ("schema", "bus", "cache"),
            is_target=True,
            description="management API /api and the web UI; owns the schema and migrations",
        )
    )
    registry.add(
        ModuleSpec(
            "relay",
            RelayModule,
            ("schema", "bus", "cache"),
            is_target=True,
            description="OpenAI-compatible ingress /v1 and /dashboard; publishes usage",
        )
    )
    registry.add(
        ModuleSpec(
            "billing",
            BillingModule,
            ("schema", "bus"),
            is_target=True,
            description="consumes usage events and settles quota exactly once",
        )
    )
    registry.add(
        ModuleSpec(
            "health",
            HealthModule,
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
