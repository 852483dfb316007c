"""Webhook signatures and retry delays (query_api/notify)."""

import random

from query_api.notify.backoff import Backoff
from query_api.notify.signing import new_secret, signature_header, verify


def test_a_receiver_verifies_the_exact_body_and_refuses_a_changed_one_or_a_replay() -> None:
    secret, body, now = new_secret(), b'{"alert":{"on_hand":5}}', 1_800_000_000
    header = signature_header(secret, now, body)
    assert verify(secret, header, body, now + 10)
    assert not verify(secret, header, body.replace(b"5", b"6"), now + 10), "a changed body"
    assert not verify(new_secret(), header, body, now + 10), "another subscription's secret"
    assert not verify(secret, header, body, now + 301), "replayed after the tolerance"
    assert not verify(secret, "t=x,v1=00", body, now), "a malformed header"
    forged = header.replace(f"t={now}", f"t={now + 200}")
    assert not verify(secret, forged, body, now + 200), "the timestamp is signed too"


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    backoff, rand = Backoff(base_seconds=10, max_seconds=100), random.Random(7)
    for attempts, ceiling in [(1, 10), (2, 20), (3, 40), (4, 80), (5, 100), (9, 100)]:
        delays = [backoff.delay(attempts, rand) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), (attempts, min(delays), max(delays))
        assert max(delays) - min(delays) > ceiling / 10, "jittered, not fixed"
