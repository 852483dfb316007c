"""The token store and `sellthrough-tokens` against a real PostgreSQL: issue, list, revoke, rotate, bootstrap;
only hashes at rest; and a process's cache seeing a revocation at its next refresh."""

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import psycopg
import pytest
from typer.testing import CliRunner, Result

from sellthrough_runtime.auth import Role, hash_token
from sellthrough_runtime.token_cache import TokenCache
from sellthrough_runtime.token_store import (
    TokenScope,
    bootstrap_admin,
    issue_token,
    migrate_auth,
    revoke_token,
    tokens_by_hashes,
)
from sellthrough_runtime.tokens_cli import app
from tests.conftest import Infra

runner = CliRunner()


def cli(infra: Infra, *args: str) -> Result:
    return runner.invoke(app, list(args), env={"DATABASE_URL": infra.database_url, "COLUMNS": "200"})


def issued_token(result: Result) -> str:
    assert result.exit_code == 0, result.output
    (token,) = result.stdout.split()  # stdout carries the token and nothing else
    return token


def rows(infra: Infra) -> list[dict[str, object]]:
    with psycopg.connect(infra.database_url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cursor:
        cursor.execute("SELECT * FROM auth.tokens ORDER BY id")
        return list(cursor.fetchall())


def by_id(infra: Infra, token_id: int) -> dict[str, object]:
    (row,) = [row for row in rows(infra) if row["id"] == token_id]
    return row


def test_an_issued_token_is_printed_once_and_only_its_hash_is_stored(infra: Infra) -> None:
    result = cli(
        infra,
        "issue",
        "--role",
        "rep",
        "--subject",
        "REP-1",
        "--device",
        "phone-1",
        "--expires-in",
        "90d",
        "--label",
        "Asha's phone",
    )
    token = issued_token(result)
    assert "REP-1" in result.stderr
    assert "printed once" in result.stderr
    (row,) = [row for row in rows(infra) if row["subject"] == "REP-1"]
    assert row["hash"] == hash_token(token)
    assert (row["role"], row["device_id"], row["label"]) == ("rep", "phone-1", "Asha's phone")
    expires_at = row["expires_at"]
    assert isinstance(expires_at, datetime)
    assert abs(expires_at - (datetime.now(UTC) + timedelta(days=90))) < timedelta(minutes=1)
    everything_stored = " ".join(str(value) for row in rows(infra) for value in row.values())
    assert token not in everything_stored
    assert token[4:20] not in everything_stored

    listing = cli(infra, "list")
    assert listing.exit_code == 0, listing.output
    assert "REP-1" in listing.stdout
    assert "phone-1" in listing.stdout
    assert "active" in listing.stdout
    assert token not in listing.output
    assert row["hash"] not in listing.output


def test_connectors_and_managers_carry_their_scope(infra: Infra) -> None:
    issued_token(
        cli(infra, "issue", "--role", "connector", "--subject", "erp-7", "--distributor", "D1", "--distributor", "D2")
    )
    issued_token(cli(infra, "issue", "--role", "regional_manager", "--subject", "RM-7", "--geo", "Z1"))
    scopes = {row["subject"]: (row["distributors"], row["geo_ids"]) for row in rows(infra)}
    assert scopes["erp-7"] == (["D1", "D2"], [])
    assert scopes["RM-7"] == ([], ["Z1"])
    listing = cli(infra, "list", "--role", "connector")
    assert "erp-7" in listing.stdout
    assert "RM-7" not in listing.stdout
    assert "D1, D2" in listing.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["issue", "--role", "connector", "--subject", "erp-8"], "--distributor"),
        (["issue", "--role", "rep", "--subject", "R", "--expires-in", "soon"], "not a duration"),
        (["issue", "--role", "rep", "--subject", "R", "--expires-at", "2020-01-01T00:00:00Z"], "past"),
        (["issue", "--role", "wizard", "--subject", "R"], "wizard"),
        (["rotate", "1", "--grace", "a while"], "not a duration"),
    ],
)
def test_bad_options_are_refused_before_anything_is_issued(infra: Infra, args: list[str], message: str) -> None:
    before = len(rows(infra))
    result = cli(infra, *args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(rows(infra)) == before


def test_revoking_is_recorded_and_idempotent(infra: Infra) -> None:
    issued_token(cli(infra, "issue", "--role", "analyst", "--subject", "to-revoke"))
    (token_id,) = [row["id"] for row in rows(infra) if row["subject"] == "to-revoke"]
    first = cli(infra, "revoke", str(token_id))
    assert first.exit_code == 0, first.output
    assert "Revoked at" in first.stderr, first.output
    assert by_id(infra, int(str(token_id)))["revoked_at"] is not None
    again = cli(infra, "revoke", str(token_id))
    assert again.exit_code == 0, again.output
    assert "Already revoked" in again.stderr, again.output
    missing = cli(infra, "revoke", "987654")
    assert missing.exit_code == 1
    assert "no token with id 987654" in missing.stderr
    assert "Traceback" not in missing.output
    rotated = cli(infra, "rotate", str(token_id))
    assert rotated.exit_code == 1, rotated.output
    assert "revoked" in rotated.stderr, rotated.output
    assert "to-revoke" in cli(infra, "list").stdout
    assert "to-revoke" not in cli(infra, "list", "--active").stdout


def test_rotation_issues_the_same_scope_and_retires_the_old_token_after_the_grace(infra: Infra) -> None:
    old_token = issued_token(
        cli(
            infra,
            "issue",
            "--role",
            "rep",
            "--subject",
            "REP-9",
            "--device",
            "tab-9",
            "--expires-in",
            "30d",
            "--label",
            "tablet",
        )
    )
    (old_id,) = [row["id"] for row in rows(infra) if row["hash"] == hash_token(old_token)]
    result = cli(infra, "rotate", str(old_id), "--grace", "10m")
    new_token = issued_token(result)
    assert new_token != old_token
    old = by_id(infra, int(str(old_id)))
    (new,) = [row for row in rows(infra) if row["hash"] == hash_token(new_token)]
    assert old["replaced_by"] == new["id"]
    now = datetime.now(UTC)
    assert abs(old["expires_at"] - (now + timedelta(minutes=10))) < timedelta(minutes=1)  # type: ignore[operator]
    assert abs(new["expires_at"] - (now + timedelta(days=30))) < timedelta(minutes=1)  # type: ignore[operator]
    assert [new[k] for k in ("role", "subject", "device_id", "label")] == ["rep", "REP-9", "tab-9", "tablet"]
    again = cli(infra, "rotate", str(old_id))
    assert again.exit_code == 1, again.output
    assert f"already rotated into token {new['id']}" in again.stderr, again.output


def test_bootstrap_issues_an_admin_token_only_when_none_is_active(infra: Infra) -> None:
    assert not [row for row in rows(infra) if row["role"] == "admin"]
    token = issued_token(cli(infra, "bootstrap"))
    (admin,) = [row for row in rows(infra) if row["role"] == "admin"]
    assert (admin["hash"], admin["subject"], admin["label"]) == (hash_token(token), "admin", "bootstrap")
    again = cli(infra, "bootstrap")
    assert again.exit_code == 0, again.output
    assert again.stdout == "", again.output
    assert f"An active admin token exists (token {admin['id']})" in again.stderr
    assert cli(infra, "revoke", str(admin["id"])).exit_code == 0
    issued_token(cli(infra, "bootstrap"))  # the only admin token was revoked: a new one


def test_an_unreachable_database_is_a_message_not_a_traceback(infra: Infra) -> None:
    result = runner.invoke(app, ["list"], env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    assert result.exit_code == 2
    assert "the token store cannot be used" in result.stderr
    assert "Traceback" not in result.output


async def test_concurrent_bootstraps_issue_one_admin_token(infra: Infra) -> None:
    await migrate_auth(infra.database_url)
    conns = [await asyncpg.connect(infra.database_url) for _ in range(4)]
    try:
        await conns[0].execute("UPDATE auth.tokens SET revoked_at = now() WHERE role = 'admin'")
        results = await asyncio.gather(*(bootstrap_admin(conn, subject="ops", expires_at=None) for conn in conns))
        assert len([issued for _, issued in results if issued is not None]) == 1
        assert len({token_id for token_id, _ in results}) == 1
    finally:
        for conn in conns:
            await conn.close()


async def test_a_process_cache_sees_a_revocation_at_its_next_refresh(infra: Infra) -> None:
    await migrate_auth(infra.database_url)
    conn = await asyncpg.connect(infra.database_url)
    try:
        issued = await issue_token(conn, TokenScope(Role.REP, "REP-2", device_id="phone-2"))
        cache = TokenCache(lambda hashes: tokens_by_hashes(conn, hashes))
        digest = hash_token(issued.token)
        assert (await cache.lookup(digest)) == issued.stored  # a new token is found at once
        await revoke_token(conn, issued.stored.id)
        assert (await cache.lookup(digest)).revoked_at is None  # type: ignore[union-attr]  # served from memory
        assert await cache.refresh() >= 1
        assert (await cache.lookup(digest)).revoked_at is not None  # type: ignore[union-attr]
        assert (await cache.lookup(hash_token("never issued"))) is None
    finally:
        await conn.close()
