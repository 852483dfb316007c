"""What the caller may read: one dependency every read route uses (README, "Roles and scopes").

- analyst, admin: national, every row.
- regional_manager: the subtree under its zones or regions (Principal.geo_ids): those regions, their distributors
  and their outlets, resolved from this service's own dimension tables on every request (a distributor moved
  to another region leaves the scope at once).
- distributor: itself (Principal.distributors), its outlets, stock, claims and alerts.
- rep: its own orders and visits; only routes that narrow to a rep let it in (the `rep` filter is forced).
- connector: writes only; every read answers 403.

A filter naming an object outside the scope answers 403, whether or not the object exists (so the answer tells
nothing about other territories); a request without such a filter is narrowed to the scope, never widened."""

from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Annotated, Any

from fastapi import Depends, Query

from query_api.reads.cell import Cell
from query_api.reads.scope import outlet_distributor, subtree
from sellthrough_contracts.common import ID_PATTERN
from sellthrough_runtime.auth import Principal, Role
from sellthrough_runtime.dependencies import ConnectionDep, ContextDep, PrincipalDep
from sellthrough_runtime.problems import ProblemError

READERS = (Role.ANALYST, Role.ADMIN, Role.REGIONAL_MANAGER, Role.DISTRIBUTOR)
"""Roles whose reads are narrowed by geography; reps read only routes that narrow to a rep."""
NATIONAL_ROLES = frozenset({Role.ANALYST, Role.ADMIN})


class Rank(IntEnum):
    """Depth of a drill level; a scoped caller reads rows at its top level or below, never above."""

    NATIONAL = 0
    ZONE = 1
    REGION = 2
    DISTRIBUTOR = 3
    OUTLET = 4


RANK_OF_LEVEL = {"national": 0, "zone": 1, "region": 2, "distributor": 3, "outlet": 4, "sku": 4}
PARENT_KIND = {"region": "zone", "distributor": "region", "outlet": "distributor", "sku": "distributor"}


def forbidden(detail: str) -> ProblemError:
    return ProblemError(403, "out-of-scope", "This is outside what your token may read.", detail)


@dataclass(frozen=True)
class Scope:
    """The caller's readable territory. `distributors` is None for a national scope."""

    principal: Principal
    top: Rank
    """The highest drill level the caller reads rows at."""
    roots: tuple[str, ...]
    """The ids at `top` (its zones, its regions, itself); ('national',) for a national scope."""
    zones: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    distributors: frozenset[str] | None = None

    @property
    def national(self) -> bool:
        return self.distributors is None

    @property
    def rep(self) -> str | None:
        return self.principal.subject if self.principal.role is Role.REP else None

    @property
    def distributor_list(self) -> list[str] | None:
        """The SQL array narrowing distributor-level rows ($n::text[] IS NULL OR distributor_id = ANY($n)). None for
        a rep too: the routes open to reps narrow their rows to the rep instead, wherever it sold."""
        if self.distributors is None or self.rep is not None:
            return None
        return sorted(self.distributors)

    def allow(self, *roles: Role) -> None:
        """403 unless the caller has one of `roles` (a route that cannot narrow to the others)."""
        if self.principal.role not in roles:
            raise ProblemError(
                403,
                "forbidden",
                f"Role '{self.principal.role.value}' may not read this; needs one of {sorted(r.value for r in roles)}.",
            )

    def holds_distributor(self, distributor_id: str | None) -> bool:
        return self.distributors is None or distributor_id in self.distributors

    def require_distributor(self, distributor_id: str) -> None:
        if not self.holds_distributor(distributor_id):
            raise forbidden(f"Distributor '{distributor_id}' is outside your scope.")

    def require_node(self, kind: str, node_id: str) -> None:
        """A zone, region or distributor id given as a filter must be inside the scope."""
        if self.national:
            return
        inside = {"zone": self.zones, "region": self.regions, "distributor": self.distributors or frozenset()}
        if node_id not in inside.get(kind, frozenset()):
            raise forbidden(f"The {kind} '{node_id}' is outside your scope.")

    async def require_outlet(self, conn: ConnectionDep, outlet_id: str) -> None:
        if self.national:
            return
        if not self.holds_distributor(await outlet_distributor(conn, outlet_id)):
            raise forbidden(f"The outlet '{outlet_id}' is outside your scope.")

    async def require_any(self, conn: ConnectionDep, node_id: str) -> None:
        """`within`-style filters: a zone, region, distributor or outlet id. A rep's rows are its own whatever
        the node, so any node narrows them further."""
        if (
            self.national
            or self.rep is not None
            or node_id in self.zones | self.regions | (self.distributors or frozenset())
        ):
            return
        await self.require_outlet(conn, node_id)

    def require_level(self, level: str, parent_id: str | None) -> None:
        """A drill (level, parent): rows above the caller's top level would be partial figures of a territory it
        does not own, so they are refused; a parent must be inside the scope. The rows themselves are narrowed
        by `distributor_list` in the query."""
        if self.national or self.rep is not None:  # a rep's rows are its own at every level
            return
        if RANK_OF_LEVEL[level] < self.top:
            raise forbidden(f"Level '{level}' is above your scope (you read from level '{self.top.name.lower()}').")
        if parent_id is not None and PARENT_KIND.get(level) in ("zone", "region"):
            self.require_node(PARENT_KIND[level], parent_id)
        elif parent_id is not None:
            self.require_distributor(parent_id)

    async def cell(self, conn: ConnectionDep, keys: Cell) -> Cell:
        """A drill-down cell narrowed to the scope: a rep's is forced to the rep; every geographic key given must
        be inside the scope, and the cell's rows are narrowed to the scope's distributors whatever it names."""
        if self.principal.role is Role.REP:
            if keys.rep is not None and keys.rep != self.rep:
                raise forbidden(f"This token reads as rep '{self.rep}', not '{keys.rep}'.")
            return replace(keys, rep=self.rep)
        if self.national:
            return keys
        for kind, node in (("zone", keys.zone), ("region", keys.region), ("distributor", keys.distributor)):
            if node is not None:
                self.require_node(kind, node)
        if keys.outlet is not None:
            await self.require_outlet(conn, keys.outlet)
        return replace(keys, distributors=tuple(sorted(self.distributors or ())))


def fixed_scope(principal: Principal) -> Scope | None:
    """The scope of every role but regional_manager, which needs the dimension tables."""
    if principal.role in NATIONAL_ROLES:
        return Scope(principal, Rank.NATIONAL, ("national",))
    if principal.role is Role.DISTRIBUTOR:
        own = principal.distributors
        return Scope(principal, Rank.DISTRIBUTOR, tuple(sorted(own)), distributors=own)
    if principal.role is Role.REGIONAL_MANAGER:
        return None
    # rep and connector: no territory; routes that admit reps narrow to the rep, all others refuse them.
    return Scope(principal, Rank.OUTLET, (), distributors=frozenset())


async def manager_scope(conn: ConnectionDep, principal: Principal) -> Scope:
    geo = sorted(principal.geo_ids)
    zones, regions, distributors = await subtree(conn, geo)
    # Only zones: it reads from zone level. A region among its roots (or a root not yet in reference data): from
    # region level, every region in its subtree a root, so a zone row never shows a partial figure.
    if geo and set(geo) <= zones:
        return Scope(principal, Rank.ZONE, tuple(geo), zones, regions, distributors)
    return Scope(principal, Rank.REGION, tuple(sorted(regions)), zones, regions, distributors)


async def caller_scope(context: ContextDep, principal: PrincipalDep) -> Scope:
    scope = fixed_scope(principal)
    if scope is not None:
        return scope
    # Its own short-lived connection, not ConnectionDep: a costly read holds none while it waits its turn.
    async with context.pool.acquire() as conn:
        return await manager_scope(conn, principal)


CallerScope = Annotated[Scope, Depends(caller_scope)]


def readers(*roles: Role) -> Any:
    """A route dependency refusing (403) callers without one of `roles`, through the scope."""

    async def check(scope: CallerScope) -> Scope:
        scope.allow(*roles)
        return scope

    return Depends(check)


RepParam = Annotated[
    str | None,
    Query(alias="rep", pattern=ID_PATTERN, description="Only this rep's orders and visits (a rep's token: itself)."),
]


async def rep_filter(scope: CallerScope, rep_id: RepParam = None) -> str | None:
    """The rep the KPI figures are narrowed to: as asked for others, always the caller for a rep."""
    if scope.rep is None:
        return rep_id
    if rep_id is not None and rep_id != scope.rep:
        raise forbidden(f"This token reads as rep '{scope.rep}', not '{rep_id}'.")
    return scope.rep


RepFilter = Annotated[str | None, Depends(rep_filter)]
