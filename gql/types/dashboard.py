"""What the dashboard (``/dashboard``) reads that no other query gives: ingestion volume over
time (admin scope; the tenant is always the caller's own)."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

import strawberry

from engines.errors import ErrorCode, RecographError
from gql.context import Context
from gql.errors import refused

Info = strawberry.Info[Context, None]

#: the longest window: 90 days
MAX_HOURS = 90 * 24
#: the widest bucket: one day
MAX_BUCKET_MINUTES = 24 * 60
#: buckets in one answer (e.g. 7 days by 10 minutes)
MAX_BUCKETS = 1008


@strawberry.type(description="Events of one time bucket.")
class VolumeBucket:
    start: datetime = strawberry.field(description="When the bucket begins (UTC).")
    events: int = strawberry.field(description="Events that arrived in the bucket.")


def bucket_window(hours: int, bucket_minutes: int, now: float) -> tuple[datetime, int, int]:
    """The first bucket's start, the bucket width in seconds and the number of buckets of
    the window of ``hours`` ending with the bucket that holds ``now`` (Unix seconds).
    Buckets are aligned to multiples of their width since the Unix epoch (UTC), so the same
    bucket has the same bounds in every answer."""
    if not 1 <= hours <= MAX_HOURS:
        raise refused(f"hours must be between 1 and {MAX_HOURS}", "hours")
    if not 1 <= bucket_minutes <= MAX_BUCKET_MINUTES:
        raise refused(f"bucketMinutes must be between 1 and {MAX_BUCKET_MINUTES}", "bucketMinutes")
    width = bucket_minutes * 60
    buckets = math.ceil(hours * 3600 / width)
    if buckets > MAX_BUCKETS:
        raise refused(
            f"{hours} hours by {bucket_minutes} minutes is {buckets} buckets, more than "
            f"{MAX_BUCKETS}: make bucketMinutes larger",
            "bucketMinutes",
            ErrorCode.TOO_MANY,
        )
    last = math.floor(now / width) * width
    first = datetime.fromtimestamp(last, UTC) - timedelta(seconds=width * (buckets - 1))
    return first, width, buckets


@strawberry.type
class DashboardQueries:
    @strawberry.field(
        description="Events per time bucket over the last `hours` hours, oldest first, empty "
        "buckets included; the last bucket holds the present. Events are counted by when "
        "they arrived (were stored), not by their own `timestamp`: an import of old events "
        "counts when it ran. Buckets are aligned to multiples of `bucketMinutes` since the "
        "Unix epoch (UTC). At most 1,008 buckets (admin scope)."
    )
    async def interaction_volume(
        self,
        info: Info,
        hours: Annotated[
            int, strawberry.argument(description=f"The window: 1 to {MAX_HOURS} hours.")
        ] = 48,
        bucket_minutes: Annotated[
            int,
            strawberry.argument(
                description=f"Width of a bucket: 1 to {MAX_BUCKET_MINUTES} minutes."
            ),
        ] = 60,
    ) -> list[VolumeBucket]:
        ctx = info.context
        if "admin" not in ctx.auth.scopes:
            raise RecographError("interactionVolume needs the admin scope", ErrorCode.FORBIDDEN)
        first, width, buckets = bucket_window(hours, bucket_minutes, time.time())
        counts = await ctx.store.interactions.volume(ctx.tenant, first, width, buckets)
        return [
            VolumeBucket(start=first + timedelta(seconds=width * i), events=n)
            for i, n in enumerate(counts)
        ]
