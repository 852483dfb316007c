"""Distributor claims: assessed with the domain against the benefits granted so far (ClaimAssessed).

A claim is assessed when it arrives, after the orders of the same batch have been evaluated. Known gap: a
claim is not re-assessed when a late order changes its entitlement later; resubmitting the claim (same
claim id, new event) assesses it again with the next revision.
"""

from collections.abc import Sequence

import asyncpg

from scheme_engine import derived
from scheme_engine.domain import Claim, ClaimLine, SchemesState, assess_claim
from scheme_engine.grants import granted_benefits
from scheme_engine.store import distributor_orders
from sellthrough_contracts import Envelope
from sellthrough_contracts.schemes import SchemeClaimSubmitted

_UPSERT_CLAIM = """
INSERT INTO claims (distributor_id, claim_id, scheme_id, body, revision) VALUES ($1, $2, $3, $4, 1)
ON CONFLICT (distributor_id, claim_id) DO UPDATE SET scheme_id = excluded.scheme_id, body = excluded.body,
    revision = claims.revision + 1
RETURNING revision
"""


async def assess_claims(
    conn: asyncpg.Connection, claims: Sequence[SchemeClaimSubmitted], state: SchemesState
) -> list[Envelope]:
    assessed: list[Envelope] = []
    for event in claims:
        p = event.payload
        revision = await conn.fetchval(
            _UPSERT_CLAIM, p.distributor_id, p.claim_id, p.scheme_id, event.model_dump(mode="json")
        )
        history = state.get(p.scheme_id)
        if history is None or not history.versions:
            assessment = derived.unknown_scheme_assessment(p.claim_id, p.scheme_id, p.distributor_id, p.claimed_amount)
        else:
            claim = Claim(
                claim_id=p.claim_id,
                scheme_id=p.scheme_id,
                distributor_id=p.distributor_id,
                period_start=p.period_from,
                period_end=p.period_to,
                amount=p.claimed_amount,
                lines=tuple(ClaimLine(line.outlet_id, line.amount, line.order_id) for line in p.lines),
            )
            assessment = assess_claim(
                claim,
                await granted_benefits(conn, p.scheme_id, history),
                scheme=history,
                orders=await distributor_orders(conn, p.distributor_id),
            )
        assessed.append(derived.claim_assessed(assessment, event.occurred_at, event.event_id, revision))
    return assessed
