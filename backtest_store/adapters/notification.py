"""Notification: notification rows, upserted by `row["id"]`; reads return every row."""

from typing import Any

from ..models import NotificationItem
from .base import ModeRows


class NotificationAdapter(ModeRows):
    model = NotificationItem
    row_field = "notificationId"

    async def read_notification_data(self) -> list[dict[str, Any]]:
        return await self._read_rows()

    async def write_notification_data(self, rows: list[dict[str, Any]]) -> None:
        await self._write_rows(rows, "rows")
