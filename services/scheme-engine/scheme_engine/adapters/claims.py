"""Distributor claims in PostgreSQL: every submission (claim_submissions) and each claim with its last
assessment (claims). What they mean and when they change: handlers/claims.py."""

from collections.abc import Iterable

import asyncpg
import orjson

from scheme_engine.domain.claims import StoredClaim
from sellthrough_contracts import decode_event
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
_STORE_ASSESSMENT = "UPDATE claims SET assessed = $3, revision = $4 WHERE distributor_id = $1 AND claim_id = $2"


async def latest_submission(
    conn: asyncpg.Connection, distributor_id: str, claim_id: str
) -> tuple[int, dict[str, object]] | None:
    """The claim's latest revision number (in the order received) and its payload as JSON."""
    row = await conn.fetchrow(_LATEST_SUBMISSION, distributor_id, claim_id)
    return None if row is None else (row["revision"], row["payload"])


async def add_submission(conn: asyncpg.Connection, claim: SchemeClaimSubmitted, revision: int) -> None:
    """Keeps the submission as this revision (once per event id) and makes it the claim's current one if it is
    the latest by event time."""
    p = claim.payload
    body = claim.model_dump(mode="json")
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


async def claims_of(conn: asyncpg.Connection, scheme_ids: Iterable[str]) -> list[StoredClaim]:
    found = []
    for row in await conn.fetch(_CLAIMS_OF_SCHEMES, sorted(scheme_ids)):
        event = decode_event(orjson.dumps(row["body"]))
        assert isinstance(event, SchemeClaimSubmitted)  # only claims are stored here
        found.append(StoredClaim(event, row["revision"], row["claim_revision"], row["assessed"]))
    return found


async def submissions(
    conn: asyncpg.Connection, distributor_id: str, claim_id: str, current_revision: int
) -> list[ClaimSubmission]:
    return [
        ClaimSubmission(
            revision=s["revision"],
            event_id=s["event_id"],
            occurred_at=s["occurred_at"],
            claimed_amount=s["claimed_amount"],
            current=s["revision"] == current_revision,
        )
        for s in await conn.fetch(_SUBMISSIONS, distributor_id, claim_id)
    ]


async def save_assessment(
    conn: asyncpg.Connection, distributor_id: str, claim_id: str, figures: dict[str, object], revision: int
) -> None:
    await conn.execute(_STORE_ASSESSMENT, distributor_id, claim_id, figures, revision)
