"""Events and task flows: ProcedureStateChanged callbacks to a real HTTP
receiver that fails at first (retried, in order per task, signed, surviving
a gateway restart), PullEvents/ConfirmEvents through
tencentcloud-sdk-python-vod, SessionId deduplication, procedures, and
uploads through cos-python-sdk-v5 that start a procedure (rule or per-upload
choice, simple and multipart)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time

import pytest

from callback_receiver import CallbackServer
import support
from conftest import queue_store
from jobs_support import (FIXTURES, call, detail, error_of, image, jobs_toml, process, results,
                          upload, vod, wait)

SECRET = "callback-signing-key"
QUICK = {"SnapshotByTimeOffsetTaskSet": [{"Definition": 10, "ExtTimeOffsetSet": ["1s"]}]}


class Receiver(CallbackServer):
    """Events as the tests read them: id, signature, raw body, JSON."""

    def events(self) -> list[dict]:
        with self.lock:
            return [{"id": d["id"], "signature": d["signature"], "raw": d["body"],
                     "event": json.loads(d["body"])} for d in self.deliveries]

    def wait_for(self, count: int, timeout: float = 60.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.unique()) < count:
            assert time.monotonic() < deadline, f"{len(self.unique())} of {count} events arrived"
            time.sleep(0.05)
        return self.unique()

    def unique(self) -> list[dict]:
        seen, out = set(), []
        for e in self.events():
            if e["id"] not in seen:
                seen.add(e["id"])
                out.append(e)
        return out



def events_toml(url: str = "", **extra) -> str:
    lines = ["[events]", f'callback_url = "{url}"', f'callback_secret = "{SECRET}"',
             "callback_backoff_initial_ms = 100", "callback_backoff_max_secs = 1",
             "pull_visibility_secs = 2"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def check_signature(delivery: dict):
    fields = dict(part.split("=", 1) for part in delivery["signature"].split(","))
    mac = hmac.new(SECRET.encode(), f"{fields['t']}.".encode() + delivery["raw"], hashlib.sha256)
    assert hmac.compare_digest(mac.hexdigest(), fields["v1"])
    assert abs(int(fields["t"]) - time.time()) < 300


@pytest.fixture
def receiver():
    r = Receiver(fail_first=3)
    yield r
    r.close()


@pytest.mark.parametrize("queue", ["sqlite", "postgres"])
def test_callbacks_retry_until_accepted_in_order_per_task(gateway_factory, request, receiver,
                                                          queue):
    store = queue_store(queue, request)
    gw = gateway_factory.start("file", f"callbacks-{queue}",
                               extra=jobs_toml(store) + events_toml(receiver.url))
    upload(gw, "videos/clip.mp4", "h264_bframes.mp4")
    client = vod(gw)
    changed = [process(client, "/videos/clip.mp4", QUICK, TasksNotifyMode="Change",
                       SessionContext=f"change-{i}") for i in range(3)]
    finished = process(client, "/videos/clip.mp4", QUICK, SessionContext="finish")
    silent = process(client, "/videos/clip.mp4", QUICK, TasksNotifyMode="None")
    for task in changed + [finished, silent]:
        wait(client, task)
    events = receiver.wait_for(3 * 2 + 1)
    time.sleep(1)
    assert len(receiver.unique()) == 7, "an event too many (the None task sent one?)"
    assert receiver.attempts >= 7 + 3, "the first deliveries were refused and must be retried"
    by_task: dict[str, list[str]] = {}
    for e in events:
        check_signature(e)
        assert e["event"]["EventType"] == "ProcedureStateChanged"
        body = e["event"]["ProcedureStateChangeEvent"]
        assert {"TaskId", "Status", "FileId", "FileName", "FileUrl", "MetaData",
                "MediaProcessResultSet", "TasksPriority", "TasksNotifyMode"} <= set(body)
        by_task.setdefault(body["TaskId"], []).append(body["Status"])
        if body["Status"] == "FINISH":
            [result] = body["MediaProcessResultSet"]
            assert result["Type"] == "SnapshotByTimeOffset"
            assert result["SnapshotByTimeOffsetTask"]["Status"] == "SUCCESS"
            pic = result["SnapshotByTimeOffsetTask"]["Output"]["PicInfoSet"][0]
            assert image(pic["Url"]).size == (320, 240)
            assert body["MetaData"]["Width"] == 320
    for task in changed:
        assert by_task[task] == ["PROCESSING", "FINISH"]
    assert by_task[finished] == ["FINISH"]
    assert silent not in by_task


def test_events_survive_a_restart_while_the_receiver_is_down(gateway_factory, receiver):
    receiver.down = True
    gw = gateway_factory.start("file", "callbacks-restart",
                               extra=jobs_toml("sqlite") + events_toml(receiver.url))
    upload(gw, "videos/clip.mp4", "h264_bframes.mp4")
    client = vod(gw)
    tasks = [process(client, "/videos/clip.mp4", QUICK) for _ in range(2)]
    for task in tasks:
        wait(client, task)
    time.sleep(0.5)
    assert receiver.attempts > 0 and receiver.events() == []
    gw.proc.kill()
    gw.proc.wait()
    receiver.down = False
    gw.start()
    events = receiver.wait_for(2)
    assert sorted(e["event"]["ProcedureStateChangeEvent"]["TaskId"] for e in events) == sorted(tasks)


def test_pull_and_confirm_events(gateway_factory):
    gw = gateway_factory.start("file", "pull", extra=jobs_toml("sqlite") + events_toml())
    upload(gw, "videos/clip.mp4", "h264_bframes.mp4")
    client = vod(gw)
    assert call(client, "DescribeEventConfig", {}).Mode == "PULL"
    # A long poll that finds nothing waits about 5 s and returns empty.
    started = time.monotonic()
    assert call(client, "PullEvents", {}).EventSet == []
    assert 4.0 < time.monotonic() - started < 8.0
    # A long poll wakes up when an event arrives.
    got = {}

    def pull():
        got["events"] = call(vod(gw), "PullEvents", {}).EventSet
        got["at"] = time.monotonic()

    puller = threading.Thread(target=pull)
    puller.start()
    time.sleep(0.3)
    task = process(client, "/videos/clip.mp4", QUICK, SessionContext="pulled")
    finished_at = time.monotonic()
    puller.join(10)
    [event] = got["events"]
    assert got["at"] - finished_at < 4.5
    assert event.EventType == "ProcedureStateChanged" and event.EventHandle
    assert event.ProcedureStateChangeEvent.TaskId == task
    assert event.ProcedureStateChangeEvent.SessionContext == "pulled"
    # Pulled but not confirmed: hidden for pull_visibility_secs (2 s here),
    # then pullable again with a new handle. This long poll returns it then.
    pulled_at = got["at"]
    again = call(client, "PullEvents", {}).EventSet
    assert time.monotonic() - pulled_at > 1.5, "the unconfirmed event came back too soon"
    assert [e.ProcedureStateChangeEvent.TaskId for e in again] == [task]
    assert again[0].EventHandle != event.EventHandle
    call(client, "ConfirmEvents", {"EventHandles": [again[0].EventHandle]})
    # Confirmed: never again (this poll outlasts the visibility timeout).
    assert call(client, "PullEvents", {}).EventSet == []
    # Sixteen at most per pull.
    for _ in range(18):
        process(client, "/videos/clip.mp4", QUICK)
    deadline = time.monotonic() + 60
    while call(client, "DescribeTasks", {"Status": "FINISH", "Limit": 100}).TaskSet.__len__() < 19:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    first = call(client, "PullEvents", {}).EventSet
    second = call(client, "PullEvents", {}).EventSet
    assert (len(first), len(second)) == (16, 2)
    call(client, "ConfirmEvents", {"EventHandles": [e.EventHandle for e in first]})
    err = error_of(client, "ConfirmEvents", {})
    assert err.code == "MissingParameter"


def test_session_id_returns_the_first_task_and_starts_nothing(gateway_factory):
    gw = gateway_factory.start("file", "session", extra=jobs_toml("sqlite"))
    upload(gw, "videos/clip.mp4", "h264_bframes.mp4")
    client = vod(gw)
    first = process(client, "/videos/clip.mp4", QUICK, SessionId="upload-42")
    second = process(client, "/videos/clip.mp4", QUICK, SessionId="upload-42")
    other = process(client, "/videos/clip.mp4", QUICK, SessionId="upload-43")
    assert first == second and other != first
    # Submissions racing each other still make one task.
    racing = []
    start = threading.Barrier(6)

    def submit():
        own = vod(gw)
        start.wait()
        racing.append(process(own, "/videos/clip.mp4", QUICK, SessionId="upload-44"))

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(racing) == 6 and len(set(racing)) == 1, racing
    for task in (first, other, racing[0]):
        wait(client, task)
    tasks = call(client, "DescribeTasks", {"Limit": 10}).TaskSet
    assert sorted(t.TaskId for t in tasks) == sorted([first, other, racing[0]])
    assert detail(client, first).ProcedureTask.SessionId == "upload-42"


def test_procedures_can_be_created_described_run_and_deleted(gateway_factory):
    gw = gateway_factory.start("file", "procedures", extra=jobs_toml("sqlite"))
    upload(gw, "videos/clip.mp4", "h264_bframes.mp4")
    client = vod(gw)
    task = {"SnapshotByTimeOffsetTaskSet": [{"Definition": 10, "ExtTimeOffsetSet": ["2s"]}],
            "ImageSpriteTaskSet": [{"Definition": 10}]}
    call(client, "CreateProcedureTemplate", {"Name": "thumbs", "Comment": "c",
                                             "MediaProcessTask": task})
    err = error_of(client, "CreateProcedureTemplate", {"Name": "thumbs", "MediaProcessTask": task})
    assert err.code == "InvalidParameterValue.Name"
    err = error_of(client, "CreateProcedureTemplate", {
        "Name": "bad", "MediaProcessTask": {"SampleSnapshotTaskSet": [{"Definition": 5}]}})
    assert err.code == "ResourceNotFound.TemplateNotExist"
    listed = call(client, "DescribeProcedureTemplates", {"Names": ["thumbs"]})
    assert listed.TotalCount == 1
    assert listed.ProcedureTemplateSet[0].Name == "thumbs"
    assert listed.ProcedureTemplateSet[0].MediaProcessTask.ImageSpriteTaskSet[0].Definition == 10
    run = call(client, "ProcessMediaByProcedure", {"ProcedureName": "thumbs",
                                                   "MediaStoragePath": "/videos/clip.mp4"})
    d = wait(client, run.TaskId)
    assert [t for t, _ in results(d)] == ["SnapshotByTimeOffset", "ImageSprites"]
    assert all(r.Status == "SUCCESS" for _, r in results(d))
    err = error_of(client, "ProcessMediaByProcedure", {"ProcedureName": "nope",
                                                       "MediaStoragePath": "/videos/clip.mp4"})
    assert err.code == "ResourceNotFound.ProcedureNotExist"
    call(client, "DeleteProcedureTemplate", {"Name": "thumbs"})
    assert call(client, "DescribeProcedureTemplates", {}).TotalCount == 0


def test_uploads_start_procedures_once(gateway_factory, receiver):
    receiver.fail_first = 0
    triggers = ('\n[[triggers]]\nprefix = "incoming/"\nsuffix = ".mp4"\nprocedure = "thumbs"\n')
    gw = gateway_factory.start("file", "triggers",
                               extra=jobs_toml("sqlite") + events_toml(receiver.url) + triggers)
    client = vod(gw)
    call(client, "CreateProcedureTemplate", {"Name": "thumbs", "MediaProcessTask": {
        "SnapshotByTimeOffsetTaskSet": [{"Definition": 10, "ExtTimeOffsetSet": ["1s", "2s"]}]}})
    cos = support.cos_client(gw, "domain")
    data = (FIXTURES / "demo.mp4").read_bytes()
    # 1. A rule: prefix + suffix.
    cos.put_object(Bucket=support.BUCKET, Key="incoming/a.mp4", Body=data)
    # 2. Not matched by the rule: nothing.
    cos.put_object(Bucket=support.BUCKET, Key="incoming/a.mov", Body=data)
    # 3. The uploader names the procedure (metadata), also where a rule
    #    matches: once.
    cos.put_object(Bucket=support.BUCKET, Key="other/b.mp4", Body=data,
                   Metadata={"x-cos-meta-framegate-procedure": "thumbs"})
    cos.put_object(Bucket=support.BUCKET, Key="incoming/c.mp4", Body=data,
                   Metadata={"x-cos-meta-framegate-procedure": "thumbs"})
    # 4. Multipart, named at initiation.
    upload_id = cos.create_multipart_upload(
        Bucket=support.BUCKET, Key="other/d.mp4",
        Metadata={"x-cos-meta-framegate-procedure": "thumbs"})["UploadId"]
    # Parts other than the last must have 1 MiB: the video (its index is at
    # the front) followed by padding that players skip.
    padded = data + b"\0" * (1024 * 1024 + 1000)
    half = len(padded) - 1000
    etags = [cos.upload_part(Bucket=support.BUCKET, Key="other/d.mp4", Body=chunk, PartNumber=n,
                             UploadId=upload_id)["ETag"]
             for n, chunk in ((1, padded[:half]), (2, padded[half:]))]
    cos.complete_multipart_upload(Bucket=support.BUCKET, Key="other/d.mp4", UploadId=upload_id,
                                  MultipartUpload={"Part": [
                                      {"PartNumber": n + 1, "ETag": e} for n, e in enumerate(etags)]})
    # 5. Multipart through the rule.
    upload_id = cos.create_multipart_upload(Bucket=support.BUCKET, Key="incoming/e.mp4")["UploadId"]
    etag = cos.upload_part(Bucket=support.BUCKET, Key="incoming/e.mp4", Body=data, PartNumber=1,
                           UploadId=upload_id)["ETag"]
    cos.complete_multipart_upload(Bucket=support.BUCKET, Key="incoming/e.mp4", UploadId=upload_id,
                                  MultipartUpload={"Part": [{"PartNumber": 1, "ETag": etag}]})
    # 6. A copy into the rule's prefix is an upload too.
    cos.copy_object(Bucket=support.BUCKET, Key="incoming/f.mp4",
                    CopySource={"Bucket": support.BUCKET, "Key": "other/b.mp4",
                                "Region": support.REGION})
    expected = {"a.mp4", "b.mp4", "c.mp4", "d.mp4", "e.mp4", "f.mp4"}
    events = receiver.wait_for(len(expected))
    time.sleep(1.5)
    events = receiver.unique()
    names = sorted(e["event"]["ProcedureStateChangeEvent"]["FileName"] for e in events)
    assert names == sorted(expected), "one event per upload, none for a.mov"
    for e in events:
        body = e["event"]["ProcedureStateChangeEvent"]
        [result] = body["MediaProcessResultSet"]
        pics = result["SnapshotByTimeOffsetTask"]["Output"]["PicInfoSet"]
        assert len(pics) == 2 and image(pics[1]["Url"]).size == (640, 360)
    # An unknown procedure is refused before the body is stored.
    from qcloud_cos.cos_exception import CosServiceError
    with pytest.raises(CosServiceError) as refused:
        cos.put_object(Bucket=support.BUCKET, Key="other/f.mp4", Body=data,
                       Metadata={"x-cos-meta-framegate-procedure": "missing"})
    assert refused.value.get_error_code() == "InvalidArgument"
    with pytest.raises(CosServiceError):
        cos.head_object(Bucket=support.BUCKET, Key="other/f.mp4")


def test_pushed_events_are_not_pulled_and_given_up_ones_are(gateway_factory):
    """VOD keeps PUSH and PULL apart: an event delivered by callback is never
    returned by PullEvents; one whose callback was given up
    (events.callback_max_attempts) stays pullable, so nothing is lost."""
    receiver = Receiver()
    try:
        gw = gateway_factory.start("file", "push-pull", extra=jobs_toml("sqlite") + events_toml(
            receiver.url, callback_max_attempts=2))
        upload(gw, "videos/clip.mp4", "h264_bframes.mp4")
        client = vod(gw)
        delivered = process(client, "/videos/clip.mp4", QUICK, SessionContext="delivered")
        wait(client, delivered)
        receiver.wait_for(1)
        assert call(client, "PullEvents", {}).EventSet == []
        receiver.down = True
        given_up = process(client, "/videos/clip.mp4", QUICK, SessionContext="given-up")
        wait(client, given_up)
        deadline = time.monotonic() + 30
        pulled = []
        while not pulled and time.monotonic() < deadline:
            pulled = call(client, "PullEvents", {}).EventSet
        assert [e.ProcedureStateChangeEvent.TaskId for e in pulled] == [given_up]
        assert receiver.attempts >= 3  # one delivery, two refused attempts
        assert len(receiver.unique()) == 1
    finally:
        receiver.close()


def test_modify_event_config_switches_between_pull_and_push(gateway_factory):
    """DescribeEventConfig shows the file's settings until ModifyEventConfig
    changes them; PUSH sends the next events to NotificationUrl (and not to
    PullEvents), PULL keeps them for PullEvents (and sends nothing); bad
    values are refused naming the field."""
    receiver = Receiver()
    try:
        gw = gateway_factory.start("file", "event-config",
                                   extra=jobs_toml("sqlite") + events_toml())
        upload(gw, "videos/clip.mp4", "h264_bframes.mp4")
        client = vod(gw)
        config = call(client, "DescribeEventConfig", {})
        assert (config.Mode, config.NotificationUrl) == ("PULL", "")
        assert error_of(client, "ModifyEventConfig", {"Mode": "SOMETIMES"}).code == \
            "InvalidParameterValue.Mode"
        assert error_of(client, "ModifyEventConfig", {"Mode": "PUSH",
                                                      "NotificationUrl": "ftp://x"}).code == \
            "InvalidParameterValue.NotificationUrl"
        call(client, "ModifyEventConfig", {"Mode": "PUSH", "NotificationUrl": receiver.url})
        config = call(client, "DescribeEventConfig", {})
        assert (config.Mode, config.NotificationUrl) == ("PUSH", receiver.url)
        pushed = process(client, "/videos/clip.mp4", QUICK)
        wait(client, pushed)
        [event] = receiver.wait_for(1)
        assert event["event"]["ProcedureStateChangeEvent"]["TaskId"] == pushed
        assert call(client, "PullEvents", {}).EventSet == []
        call(client, "ModifyEventConfig", {"Mode": "PULL"})
        pulled = process(client, "/videos/clip.mp4", QUICK)
        wait(client, pulled)
        events = call(client, "PullEvents", {}).EventSet
        assert [e.ProcedureStateChangeEvent.TaskId for e in events] == [pulled]
        time.sleep(1)
        assert len(receiver.unique()) == 1
    finally:
        receiver.close()


def test_events_past_their_retention_are_swept(gateway_factory):
    """events.retention_secs: the sweep (at start, then every minute) removes
    older events, confirmed or not."""
    gw = gateway_factory.start("file", "retention",
                               extra=jobs_toml("sqlite") + events_toml(retention_secs=1))
    upload(gw, "videos/clip.mp4", "h264_bframes.mp4")
    client = vod(gw)
    task = process(client, "/videos/clip.mp4", QUICK)
    wait(client, task)
    time.sleep(2)
    gw.stop()
    gw.start()
    time.sleep(1)
    assert call(vod(gw), "PullEvents", {}).EventSet == []
