"""Upstream latency as a log-scale histogram: small, mergeable, good for percentiles.

Bucket `b` counts durations in (2**((b-1)/4), 2**(b/4)] milliseconds: four buckets per
doubling, so a percentile read from the histogram is within 19 % of the true value. Sums of
histograms from many servers and many seconds are histograms too, which is what makes them
fit an upsert-add counter table.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

BUCKETS_PER_DOUBLING = 4
MIN_MS = 1 / 16     # everything faster lands in the first bucket
MAX_MS = 600_000.0  # and everything slower than ten minutes in the last

FIRST_BUCKET = math.ceil(math.log2(MIN_MS) * BUCKETS_PER_DOUBLING)
LAST_BUCKET = math.ceil(math.log2(MAX_MS) * BUCKETS_PER_DOUBLING)


def bucket_of(ms: float) -> int:
    """The bucket that counts a duration of `ms` milliseconds."""
    if not ms > MIN_MS:  # also catches NaN
        return FIRST_BUCKET
    if ms >= MAX_MS:
        return LAST_BUCKET
    return math.ceil(math.log2(ms) * BUCKETS_PER_DOUBLING)


def upper_bound(bucket: int) -> float:
    """The largest duration (ms) bucket `bucket` counts."""
    return float(2 ** (bucket / BUCKETS_PER_DOUBLING))


def percentiles(histogram: Mapping[int, int], quantiles: Iterable[float]) -> list[float | None]:
    """For each quantile in [0, 1], the upper bound (ms) of the bucket that reaches it.

    None for every quantile of an empty histogram.
    """
    total = sum(histogram.values())
    if total <= 0:
        return [None for _ in quantiles]
    ordered = sorted(histogram.items())
    answers: list[float | None] = []
    for quantile in quantiles:
        rank = max(1, math.ceil(quantile * total))  # the rank-th smallest duration
        seen = 0
        for bucket, count in ordered:
            seen += count
            if seen >= rank:
                answers.append(upper_bound(bucket))
                break
    return answers
