"""TaskFinish callbacks of CI jobs (docs/ci-media-api.md, "Callbacks"): a
local HTTP receiver gets the job document when a job ends — in XML by
default, in JSON with CallBackFormat=JSON — at the job's CallBack, or at the
queue's NotifyConfig.Url for jobs that name none; for Success, Failed and
Cancel; retried until accepted."""

from __future__ import annotations

import json
import time
import uuid
import xml.etree.ElementTree as ET

import pytest

from callback_receiver import CallbackServer
from ci_support import (BUCKET, as_list, client, output_names, queue, set_queue,
                        snapshot_request, submit, upload, wait_job)
from conftest import GatewayFactory
from jobs_support import jobs_toml

QUICK = dict(Mode="Interval", Start="1", TimeInterval="1", Count="2")


class Receiver(CallbackServer):
    """Job callbacks by the path they were sent to."""

    def at(self, path: str) -> list[dict]:
        with self.lock:
            return [d for d in self.deliveries if d["path"] == path]

    def wait(self, path: str, job_id: str, timeout: float = 30.0) -> dict:
        """The first delivery to `path` about `job_id`, parsed."""
        deadline = time.monotonic() + timeout
        while True:
            for d in self.at(path):
                doc = parse(d)
                if doc["JobsDetail"].get("JobId") == job_id:
                    return doc
            assert time.monotonic() < deadline, \
                f"no callback for {job_id} at {path}; got {[x['body'][:200] for x in self.at(path)]}"
            time.sleep(0.05)


def element(node: ET.Element):
    """An XML element as a dict (repeated children as lists), text as str."""
    if len(node) == 0:
        return node.text
    out: dict = {}
    for child in node:
        value = element(child)
        if child.tag in out:
            if not isinstance(out[child.tag], list):
                out[child.tag] = [out[child.tag]]
            out[child.tag].append(value)
        else:
            out[child.tag] = value
    return out


def parse(delivery: dict) -> dict:
    """{"format", "EventName", "JobsDetail"} of a delivery, XML or JSON."""
    body = delivery["body"]
    if delivery["type"].startswith("application/json"):
        doc = json.loads(body)
        detail = doc["JobsDetail"]
        if isinstance(detail, list):
            assert len(detail) == 1, doc
            detail = detail[0]
        return {"format": "JSON", "EventName": doc.get("EventName"), "JobsDetail": detail}
    assert delivery["type"].startswith("application/xml"), delivery["type"]
    root = ET.fromstring(body)
    assert root.tag == "Response", body[:200]
    detail = root.find("JobsDetail")
    assert detail is not None, body[:300]
    return {"format": "XML", "EventName": root.findtext("EventName"), "JobsDetail": element(detail)}


def events_toml() -> str:
    return "\n".join(["[events]", "callback_backoff_initial_ms = 100",
                      "callback_backoff_max_secs = 1", ""])


@pytest.fixture(scope="module")
def gw(workroot, request):
    """One worker on SQLite, quick callback retries."""
    factory = GatewayFactory(workroot / "ci-callbacks", request)
    gateway = factory.start("file", "ci-callbacks", extra=jobs_toml("sqlite") + events_toml())
    upload(gateway, "in/clip.mp4", "h264_bframes.mp4")
    upload(gateway, "in/notes.txt", "not_video.txt")
    yield gateway
    factory.stop_all()


@pytest.fixture
def ci(gw):
    yield client(gw, "vhost")
    assert gw.alive(), f"the gateway died during this test:\n{gw.stderr_tail()}"


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def out(key_prefix) -> str:
    return f"ci/{key_prefix}"


def check_detail(doc: dict, job_id: str, state: str, fmt: str):
    assert doc["format"] == fmt
    assert doc["EventName"] == "TaskFinish", doc
    d = doc["JobsDetail"]
    assert (d.get("JobId"), d.get("State"), d.get("Tag")) == (job_id, state, "Snapshot"), d
    return d


def test_the_job_callback_gets_task_finish_in_xml_by_default(ci, receiver, out):
    """CallBack alone: an application/xml POST of
    <Response><EventName>TaskFinish</EventName><JobsDetail>... with the job's
    document (Code Success, its pictures)."""
    job_id = submit(ci, snapshot_request("in/clip.mp4", f"{out}x-${{Number}}.jpg",
                                         callback=f"{receiver.base}/xml", **QUICK))["JobId"]
    final = wait_job(ci, job_id)
    doc = receiver.wait("/xml", job_id)
    d = check_detail(doc, job_id, "Success", "XML")
    assert d.get("Code") == "Success"
    names = as_list(d["Operation"]["MediaResult"]["OutputFile"]["ObjectName"])
    assert names == output_names(final) == [f"{out}x-0.jpg", f"{out}x-1.jpg"]
    assert d["Input"]["Object"] == "in/clip.mp4"


def test_the_job_callback_in_json(ci, receiver, out):
    """CallBackFormat=JSON: the same document as JSON
    ({"EventName": "TaskFinish", "JobsDetail": {...}})."""
    user_data = f"json-{uuid.uuid4().hex}"
    job_id = submit(ci, snapshot_request("in/clip.mp4", f"{out}j-${{Number}}.jpg",
                                         callback=f"{receiver.base}/json", callback_format="JSON",
                                         user_data=user_data, **QUICK))["JobId"]
    wait_job(ci, job_id)
    doc = receiver.wait("/json", job_id)
    d = check_detail(doc, job_id, "Success", "JSON")
    assert d["Operation"]["UserData"] == user_data
    names = as_list(d["Operation"]["MediaResult"]["OutputFile"]["ObjectName"])
    assert names == [f"{out}j-0.jpg", f"{out}j-1.jpg"]


def test_failed_and_cancelled_jobs_call_back_too(ci, receiver, out):
    """A job that fails (its input is no video) and one cancelled while it
    waits in a paused queue both send TaskFinish with their end state."""
    failed = submit(ci, snapshot_request("in/notes.txt", f"{out}f-${{Number}}.jpg",
                                         callback=f"{receiver.base}/ends", **QUICK))["JobId"]
    assert wait_job(ci, failed)["State"] == "Failed"
    d = check_detail(receiver.wait("/ends", failed), failed, "Failed", "XML")
    assert d.get("Code") and d["Code"] != "Success", d
    set_queue(ci, "Paused")
    try:
        cancelled = submit(ci, snapshot_request("in/clip.mp4", f"{out}c-${{Number}}.jpg",
                                                callback=f"{receiver.base}/ends",
                                                **QUICK))["JobId"]
        ci.ci_cancel_jobs(Bucket=BUCKET, JobID=cancelled)
    finally:
        set_queue(ci, "Active")
    check_detail(receiver.wait("/ends", cancelled), cancelled, "Cancel", "XML")


def test_the_queue_notify_url_gets_jobs_without_a_callback(ci, receiver, out):
    """The queue's NotifyConfig (State On) receives TaskFinish of jobs that
    name no CallBack, in its ResultFormat; a job with its own CallBack goes
    there only; with NotifyConfig Off nothing is sent."""
    notify = {"Url": f"{receiver.base}/queue", "Type": "Url", "Event": "TaskFinish",
              "ResultFormat": "XML", "State": "On"}
    try:
        set_queue(ci, "Active", notify)
        q = queue(ci)
        assert (q.get("NotifyConfig") or {}).get("Url") == notify["Url"], q
        plain = submit(ci, snapshot_request("in/clip.mp4", f"{out}q-${{Number}}.jpg",
                                            **QUICK))["JobId"]
        own = submit(ci, snapshot_request("in/clip.mp4", f"{out}o-${{Number}}.jpg",
                                          callback=f"{receiver.base}/own", **QUICK))["JobId"]
        wait_job(ci, plain)
        wait_job(ci, own)
        check_detail(receiver.wait("/queue", plain), plain, "Success", "XML")
        check_detail(receiver.wait("/own", own), own, "Success", "XML")

        set_queue(ci, "Active", dict(notify, ResultFormat="JSON"))
        as_json = submit(ci, snapshot_request("in/clip.mp4", f"{out}s-${{Number}}.jpg",
                                              **QUICK))["JobId"]
        wait_job(ci, as_json)
        check_detail(receiver.wait("/queue", as_json), as_json, "Success", "JSON")

        set_queue(ci, "Active", dict(notify, State="Off"))
        silent = submit(ci, snapshot_request("in/clip.mp4", f"{out}n-${{Number}}.jpg",
                                             **QUICK))["JobId"]
        wait_job(ci, silent)
        time.sleep(1.5)
        about = [parse(d)["JobsDetail"].get("JobId") for d in receiver.at("/queue")]
        assert silent not in about, "NotifyConfig Off still called back"
        assert own not in about, "a job with its own CallBack also went to the queue's Url"
    finally:
        set_queue(ci, "Active", dict(notify, State="Off"))


def test_callbacks_are_retried_until_accepted(ci, out):
    """The receiver refuses the first two attempts (503): the callback comes
    again until it is taken."""
    receiver = Receiver(fail_first=2)
    try:
        job_id = submit(ci, snapshot_request("in/clip.mp4", f"{out}r-${{Number}}.jpg",
                                             callback=f"{receiver.base}/retry", **QUICK))["JobId"]
        wait_job(ci, job_id)
        check_detail(receiver.wait("/retry", job_id, timeout=30), job_id, "Success", "XML")
        assert receiver.attempts >= 3
    finally:
        receiver.close()
