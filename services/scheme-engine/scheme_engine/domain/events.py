"""SchemeApplied and ClaimAssessed events, ready for the outbox."""

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from scheme_engine.domain import ClaimAssessment
from scheme_engine.domain.grants import Grant
from sellthrough_contracts import Envelope
from sellthrough_contracts.schemes import (
    ClaimAssessed,
    ClaimAssessedPayload,
    ClaimLineAssessed,
    ClaimReason,
    ClaimSubmission,
    SchemeApplied,
    SchemeAppliedPayload,
)
from sellthrough_runtime.derived import derive

SOURCE = "scheme-engine"


def scheme_applied(granted: Grant, revision: int) -> Envelope:
    return derive(
        SchemeApplied,
        SchemeAppliedPayload(
            scheme_id=granted.scheme_id,
            order_event_id=granted.order_event_id,
            order_id=granted.order_id,
            outlet_id=granted.outlet_id,
            distributor_id=granted.distributor_id,
            order_occurred_at=granted.occurred_at,
            qualifying_units=granted.qualifying_units,
            discount_value=granted.discount_value,
            free_units=granted.free_units,
            free_units_cost=granted.free_units_cost,
            limited_by=granted.limited_by,  # type: ignore[arg-type]
            revision=revision,
        ),
        occurred_at=granted.occurred_at,
        cause=granted.order_event_id,
        source=SOURCE,
    )


def claim_assessed(
    assessment: ClaimAssessment,
    occurred_at: datetime,
    cause: uuid.UUID,
    revision: int,
    claim_revision: int = 1,
    submissions: Sequence[ClaimSubmission] = (),
) -> Envelope:
    """`cause` is the submission assessed (revision `claim_revision` of the claim); `revision` numbers the
    assessments of the claim, whichever submission they are of."""
    return derive(
        ClaimAssessed,
        ClaimAssessedPayload(
            claim_id=assessment.claim_id,
            scheme_id=assessment.scheme_id,
            distributor_id=assessment.distributor_id,
            claimed=assessment.claimed_amount,
            entitled=assessment.entitled_amount,
            approved=assessment.approved_amount,
            over_claim=assessment.over_claim_amount,
            reasons=list(assessment.reasons),
            lines=[
                ClaimLineAssessed(
                    outlet_id=line.outlet_id,
                    order_id=line.order_id,
                    claimed=line.claimed_amount,
                    entitled=line.entitled_amount,
                    approved=line.approved_amount,
                    over_claim=line.over_claim_amount,
                    reasons=list(line.reasons),
                )
                for line in assessment.lines
            ],
            revision=revision,
            claim_revision=claim_revision,
            submissions=list(submissions),
        ),
        occurred_at=occurred_at,
        cause=cause,
        source=SOURCE,
    )


def unknown_scheme_assessment(claim_id: str, scheme_id: str, distributor_id: str, claimed: Decimal) -> ClaimAssessment:
    """A claim for a scheme the engine never saw: nothing is entitled, everything is over-claimed."""
    reasons: tuple[ClaimReason, ...] = ("unknown_scheme",)
    return ClaimAssessment(
        claim_id=claim_id,
        scheme_id=scheme_id,
        distributor_id=distributor_id,
        claimed_amount=claimed,
        entitled_amount=Decimal("0.00"),
        over_claim_amount=claimed,
        approved_amount=Decimal("0.00"),
        reasons=reasons,  # type: ignore[arg-type]
        lines=(),
    )
