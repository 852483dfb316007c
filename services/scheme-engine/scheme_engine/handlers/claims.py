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

from scheme_engine.domain import Claim, ClaimAssessment, ClaimLine, SchemesState, assess_claim
from scheme_engine.domain import events as derived
from scheme_engine.handlers.grants import granted_benefits
from scheme_engine.handlers.ports import SchemeStore
from sellthrough_contracts import Envelope
from sellthrough_contracts.schemes import ClaimSubmission, SchemeClaimSubmitted

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NO_CAUSE = UUID(int=0)


async def store_claims(store: SchemeStore, claims: Sequence[SchemeClaimSubmitted]) -> set[str]:
    """Records each submission as the next revision of its claim (in batch order: the order received); returns
    their schemes, whose claims are then (re)assessed."""
    for claim in claims:
        p = claim.payload
        latest = await store.latest_submission(p.distributor_id, p.claim_id)
        if latest is not None and latest[1] == claim.model_dump(mode="json")["payload"]:
            continue  # the same claim sent again: not a new revision
        await store.add_submission(claim, 1 if latest is None else latest[0] + 1)
    return {c.payload.scheme_id for c in claims}


async def reassess_claims(store: SchemeStore, scheme_ids: Iterable[str], state: SchemesState) -> list[Envelope]:
    """Assesses every stored claim of these schemes; returns ClaimAssessed for those whose assessment changed."""
    emitted: list[Envelope] = []
    for stored in await store.claims_of(scheme_ids):
        event, p = stored.claim, stored.claim.payload
        assessment = await _assess(store, event, state)
        submissions = await store.submissions(p.distributor_id, p.claim_id, stored.claim_revision)
        figures = _figures(assessment, stored.claim_revision, submissions)
        if stored.assessed == figures:
            continue
        revision = stored.revision + 1
        await store.save_assessment(p.distributor_id, p.claim_id, figures, revision)
        emitted.append(
            derived.claim_assessed(
                assessment, event.occurred_at, event.event_id, revision, stored.claim_revision, submissions
            )
        )
    return emitted


async def _assess(store: SchemeStore, event: SchemeClaimSubmitted, state: SchemesState) -> ClaimAssessment:
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
        await granted_benefits(store, p.scheme_id, history),
        scheme=history,
        orders=await store.distributor_orders(p.distributor_id),
    )


def _figures(assessment: ClaimAssessment, claim_revision: int, submissions: list[ClaimSubmission]) -> dict[str, Any]:
    """What a reader sees of an assessment, as JSON, to tell whether it changed: a revision received late changes
    the history only, and is shown too."""
    assessed = derived.claim_assessed(assessment, _EPOCH, _NO_CAUSE, 1, claim_revision, submissions)
    payload = assessed.model_dump(mode="json")["payload"]
    payload.pop("revision")
    return dict(payload)
