"""Dictionary (backtest-kit 20): one `{id, data: {key: {value, when}}, when}` snapshot per signal and name."""

from .base import PayloadItem, context_index, field_index


class DictionaryItem(PayloadItem):
    signalId: str
    dictionaryName: str
    when: int | None = None

    class Settings:
        name = "dictionary-items"
        indexes = [context_index("dictionary", "signalId", "dictionaryName"), field_index("dictionary", "when")]
