"""Nothing accepted is lost: tasks survive `kill -9` of the gateway, on the
SQLite queue (the same gateway restarts) and on PostgreSQL (another gateway
takes over when the dead one's lease runs out). A task that was in progress
is done again under the same output keys."""

from __future__ import annotations

import json
import sqlite3
import time

import botocore.exceptions
import pytest

import support
from conftest import queue_store
from jobs_support import call, detail, image, jobs_toml, process, results, upload, vod, wait

PICTURES = 100


def heavy_task(client) -> dict:
    """A task that takes seconds: 100 full-HD PNGs."""
    definition = call(client, "CreateSampleSnapshotTemplate", {
        "SampleType": "Percent", "SampleInterval": 1, "Format": "png",
        "Width": 1920, "Height": 1080}).Definition
    return {"SampleSnapshotTaskSet": [{"Definition": definition}]}


def wait_in_progress(client, task_id: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        d = detail(client, task_id)
        [(_, r)] = results(d)
        if d.Status == "PROCESSING" and 0 < r.Progress < 60:
            return
        assert d.Status in ("WAITING", "PROCESSING"), f"task ended before the kill: {d.Status}"
        assert time.monotonic() < deadline, "the task never got going"
        time.sleep(0.02)


def output_keys(gw, task_id: str) -> list[str]:
    s3 = support.boto3_client(gw)
    keys, token = [], None
    while True:
        kw = {"Bucket": support.BUCKET, "Prefix": "vod/"}
        if token:
            kw["ContinuationToken"] = token
        page = s3.list_objects_v2(**kw)
        keys += [o["Key"] for o in page.get("Contents", []) if f"/{task_id}/" in o["Key"]]
        token = page.get("NextContinuationToken")
        if not token:
            return keys


def check_complete(client, gw, task_id: str) -> None:
    d = wait(client, task_id, timeout=120)
    assert d.Status == "FINISH"
    [(_, r)] = results(d)
    assert (r.Status, r.Progress) == ("SUCCESS", 100), r.Message
    urls = r.Output.ImageUrlSet
    assert len(urls) == PICTURES
    for url in (urls[0], urls[57], urls[-1]):
        assert image(url).size == (1920, 1080)
    # Redone under the same keys: exactly one object per picture.
    keys = output_keys(gw, task_id)
    assert len(keys) == PICTURES, f"{len(keys)} objects for {PICTURES} pictures"


@pytest.mark.parametrize("queue", ["sqlite", "postgres"])
def test_kill_9_mid_task_then_restart_finishes_everything(gateway_factory, request, queue):
    store = queue_store(queue, request)
    gw = gateway_factory.start("file", f"kill9-{queue}", extra=jobs_toml(store, workers=1))
    upload(gw, "videos/demo.mp4", "demo.mp4")
    client = vod(gw)
    running = process(client, "/videos/demo.mp4", heavy_task(client))
    queued = process(client, "/videos/demo.mp4", {"SnapshotByTimeOffsetTaskSet": [
        {"Definition": 10, "ExtTimeOffsetSet": ["1s", "2s"]}]})
    wait_in_progress(client, running)
    assert detail(client, queued).Status == "WAITING"
    gw.proc.kill()  # SIGKILL: no chance to hand anything back
    gw.proc.wait()
    gw.start()
    client = vod(gw)
    check_complete(client, gw, running)
    d = wait(client, queued)
    [(_, r)] = results(d)
    assert r.Status == "SUCCESS" and len(r.Output.PicInfoSet) == 2
    log = gw.stderr_log.read_text()
    assert "resuming tasks interrupted by the last stop" in log
    assert "attempt=2" in log


def test_another_gateway_takes_over_when_the_lease_runs_out(gateway_factory, request):
    store = queue_store("postgres", request)
    first = gateway_factory.start("file", "lease-a", extra=jobs_toml(store, workers=1))
    upload(first, "videos/demo.mp4", "demo.mp4")
    client = vod(first)
    task_id = process(client, "/videos/demo.mp4", heavy_task(client))
    wait_in_progress(client, task_id)
    first.proc.kill()
    first.proc.wait()
    # A second gateway on the same queue and the same bucket directory, with
    # a node id of its own (the dead one's file is removed), so it cannot
    # release the dead node's lease as its own: it must wait for it to run out.
    data = first.config.parent / "data"
    dead_node = (data / "node-id").read_text().strip()
    (data / "node-id").unlink()
    second = gateway_factory.start("file", "lease-b", data_dir=data,
                                   extra=jobs_toml(store, workers=1))
    assert (data / "node-id").read_text().strip() != dead_node
    client = vod(second)
    check_complete(client, second, task_id)
    log = second.stderr_log.read_text()
    assert "attempt=2" in log
    assert "resuming tasks interrupted by the last stop" not in log


def test_sigterm_hands_the_running_task_back(gateway_factory):
    gw = gateway_factory.start("file", "sigterm", extra=jobs_toml("sqlite", workers=1))
    upload(gw, "videos/demo.mp4", "demo.mp4")
    client = vod(gw)
    task_id = process(client, "/videos/demo.mp4", heavy_task(client))
    wait_in_progress(client, task_id)
    assert gw.stop() == 0
    gw.start()
    check_complete(client := vod(gw), gw, task_id)
    assert "task interrupted; it will be resumed" in gw.stderr_log.read_text()


TRIGGERS = '\n[[triggers]]\nprefix = "incoming/"\nsuffix = ".mp4"\nprocedure = "thumbs"\n'


def upload_records(data) -> list[tuple]:
    with sqlite3.connect(data / "jobs.sqlite3") as db:
        return db.execute("SELECT bucket, object_key FROM fg_uploads ORDER BY seq").fetchall()


def test_an_upload_committed_just_before_a_stop_still_starts_its_procedures(gateway_factory):
    # The object is committed by a gateway without the rule (so nothing
    # starts); the store then holds what a gateway killed between committing
    # an upload and starting its procedures leaves: the upload's record.
    first = gateway_factory.start("file", "upload-record-a", extra=jobs_toml("sqlite"))
    client = vod(first)
    call(client, "CreateProcedureTemplate", {"Name": "thumbs", "MediaProcessTask": {
        "SnapshotByTimeOffsetTaskSet": [{"Definition": 10, "ExtTimeOffsetSet": ["1s"]}]}})
    upload(first, "incoming/late.mp4", "demo.mp4")
    assert call(client, "DescribeTasks", {"Limit": 10}).TaskSet == []
    assert first.stop() == 0
    data = first.config.parent / "data"
    node = (data / "node-id").read_text().strip()
    with sqlite3.connect(data / "jobs.sqlite3") as db:
        db.executemany(
            "INSERT INTO fg_uploads (node, bucket, object_key, procedure, created_ms) "
            "VALUES (?, ?, ?, NULL, 0)",
            [(node, support.BUCKET, "incoming/late.mp4"),
             # Recorded, never committed: starts nothing.
             (node, support.BUCKET, "incoming/never.mp4")])
    gw = gateway_factory.start("file", "upload-record-b", data_dir=data,
                               extra=jobs_toml("sqlite") + TRIGGERS)
    client = vod(gw)
    [task] = call(client, "DescribeTasks", {"Limit": 10}).TaskSet
    d = wait(client, task.TaskId)
    assert d.Status == "FINISH"
    assert "late.mp4" in d.ProcedureTask.FileName
    [(_, r)] = results(d)
    assert r.Status == "SUCCESS" and len(r.Output.PicInfoSet) == 1
    assert upload_records(data) == []
    assert "starting the procedures of an upload interrupted by the last stop" in \
        gw.stderr_log.read_text()
    # A normal triggered upload leaves no record; one that fails starts
    # nothing and leaves none either.
    upload(gw, "incoming/now.mp4", "demo.mp4")
    s3 = support.boto3_client(gw)
    with pytest.raises(botocore.exceptions.ClientError) as failed:
        s3.put_object(Bucket=support.BUCKET, Key="incoming/bad.mp4", Body=b"not this",
                      ContentMD5="1B2M2Y8AsgTpgAmY7PhCfg==")
    assert failed.value.response["Error"]["Code"] == "BadDigest"
    assert upload_records(data) == []
    tasks = call(client, "DescribeTasks", {"Limit": 10}).TaskSet
    assert len(tasks) == 2


def test_procedures_stored_by_earlier_versions_are_upgraded_and_still_run(gateway_factory):
    # Before the typed job core, a procedure was stored as VOD's own JSON.
    first = gateway_factory.start("file", "legacy-proc-a", extra=jobs_toml("sqlite"))
    upload(first, "videos/demo.mp4", "demo.mp4")
    assert first.stop() == 0
    data = first.config.parent / "data"
    task = {"SnapshotByTimeOffsetTaskSet": [{"Definition": 10, "ExtTimeOffsetSet": ["1s", "50%"],
                                             "TimeOffsetSet": [2500]}],
            "CoverBySnapshotTaskSet": [{"Definition": 10, "PositionType": "Time",
                                        "PositionValue": 2}]}
    legacy = {"Name": "old", "Comment": "from 0.x", "MediaProcessTask": task,
              "CreateMs": 1_700_000_000_000, "UpdateMs": 1_700_000_000_000}
    with sqlite3.connect(data / "jobs.sqlite3") as db:
        db.executemany("INSERT INTO fg_procedures (name, body, updated_ms) VALUES (?, ?, 0)",
                       [("old", json.dumps(legacy)), ("broken", "{not json")])
    gw = gateway_factory.start("file", "legacy-proc-b", data_dir=data, extra=jobs_toml("sqlite"))
    assert "stored procedures upgraded to the typed form" in gw.stderr_log.read_text()
    client = vod(gw)
    [shown] = call(client, "DescribeProcedureTemplates", {"Names": ["old"]}).ProcedureTemplateSet
    assert (shown.Comment, shown.CreateTime) == ("from 0.x", "2023-11-14T22:13:20Z")
    offsets = shown.MediaProcessTask.SnapshotByTimeOffsetTaskSet[0]
    assert (offsets.ExtTimeOffsetSet, offsets.TimeOffsetSet) == (["1s", "50%"], [2500])
    assert shown.MediaProcessTask.CoverBySnapshotTaskSet[0].PositionType == "Time"
    task_id = call(client, "ProcessMediaByProcedure", {
        "ProcedureName": "old", "MediaStoragePath": "/videos/demo.mp4"}).TaskId
    d = wait(client, task_id)
    assert d.Status == "FINISH"
    [(_, shots), (_, cover)] = results(d)
    assert [p.TimeOffset for p in shots.Output.PicInfoSet] == [1000, pytest.approx(
        d.ProcedureTask.MetaData.Duration * 500, abs=1), 2500]
    assert cover.Status == "SUCCESS" and cover.Output.CoverUrl
