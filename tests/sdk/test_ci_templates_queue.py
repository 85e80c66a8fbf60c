"""CI Snapshot templates (`ci_create_template`, `ci_update_template`,
`ci_get_template`, `ci_delete_template`), the bucket's media queue
(`ci_get_media_queue`, `ci_update_media_queue`) and `ci_get_media_bucket`,
through cos-python-sdk-v5 on conftest's `jobs_gateway` (one worker, on the
SQLite queue and on PostgreSQL). docs/ci-media-api.md, "Templates" and
"Queue and buckets"."""

from __future__ import annotations

import time
import uuid

import pytest

import support
from ci_support import (BUCKET, QUEUE_ID, REGION, TEMPLATE_ID, as_list, check_error, client,
                        expect_error, get_jobs, keys, output_names, picture, queue, run,
                        same_picture, set_queue, snapshot_request, submit, upload, wait_job)

CLIP = "h264_bframes.mp4"
SNAPSHOT = {"Mode": "Interval", "Start": "1", "TimeInterval": "2", "Count": "2", "Width": "160"}


@pytest.fixture(scope="module")
def gw(jobs_gateway):
    upload(jobs_gateway, "in/clip.mp4", CLIP)
    return jobs_gateway


@pytest.fixture
def ci(gw):
    yield client(gw, "vhost")
    assert gw.alive(), f"the gateway died during this test:\n{gw.stderr_tail()}"


@pytest.fixture
def s3(gw):
    return support.boto3_client(gw)


@pytest.fixture
def out(key_prefix) -> str:
    return f"ci/{key_prefix}"


def unique(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:10]}"


def body(name: str, **snapshot) -> dict:
    return {"Tag": "Snapshot", "Name": name, "Snapshot": snapshot or dict(SNAPSHOT)}


def create(ci, name: str, **snapshot) -> dict:
    """ci_create_template: the new template (`Template` of the answer)."""
    response = ci.ci_create_template(Bucket=BUCKET, Template=body(name, **snapshot))
    t = response.get("Template")
    assert isinstance(t, dict), response
    assert TEMPLATE_ID.fullmatch(t.get("TemplateId") or ""), t
    return t


def listed(ci, **kw) -> tuple[list[dict], dict]:
    response = ci.ci_get_template(Bucket=BUCKET, **kw)
    return as_list(response.get("TemplateList")), response


def by_id(ci, template_id: str, category: str = "Custom") -> list[dict]:
    return listed(ci, Category=category, Ids=template_id)[0]


def check_snapshot(t: dict, **want):
    snap = t.get("Snapshot") or {}
    for field, value in want.items():
        got = snap.get(field)
        if field in ("Start", "TimeInterval"):
            assert got is not None and float(got) == float(value), (field, snap)
        elif field in ("Count", "Width", "Height"):
            assert got is not None and int(got) == int(value), (field, snap)
        else:
            assert got == value, (field, snap)


# ----------------------------------------------------------------- templates

def test_snapshot_template_create_read_update_delete(ci):
    """A custom template: id t+32 hex, its Name, Tag, Category Custom and
    Snapshot as given; read back by id; updated; deleted (then 404
    NoSuchTemplate to read-by-id, update and delete)."""
    name = unique("thumbs")
    t = create(ci, name, **SNAPSHOT)
    assert (t.get("Name"), t.get("Tag")) == (name, "Snapshot"), t
    assert t.get("Category", "Custom") == "Custom", t
    check_snapshot(t, **SNAPSHOT)
    [got] = by_id(ci, t["TemplateId"])
    assert (got["TemplateId"], got["Name"], got["Tag"], got.get("Category", "Custom")) == \
        (t["TemplateId"], name, "Snapshot", "Custom")
    check_snapshot(got, **SNAPSHOT)

    renamed = unique("renamed")
    ci.ci_update_template(Bucket=BUCKET, TemplateId=t["TemplateId"], Template=body(
        renamed, Mode="Average", Start="0", Count="3", Height="180"))
    [got] = by_id(ci, t["TemplateId"])
    assert got["Name"] == renamed
    check_snapshot(got, Mode="Average", Count="3", Height="180")

    ci.ci_delete_template(Bucket=BUCKET, TemplateId=t["TemplateId"])
    assert by_id(ci, t["TemplateId"]) == []
    check_error(expect_error(ci.ci_delete_template, Bucket=BUCKET, TemplateId=t["TemplateId"]),
                404, "NoSuchTemplate")
    check_error(expect_error(ci.ci_update_template, Bucket=BUCKET, TemplateId=t["TemplateId"],
                             Template=body(unique("x"))), 404, "NoSuchTemplate")


def test_template_names_and_fields_are_checked(ci):
    """Name 1-64 characters (64 is fine), unique in the bucket; Snapshot
    fields in range; another Tag refused. 400 InvalidArgument names the field."""
    check_error(expect_error(ci.ci_create_template, Bucket=BUCKET, Template=body("")),
                400, "InvalidArgument", "Name")
    check_error(expect_error(ci.ci_create_template, Bucket=BUCKET, Template=body("n" * 65)),
                400, "InvalidArgument", "Name")
    long_name = ("n" * 54) + uuid.uuid4().hex[:10]
    t = create(ci, long_name)
    e = expect_error(ci.ci_create_template, Bucket=BUCKET, Template=body(long_name))
    assert e.status in (400, 409) and e.code, f"a second template named {long_name}: {e}"
    e = expect_error(ci.ci_update_template, Bucket=BUCKET, TemplateId=create(ci, unique("b"))[
        "TemplateId"], Template=body(long_name))
    assert e.status in (400, 409) and e.code, f"renamed onto an existing name: {e}"
    for field, value in (("Count", "0"), ("Width", "5000"), ("Mode", "Sometimes"),
                         ("TimeInterval", "0")):
        snapshot = dict(SNAPSHOT, **{field: value})
        check_error(expect_error(ci.ci_create_template, Bucket=BUCKET,
                                 Template=body(unique("bad"), **snapshot)),
                    400, "InvalidArgument", f"Snapshot.{field}")
    e = expect_error(ci.ci_create_template, Bucket=BUCKET, Template={
        "Tag": "Animation", "Name": unique("anim"), "Container": {"Format": "gif"}})
    assert (e.status, e.code) in ((400, "InvalidArgument"), (501, "NotImplemented")), e
    ci.ci_delete_template(Bucket=BUCKET, TemplateId=t["TemplateId"])


def test_template_listing_filters_and_pages(ci):
    """GET /template: ids (a comma list), name, pageNumber/pageSize with
    TotalCount; Custom lists no official template; bad paging refused."""
    made = [create(ci, unique(f"page{k}")) for k in range(3)]
    ids = [t["TemplateId"] for t in made]
    first, response = listed(ci, Ids=",".join(ids), PageNumber=1, PageSize=2)
    assert len(first) == 2 and int(response["TotalCount"]) == 3, response
    second, response = listed(ci, Ids=",".join(ids), PageNumber=2, PageSize=2)
    assert len(second) == 1 and int(response["TotalCount"]) == 3, response
    assert sorted(t["TemplateId"] for t in first + second) == sorted(ids)
    named, _ = listed(ci, Name=made[1]["Name"])
    assert [t["TemplateId"] for t in named] == [ids[1]]
    custom, _ = listed(ci, Category="Custom", PageSize=100)
    assert set(ids) <= {t["TemplateId"] for t in custom}
    assert {t["TemplateId"] for t in custom}.isdisjoint({t["TemplateId"] for t in official(ci)})
    assert all(TEMPLATE_ID.fullmatch(t["TemplateId"]) for t in custom), custom
    for kw, field in (({"PageSize": 0}, "pageSize"), ({"PageSize": 101}, "pageSize"),
                      ({"PageNumber": 0}, "pageNumber"), ({"Category": "Mine"}, "category")):
        check_error(expect_error(ci.ci_get_template, Bucket=BUCKET, **kw), 400,
                    "InvalidArgument", field)
    for t in made:
        ci.ci_delete_template(Bucket=BUCKET, TemplateId=t["TemplateId"])


def official(ci) -> list[dict]:
    templates, _ = listed(ci, Category="Official", PageSize=100)
    return templates


def test_official_templates_are_listed_and_read_only(ci):
    """Category Official lists the official Snapshot templates (ids `t0...`,
    not custom ones); changing or deleting one is 409 InvalidJobState and
    leaves it as it was."""
    found = official(ci)
    assert found, "no official template"
    for t in found:
        assert t["TemplateId"].startswith("t0") and not TEMPLATE_ID.fullmatch(t["TemplateId"]), t
        assert t.get("Tag") == "Snapshot" and t.get("Category", "Official") == "Official", t
    first = found[0]
    check_error(expect_error(ci.ci_update_template, Bucket=BUCKET, TemplateId=first["TemplateId"],
                             Template=body(unique("mine"))), 409, "InvalidJobState")
    check_error(expect_error(ci.ci_delete_template, Bucket=BUCKET, TemplateId=first["TemplateId"]),
                409, "InvalidJobState")
    assert official(ci) == found


def test_a_job_names_a_template(ci, s3, out):
    """Operation.TemplateId: the job takes the template's Snapshot (every 2 s
    from 1 s, 2 pictures, 160 wide) and names the template in its document."""
    t = create(ci, unique("for-job"), **SNAPSHOT)
    d = run(ci, snapshot_request("in/clip.mp4", f"{out}t-${{Number}}.jpg",
                                 template_id=t["TemplateId"]))
    assert d["Operation"].get("TemplateId") == t["TemplateId"], d["Operation"]
    assert d["Operation"].get("TemplateName") == t["Name"], d["Operation"]
    names = output_names(d)
    assert names == [f"{out}t-0.jpg", f"{out}t-1.jpg"]
    for name, seconds in zip(names, (1, 3)):
        img = picture(s3, name)
        assert img.size == (160, 120)
        same_picture(img, CLIP, seconds, what=name)


def test_a_template_is_copied_into_the_job_at_submission(ci, s3, out):
    """A job queued with a template, the template then changed: the queued
    job still does what the template said when it was submitted; a job
    submitted after the change does the new thing."""
    t = create(ci, unique("copied"), **SNAPSHOT)
    set_queue(ci, "Paused")
    try:
        queued = submit(ci, snapshot_request("in/clip.mp4", f"{out}old-${{Number}}.jpg",
                                             template_id=t["TemplateId"]))["JobId"]
        ci.ci_update_template(Bucket=BUCKET, TemplateId=t["TemplateId"], Template=body(
            t["Name"], Mode="Interval", Start="5", Count="1", Width="200"))
    finally:
        set_queue(ci, "Active")
    d = wait_job(ci, queued)
    assert d["State"] == "Success", d
    assert output_names(d) == [f"{out}old-0.jpg", f"{out}old-1.jpg"]
    assert picture(s3, f"{out}old-0.jpg").size == (160, 120)
    same_picture(picture(s3, f"{out}old-1.jpg"), CLIP, 3)
    later = run(ci, snapshot_request("in/clip.mp4", f"{out}new-${{Number}}.jpg",
                                     template_id=t["TemplateId"]))
    assert output_names(later) == [f"{out}new-0.jpg"]
    img = picture(s3, f"{out}new-0.jpg")
    assert img.size == (200, 150)
    same_picture(img, CLIP, 5)


def test_a_job_may_name_an_official_template(ci, s3, out):
    """An official template (one that makes pictures, not only sprites) works
    in a job like a custom one."""
    template_id = next(t["TemplateId"] for t in official(ci) if (t.get("Snapshot") or {}).get(
        "SnapshotOutMode", "OnlySnapshot") == "OnlySnapshot")
    d = run(ci, snapshot_request("in/clip.mp4", f"{out}o-${{Number}}.jpg",
                                 template_id=template_id))
    names = output_names(d)
    assert names and sorted(keys(s3, prefix=out)) == sorted(names)
    assert d["Operation"].get("TemplateId") == template_id


# ------------------------------------------------------------------- queue

def test_the_bucket_has_one_active_queue(gw, ci):
    """ci_get_media_queue: one queue, id p+32 hex, name queue-1, Active; the
    same id every time and through every client configuration."""
    q = queue(ci)
    assert QUEUE_ID.fullmatch(q["QueueId"]), q
    assert (q.get("Name"), q.get("State")) == ("queue-1", "Active"), q
    assert queue(ci)["QueueId"] == q["QueueId"]
    assert queue(client(gw, "domain"))["QueueId"] == q["QueueId"]
    assert queue(client(gw, "ci"))["QueueId"] == q["QueueId"]
    only = ci.ci_get_media_queue(Bucket=BUCKET, QueueIds=q["QueueId"])["QueueList"]
    assert [x["QueueId"] for x in only] == [q["QueueId"]]


def test_a_paused_queue_keeps_jobs_waiting_until_resumed(ci, s3, out):
    """Paused: the queue says so, accepts jobs and starts none (2 s later
    both still Submitted); Active again: both run."""
    try:
        response = set_queue(ci, "Paused")
        assert [x.get("State") for x in response.get("Queue", [])] == ["Paused"], response
        assert queue(ci)["State"] == "Paused"
        jobs = [submit(ci, snapshot_request("in/clip.mp4", f"{out}{k}.jpg", Start="1",
                                            Count="1"))["JobId"] for k in range(2)]
        time.sleep(2)
        details, _ = get_jobs(ci, jobs)
        assert [d["State"] for d in details] == ["Submitted", "Submitted"], details
        assert keys(s3, prefix=out) == []
    finally:
        response = set_queue(ci, "Active")
    assert [x.get("State") for x in response.get("Queue", [])] == ["Active"], response
    assert queue(ci)["State"] == "Active"
    for job_id in jobs:
        assert wait_job(ci, job_id)["State"] == "Success"
    assert sorted(keys(s3, prefix=out)) == [f"{out}0.jpg", f"{out}1.jpg"]


def test_queue_updates_are_checked(ci):
    """An unknown queue: 404 NoSuchQueue; a bad State or NotifyConfig: 400
    InvalidArgument naming the field; the queue stays as it was."""
    q = queue(ci)
    good = {"Name": "queue-1", "QueueID": q["QueueId"], "State": "Active"}
    other = "p" + uuid.uuid4().hex
    check_error(expect_error(ci.ci_update_media_queue, Bucket=BUCKET, QueueId=other,
                             Request=dict(good, QueueID=other)), 404, "NoSuchQueue")
    check_error(expect_error(ci.ci_update_media_queue, Bucket=BUCKET, QueueId=q["QueueId"],
                             Request=dict(good, State="Sleeping")), 400, "InvalidArgument", "State")
    for field, value in (("Url", "ftp://127.0.0.1/cb"), ("ResultFormat", "YAML"),
                         ("State", "Maybe"), ("Type", "TDMQ")):
        notify = {"Url": "http://127.0.0.1:9/cb", "Type": "Url", "Event": "TaskFinish",
                  "ResultFormat": "XML", "State": "On", field: value}
        check_error(expect_error(ci.ci_update_media_queue, Bucket=BUCKET, QueueId=q["QueueId"],
                                 Request=dict(good, NotifyConfig=notify)),
                    400, "InvalidArgument", f"NotifyConfig.{field}")
    assert queue(ci)["State"] == "Active"


def test_media_bucket_lists_the_bucket(ci):
    """ci_get_media_bucket: the gateway's one bucket, in its region."""
    found = ci.ci_get_media_bucket().get("MediaBucketList")
    assert isinstance(found, list) and len(found) == 1, found
    assert (found[0].get("BucketId"), found[0].get("Region")) == (BUCKET, REGION), found
