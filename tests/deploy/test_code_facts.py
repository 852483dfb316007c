"""The derivation of what the code reads (tests/deploy/code_facts.py), checked on names known to exist."""

import sellthrough_contracts.topics as contract_topics
from tests.deploy.code_facts import NAMED_CONTAINER_VARIABLES, services


def test_settings_derivation_covers_the_container_variables() -> None:
    for facts in services().values():
        assert facts.needs_container_value >= NAMED_CONTAINER_VARIABLES, facts.name
        assert "DATABASE_URL" in facts.env
        assert "SELLTHROUGH_DB_POOL_MAX" in facts.env
        assert "SELLTHROUGH_DATABASE_URL" not in facts.env, "an alias replaces the prefixed name"
        assert facts.unknown(["SELLTHROUGH_HTTP_PORT", "DATABASE_URL"]) == set()
        assert facts.unknown(["SELLTHROUGH_NO_SUCH_SETTING", "DB_URL"]) == {"SELLTHROUGH_NO_SUCH_SETTING", "DB_URL"}


def test_consumed_topics_are_read_from_the_code() -> None:
    facts = services()
    assert facts["query-api"].consumes >= {contract_topics.REFERENCE.name, contract_topics.TRADE.name}
    assert facts["order-capture"].consumes >= {contract_topics.REFERENCE.name}
