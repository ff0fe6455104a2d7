"""Thread ids namespaced by integration, so two mailboxes (or workspaces) of one tenant
never share a thread by accident.

A provider's thread id is unique within what it was read from: a Gmail thread within
its mailbox, a Slack `thread_ts` within its channel, a generic `threadId` within its
sync. The shard's `threadId`, which linking's thread cascade and the ML facts group
by, is `<integrationId>:<provider thread id>` (`<integrationId>:<channelId>:<thread id>`
for chat); `providerThreadId` keeps the provider's own.
"""

from __future__ import annotations

from typing import Any

__all__ = ["namespace_thread"]


def namespace_thread(shard_type: str, integration_id: str, data: dict[str, Any]) -> None:
    """Set `threadId` to its namespaced form and `providerThreadId` to the provider's,
    in place; nothing for data without a thread or already namespaced."""
    if "providerThreadId" in data:
        return
    thread = data.get("threadId")
    if thread is None or (isinstance(thread, str) and not thread.strip()):
        return
    data["providerThreadId"] = thread
    channel = data.get("channelId") if shard_type == "Message" else None
    scope = f"{integration_id}:{channel}" if channel else integration_id
    data["threadId"] = f"{scope}:{thread}"
