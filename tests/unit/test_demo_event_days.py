"""The demo reconciles every UTC day its clicks fall on; near midnight the clicks cover two days
while the events (reported within the last minutes) may cover one. The batch must then count
events only on the days the generator reported them (local/demo_events.event_days): the check
failed on a demo run at 00:56 UTC, which reconciled yesterday's late clicks with no events."""
from local.demo_events import event_days

DAY = 20_430 * 86_400_000  # 2025-12-08 00:00 UTC


def test_events_count_on_the_utc_days_they_happened():
    imps = [{"type": "impression", "timestamp": DAY - 1}, {"type": "impression", "timestamp": DAY}]
    convs = [{"type": "conversion", "occurred_at": DAY + 60_000}]
    assert event_days(imps, convs) == {"impressions": {20_429, 20_430}, "conversions": {20_430}}
    assert event_days([], []) == {"impressions": set(), "conversions": set()}
