"""Distributor claims: assessed with the domain against the scheme's current grants (ClaimAssessed).

A claim is assessed when it arrives (after the orders of the same batch) and again whenever its scheme is
re-allocated, since a late or cancelled order changes what the distributor was entitled to. A ClaimAssessed
is emitted only when the assessment differs from the last one emitted, with the next revision.
"""

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from scheme_engine import derived
from scheme_engine.domain import Claim, ClaimAssessment, ClaimLine, SchemesState, assess_claim
from scheme_engine.grants import granted_benefits
from scheme_engine.store import distributor_orders
from sellthrough_contracts import Envelope, decode_event
from sellthrough_contracts.schemes import SchemeClaimSubmitted

# A later submission of the same claim id replaces the earlier one (occurred_at, then event id).
_UPSERT_CLAIM = """
INSERT INTO claims (distributor_id, claim_id, scheme_id, body, revision) VALUES ($1, $2, $3, $4, 0)
ON CONFLICT (distributor_id, claim_id) DO UPDATE SET scheme_id = excluded.scheme_id, body = excluded.body
WHERE ((claims.body->>'occurred_at')::timestamptz, (claims.body->>'event_id')::uuid)
    < ((excluded.body->>'occurred_at')::timestamptz, (excluded.body->>'event_id')::uuid)
"""
_CLAIMS_OF_SCHEMES = """
SELECT distributor_id, claim_id, body, revision, assessed FROM claims WHERE scheme_id = ANY($1::text[])
ORDER BY distributor_id, claim_id
"""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NO_CAUSE = UUID(int=0)
_STORE_ASSESSMENT = "UPDATE claims SET assessed = $3, revision = $4 WHERE distributor_id = $1 AND claim_id = $2"


async def store_claims(conn: asyncpg.Connection, claims: Sequence[SchemeClaimSubmitted]) -> set[str]:
    """Records the claims; returns their schemes, whose claims are then (re)assessed."""
    if claims:
        await conn.executemany(
            _UPSERT_CLAIM,
            [
                (c.payload.distributor_id, c.payload.claim_id, c.payload.scheme_id, c.model_dump(mode="json"))
                for c in claims
            ],
        )
    return {c.payload.scheme_id for c in claims}


async def reassess_claims(conn: asyncpg.Connection, scheme_ids: Iterable[str], state: SchemesState) -> list[Envelope]:
    """Assesses every stored claim of these schemes; returns ClaimAssessed for those whose assessment changed."""
    emitted: list[Envelope] = []
    for row in await conn.fetch(_CLAIMS_OF_SCHEMES, sorted(scheme_ids)):
        event = decode_event(orjson.dumps(row["body"]))
        assert isinstance(event, SchemeClaimSubmitted)  # only claims are stored here
        assessment = await _assess(conn, event, state)
        figures = _figures(assessment)
        if row["assessed"] == figures:
            continue
        revision = row["revision"] + 1
        await conn.execute(_STORE_ASSESSMENT, row["distributor_id"], row["claim_id"], figures, revision)
        emitted.append(derived.claim_assessed(assessment, event.occurred_at, event.event_id, revision))
    return emitted


async def _assess(conn: asyncpg.Connection, event: SchemeClaimSubmitted, state: SchemesState) -> ClaimAssessment:
    p = event.payload
    history = state.get(p.scheme_id)
    if history is None or not history.versions:
        return derived.unknown_scheme_assessment(p.claim_id, p.scheme_id, p.distributor_id, p.claimed_amount)
    claim = Claim(
        claim_id=p.claim_id,
        scheme_id=p.scheme_id,
        distributor_id=p.distributor_id,
        period_start=p.period_from,
        period_end=p.period_to,
        amount=p.claimed_amount,
        lines=tuple(ClaimLine(line.outlet_id, line.amount, line.order_id) for line in p.lines),
    )
    return assess_claim(
        claim,
        await granted_benefits(conn, p.scheme_id, history),
        scheme=history,
        orders=await distributor_orders(conn, p.distributor_id),
    )


def _figures(assessment: ClaimAssessment) -> dict[str, Any]:
    """What a reader sees of an assessment, as JSON, to tell whether it changed."""
    payload = derived.claim_assessed(assessment, _EPOCH, _NO_CAUSE, 1).model_dump(mode="json")["payload"]
    payload.pop("revision")
    return dict(payload)
