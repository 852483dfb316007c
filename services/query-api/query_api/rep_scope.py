"""What a rep may read: its own figures only. The KPI endpoints take a `rep` filter; for a rep's token that
filter is forced to the token's own subject, and asking for another rep is refused (403). Reads that cannot
be narrowed to one rep (drill-down of all sales, stock, schemes, forecasts, the map) stay closed to reps."""

from typing import Annotated

from fastapi import Depends, Query

from sellthrough_contracts.common import ID_PATTERN
from sellthrough_runtime.auth import CurrentPrincipal, Role
from sellthrough_runtime.problems import ProblemError

RepParam = Annotated[
    str | None,
    Query(alias="rep", pattern=ID_PATTERN, description="Only this rep's orders and visits (a rep's token: itself)."),
]


def rep_filter(principal: CurrentPrincipal, rep_id: RepParam = None) -> str | None:
    """The rep the figures are narrowed to: as asked for analysts and admins, always the caller for a rep."""
    if principal.role is not Role.REP:
        return rep_id
    if rep_id is not None and rep_id != principal.subject:
        raise ProblemError(
            403,
            "forbidden",
            "A rep may read only its own figures.",
            f"This token reads as rep '{principal.subject}', not '{rep_id}'.",
        )
    return principal.subject


RepFilter = Annotated[str | None, Depends(rep_filter)]
