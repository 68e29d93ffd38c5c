"""Scale profiles: `-c profile=small|medium|large` deploys the capacity planner's numbers.

For each profile the synthesized template is read back, key by key, and compared with
capacity.profiles.profile_context(name) (the planner's own output, never typed here). Every key
the planner sets must have a reader below, so a new planner key that infra does not wire fails.
Also: the DynamoDB capacity modes (custom_template: dedup on demand with a cap, serving
provisioned)."""
from __future__ import annotations

import json
import re
from typing import Any, Callable, Optional

import pytest
from aws_cdk.assertions import Template

from capacity import profiles as capacity_profiles
from infra.settings import DYNAMODB_BASE_WARM_WRITES

PROFILES = tuple(capacity_profiles.PROFILES)



_JSON: dict[int, tuple[Template, dict]] = {}  # holds the template: its id stays unique


def template_json(template: Template) -> dict:
    """Template.to_json() once per template (each call crosses into jsii)."""
    if id(template) not in _JSON:
        _JSON[id(template)] = (template, template.to_json())
    return _JSON[id(template)][1]

def resources(template: Template, type_: str) -> dict[str, dict]:
    return template_json(template)["Resources"] if type_ == "*" else {
        k: v for k, v in template_json(template)["Resources"].items() if v["Type"] == type_}


def props(template: Template, type_: str, prefix: str = "") -> dict:
    found = [v["Properties"] for k, v in resources(template, type_).items()
             if k.startswith(prefix)]
    assert len(found) == 1, (type_, prefix, len(found))
    return found[0]


def function(template: Template, handler: str) -> dict:
    found = [v["Properties"] for v in resources(template, "AWS::Lambda::Function").values()
             if v["Properties"].get("Handler") == handler]
    assert len(found) == 1
    return found[0]


def stream_mode(template: Template, prefix: str) -> str:
    return props(template, "AWS::Kinesis::Stream", prefix)["StreamModeDetails"][
        "StreamMode"].lower()


def table_id(template: Template, prefix: str) -> str:
    [logical] = [k for k in resources(template, "AWS::DynamoDB::Table") if k.startswith(prefix)]
    return logical


def capacity_mode(template: Template, prefix: str) -> str:
    table = props(template, "AWS::DynamoDB::Table", prefix)
    if table.get("BillingMode") == "PAY_PER_REQUEST":
        return "on_demand"
    assert "ProvisionedThroughput" in table and "BillingMode" not in table
    return "provisioned"


def write_target(template: Template, prefix: str, units: str = "Write") -> dict:
    ref = {"Fn::Join": ["", ["table/", {"Ref": table_id(template, prefix)}]]}
    [target] = [v["Properties"] for v in resources(
        template, "AWS::ApplicationAutoScaling::ScalableTarget").values()
        if v["Properties"]["ResourceId"] == ref
        and v["Properties"]["ScalableDimension"] == f"dynamodb:table:{units}CapacityUnits"]
    return target


def rcu(template: Template, prefix: str, bound: str) -> Optional[int]:
    """Provisioned reads: the read autoscaling range (min = initial capacity); on demand none."""
    if capacity_mode(template, prefix) == "on_demand":
        return None
    target = write_target(template, prefix, "Read")
    if bound == "min":
        table = props(template, "AWS::DynamoDB::Table", prefix)
        assert table["ProvisionedThroughput"]["ReadCapacityUnits"] == target["MinCapacity"]
        return target["MinCapacity"]
    return target["MaxCapacity"]


def wcu(template: Template, prefix: str, bound: str) -> Optional[int]:
    """min: the autoscaling minimum (= initial capacity); max: the autoscaling maximum, or on
    demand the MaxWriteRequestUnits cap."""
    if capacity_mode(template, prefix) == "on_demand":
        table = props(template, "AWS::DynamoDB::Table", prefix)
        return table["OnDemandThroughput"]["MaxWriteRequestUnits"] if bound == "max" else None
    target = write_target(template, prefix)
    if bound == "min":
        table = props(template, "AWS::DynamoDB::Table", prefix)
        assert table["ProvisionedThroughput"]["WriteCapacityUnits"] == target["MinCapacity"]
        return target["MinCapacity"]
    return target["MaxCapacity"]


def target_utilization(template: Template) -> int:
    values = {v["Properties"]["TargetTrackingScalingPolicyConfiguration"]["TargetValue"]
              for v in resources(template, "AWS::ApplicationAutoScaling::ScalingPolicy").values()}
    assert len(values) == 1, values  # every table dimension tracks the same target
    return values.pop()


def usage_plan_throttle(template: Template, field: str) -> int:
    plan = props(template, "AWS::ApiGateway::UsagePlan")["Throttle"][field]
    [stage] = props(template, "AWS::ApiGateway::Stage")["MethodSettings"]
    assert stage[f"Throttling{field}"] == plan  # stage and usage plan agree
    return plan


def flink(template: Template) -> dict:
    return props(template, "AWS::KinesisAnalyticsV2::Application",
                 "AggregatorApplication")["ApplicationConfiguration"]


def flink_job_property(template: Template, name: str) -> int:
    groups = flink(template)["EnvironmentProperties"]["PropertyGroups"]
    [group] = [g for g in groups if g["PropertyGroupId"] == "clickagg"]
    return int(group["PropertyMap"][name])


def flink_parallelism(template: Template, field: str) -> int:
    return flink(template)["FlinkApplicationConfiguration"]["ParallelismConfiguration"][field]


def rebuild_parallelism(template: Template) -> int:
    app = props(template, "AWS::KinesisAnalyticsV2::Application", "RebuildApplication")
    return app["ApplicationConfiguration"]["FlinkApplicationConfiguration"][
        "ParallelismConfiguration"]["Parallelism"]


def rebuild_load_concurrency(template: Template) -> int:
    """Both load phases' MaxConcurrency (one setting), read from the state machine's definition."""
    [machine] = template.find_resources("AWS::StepFunctions::StateMachine").values()
    text = json.dumps(machine["Properties"]["DefinitionString"])
    [value] = set(re.findall(r'\\"MaxConcurrency\\":(\d+)', text))
    assert len(re.findall(r'\\"MaxConcurrency\\":', text)) == 2
    return int(value)


def esm(template: Template, field: str) -> int:
    return props(template, "AWS::Lambda::EventSourceMapping")[field]


def firehose(template: Template, field: str) -> int:
    return props(template, "AWS::KinesisFirehose::DeliveryStream", "ArchiveDelivery")[
        "ExtendedS3DestinationConfiguration"]["BufferingHints"][field]


def serving_store(template: Template) -> str:
    if resources(template, "AWS::Timestream::Table"):
        return "timestream"
    props(template, "AWS::DynamoDB::Table", "ServingTable")
    return "dynamodb"


def billing_job(template: Template) -> dict:
    [job] = [v["Properties"] for v in resources(template, "AWS::Glue::Job").values()
             if v["Properties"]["Name"].endswith("-billing")]
    return job


INGEST = "ingest.handler.lambda_handler"
SINK = "aggregate.sink_handler.lambda_handler"
QUERY = "query.handler.lambda_handler"

# Planner key -> how the template shows it.
READERS: dict[str, Callable[[Template], Any]] = {
    "ingest_rate_limit": lambda t: usage_plan_throttle(t, "RateLimit"),
    "ingest_burst_limit": lambda t: usage_plan_throttle(t, "BurstLimit"),
    "ingest_memory_mb": lambda t: function(t, INGEST)["MemorySize"],
    "ingest_reserved_concurrency": lambda t: function(t, INGEST).get(
        "ReservedConcurrentExecutions"),
    "ingest_dedup_mode": lambda t: function(t, INGEST)["Environment"]["Variables"]["INGEST_DEDUP_MODE"],
    "dedup_ttl_s": lambda t: int(function(t, INGEST)["Environment"]["Variables"]["DEDUP_TTL_S"]),
    "kinesis_mode": lambda t: stream_mode(t, "ClicksStream"),
    "kinesis_shards": lambda t: props(t, "AWS::Kinesis::Stream", "ClicksStream").get(
        "ShardCount"),
    "kinesis_retention_hours": lambda t: props(t, "AWS::Kinesis::Stream", "ClicksStream")[
        "RetentionPeriodHours"],
    "events_kinesis_mode": lambda t: stream_mode(t, "EventsStream"),
    "events_kinesis_shards": lambda t: props(t, "AWS::Kinesis::Stream", "EventsStream").get(
        "ShardCount"),
    "aggregates_kinesis_mode": lambda t: stream_mode(t, "AggregatesStream"),
    "aggregates_kinesis_shards": lambda t: props(t, "AWS::Kinesis::Stream",
                                                 "AggregatesStream").get("ShardCount"),
    "minibatch_latency_ms": lambda t: flink_job_property(t, "minibatch_latency_ms"),
    "flink_parallelism": lambda t: flink_parallelism(t, "Parallelism"),
    "flink_parallelism_per_kpu": lambda t: flink_parallelism(t, "ParallelismPerKPU"),
    "rebuild_parallelism": rebuild_parallelism,
    "rebuild_load_concurrency": rebuild_load_concurrency,
    "sink_batch_size": lambda t: esm(t, "BatchSize"),
    "sink_parallelization_factor": lambda t: esm(t, "ParallelizationFactor"),
    "sink_memory_mb": lambda t: function(t, SINK)["MemorySize"],
    "freshness_slots": lambda t: freshness_slots(t),
    "serving_store": serving_store,
    "firehose_buffer_mb": lambda t: firehose(t, "SizeInMBs"),
    "firehose_buffer_interval_s": lambda t: firehose(t, "IntervalInSeconds"),
    "dedup_capacity_mode": lambda t: capacity_mode(t, "DedupTable"),
    "dedup_min_wcu": lambda t: wcu(t, "DedupTable", "min"),
    "dedup_max_wcu": lambda t: wcu(t, "DedupTable", "max"),
    "dedup_min_rcu": lambda t: rcu(t, "DedupTable", "min"),
    "dedup_max_rcu": lambda t: rcu(t, "DedupTable", "max"),
    "serving_capacity_mode": lambda t: capacity_mode(t, "ServingTable"),
    "serving_min_wcu": lambda t: wcu(t, "ServingTable", "min"),
    "serving_max_wcu": lambda t: wcu(t, "ServingTable", "max"),
    "dynamodb_target_utilization_pct": target_utilization,
    "billing_glue_worker_type": lambda t: billing_job(t)["WorkerType"],
    "billing_glue_workers": lambda t: billing_job(t)["NumberOfWorkers"],
}


def freshness_slots(template: Template) -> Optional[int]:
    """FRESHNESS_SLOTS of the sink, which the query API must read alike (DynamoDB store only)."""
    sink, query = (function(template, h)["Environment"]["Variables"].get("FRESHNESS_SLOTS")
                   for h in (SINK, QUERY))
    assert sink == query
    return None if sink is None else int(sink)


def expected(key: str, planner: dict[str, Any]) -> Any:
    """What the template shows for the planner's value (shards only exist when provisioned,
    on demand has no minimum)."""
    if key == "kinesis_shards" and planner["kinesis_mode"] != "provisioned":
        return None
    if key == "aggregates_kinesis_shards" and planner["aggregates_kinesis_mode"] != "provisioned":
        return None
    if key == "events_kinesis_shards" and planner["events_kinesis_mode"] != "provisioned":
        return None
    if key == "freshness_slots" and planner["serving_store"] != "dynamodb":
        return None
    for table in ("dedup", "serving"):
        if key == f"{table}_min_wcu" and planner[f"{table}_capacity_mode"] == "on_demand":
            return None
    if key in ("dedup_min_rcu", "dedup_max_rcu") and planner["dedup_capacity_mode"] == "on_demand":
        return None
    return planner[key]


def test_every_planner_key_has_a_reader():
    for name in PROFILES:
        assert set(capacity_profiles.profile_context(name)) <= set(READERS), name


@pytest.mark.parametrize("name", PROFILES)
def test_profile_template_equals_the_planner(profile_templates, name):
    template = profile_templates[name]
    planner = capacity_profiles.profile_context(name)
    found = {key: READERS[key](template) for key in planner}
    assert found == {key: expected(key, planner) for key in planner}


@pytest.mark.parametrize("name", PROFILES)
def test_profiles_differ_where_the_planner_says(profile_templates, name):
    """Sanity: the readers are not comparing defaults with defaults."""
    template = profile_templates[name]
    planner = capacity_profiles.profile_context(name)
    assert READERS["kinesis_shards"](template) == planner["kinesis_shards"] > 4
    assert READERS["billing_glue_workers"](template) == planner["billing_glue_workers"]


def test_profile_sizes_grow(profile_templates):
    shards = [READERS["kinesis_shards"](profile_templates[n]) for n in PROFILES]
    assert shards == sorted(shards) and len(set(shards)) == 3


# --- DynamoDB capacity modes ----------------------------------------------------------------

def test_default_tables_are_on_demand_without_caps(default_template):
    table = props(default_template, "AWS::DynamoDB::Table", "DedupTable")
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert "OnDemandThroughput" not in table and "WarmThroughput" not in table
    assert not resources(default_template, "AWS::ApplicationAutoScaling::ScalableTarget")


def test_on_demand_cap_and_warm_throughput(custom_template):
    table = props(custom_template, "AWS::DynamoDB::Table", "DedupTable")
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["OnDemandThroughput"] == {"MaxWriteRequestUnits": 6000}
    assert 6000 > DYNAMODB_BASE_WARM_WRITES
    assert table["WarmThroughput"] == {"WriteUnitsPerSecond": 6000}


def test_on_demand_cap_below_the_base_warm_throughput_is_not_warmed():
    from infra.constructs.table_capacity import TableCapacity

    small = TableCapacity("on_demand", None, 3000, 70).table_props()
    assert small["max_write_request_units"] == 3000 and "warm_throughput" not in small
    assert "max_write_request_units" not in TableCapacity("on_demand", None, None, 70) \
        .table_props()


def test_provisioned_serving_table_autoscales_reads_and_writes(custom_template):
    table_ref = {"Fn::Join": ["", ["table/", {"Ref": table_id(custom_template, "ServingTable")}]]}
    targets = {v["Properties"]["ScalableDimension"]: v["Properties"] for v in resources(
        custom_template, "AWS::ApplicationAutoScaling::ScalableTarget").values()
        if v["Properties"]["ResourceId"] == table_ref}
    assert (targets["dynamodb:table:WriteCapacityUnits"]["MinCapacity"],
            targets["dynamodb:table:WriteCapacityUnits"]["MaxCapacity"]) == (100, 2000)
    assert (targets["dynamodb:table:ReadCapacityUnits"]["MinCapacity"],
            targets["dynamodb:table:ReadCapacityUnits"]["MaxCapacity"]) == (10, 500)
    for target in targets.values():  # Application Auto Scaling's service-linked role
        assert "AWSServiceRoleForApplicationAutoScaling_DynamoDBTable" in str(target["RoleARN"])
    assert target_utilization(custom_template) == 60


def dedup_dimensions(template: Template) -> set[str]:
    ref = {"Fn::Join": ["", ["table/", {"Ref": table_id(template, "DedupTable")}]]}
    return {v["Properties"]["ScalableDimension"] for v in resources(
        template, "AWS::ApplicationAutoScaling::ScalableTarget").values()
        if v["Properties"]["ResourceId"] == ref}


def test_provisioned_dedup_reads_autoscale_in_mark_mode_and_are_fixed_in_per_click(
        profile_templates, app_factory):
    # per_click (the profiles' mode) reads nothing: reads fixed at dedup_min_rcu, no autoscaling
    template = profile_templates["small"]
    assert capacity_profiles.profile_context("small")["ingest_dedup_mode"] == "per_click"
    table = props(template, "AWS::DynamoDB::Table", "DedupTable")
    assert table["ProvisionedThroughput"]["ReadCapacityUnits"] == 5
    assert dedup_dimensions(template) == {"dynamodb:table:WriteCapacityUnits"}
    # mark reads every click before publishing it: reads autoscale over dedup_min/max_rcu
    app = app_factory(profile="small", ingest_dedup_mode="mark", dedup_min_rcu=3_643,
                      dedup_max_rcu=14_572)
    mark = Template.from_stack(app.node.find_child("ClickAgg"))
    assert (rcu(mark, "DedupTable", "min"), rcu(mark, "DedupTable", "max")) == (3_643, 14_572)
    assert dedup_dimensions(mark) == {"dynamodb:table:WriteCapacityUnits",
                                      "dynamodb:table:ReadCapacityUnits"}

def test_mark_reads_default_to_what_the_write_maximum_lets_through(app_factory):
    # mark without dedup_max_rcu: reads may rise to dedup_max_wcu clicks/s x 0.5 RCU (an
    # eventually consistent read each), not a fixed default that would throttle the checks first
    small = capacity_profiles.profile_context("small")
    assert "dedup_max_rcu" not in small and small["dedup_capacity_mode"] == "provisioned"
    app = app_factory(profile="small", ingest_dedup_mode="mark")
    mark = Template.from_stack(app.node.find_child("ClickAgg"))
    assert (rcu(mark, "DedupTable", "min"), rcu(mark, "DedupTable", "max")) == (
        5, -(-small["dedup_max_wcu"] // 2))
