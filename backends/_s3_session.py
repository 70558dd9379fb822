"""The botocore session every S3 backend shares, with a faster timestamp parser.

A session loads botocore's endpoint and service data (~100 ms) and resolves
credentials once; sharing one (per set of ``AWS_*`` variables) makes opening
a backend cheap. A user's own ``session`` or ``profile`` is left as it is.

botocore parses every timestamp of a response with ``dateutil``: the
``LastModified`` of each of the 1,000 entries of a listing page, and the
``Last-Modified`` header of each GET. That was about 60% of the CPU of
listing 10,000 run records (0.8 s of 1.3 s on this machine) and 7% of each
GET. S3 writes them in two fixed forms, ISO 8601 in UTC with ``Z`` in XML
bodies and RFC 7231 (``... GMT``) in headers, which the standard library
parses in microseconds. The shared session's clients parse those two forms
with :func:`parse_timestamp`, with the same result (an aware UTC
``datetime``), and hand anything else to botocore's own parser.
"""

from __future__ import annotations

import functools
import os
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

__all__ = ["aws_environment", "parse_timestamp", "shared_session"]


def aws_environment() -> tuple[tuple[str, str], ...]:
    """Return the ``AWS_*`` variables, the key under which a botocore session is shared."""
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_")))


@functools.lru_cache(maxsize=8)
def shared_session(environment: tuple[tuple[str, str], ...]) -> Any:
    """Return one aiobotocore session per environment (see the module docstring).

    Keyed by the ``AWS_*`` variables, so a changed environment gets a new one.
    """
    del environment  # only the cache key
    from aiobotocore.session import AioSession  # type: ignore[import-untyped]

    session = AioSession()
    factory = session.get_component("response_parser_factory")
    factory.set_parser_defaults(timestamp_parser=parse_timestamp)
    return session


def parse_timestamp(value: Any) -> datetime:
    """*value* from an S3 response as an aware UTC datetime, as botocore would return it."""
    from botocore.utils import parse_timestamp as botocore_parse  # type: ignore[import-untyped]
    from dateutil.tz import tzutc  # type: ignore[import-untyped]

    if isinstance(value, str):
        try:
            if value.endswith("Z") and "T" in value:
                parsed = datetime.fromisoformat(value[:-1])
                if parsed.tzinfo is None:
                    return parsed.replace(tzinfo=tzutc())
            elif value.endswith(" GMT"):
                return parsedate_to_datetime(value).replace(tzinfo=tzutc())
        except (ValueError, TypeError, IndexError):
            pass
    result: datetime = botocore_parse(value)
    return result
