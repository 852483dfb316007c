"""Distributor claims: assessed with the domain against the scheme's current grants (ClaimAssessed).

A claim is assessed when it arrives (after the orders of the same batch) and again whenever its scheme is
re-allocated, since a late or cancelled order changes what the distributor was entitled to. A ClaimAssessed
is emitted only when the assessment (or the claim's list of submissions) differs from the last one emitted, with
the next revision.

A distributor may submit a claim id again (a corrected claim): each submission with a new event id and other
content becomes the claim's next revision (1, 2, ... in the order received), and every revision is kept. The
claim is assessed on its latest submission by occurred_at (then event id), so a revision received late, older
than one already received, is kept in the history but does not replace the newer one. The same content sent
again under a new event id (a re-export) is not a new revision.
"""

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from scheme_engine.adapters.grants import granted_benefits
from scheme_engine.adapters.store import distributor_orders
from scheme_engine.domain import Claim, ClaimAssessment, ClaimLine, SchemesState, assess_claim
from scheme_engine.domain import events as derived
from sellthrough_contracts import Envelope, decode_event
from sellthrough_contracts.schemes import ClaimSubmission, SchemeClaimSubmitted

_LATEST_SUBMISSION = """
SELECT revision, body -> 'payload' AS payload FROM claim_submissions
WHERE distributor_id = $1 AND claim_id = $2 ORDER BY revision DESC LIMIT 1
"""
_ADD_SUBMISSION = """
INSERT INTO claim_submissions (distributor_id, claim_id, revision, event_id, occurred_at, claimed_amount, body)
VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING
"""
# The claim is assessed on its latest submission by event time (occurred_at, then event id).
_UPSERT_CLAIM = """
INSERT INTO claims (distributor_id, claim_id, scheme_id, body, revision, claim_revision) VALUES ($1, $2, $3, $4, 0, $5)
ON CONFLICT (distributor_id, claim_id) DO UPDATE SET scheme_id = excluded.scheme_id, body = excluded.body,
    claim_revision = excluded.claim_revision
WHERE ((claims.body->>'occurred_at')::timestamptz, (claims.body->>'event_id')::uuid)
    < ((excluded.body->>'occurred_at')::timestamptz, (excluded.body->>'event_id')::uuid)
"""
_SUBMISSIONS = """
SELECT revision, event_id, occurred_at, claimed_amount FROM claim_submissions
WHERE distributor_id = $1 AND claim_id = $2 ORDER BY revision
"""
_CLAIMS_OF_SCHEMES = """
SELECT distributor_id, claim_id, body, revision, claim_revision, assessed FROM claims WHERE scheme_id = ANY($1::text[])
ORDER BY distributor_id, claim_id
"""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NO_CAUSE = UUID(int=0)
_STORE_ASSESSMENT = "UPDATE claims SET assessed = $3, revision = $4 WHERE distributor_id = $1 AND claim_id = $2"


async def store_claims(conn: asyncpg.Connection, claims: Sequence[SchemeClaimSubmitted]) -> set[str]:
    """Records each submission as the next revision of its claim (in batch order: the order received); returns
    their schemes, whose claims are then (re)assessed."""
    for claim in claims:
        p = claim.payload
        body = claim.model_dump(mode="json")
        latest = await conn.fetchrow(_LATEST_SUBMISSION, p.distributor_id, p.claim_id)
        if latest is not None and latest["payload"] == body["payload"]:
            continue  # the same claim sent again: not a new revision
        revision = 1 if latest is None else latest["revision"] + 1
        added = await conn.execute(
            _ADD_SUBMISSION,
            p.distributor_id,
            p.claim_id,
            revision,
            claim.event_id,
            claim.occurred_at,
            p.claimed_amount,
            body,
        )
        if added.endswith(" 1"):
            await conn.execute(_UPSERT_CLAIM, p.distributor_id, p.claim_id, p.scheme_id, body, revision)
    return {c.payload.scheme_id for c in claims}


async def reassess_claims(conn: asyncpg.Connection, scheme_ids: Iterable[str], state: SchemesState) -> list[Envelope]:
    """Assesses every stored claim of these schemes; returns ClaimAssessed for those whose assessment changed."""
    emitted: list[Envelope] = []
    for row in await conn.fetch(_CLAIMS_OF_SCHEMES, sorted(scheme_ids)):
        event = decode_event(orjson.dumps(row["body"]))
        assert isinstance(event, SchemeClaimSubmitted)  # only claims are stored here
        assessment = await _assess(conn, event, state)
        claim_revision = row["claim_revision"]
        submissions = [
            ClaimSubmission(
                revision=s["revision"],
                event_id=s["event_id"],
                occurred_at=s["occurred_at"],
                claimed_amount=s["claimed_amount"],
                current=s["revision"] == claim_revision,
            )
            for s in await conn.fetch(_SUBMISSIONS, row["distributor_id"], row["claim_id"])
        ]
        figures = _figures(assessment, claim_revision, submissions)
        if row["assessed"] == figures:
            continue
        revision = row["revision"] + 1
        await conn.execute(_STORE_ASSESSMENT, row["distributor_id"], row["claim_id"], figures, revision)
        emitted.append(
            derived.claim_assessed(assessment, event.occurred_at, event.event_id, revision, claim_revision, submissions)
        )
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


def _figures(assessment: ClaimAssessment, claim_revision: int, submissions: list[ClaimSubmission]) -> dict[str, Any]:
    """What a reader sees of an assessment, as JSON, to tell whether it changed: a revision received late changes
    the history only, and is shown too."""
    assessed = derived.claim_assessed(assessment, _EPOCH, _NO_CAUSE, 1, claim_revision, submissions)
    payload = assessed.model_dump(mode="json")["payload"]
    payload.pop("revision")
    return dict(payload)
