"""Who keeps the broker's node accounts: the one interface both backends offer.

`files` (cloud.fleet.broker_credentials) writes Mosquitto's password and ACL
files and signals the broker, which must run next to the cloud; `dynsec`
(cloud.fleet.broker_dynsec) sends commands to Mosquitto's dynamic-security
plugin over MQTT, so it may run anywhere. settings.broker_accounts picks one
(docs/operations.md "Broker accounts over the network"); the enrolment routes
and start-up use them alike.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cloud.fleet.broker_credentials import BrokerFiles
from cloud.fleet.broker_dynsec import DynsecAccounts
from cloud.settings import CloudSettings


class BrokerAccounts(Protocol):
    """The enrolment routes hold `lock` around "change credentials, tell the broker,
    commit": `node_enrolled`/`node_revoked` run inside the transaction and raise
    OSError when the broker could not be told (nothing is committed then);
    `committed` runs after the commit."""

    lock: asyncio.Lock

    @property
    def enabled(self) -> bool: ...

    async def node_enrolled(self, conn: AsyncConnection, node_id: str, password: str) -> None: ...

    async def node_revoked(self, conn: AsyncConnection, node_id: str) -> None: ...

    def committed(self) -> None: ...

    async def sync(self, conn: AsyncConnection) -> None: ...

    async def start(self, engine: AsyncEngine) -> None:
        """Brings the broker in step with the database at start-up."""

    async def stop(self) -> None: ...


def make_broker_accounts(settings: CloudSettings) -> BrokerAccounts:
    if settings.broker_accounts_kind == "dynsec":
        return DynsecAccounts(settings)
    # Without a password file this one does nothing (the cloud keeps no accounts).
    return BrokerFiles(settings)
