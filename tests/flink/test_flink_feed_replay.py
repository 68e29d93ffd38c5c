"""The restore half of the feed protocol (no Flink job): files a restored checkpoint does not know
are merged, in publish order, into the newest one before the job starts; publication and that
merge exclude each other; the runner reads the newest known file from a checkpoint's `_metadata`."""
from __future__ import annotations

import json
import os
import threading
import time

from aggregate.job import feed, local_runner

CLICK = {"click_id": "c", "ad_id": "a", "event_time": 1}


def _click(i: int) -> dict:
    return {**CLICK, "click_id": f"c{i}", "event_time": i}


def _ids(path) -> list[str]:
    return [json.loads(line)["click_id"] for line in open(path) if line.strip()]


def _consume(path) -> None:
    os.utime(path, ns=(time.time_ns(), os.stat(path).st_mtime_ns))


def test_replay_merges_the_unknown_files_in_publish_order_into_the_newest(tmp_path):
    for i in range(1, 6):
        _consume(feed.write_batch(tmp_path, [_click(2 * i), _click(2 * i + 1)]))
    merged = feed.replay_in_order(tmp_path, known_seq=2)
    assert [p.name for p in merged] == [f"clicks-{s:012d}.jsonl" for s in (3, 4, 5)]
    files = feed.published_files(tmp_path)
    assert [feed.seq_of(p) for p in files] == [1, 2, 5]
    assert not feed.is_consumed(files[-1])  # published again: the writer waits for it
    assert _ids(files[-1]) == ["c6", "c7", "c8", "c9", "c10", "c11"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_replay_leaves_a_single_unknown_file_alone(tmp_path):
    for i in range(3):
        _consume(feed.write_batch(tmp_path, [_click(i)]))
    before = {p: os.stat(p).st_mtime_ns for p in feed.published_files(tmp_path)}
    assert feed.replay_in_order(tmp_path, known_seq=2) == []
    assert feed.replay_in_order(tmp_path, known_seq=3) == []
    assert {p: os.stat(p).st_mtime_ns for p in feed.published_files(tmp_path)} == before


def test_writer_waits_for_the_merged_file_and_continues_the_sequence(tmp_path):
    for i in range(3):
        _consume(feed.write_batch(tmp_path, [_click(i)]))
    feed.replay_in_order(tmp_path, known_seq=0)
    done: list = []
    t = threading.Thread(target=lambda: done.append(feed.write_batch(tmp_path, [_click(9)])))
    t.start()
    time.sleep(0.3)
    assert not done  # the merged file was not opened yet
    _consume(feed.published_files(tmp_path)[-1])
    t.join(5)
    assert done and done[0].name == "clicks-000000000004.jsonl"


def test_publication_does_not_interleave_with_a_merge(tmp_path, monkeypatch):
    """A batch whose wait ended just before a merge must not be published beside the merged
    file: the re-check under the lock sends it back to wait for the merged file to be read."""
    for i in range(3):
        _consume(feed.write_batch(tmp_path, [_click(i)]))
    real_ready = feed._ready
    merged: list = []

    def merge_then_ready(last, ack, min_interval_s):  # called under the lock, before publishing
        if not merged:
            merged.append(_merge_without_lock(tmp_path, 0))
        return real_ready(feed.published_files(tmp_path)[-1], ack, min_interval_s)

    monkeypatch.setattr(feed, "_ready", merge_then_ready)
    try:
        feed.write_batch(tmp_path, [_click(9)], ack_timeout_s=0.3)
        published = True
    except feed.FeedStalled:
        published = False
    assert merged and not published
    assert [feed.seq_of(p) for p in feed.published_files(tmp_path)] == [3]


def _merge_without_lock(d, known_seq):
    """replay_in_order's effect, without its lock (the caller holds it)."""
    replay = [p for p in feed.published_files(d) if feed.seq_of(p) > known_seq]
    texts = [open(p).read() for p in replay]
    feed._publish(d, replay[-1], lambda out: out.write("".join(texts)))
    for p in replay[:-1]:
        p.unlink()
    return replay


def test_checkpoint_known_seq_reads_the_newest_path_in_metadata(tmp_path):
    chk = tmp_path / "job" / "chk-7"
    chk.mkdir(parents=True)
    blob = (b"\x00\x01garbage" + b"file:/x/in/clicks-000000000003.jsonl\x00"
            + b"\x17file:/x/in/clicks-000000000012.jsonl" + b"/x/in/.clicks-000000000099.jsonl")
    (chk / "_metadata").write_bytes(blob)
    assert local_runner.checkpoint_known_seq("file://" + str(chk)) == 12
    (chk / "_metadata").write_bytes(b"no files yet")
    assert local_runner.checkpoint_known_seq(str(chk)) == 0
