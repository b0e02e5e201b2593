"""The routing options `ForgeLLM` and `ForgeEmbedding` share (declared once, here)."""

from __future__ import annotations

from typing import Any

import forge_core
from llama_index.core.bridge.pydantic import BaseModel, Field, PrivateAttr, field_validator

__all__ = ["RoutingOptions"]


class RoutingOptions(BaseModel):
    """Which forge configuration to load and the routing settings that override it.

    Each option left ``None`` keeps the configured value; the set ones become
    `forge_core.routing_overrides`, so both classes route exactly as ``Forge`` would.
    """

    _forge_source: forge_core.ForgeSource = PrivateAttr(default_factory=forge_core.ForgeSource)

    config: forge_core.ForgeConfig | str | None = Field(
        default=None,
        description=(
            "A forge_core.ForgeConfig, or the path of a forge.yaml; None uses $FORGE_CONFIG, "
            "./forge.yaml, the user config dir, then forge's defaults."
        ),
    )
    fallback_order: list[str] | None = Field(
        default=None,
        description="Providers or deployments (kinds, names, name:model) to try, in order "
        "(providers.fallback.order); None keeps config.",
    )
    local_first: bool | None = Field(
        default=None,
        description="Try local providers before cloud ones; None keeps the configured value.",
    )
    local_only: bool | None = Field(
        default=None,
        description="Never send anything to a cloud provider; None keeps the configured value.",
    )
    timeout: float | None = Field(
        default=None,
        gt=0,
        description=(
            "Seconds bounding a whole request, fallbacks included "
            "(forge's routing.total_timeout_seconds); None keeps the configured value."
        ),
    )

    @field_validator("config", mode="before")
    @classmethod
    def _path_to_str(cls, value: Any) -> Any:
        """Accept any ``os.PathLike`` as a config path."""
        if hasattr(value, "__fspath__"):
            return str(value.__fspath__())
        return value

    @property
    def overrides(self) -> dict[str, Any]:
        """The ``Forge(overrides=...)`` mapping built from the options that are set."""
        return forge_core.routing_overrides(
            fallback_order=self.fallback_order,
            local_first=self.local_first,
            local_only=self.local_only,
            timeout=self.timeout,
        )

    def _shared_forge(self) -> forge_core.Forge:
        """The `forge_core.Forge` for ``config`` and these options (`forge_core.shared_forge`),
        shared by every model built with the same ones; a call costs a comparison
        (`forge_core.ForgeSource`)."""
        return self._forge_source.get(self.config, overrides=self.overrides)
