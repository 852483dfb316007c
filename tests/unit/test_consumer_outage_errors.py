"""The consumer waits out exactly the errors the APIs answer 503 for: an error taken for an outage in one place
and for a bug in the other would dead-letter events (or end the consumer) during an outage."""

from sellthrough_runtime.applier import TRANSIENT_ERRORS
from sellthrough_runtime.problems import DATABASE_UNAVAILABLE


def test_every_database_unavailable_error_is_retried_by_the_consumer() -> None:
    assert [error for error in DATABASE_UNAVAILABLE if not issubclass(error, TRANSIENT_ERRORS)] == []
