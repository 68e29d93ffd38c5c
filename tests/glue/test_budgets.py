"""The nightly billing's budget selection and reading (glue_jobs/billing/budgets.py): the budget of
campaign-day D is the version set last before D's end, checked by hand at its edges and against
the oracle's brute force (tests/glue/oracle.py budgets_of_day) on random histories; the history
is read from a DynamoDB table shaped as the local stack's (in-process moto), page by page.
No Spark: runs in both venvs."""
from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from glue_jobs.billing.budgets import BudgetVersion, budgets_for_day, day_end_ms, parse_item, read_history
from tests.glue.oracle import budgets_of_day, day_start

DAY = date(2026, 3, 10)
D0 = day_start(DAY)
END = D0 + 86_400_000
H = 3_600_000


def v(campaign: str, daily: int, set_at: int, rev: int = 1) -> BudgetVersion:
    return BudgetVersion(campaign_id=campaign, daily_micros=daily, set_at_ms=set_at, revision=rev)


def daily(chosen: dict[str, BudgetVersion]) -> dict[str, int]:
    return {c: b.daily_micros for c, b in chosen.items()}


HISTORY = [
    # lowered at noon, again a millisecond before the day ends; one set exactly at the end
    v("a", 500, D0 - 2 * 86_400_000, 1), v("a", 300, D0 + 12 * H, 2), v("a", 250, END - 1, 3),
    v("a", 900, END, 4),
    v("b", 900, END),                      # first set at D's end: none on D
    v("c", 70, D0 - 10 * 86_400_000),      # set long before: still in force
    v("t", 10, D0 + H, 1), v("t", 20, D0 + H, 2),  # a tie the keys cannot hold: the later revision
]


def test_day_end_is_the_next_midnight_utc():
    assert day_end_ms(DAY) == END == day_start(DAY + timedelta(days=1))
    assert day_end_ms(date(2026, 12, 31)) == day_start(date(2027, 1, 1))


def test_the_version_set_last_before_the_day_end_applies():
    assert daily(budgets_for_day(HISTORY, DAY)) == {"a": 250, "c": 70, "t": 20}
    assert budgets_for_day(HISTORY, DAY)["a"].revision == 3
    assert daily(budgets_for_day(HISTORY, DAY - timedelta(days=1))) == {"a": 500, "c": 70}
    assert daily(budgets_for_day(HISTORY, DAY + timedelta(days=1))) == {"a": 900, "b": 900, "c": 70, "t": 20}
    assert daily(budgets_for_day(HISTORY, DAY - timedelta(days=20))) == {}
    assert budgets_for_day([], DAY) == {}
    assert budgets_for_day(reversed(HISTORY), DAY) == budgets_for_day(HISTORY, DAY)  # order-free


def test_selection_equals_the_oracles_brute_force():
    rng = random.Random(5)
    for _ in range(200):
        history = [v(f"c{rng.randint(0, 6)}", rng.randint(1, 10**9),
                     D0 + rng.choice([rng.randint(-5 * 86_400_000, 5 * 86_400_000), 0, 86_400_000,
                                      86_400_000 - 1, -1]),
                     rng.randint(1, 5)) for _ in range(rng.randint(0, 15))]
        day = DAY + timedelta(days=rng.randint(-3, 3))
        plain = [{"campaign_id": b.campaign_id, "daily": b.daily_micros, "set_at": b.set_at_ms, "rev": b.revision}
                 for b in history]
        assert daily(budgets_for_day(history, day)) == budgets_of_day(plain, day)


def history_item(campaign: str, set_at: int, daily_: int, rev: int, life: int | None = None) -> dict:
    """A budgets-table history item as docs/budget.md writes it."""
    item = {"campaign_id": {"S": campaign}, "sk": {"S": f"h#{set_at:013d}"}, "daily": {"N": str(daily_)},
            "pacing": {"S": "even"}, "rev": {"N": str(rev)}, "set_at": {"N": str(set_at)},
            "by": {"S": "arn:aws:iam::123456789012:user/ops"}}
    if life is not None:
        item["life"] = {"N": str(life)}
    return item


def test_parse_item():
    assert parse_item(history_item("cmp-1", D0, 5_000_000, 2, life=9_000_000)) == BudgetVersion(
        "cmp-1", 5_000_000, D0, 2, 9_000_000, "even", "arn:aws:iam::123456789012:user/ops")
    no_set_at = history_item("cmp-1", D0 + 7, 5, 1)
    del no_set_at["set_at"]  # the sort key carries it too
    assert parse_item(no_set_at).set_at_ms == D0 + 7
    for broken, why in ((lambda i: i.pop("daily"), "no daily budget"),
                        (lambda i: i.update(daily={"S": "5"}), "daily is not a number"),
                        (lambda i: i.update(daily={"N": "5.5"}), "daily is not an integer"),
                        (lambda i: i.update(sk={"S": "current"}), "not a budget history item")):
        item = history_item("cmp-9", D0, 5, 1)
        broken(item)
        with pytest.raises(ValueError, match=f"campaign_id='cmp-9'.*{why}"):
            parse_item(item)


def _budgets_table(name: str):
    import boto3

    from local.resources import create_budgets_table  # the local stack's table (infra's keys)

    ddb = boto3.client("dynamodb")
    create_budgets_table(ddb, name)
    return ddb


def test_read_history_from_dynamodb_page_by_page(aws):
    ddb = _budgets_table("clickagg-budgets")
    items = [history_item("cmp-1", D0 - 86_400_000, 900, 1), history_item("cmp-1", D0 + 12 * H, 400, 2),
             history_item("cmp-1", END, 100, 3), history_item("cmp-2", D0 - H, 50, 1, life=500),
             history_item("cmp-3", D0 + H, 7, 1)]
    for item in items:
        ddb.put_item(TableName="clickagg-budgets", Item=item)
    for campaign, item in (("cmp-1", items[2]), ("cmp-2", items[3]), ("cmp-3", items[4])):  # `current`: not read
        ddb.put_item(TableName="clickagg-budgets", Item={**item, "sk": {"S": "current"}})
    calls = []
    ddb.meta.events.register("provide-client-params.dynamodb.Scan", lambda params, **kw: calls.append(dict(params)))
    got = read_history("clickagg-budgets", ddb, page_size=2)
    assert sorted(got, key=lambda b: (b.campaign_id, b.set_at_ms)) == [parse_item(i) for i in items]
    assert len(calls) >= 4 and all(c["Limit"] == 2 and c["ConsistentRead"] for c in calls)  # 8 items, 2 a page
    assert daily(budgets_for_day(got, DAY)) == {"cmp-1": 400, "cmp-2": 50, "cmp-3": 7}
    assert read_history("clickagg-budgets", ddb) == got  # one page
    # a malformed version fails the read (a dropped budget would bill a campaign's excess)
    ddb.put_item(TableName="clickagg-budgets", Item={"campaign_id": {"S": "cmp-4"}, "sk": {"S": "h#0000000000001"}})
    with pytest.raises(ValueError, match="cmp-4.*no daily budget"):
        read_history("clickagg-budgets", ddb)


def test_an_empty_table_has_no_budgets(aws):
    ddb = _budgets_table("empty-budgets")
    assert read_history("empty-budgets", ddb) == []
