"""Risk: the active positions map as `[key, position]` pairs."""

from typing import Any, ClassVar

from .base import Item, context_index, field_index


class RiskItem(Item):
    riskName: str
    exchangeName: str
    positions: Any = []
    when: int | None = None

    value_field: ClassVar[str] = "positions"

    class Settings:
        name = "risk-items"
        indexes = [context_index("risk", "riskName", "exchangeName"), field_index("risk", "when")]
