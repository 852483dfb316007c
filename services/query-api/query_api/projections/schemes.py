"""Projections of scheme definitions (schemes topic) and of scheme-engine's results (scheme-results topic)."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from query_api.projections.base import Projection, Steps, collect
from sellthrough_contracts import Envelope
from sellthrough_contracts.schemes import ClaimAssessed, SchemeAmended, SchemeApplied, SchemeEnded, SchemeLaunched

# A later recorded definition wins (occurred_at, then event id), as in the engine's budget_definition.
_UPSERT_DEFINITION = """
INSERT INTO scheme_definitions (scheme_id, name, benefit_kind, valid_from, valid_to, total_budget, zone_ids,
    region_ids, distributor_ids, channels, outlet_classes, outlet_ids, sku_ids, brands, recorded_at, recorded_event)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
ON CONFLICT (scheme_id) DO UPDATE SET name = excluded.name, benefit_kind = excluded.benefit_kind,
    valid_from = excluded.valid_from, valid_to = excluded.valid_to, total_budget = excluded.total_budget,
    zone_ids = excluded.zone_ids, region_ids = excluded.region_ids, distributor_ids = excluded.distributor_ids,
    channels = excluded.channels, outlet_classes = excluded.outlet_classes, outlet_ids = excluded.outlet_ids,
    sku_ids = excluded.sku_ids, brands = excluded.brands, recorded_at = excluded.recorded_at,
    recorded_event = excluded.recorded_event
WHERE (scheme_definitions.recorded_at, scheme_definitions.recorded_event)
    < (excluded.recorded_at, excluded.recorded_event)
"""
_UPSERT_END = """
INSERT INTO scheme_ends (scheme_id, ended_at, recorded_at, recorded_event) VALUES ($1, $2, $3, $4)
ON CONFLICT (scheme_id) DO UPDATE SET ended_at = excluded.ended_at, recorded_at = excluded.recorded_at,
    recorded_event = excluded.recorded_event
WHERE (scheme_ends.recorded_at, scheme_ends.recorded_event) < (excluded.recorded_at, excluded.recorded_event)
"""
_UPSERT_APPLIED = """
INSERT INTO scheme_applied (scheme_id, order_event_id, order_id, outlet_id, distributor_id, order_occurred_at,
    qualifying_units, discount_value, free_units, free_units_cost, revision)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (scheme_id, order_event_id) DO UPDATE SET qualifying_units = excluded.qualifying_units,
    discount_value = excluded.discount_value, free_units = excluded.free_units,
    free_units_cost = excluded.free_units_cost, revision = excluded.revision
WHERE scheme_applied.revision < excluded.revision
"""
_UPSERT_CLAIM = """
INSERT INTO claim_assessments (distributor_id, claim_id, scheme_id, claimed, entitled, approved, over_claim,
    reasons, lines, assessed_at, revision, claim_revision, submissions)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT (distributor_id, claim_id) DO UPDATE SET scheme_id = excluded.scheme_id, claimed = excluded.claimed,
    entitled = excluded.entitled, approved = excluded.approved, over_claim = excluded.over_claim,
    reasons = excluded.reasons, lines = excluded.lines, assessed_at = excluded.assessed_at,
    revision = excluded.revision, claim_revision = excluded.claim_revision, submissions = excluded.submissions
WHERE claim_assessments.revision < excluded.revision
"""


@dataclass
class SchemeRows:
    definitions: list[tuple[Any, ...]] = field(default_factory=list)
    ends: list[tuple[Any, ...]] = field(default_factory=list)
    applied: list[tuple[Any, ...]] = field(default_factory=list)
    claims: list[tuple[Any, ...]] = field(default_factory=list)


def _definition(e: SchemeLaunched | SchemeAmended, rows: SchemeRows) -> None:
    d, t, products = e.payload, e.payload.targeting, e.payload.applies_to
    rows.definitions.append(
        (
            d.scheme_id,
            d.name,
            d.benefit.kind,
            d.valid_from,
            d.valid_to,
            d.total_budget,
            t.zone_ids,
            t.region_ids,
            t.distributor_ids,
            t.channels,
            t.outlet_classes,
            t.outlet_ids,
            products.sku_ids,
            products.brands,
            e.occurred_at,
            e.event_id,
        )
    )


def _end(e: SchemeEnded, rows: SchemeRows) -> None:
    rows.ends.append((e.payload.scheme_id, e.payload.ended_at, e.occurred_at, e.event_id))


def _applied(e: SchemeApplied, rows: SchemeRows) -> None:
    a = e.payload
    rows.applied.append(
        (
            a.scheme_id,
            a.order_event_id,
            a.order_id,
            a.outlet_id,
            a.distributor_id,
            a.order_occurred_at,
            a.qualifying_units,
            a.discount_value,
            a.free_units,
            a.free_units_cost,
            a.revision,
        )
    )


def _assessed(e: ClaimAssessed, rows: SchemeRows) -> None:
    c = e.payload
    rows.claims.append(
        (
            c.distributor_id,
            c.claim_id,
            c.scheme_id,
            c.claimed,
            c.entitled,
            c.approved,
            c.over_claim,
            list(c.reasons),
            [line.model_dump(mode="json") for line in c.lines],
            e.occurred_at,
            c.revision,
            c.claim_revision,
            [submission.model_dump(mode="json") for submission in c.submissions],
        )
    )


_STEPS: Steps[SchemeRows] = {
    SchemeLaunched: _definition,
    SchemeAmended: _definition,
    SchemeEnded: _end,
    SchemeApplied: _applied,
    ClaimAssessed: _assessed,
}


def prepare_scheme_rows(events: Sequence[Envelope], _zone: ZoneInfo) -> SchemeRows:
    return collect(_STEPS, events, SchemeRows())


async def write_scheme_rows(conn: asyncpg.Connection, rows: SchemeRows) -> None:
    for sql, values in (
        (_UPSERT_DEFINITION, rows.definitions),
        (_UPSERT_END, rows.ends),
        (_UPSERT_APPLIED, rows.applied),
        (_UPSERT_CLAIM, rows.claims),
    ):
        if values:
            # Two revisions of one row may share a batch: the WHERE clauses keep the newest either way.
            await conn.executemany(sql, values)


SCHEMES = Projection("schemes", tuple(_STEPS), prepare_scheme_rows, write_scheme_rows)
