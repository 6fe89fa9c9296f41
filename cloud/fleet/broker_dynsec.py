"""Node accounts kept by Mosquitto's dynamic-security plugin, over MQTT.

The second backend of cloud.fleet.broker_accounts: instead of writing files next
to the broker, the cloud sends JSON commands to the plugin's control topic
(`$CONTROL/dynamic-security/v1`) and reads their answers on `.../response`,
logged in with its own broker account, which must hold the plugin's admin role
(`mosquitto_ctrl dynsec init`). So the broker may run on another machine, and a
change applies without a reload: deleting a client also disconnects it.

Mosquitto 2.0.11's plugin does not substitute `%u` in ACL topics (tried with the
real broker), so each node gets a role of its own, `ruang-node-<id>`, naming its
topics literally; the role prefix is also how the start-up sync tells the node accounts the cloud
made from the operator's own. The cloud's account gets the `ruang-cloud` role
over the whole tree. docs/operations.md "Broker accounts over the network".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncIterator, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cloud.db.models_fleet import NodeCredential
from cloud.fleet.broker_credentials import NODE_READ, NODE_WRITE
from cloud.settings import CloudSettings
from ruang.backoff import Backoff
from ruang.contract import TOPIC_ROOT
from ruang.tasks import cancel_and_wait
from ruang.tls import client_tls_context

log = logging.getLogger(__name__)

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
NODE_ROLE_PREFIX = "ruang-node-"
CLOUD_ROLE = "ruang-cloud"
MANAGED_TEXT = "Ruang node, managed by the cloud"
# The plugin's answers (Mosquitto 2.0) when the thing to delete is already gone.
CLIENT_NOT_FOUND = "Client not found"
ROLE_NOT_FOUND = "Role not found"
ALREADY_GONE = (CLIENT_NOT_FOUND, ROLE_NOT_FOUND)

Command = dict[str, Any]


class BrokerAdminError(OSError):
    """The plugin could not be reached, did not answer in time, or refused a command.

    An OSError, like a failed file write of the other backend: the enrolment routes
    answer 503 for either and roll the database back.
    """


@dataclass(frozen=True)
class Acl:
    kind: str  # the plugin's acltype: publishClientSend, subscribePattern, ...
    topic: str
    allow: bool = True
    priority: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "acltype": self.kind,
            "topic": self.topic,
            "allow": self.allow,
            "priority": self.priority,
        }


@dataclass(frozen=True)
class Reply:
    command: str
    error: str | None
    data: dict[str, Any] = field(default_factory=dict)


def node_role(node_id: str) -> str:
    return f"{NODE_ROLE_PREFIX}{node_id}"


def node_acls(node_id: str) -> list[Acl]:
    """NODE_WRITE/NODE_READ of the files backend, with the node's id written out."""
    if any(c in node_id for c in "+#/\0") or not node_id:
        # Would widen the topics the role grants.
        raise ValueError(f"{node_id!r} cannot be a node's broker username")
    base = f"{TOPIC_ROOT}/nodes/{node_id}"
    acls = [Acl("publishClientSend", f"{base}/{sub}") for sub in NODE_WRITE]
    for sub in NODE_READ:
        acls += [
            Acl("subscribePattern", f"{base}/{sub}"),
            Acl("publishClientReceive", f"{base}/{sub}"),
        ]
    return acls


def cloud_acls() -> list[Acl]:
    tree = f"{TOPIC_ROOT}/#"
    kinds = ("publishClientSend", "publishClientReceive", "subscribePattern", "unsubscribePattern")
    return [Acl(kind, tree) for kind in kinds]


class DynsecSession:
    """One connection logged in to the control topic; `run` sends a request and waits."""

    def __init__(self, client: aiomqtt.Client, timeout_s: float) -> None:
        self._client = client
        self._timeout_s = timeout_s
        self._messages = aiter(client.messages)

    async def run(self, *commands: Command) -> list[Reply]:
        """Sends `commands` as one request; their replies, in order."""
        if not commands:
            return []
        # Every admin client hears every answer: ids tell ours from those of other
        # cloud processes or an operator's mosquitto_ctrl.
        ids = [secrets.token_hex(8) for _ in commands]
        sent = [
            {**command, "correlationData": cid} for command, cid in zip(commands, ids, strict=True)
        ]
        await self._client.publish(CONTROL_TOPIC, json.dumps({"commands": sent}), qos=1)
        replies: dict[str, Reply] = {}
        try:
            async with asyncio.timeout(self._timeout_s):
                while len(replies) < len(ids):
                    message = await anext(self._messages)
                    replies.update(_replies(message.payload, ids))
        except TimeoutError:
            raise BrokerAdminError(
                f"the broker did not answer {commands[0]['command']} within {self._timeout_s:g} s;"
                " is the dynamic-security plugin loaded?"
            ) from None
        return [replies[cid] for cid in ids]

    async def ok(self, *commands: Command, tolerate: Collection[str] = ()) -> list[Reply]:
        """`run`, raising BrokerAdminError for an error not in `tolerate`."""
        replies = await self.run(*commands)
        for reply in replies:
            if reply.error is not None and reply.error not in tolerate:
                raise BrokerAdminError(f"the broker refused {reply.command}: {reply.error}")
        return replies


def _replies(payload: Any, wanted: Iterable[str]) -> dict[str, Reply]:
    wanted = set(wanted)
    try:
        answers = json.loads(payload)["responses"]
    except (ValueError, KeyError, TypeError):
        return {}
    found = {}
    for answer in answers if isinstance(answers, list) else []:
        cid = answer.get("correlationData") if isinstance(answer, dict) else None
        if cid in wanted:
            found[cid] = Reply(
                str(answer.get("command")), answer.get("error"), answer.get("data") or {}
            )
    return found


def _refused(code: int | ReasonCode) -> bool:
    # SUBACK return codes of 0x80 and above refuse the subscription.
    return (code.value if isinstance(code, ReasonCode) else code) >= 0x80


@contextlib.asynccontextmanager
async def dynsec_session(settings: CloudSettings) -> AsyncIterator[DynsecSession]:
    """A short connection to the broker as the cloud (settings.mqtt_url and mqtt_login)."""
    broker = settings.mqtt_broker
    username, password = settings.mqtt_login
    timeout_s = settings.broker_admin_timeout_s
    try:
        async with aiomqtt.Client(
            broker.host,
            broker.port,
            username=username,
            password=password,
            # Never the id of the cloud's persistent session, which this would kick off.
            identifier=f"{settings.mqtt_client_id}-accounts-{secrets.token_hex(4)}",
            tls_context=client_tls_context(settings.mqtt_ca_file) if broker.tls else None,
            timeout=timeout_s,
        ) as client:
            granted = await client.subscribe(RESPONSE_TOPIC, qos=1)
            if any(_refused(code) for code in granted):
                raise BrokerAdminError(
                    f"the broker refused {username!r} the dynamic-security answers;"
                    " the account needs the plugin's admin role"
                )
            yield DynsecSession(client, timeout_s)
    except aiomqtt.MqttError as exc:
        raise BrokerAdminError(
            f"dynamic-security request to {broker.host}:{broker.port} failed: {exc}"
        ) from exc


async def ensure_role(session: DynsecSession, rolename: str, acls: list[Acl]) -> None:
    """Makes `rolename` grant exactly `acls`, creating it if needed (idempotent)."""
    (reply,) = await session.ok(
        {"command": "getRole", "rolename": rolename}, tolerate=[ROLE_NOT_FOUND]
    )
    if reply.error == ROLE_NOT_FOUND:
        await session.ok(
            {"command": "createRole", "rolename": rolename, "acls": [a.as_json() for a in acls]}
        )
        return
    current = {
        Acl(a["acltype"], a["topic"], bool(a.get("allow")), int(a.get("priority", 0)))
        for a in reply.data.get("role", {}).get("acls", [])
    }
    wanted = set(acls)
    changes: list[Command] = [
        {"command": "removeRoleACL", "rolename": rolename, "acltype": a.kind, "topic": a.topic}
        for a in current - wanted
    ]
    changes += [
        {"command": "addRoleACL", "rolename": rolename, **a.as_json()} for a in wanted - current
    ]
    await session.ok(*changes)


def node_account_commands(node_id: str, password: str) -> list[Command]:
    """Replaces the node's client and role: a re-enrolled node's old password stops working."""
    role = node_role(node_id)
    acls = [a.as_json() for a in node_acls(node_id)]
    # Client before role: 2.0.11 leaves a dangling role in a client whose role was deleted.
    return [
        *drop_node_commands(node_id),
        {"command": "createRole", "rolename": role, "acls": acls},
        {
            "command": "createClient",
            "username": node_id,
            "password": password,
            "textname": MANAGED_TEXT,
            "roles": [{"rolename": role}],
        },
    ]


def drop_node_commands(node_id: str) -> list[Command]:
    return [
        {"command": "deleteClient", "username": node_id},
        {"command": "deleteRole", "rolename": node_role(node_id)},
    ]


async def active_nodes(conn: AsyncConnection) -> set[str]:
    rows = await conn.execute(
        select(NodeCredential.node_id).where(NodeCredential.revoked.is_(False))
    )
    return {node for (node,) in rows}


class DynsecAccounts:
    """Node accounts in the dynamic-security plugin; a BrokerAccounts.

    `lock` serialises this process's changes, like the files backend's; the
    broker itself applies each command at once, so there is nothing to do after
    the commit.
    """

    def __init__(self, settings: CloudSettings) -> None:
        self._settings = settings
        self.lock = asyncio.Lock()
        self._retry: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return True

    async def node_enrolled(self, conn: AsyncConnection, node_id: str, password: str) -> None:
        async with dynsec_session(self._settings) as session:
            await session.ok(
                *node_account_commands(node_id, password),
                tolerate=ALREADY_GONE,
            )

    async def node_revoked(self, conn: AsyncConnection, node_id: str) -> None:
        async with dynsec_session(self._settings) as session:
            await session.ok(*drop_node_commands(node_id), tolerate=ALREADY_GONE)

    def committed(self) -> None:
        """Nothing to reload: the plugin applied each command as it came."""

    async def sync(self, conn: AsyncConnection) -> None:
        """Ensures the roles and removes node accounts without an active credential.

        An active credential the broker does not know cannot be restored (only its
        hash is kept): it is named in a warning, and that node must re-enrol.
        """
        cloud_user = self._settings.mqtt_login[0]
        async with self.lock:
            await self._ensure_cloud_account(cloud_user)
            async with dynsec_session(self._settings) as session:
                await self._sync_nodes(session, conn, cloud_user)

    async def _ensure_cloud_account(self, cloud_user: str | None) -> None:
        for attempt in (1, 2):
            try:
                async with dynsec_session(self._settings) as session:
                    await ensure_role(session, CLOUD_ROLE, cloud_acls())
                    await self._ensure_cloud_role(session, cloud_user)
                return
            except BrokerAdminError as exc:
                if attempt == 2:
                    raise
                # Changing the cloud's role, or giving it to the cloud, makes the plugin
                # disconnect every connection of the cloud's account: this one, and the
                # ingestion's (which reconnects). A second pass finds the change made.
                log.info("broker dropped the cloud's connections on a role change: %s", exc)

    async def _sync_nodes(
        self, session: DynsecSession, conn: AsyncConnection, cloud_user: str | None
    ) -> None:
        clients, roles = await session.ok(
            {"command": "listClients", "verbose": True, "count": -1},
            {"command": "listRoles", "count": -1},
        )
        managed = {
            c["username"]
            for c in clients.data.get("clients", [])
            if c.get("username") != cloud_user
            and any(
                str(r.get("rolename", "")).startswith(NODE_ROLE_PREFIX) for r in c.get("roles", [])
            )
        }
        # Read after listing the broker's clients, so a node another process enrolled
        # in between is seen as active rather than deleted as stale.
        active = await active_nodes(conn)
        stale = sorted(managed - active)
        orphan_roles = {
            r
            for r in roles.data.get("roles", [])
            if isinstance(r, str) and r.startswith(NODE_ROLE_PREFIX)
        } - {node_role(node) for node in active}
        commands = [cmd for node in stale for cmd in drop_node_commands(node)]
        commands += [
            {"command": "deleteRole", "rolename": role}
            for role in sorted(orphan_roles - {node_role(n) for n in stale})
        ]
        await session.ok(*commands, tolerate=ALREADY_GONE)
        for node in sorted(managed & active):
            # A new channel in NODE_WRITE reaches the nodes enrolled before it.
            await ensure_role(session, node_role(node), node_acls(node))
        if stale:
            log.info("removed broker accounts without an active credential: %s", ", ".join(stale))
        unknown = sorted(active - managed)
        if unknown:
            log.warning(
                "the broker has no account for these enrolled nodes; their passwords exist"
                " only as hashes, so each must re-enrol (new enrolment token): %s",
                ", ".join(unknown),
            )

    async def _ensure_cloud_role(self, session: DynsecSession, cloud_user: str | None) -> None:
        (reply,) = await session.ok(
            {"command": "getClient", "username": cloud_user}, tolerate=[CLIENT_NOT_FOUND]
        )
        if reply.error is not None:
            log.warning(
                "the cloud's broker account %r is not one of the plugin's clients;"
                " it cannot be given the %s role",
                cloud_user,
                CLOUD_ROLE,
            )
            return
        roles = {r.get("rolename") for r in reply.data.get("client", {}).get("roles", [])}
        if CLOUD_ROLE not in roles:
            # Only when missing: 2.0.11 answers "Internal error" to adding a role twice.
            await session.ok(
                {"command": "addClientRole", "username": cloud_user, "rolename": CLOUD_ROLE}
            )

    async def start(self, engine: AsyncEngine) -> None:
        """The start-up sync; a broker that is down is retried in the background.

        The cloud serves meanwhile: enrolments answer 503 until the broker is back.
        """
        try:
            await self._sync_with(engine)
        except BrokerAdminError as exc:
            log.error("broker accounts not synchronised, retrying in the background: %s", exc)
            self._retry = asyncio.create_task(self._retry_sync(engine), name="ruang-dynsec-sync")

    async def stop(self) -> None:
        if self._retry is not None:
            await cancel_and_wait(self._retry)
            self._retry = None

    async def _sync_with(self, engine: AsyncEngine) -> None:
        async with engine.connect() as conn:
            await self.sync(conn)

    async def _retry_sync(self, engine: AsyncEngine) -> None:
        backoff = Backoff(base=1.0, cap=60.0)
        while True:
            await asyncio.sleep(backoff.next_delay())
            try:
                await self._sync_with(engine)
            except BrokerAdminError as exc:
                log.debug("broker accounts still not synchronised: %s", exc)
                continue
            log.info("broker accounts synchronised")
            return
