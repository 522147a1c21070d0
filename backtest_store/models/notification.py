"""Notification: the 31-variant notification rows, upserted by id."""

from typing import ClassVar

from .base import PayloadItem, context_index


class NotificationItem(PayloadItem):
    windowed: ClassVar[bool] = True
    backtest: bool
    notificationId: str

    class Settings:
        name = "notification-items"
        indexes = [context_index("notification", "backtest", "notificationId")]
