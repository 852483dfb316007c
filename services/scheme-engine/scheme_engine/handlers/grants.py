"""A scheme's grants re-allocated from what its orders earned (rules: domain/grants.py, budget.py, returns.py)."""

from scheme_engine.domain import SchemeBenefit, SchemeHistory
from scheme_engine.domain.grants import Grant, after_returns, allocated, changed_grants
from scheme_engine.handlers.ports import SchemeStore


async def granted_benefits(store: SchemeStore, scheme_id: str, history: SchemeHistory | None) -> list[SchemeBenefit]:
    """The scheme's benefits as granted under its budget, less what retailer returns reversed, in event-time
    order."""
    budgeted = allocated(history, await store.earned_of(scheme_id))
    if not budgeted:
        return []
    return after_returns(budgeted, await store.returns_at({b.outlet_id for b in budgeted}))


async def reallocate(store: SchemeStore, scheme_id: str, history: SchemeHistory | None) -> list[tuple[Grant, int]]:
    """Re-allocates the scheme and stores the grants that changed; returns them with their new revision."""
    changed = changed_grants(await granted_benefits(store, scheme_id, history), await store.applied_of(scheme_id))
    await store.save_applied(changed)
    return changed
