"""Subscriptions: who is told (a webhook or an e-mail address), as which role over which territory, of which
alert kinds. The territory is resolved exactly as a caller's token is (api/caller.py), on every use, so a
subscription gets only the alerts its role could read there, and a distributor moved to another region leaves a
regional subscription's scope at once."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import asyncpg

from query_api.api.caller import Scope, fixed_scope, manager_scope
from sellthrough_runtime.auth import Principal, Role

AlertKind = Literal["overstock", "stockout_risk", "negative_stock"]
ALERT_KINDS: tuple[AlertKind, ...] = ("negative_stock", "stockout_risk", "overstock")

_INSERT = """
INSERT INTO notify_subscriptions (subscription_id, role, region_ids, distributor_ids, kinds, webhook_url, email, secret,
                                  created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
RETURNING subscription_id, role, region_ids, distributor_ids, kinds, webhook_url, email, secret, created_at
"""
_LIST = """
SELECT subscription_id, role, region_ids, distributor_ids, kinds, webhook_url, email, secret, created_at
FROM notify_subscriptions ORDER BY created_at, subscription_id
"""
_GET = """
SELECT subscription_id, role, region_ids, distributor_ids, kinds, webhook_url, email, secret, created_at
FROM notify_subscriptions WHERE subscription_id = $1
"""
_DELETE = "DELETE FROM notify_subscriptions WHERE subscription_id = $1"


@dataclass(frozen=True)
class Subscription:
    subscription_id: str
    role: Role
    region_ids: tuple[str, ...]
    distributor_ids: tuple[str, ...]
    kinds: tuple[str, ...]
    webhook_url: str | None
    email: str | None
    secret: str | None
    created_at: datetime

    @classmethod
    def of(cls, r: asyncpg.Record) -> "Subscription":
        return cls(
            subscription_id=r["subscription_id"],
            role=Role(r["role"]),
            region_ids=tuple(r["region_ids"]),
            distributor_ids=tuple(r["distributor_ids"]),
            kinds=tuple(r["kinds"]),
            webhook_url=r["webhook_url"],
            email=r["email"],
            secret=r["secret"],
            created_at=r["created_at"],
        )

    def principal(self) -> Principal:
        """The principal a token of this role over this territory would carry."""
        return Principal(
            role=self.role,
            subject=f"subscription:{self.subscription_id}",
            distributors=frozenset(self.distributor_ids),
            geo_ids=frozenset(self.region_ids),
        )

    async def scope(self, conn: asyncpg.Connection) -> Scope:
        principal = self.principal()
        fixed = fixed_scope(principal)
        return fixed if fixed is not None else await manager_scope(conn, principal)


async def insert(conn: asyncpg.Connection, s: Subscription) -> Subscription:
    row = await conn.fetchrow(
        _INSERT,
        s.subscription_id,
        s.role.value,
        list(s.region_ids),
        list(s.distributor_ids),
        list(s.kinds),
        s.webhook_url,
        s.email,
        s.secret,
    )
    return Subscription.of(row)


async def all_subscriptions(conn: asyncpg.Connection) -> list[Subscription]:
    return [Subscription.of(r) for r in await conn.fetch(_LIST)]


async def get(conn: asyncpg.Connection, subscription_id: str) -> Subscription | None:
    row = await conn.fetchrow(_GET, subscription_id)
    return Subscription.of(row) if row is not None else None


async def delete(conn: asyncpg.Connection, subscription_id: str) -> bool:
    return str(await conn.execute(_DELETE, subscription_id)) != "DELETE 0"


def webhooks(subs: Sequence[Subscription]) -> list[Subscription]:
    return [s for s in subs if s.webhook_url is not None]


def mailboxes(subs: Sequence[Subscription]) -> list[Subscription]:
    return [s for s in subs if s.email is not None]
