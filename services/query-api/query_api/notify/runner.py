"""The notify background job and what the CLI runs: queue alert changes, send due webhooks, and send the digest
(once per business day, from notify_digest_hour) and the review pack (Mondays, from notify_review_hour).

A schedule's mark row (notify_schedule_marks) is claimed, the mails sent and the mark committed in one transaction:
a failed send rolls the mark back (the next tick tries again), and a second replica waits on the row and then finds
the period already sent."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import date, datetime

import aiosmtplib
import asyncpg

from query_api.api.caller import READERS
from query_api.notify.backoff import Backoff
from query_api.notify.detect import DiffMemo, diff_alerts
from query_api.notify.digest import digest_for, digest_mail
from query_api.notify.mail import Mail, send
from query_api.notify.render import review_html, review_text
from query_api.notify.review import PackInputs, review_pack, review_week
from query_api.notify.subscriptions import all_subscriptions, mailboxes
from query_api.notify.webhooks import DeliveryPolicy, Outcome, deliver_due
from query_api.settings import QueryApiSettings
from sellthrough_runtime.app import Job

log = logging.getLogger(__name__)

DIGEST = "digest"
REVIEW = "review"
_CLAIM_MARK = """
INSERT INTO notify_schedule_marks (schedule, last_period, sent_at) VALUES ($1, $2, now())
ON CONFLICT (schedule) DO UPDATE SET last_period = excluded.last_period, sent_at = excluded.sent_at
WHERE notify_schedule_marks.last_period < excluded.last_period
RETURNING schedule
"""

Compose = Callable[[asyncpg.Connection], Awaitable[list[Mail]]]


def delivery_policy(settings: QueryApiSettings) -> DeliveryPolicy:
    return DeliveryPolicy(
        max_attempts=settings.notify_webhook_max_attempts,
        backoff=Backoff(settings.notify_backoff_base_seconds, settings.notify_backoff_max_seconds),
        timeout_seconds=settings.notify_webhook_timeout_seconds,
    )


async def webhooks_once(pool: asyncpg.Pool, settings: QueryApiSettings, memo: DiffMemo | None = None) -> Outcome:
    await diff_alerts(pool, memo)
    return await deliver_due(pool, delivery_policy(settings))


async def digest_mails(conn: asyncpg.Connection, day: date) -> list[Mail]:
    mails = []
    for sub in mailboxes(await all_subscriptions(conn)):
        if sub.role in READERS:
            mails.append(digest_mail(sub, day, await digest_for(conn, sub)))
    return mails


async def review_mails(conn: asyncpg.Connection, settings: QueryApiSettings, today: date) -> list[Mail]:
    date_from, date_to = review_week(today)
    mails = []
    for sub in mailboxes(await all_subscriptions(conn)):
        if sub.role not in READERS or sub.email is None:
            continue
        inputs = PackInputs(await sub.scope(conn), date_from, date_to, settings.zone, settings.business_timezone, today)
        pack = await review_pack(conn, inputs)
        title = f"Weekly review, {date_from.isoformat()} to {date_to.isoformat()}"
        text = review_text(pack)
        if settings.dashboard_url is not None:
            text += f"\n\nPrintable page: {settings.dashboard_url.rstrip('/')}/dashboard/review\n"
        mails.append(Mail(to=sub.email, subject=title, text=text, html=review_html(pack, title)))
    return mails


async def send_scheduled(
    pool: asyncpg.Pool, settings: QueryApiSettings, schedule: str, period: date, compose: Compose, force: bool
) -> int:
    """Send one schedule's mails for `period` unless already sent (`force`: send anyway, the mark unchanged)."""
    async with pool.acquire() as conn, conn.transaction():
        if not force and await conn.fetchval(_CLAIM_MARK, schedule, period) is None:
            return 0
        sent = await send(settings, await compose(conn))
    log.info("scheduled mail sent", extra={"schedule": schedule, "period": period.isoformat(), "mails": sent})
    return sent


async def send_digest(pool: asyncpg.Pool, settings: QueryApiSettings, day: date, force: bool = False) -> int:
    return await send_scheduled(pool, settings, DIGEST, day, lambda conn: digest_mails(conn, day), force)


async def send_review(pool: asyncpg.Pool, settings: QueryApiSettings, today: date, force: bool = False) -> int:
    return await send_scheduled(pool, settings, REVIEW, today, lambda conn: review_mails(conn, settings, today), force)


async def schedules_once(pool: asyncpg.Pool, settings: QueryApiSettings, now: datetime) -> None:
    local = now.astimezone(settings.zone)
    if local.hour >= settings.notify_digest_hour:
        await send_digest(pool, settings, local.date())
    if local.weekday() == 0 and local.hour >= settings.notify_review_hour:
        await send_review(pool, settings, local.date())


def notify_job(pool: asyncpg.Pool, settings: QueryApiSettings) -> Job:
    """The background job query-api runs (main.py); a failure is logged and the next tick tries again."""

    async def run() -> None:
        memo = DiffMemo()
        while True:
            try:
                await webhooks_once(pool, settings, memo)
                if settings.notify_schedules and settings.smtp_host is not None:
                    await schedules_once(pool, settings, datetime.now(settings.zone))
            except (OSError, asyncpg.PostgresError, aiosmtplib.SMTPException) as exc:
                log.warning("notify tick failed", extra={"error": str(exc)})
            await asyncio.sleep(settings.notify_poll_seconds)

    return run
