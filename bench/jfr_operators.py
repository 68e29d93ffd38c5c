"""Where a Flink job's CPU goes, per operator, from a Java Flight Recorder file:

    python bench/jfr_operators.py RECORDING.jfr [--top 25]

(`bench/flink.py --profile DIR` records one per job mode.) Each execution sample is charged to
the innermost Flink operator on its stack: chained operators call each other through
`Output.collect`, so the innermost one is the one running; what it calls (serializers, state,
the generated code of its own functions) is charged to it. Samples without an operator frame are
charged to the task's plumbing (network, mailbox) or to "other". The JDK's own `jfr` tool does
the parsing; this only aggregates (the JDK 17 `jfr` has no per-frame view of its own).
"""
from __future__ import annotations

import argparse
import collections
import json
import re
import subprocess
import sys

# (label, frame pattern), innermost match wins; class names of Flink 1.20's runtime and of the
# planner's generated code (`StreamExecCalc$123`, `GroupAggsHandler$45`, ...)
OPERATORS: tuple[tuple[str, str], ...] = (
    ("source: JSON decode", r"formats\.json\.JsonRowDataDeserializationSchema|JsonParserToRowDataConverters"),
    ("source: file reader", r"connector\.file\.src|impl\.StreamFormatAdapter|LineBytesInputFormat"),
    ("source: kinesis", r"connector\.kinesis\.source"),
    ("watermark assigner", r"WatermarkAssignerOperator|GeneratedWatermarkGenerator|WatermarkGenerator\$"),
    ("dedup keep-first", r"ProcTimeDeduplicate|RowTimeDeduplicate|DeduplicateFunctionHelper|ProcTimeMiniBatchDeduplicate"),
    ("over: running count", r"operators\.over\.|UnboundedPrecedingFunction"),
    ("join (IVT correction)", r"operators\.join\.stream|StreamingJoinOperator"),
    ("local aggregate", r"MiniBatchLocalGroupAggFunction|LocalGroupAggregate|MapBundleOperator|MapBundleFunction|KeyedMapBundleOperator"),
    ("global aggregate", r"MiniBatchGlobalGroupAggFunction|MiniBatchIncrementalGroupAggFunction|GroupAggFunction|MiniBatchGroupAggFunction"),
    ("rank (leaderboards)", r"operators\.rank\.|TopNFunction|TopNBuffer"),
    ("state TTL cleanup (heap)", r"TtlIncrementalCleanup"),
    ("mini-batch assigner", r"MiniBatchAssigner|ProcTimeMiniBatchAssignerOperator|RowTimeMiniBatchAssginerOperator"),
    ("table<->stream conversion", r"InputConversionOperator|OutputConversionOperator|DataStructureConverter|RowRowConverter|DataFormatConverters"),
    ("union / calc (generated)", r"StreamExecCalc\$|StreamExecUnion|\.Calc\$|CalcCodeGen"),
    ("sink", r"operators\.sink\.|SinkOperator|DiscardingSink|BlackHole|SinkWriterOperator|ConstraintEnforcer|SinkUpsertMaterializer"),
    ("datagen / pulse", r"datagen"),
)
PLUMBING: tuple[tuple[str, str], ...] = (
    ("network / serialization between tasks", r"runtime\.io\.network|RecordWriter|SpillingAdaptiveSpanningRecordDeserializer|StreamTaskNetworkInput|AbstractStreamTaskNetworkInput"),
    ("mailbox / task loop", r"MailboxProcessor|StreamTask"),
    ("gc / jit / jvm", r"^(jdk\.internal|java\.lang\.ref|sun\.)"),
)


def _compile(table):
    return [(label, re.compile(p)) for label, p in table]


def samples(path: str):
    """Stack frames (leaf first, 'class.method') of every jdk.ExecutionSample in the file."""
    out = subprocess.run(["jfr", "print", "--json", "--stack-depth", "256",
                          "--events", "jdk.ExecutionSample", path],
                         check=True, capture_output=True, text=True).stdout
    for event in json.loads(out)["recording"]["events"]:
        frames = event["values"].get("stackTrace", {}) or {}
        yield [f'{f["method"]["type"]["name"]}.{f["method"]["name"]}'.replace("/", ".")
               for f in frames.get("frames", [])]


def classify(frames: list[str], operators, plumbing) -> str:
    for frame in frames:
        for label, rx in operators:
            if rx.search(frame):
                return label
    for frame in frames:
        for label, rx in plumbing:
            if rx.search(frame):
                return label
    return "other"


def summarize(path: str, top: int = 25) -> dict:
    operators, plumbing = _compile(OPERATORS), _compile(PLUMBING)
    by_operator, leaves, total = collections.Counter(), collections.Counter(), 0
    for frames in samples(path):
        total += 1
        by_operator[classify(frames, operators, plumbing)] += 1
        if frames:
            leaves[frames[0]] += 1
    return {"samples": total,
            "by_operator": {k: round(100 * v / total, 1) for k, v in by_operator.most_common()},
            "hot_leaves": {k: round(100 * v / total, 1) for k, v in leaves.most_common(top)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("recording")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    result = summarize(args.recording, args.top)
    print(f"{result['samples']} samples; % of samples per operator:")
    for k, v in result["by_operator"].items():
        print(f"  {v:5.1f}  {k}")
    print("hottest leaf frames (%):")
    for k, v in result["hot_leaves"].items():
        print(f"  {v:5.1f}  {k}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
