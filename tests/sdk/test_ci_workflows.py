"""CI workflows through cos-python-sdk-v5 (`ci_create_workflow`,
`ci_update_workflow`, `ci_update_workflow_state`, `ci_get_workflow`,
`ci_delete_workflow`, `ci_trigger_workflow`, `ci_get_workflowexecution`,
`ci_list_workflowexecution`) on a gateway with one job worker, on the SQLite
queue and on PostgreSQL (docs/ci-media-api.md, "Workflows").

An upload whose key starts with an active workflow's prefix and passes its
file filter starts one run: one snapshot job per Snapshot node, its output
names filled in from the input. The pictures are checked by content against
the frames ffmpeg decodes at the times the template's mode selects. Uploads
that do not match start nothing; to prove that (runs may start after the
upload returns), each negative case ends with an upload that does match and
the run list must then hold that run alone.

How the SDK hands the answers back: `ci_get_workflow` forces
`MediaWorkflowList` into a list and `ci_get_workflowexecution` forces
`WorkflowExecution`; `ci_list_workflowexecution` forces only
`WorkflowExecution` too, so its `WorkflowExecutionList` is a dict for one
run and a list for several, and every nested repeated field (`Tasks`,
`NonExistIDs`) is a value for one and a list for several: all are read
through `as_list`.
"""

from __future__ import annotations

import sqlite3
import time
import uuid

import pytest

import support
from ci_support import (BUCKET, DOMAIN, ENDED, FIXTURES, JOB_ID, MAIN_ONLY_ID, MAIN_ONLY_KEY,
                        OTHER, REGION, all_job_ids, as_list, check_error, client, duration,
                        expect_error, is_jpeg, is_png, job, keys, listing,
                        main_only_credential_toml, new_id, output_names, parse_error,
                        parse_time, picture, raw, same_picture, set_queue)
from conftest import GatewayFactory, queue_store
from jobs_support import jobs_toml

CLIP = "h264_bframes.mp4"     # 320x240, 25 fps, 10 s, frame numbers burnt in
CLIP_BYTES = (FIXTURES / CLIP).read_bytes()
TEXT_BYTES = (FIXTURES / "not_video.txt").read_bytes()


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gw(queue, workroot, request):
    """BUCKET and OTHER on the file store, one job worker on `queue`, and a
    credential that may write BUCKET only."""
    name = f"ci-workflows-{queue}"
    factory = GatewayFactory(workroot / name, request)
    gateway = factory.start(
        "file", name, extra_buckets=[(OTHER, "file://", "public-read-write")],
        extra=jobs_toml(queue_store(queue, request), workers=1) + main_only_credential_toml())
    yield gateway
    factory.stop_all()


@pytest.fixture
def ci(gw):
    """The SDK with `CosConfig(Region, IP, Port)` (Host <bucket>.cos.<region>...)."""
    yield client(gw, "vhost")
    assert gw.alive(), f"the gateway died during this test:\n{gw.stderr_tail()}"


@pytest.fixture(params=["vhost", "domain"])
def any_ci(gw, request):
    """The SDK in both configurations: `CosConfig(Region, IP, Port)` and
    `CosConfig(Domain=127.0.0.1:PORT)` (the default bucket)."""
    yield client(gw, request.param)
    assert gw.alive(), f"the gateway died during this test:\n{gw.stderr_tail()}"


@pytest.fixture
def s3(gw):
    return support.boto3_client(gw)


@pytest.fixture(scope="module")
def templates(gw):
    """Snapshot templates shared by the tests: `three` (Average, 3 pictures,
    source size), `three_small` (the same at width 128), `one` (1 picture at 1 s)."""
    ci = client(gw, "vhost")
    return {
        "three": template(ci, Mode="Average", Count="3"),
        "three_small": template(ci, Mode="Average", Count="3", Width="128"),
        "one": template(ci, Mode="Interval", Start="1", Count="1"),
    }


@pytest.fixture
def p(key_prefix) -> str:
    """This test's key prefix (inputs and outputs go under it)."""
    return f"wf/{key_prefix}"


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def unique(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:10]}"


def template(ci, **snapshot) -> str:
    response = ci.ci_create_template(Bucket=BUCKET, Template={
        "Tag": "Snapshot", "Name": unique("wf-tpl"), "Snapshot": snapshot})
    return response["Template"]["TemplateId"]


def node(template_id: str, obj: str | None, bucket: str = BUCKET) -> dict:
    output = {"Region": REGION, "Bucket": bucket}
    if obj is not None:
        output["Object"] = obj
    return {"Type": "Snapshot", "Operation": {"TemplateId": template_id, "Output": output}}


def body(name: str, prefix: str, nodes: dict, state: str = "Active",
         ext_filter: dict | None = None) -> dict:
    """A `MediaWorkflow` request: the Start node on `prefix` (with
    `ext_filter` if given) followed by the Snapshot `nodes`."""
    start_input = {"ObjectPrefix": prefix}
    if ext_filter is not None:
        start_input["ExtFilter"] = ext_filter
    dependencies = {"Start": ",".join(nodes)}
    dependencies.update({n: "End" for n in nodes})
    return {"MediaWorkflow": {
        "Name": name, "State": state,
        "Topology": {"Dependencies": dependencies,
                     "Nodes": {"Start": {"Type": "Start", "Input": start_input}, **nodes}}}}


VIDEO_ONLY = {"State": "On", "Video": "true"}


def create(ci, request: dict) -> dict:
    """ci_create_workflow: the new `MediaWorkflow`."""
    response = ci.ci_create_workflow(Bucket=BUCKET, Body=request)
    wf = response.get("MediaWorkflow")
    assert isinstance(wf, dict), response
    wid = wf.get("WorkflowId") or ""
    # CI ids never contain a dot or a slash (docs: how CI calls are routed).
    assert wid and "." not in wid and "/" not in wid, wf
    return wf


def simple(ci, p: str, template_id: str, prefix: str = "up/", state: str = "Active",
           ext_filter: dict | None = VIDEO_ONLY, name: str | None = None) -> str:
    """A workflow on `<p><prefix>` with one node writing
    `<p>out/${InputName}.jpg`; its id."""
    return create(ci, body(name or unique("wf"), p + prefix,
                           {"Snapshot_1": node(template_id, f"{p}out/${{InputName}}.jpg")},
                           state=state, ext_filter=ext_filter))["WorkflowId"]


def get_workflows(ci, **kw) -> tuple[list[dict], list[str]]:
    """ci_get_workflow: (MediaWorkflowList, NonExistIDs)."""
    response = ci.ci_get_workflow(Bucket=BUCKET, **kw)
    return as_list(response.get("MediaWorkflowList")), as_list(response.get("NonExistIDs"))


def get_workflow(ci, wid: str) -> dict:
    found, missing = get_workflows(ci, Ids=wid)
    assert len(found) == 1 and not missing, (found, missing)
    assert found[0]["WorkflowId"] == wid
    return found[0]


def every_workflow(ci) -> list[dict]:
    out = []
    for page in range(1, 1000):
        found, _ = get_workflows(ci, PageNumber=page, PageSize=100)
        out += found
        if len(found) < 100:
            return out
    raise AssertionError("the workflow pages never ran out")


def start_input(wf: dict) -> dict:
    return wf["Topology"]["Nodes"]["Start"]["Input"]


def put(ci, key: str, data: bytes = CLIP_BYTES) -> None:
    ci.put_object(Bucket=BUCKET, Key=key, Body=data)


def list_runs(ci, wid: str, **kw) -> tuple[list[dict], str]:
    """One page of ci_list_workflowexecution: (runs, NextToken)."""
    response = ci.ci_list_workflowexecution(Bucket=BUCKET, WorkflowId=wid, **kw)
    return as_list(response.get("WorkflowExecutionList")), response.get("NextToken") or ""


def all_runs(ci, wid: str) -> list[dict]:
    """Every run of a workflow, oldest first, through NextToken paging."""
    runs, token = [], ""
    for _ in range(1000):
        page, token = list_runs(ci, wid, OrderByTime="Asc", Size=100, NextToken=token)
        runs += page
        if not token:
            return runs
    raise AssertionError("NextToken never ran out")


def run_objects(ci, wid: str) -> list[str]:
    return sorted(r["Object"] for r in all_runs(ci, wid))


def wait_runs(ci, wid: str, until, what: str, timeout: float = 5.0) -> list[dict]:
    """Polls the run list until `until(runs)` holds."""
    deadline = time.monotonic() + timeout
    while True:
        runs = all_runs(ci, wid)
        if until(runs):
            return runs
        assert time.monotonic() < deadline, f"no {what} after {timeout}s: {runs}"
        time.sleep(0.05)


def wait_run_of(ci, wid: str, key: str, timeout: float = 5.0) -> dict:
    """The run an upload of `key` started (polled until it is listed)."""
    runs = wait_runs(ci, wid, lambda rs: any(r["Object"] == key for r in rs),
                     f"run for {key}", timeout)
    [run] = [r for r in runs if r["Object"] == key]
    return run


def get_run(ci, run_id: str) -> dict:
    response = ci.ci_get_workflowexecution(Bucket=BUCKET, RunId=run_id)
    runs = as_list(response.get("WorkflowExecution"))
    assert len(runs) == 1, response
    assert runs[0]["RunId"] == run_id, runs[0]
    return runs[0]


def wait_run(ci, run_id: str, timeout: float = 60.0) -> dict:
    """Polls a run until it has ended."""
    deadline = time.monotonic() + timeout
    while True:
        run = get_run(ci, run_id)
        if run.get("State") in ENDED:
            return run
        assert run.get("State") == "Running", run
        assert time.monotonic() < deadline, f"run {run_id} still running after {timeout}s: {run}"
        time.sleep(0.05)


def tasks(run: dict) -> list[dict]:
    return as_list(run.get("Tasks"))


def succeeded(ci, run_id: str, nodes: int = 1) -> dict:
    """Waits for the run; it and each of its `nodes` jobs must have succeeded."""
    run = wait_run(ci, run_id)
    assert run["State"] == "Success", run
    ts = tasks(run)
    assert len(ts) == nodes, run
    for t in ts:
        assert (t["Type"], t["State"]) == ("Snapshot", "Success"), t
        assert JOB_ID.fullmatch(t.get("JobId") or ""), t
    return run


def nothing_started_for(ci, wid: str, sentinel: str, ignored=()) -> None:
    """Uploads `sentinel` (which matches): its run appears and is the only one
    besides `ignored` objects; so nothing uploaded before it started a run."""
    put(ci, sentinel)
    wait_run_of(ci, wid, sentinel)
    assert run_objects(ci, wid) == sorted([sentinel, *ignored])


# --------------------------------------------------------------------------
# 1. An upload starts one run; its pictures are the right frames
# --------------------------------------------------------------------------

def test_a_matching_upload_starts_one_run_whose_pictures_are_the_right_frames(
        gw, ci, s3, p, templates):
    """PUT of <p>up/clip.mp4 to a workflow on <p>up/ (Video filter) with two
    Snapshot nodes: exactly one run, one successful job per node, the outputs
    under the names the placeholders give (${InputName}, ${InputNameAndExt},
    ${InputPath}, ${RunId}, ${Number}), and each picture is the frame at
    k*10/3 s (Average, Count 3) at the template's size and format."""
    name = unique("wf-frames")
    wf = create(ci, body(name, f"{p}up/", {
        "Snapshot_1": node(templates["three"], f"{p}out/${{InputName}}-${{Number}}.jpg"),
        "Snapshot_2": node(templates["three_small"],
                           f"{p}small/${{RunId}}/${{InputPath}}/${{InputNameAndExt}}-${{Number}}.png"),
    }, ext_filter=VIDEO_ONLY))
    wid = wf["WorkflowId"]
    assert (wf["Name"], wf["State"]) == (name, "Active")
    key = f"{p}up/clip.mp4"
    put(client(gw, "domain"), key)   # the other client configuration uploads
    run = succeeded(ci, wait_run_of(ci, wid, key)["RunId"], nodes=2)
    run_id = run["RunId"]
    assert (run["WorkflowId"], run["WorkflowName"], run["Object"]) == (wid, name, key), run
    parse_time(run["CreateTime"])
    by_node = {t["NodeName"]: t for t in tasks(run)}
    assert sorted(by_node) == ["Snapshot_1", "Snapshot_2"], run
    assert by_node["Snapshot_1"]["JobId"] != by_node["Snapshot_2"]["JobId"]
    for t in by_node.values():
        assert parse_time(t["StartTime"]) <= parse_time(t["EndTime"]), t

    big = [f"{p}out/clip-{k}.jpg" for k in range(3)]
    small = [f"{p}small/{run_id}/{p}up/clip.mp4-{k}.png" for k in range(3)]
    for node_name, names in (("Snapshot_1", big), ("Snapshot_2", small)):
        d = job(ci, by_node[node_name]["JobId"])
        assert d["State"] == "Success" and d["Input"]["Object"] == key, d
        assert output_names(d) == names, d
    assert keys(s3, prefix=f"{p}out/") == big
    assert keys(s3, prefix=f"{p}small/") == small

    length = duration(CLIP)
    assert abs(length - 10) < 0.05, f"the fixture changed: {length}s"
    for k, (b, s) in enumerate(zip(big, small)):
        t = k * length / 3
        data = s3.get_object(Bucket=BUCKET, Key=b)["Body"].read()
        assert is_jpeg(data), b
        img = picture(s3, b)
        assert img.size == (320, 240), (b, img.size)
        same_picture(img, CLIP, t, what=b)
        data = s3.get_object(Bucket=BUCKET, Key=s)["Body"].read()
        assert is_png(data), s
        img = picture(s3, s)
        assert img.size == (128, 96), (s, img.size)
        same_picture(img, CLIP, t, what=s)
    # Still exactly one run now that it has ended.
    assert [r["RunId"] for r in all_runs(ci, wid)] == [run_id]


def test_a_copy_into_the_prefix_starts_a_run(ci, s3, p, templates):
    """PUT Object - Copy is an upload (docs: "An upload (PUT, POST form, copy,
    completed multipart) ... starts a run"): a copy from outside the prefix
    into it starts one run, on the copy; the source starts nothing."""
    wid = simple(ci, p, templates["one"])
    put(ci, f"{p}src/source.mp4")
    s3.copy_object(Bucket=BUCKET, Key=f"{p}up/copied.mp4",
                   CopySource={"Bucket": BUCKET, "Key": f"{p}src/source.mp4"})
    run = wait_run_of(ci, wid, f"{p}up/copied.mp4")
    assert run_objects(ci, wid) == [f"{p}up/copied.mp4"]
    succeeded(ci, run["RunId"])
    assert keys(s3, prefix=f"{p}out/") == [f"{p}out/copied.jpg"]


def test_a_completed_multipart_upload_starts_a_run(ci, s3, p, templates):
    """Initiating and uploading parts start nothing; completing the upload
    starts one run on the assembled object."""
    wid = simple(ci, p, templates["one"])
    key = f"{p}up/parts.mp4"
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    etag = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=1,
                          Body=CLIP_BYTES)["ETag"]
    assert all_runs(ci, wid) == [], "an uncompleted multipart upload started a run"
    s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    nothing_started_for(ci, wid, f"{p}up/sentinel.mp4", ignored=[key])
    [run] = [r for r in all_runs(ci, wid) if r["Object"] == key]
    succeeded(ci, run["RunId"])
    assert f"{p}out/parts.jpg" in keys(s3, prefix=f"{p}out/")
    same_picture(picture(s3, f"{p}out/parts.jpg"), CLIP, 1.0, what="multipart picture")


def test_outputs_into_another_bucket_and_the_credential_check(gw, ci, p, templates):
    """A node may write into another bucket of the gateway (the run's
    pictures land there); a credential that may not write that bucket cannot
    create such a workflow (403 AccessDenied, as for a job), nor turn one into
    it with an update, but may create one writing its own bucket."""
    wf = create(ci, body(unique("wf-other"), f"{p}up/", {
        "Snapshot_1": node(templates["one"], f"{p}out/${{InputName}}.jpg", bucket=OTHER)},
        ext_filter=VIDEO_ONLY))
    put(ci, f"{p}up/clip.mp4")
    succeeded(ci, wait_run_of(ci, wf["WorkflowId"], f"{p}up/clip.mp4")["RunId"])
    other_s3 = support.boto3_client(gw)
    assert keys(other_s3, OTHER, prefix=f"{p}out/") == [f"{p}out/clip.jpg"]
    assert keys(other_s3, BUCKET, prefix=f"{p}out/") == []

    limited = client(gw, "vhost", MAIN_ONLY_ID, MAIN_ONLY_KEY)
    name = unique("wf-denied")
    into_other = body(name, f"{p}up2/", {
        "Snapshot_1": node(templates["one"], f"{p}out2/${{InputName}}.jpg", bucket=OTHER)})
    check_error(expect_error(limited.ci_create_workflow, Bucket=BUCKET, Body=into_other),
                403, "AccessDenied")
    assert get_workflows(ci, Name=name)[0] == []
    own = create(limited, body(name, f"{p}up2/", {
        "Snapshot_1": node(templates["one"], f"{p}out2/${{InputName}}.jpg")}))
    check_error(expect_error(limited.ci_update_workflow, Bucket=BUCKET,
                             WorkflowId=own["WorkflowId"], Body=into_other), 403, "AccessDenied")
    got = get_workflow(ci, own["WorkflowId"])
    assert got["Topology"]["Nodes"]["Snapshot_1"]["Operation"]["Output"]["Bucket"] == BUCKET


# --------------------------------------------------------------------------
# 2. What does not match starts nothing; the filters
# --------------------------------------------------------------------------

def test_uploads_that_do_not_match_start_no_run(ci, s3, p, templates):
    """Another prefix, a key that merely resembles the prefix, a .txt (or no
    suffix) under the prefix with the Video filter, and any upload while the
    workflow is paused: no run. Activated again, a matching upload starts one."""
    wid = simple(ci, p, templates["one"])
    for key in (f"{p}other/clip.mp4", f"{p}clip.mp4", f"{p}upx/clip.mp4", f"{p}UP/clip.mp4",
                f"{p}up/notes.txt", f"{p}up/noext", f"{p}up/clip.mp4.jpg"):
        put(ci, key, TEXT_BYTES if key.endswith(".txt") else CLIP_BYTES)
    ci.ci_update_workflow_state(Bucket=BUCKET, WorkflowId=wid, UpdateState="paused")
    assert get_workflow(ci, wid)["State"] == "Paused"
    put(ci, f"{p}up/while-paused.mp4")
    s3.put_object(Bucket=BUCKET, Key=f"{p}up/while-paused-s3.mp4", Body=CLIP_BYTES)
    ci.ci_update_workflow_state(Bucket=BUCKET, WorkflowId=wid, UpdateState="active")
    assert get_workflow(ci, wid)["State"] == "Active"
    # A video suffix in upper case is a video.
    nothing_started_for(ci, wid, f"{p}up/after.MP4")


def test_ext_filters_custom_exts_all_files_and_off(ci, p, templates):
    """CustomExts adds suffixes, case-insensitively (and Video off leaves mp4
    out); Video stands for the listed video suffixes; AllFile and a filter
    that is Off (or absent) accept every file under the prefix."""
    one = templates["one"]
    custom = simple(ci, p, one, "custom/", ext_filter={
        "State": "On", "Video": "false", "Custom": "true", "CustomExts": "txt/MyVid"})
    video = simple(ci, p, one, "video/", ext_filter=VIDEO_ONLY)
    all_files = simple(ci, p, one, "all/", ext_filter={"State": "On", "AllFile": "true"})
    off = simple(ci, p, one, "off/", ext_filter={"State": "Off", "Video": "true"})
    absent = simple(ci, p, one, "absent/", ext_filter=None)

    cases = {
        custom: (["a.TXT", "b.myvid", "c.MYVID"], ["d.mp4", "e.png", "txt", "f.txt.png"]),
        video: (["a.mov", "b.webm", "c.ts", "d.3gp", "e.OGV", "f.mkv", "g.mpeg", "h.m4v"],
                ["i.mp3", "j.jpg", "k.m4a", "l.mp4x", "mp4"]),
        all_files: (["a.bin", "noext", "c.txt"], []),
        off: (["a.txt", "noext", "c.png"], []),
        absent: (["a.txt", "b"], []),
    }
    prefixes = {custom: "custom/", video: "video/", all_files: "all/", off: "off/",
                absent: "absent/"}
    for wid, (match, miss) in cases.items():
        for name in miss + match:   # a matching upload last: the sentinel
            put(ci, f"{p}{prefixes[wid]}{name}")
    for wid, (match, miss) in cases.items():
        want = sorted(f"{p}{prefixes[wid]}{name}" for name in match)
        wait_run_of(ci, wid, f"{p}{prefixes[wid]}{match[-1]}")
        assert run_objects(ci, wid) == want, prefixes[wid]
    # The filter is echoed as given.
    f = start_input(get_workflow(ci, custom))["ExtFilter"]
    assert (f["State"], f["Custom"]) == ("On", "true"), f
    assert [e.lower() for e in f["CustomExts"].split("/")] == ["txt", "myvid"], f


# --------------------------------------------------------------------------
# 3. Trigger
# --------------------------------------------------------------------------

def test_trigger_starts_a_run_on_an_existing_object(any_ci, s3, p, templates):
    """ci_trigger_workflow on an object (uploaded outside the prefix, so the
    upload started nothing): InstanceId is the new run's RunId; it runs the
    nodes on that object; each trigger is a new run. A missing object: 404
    NoSuchKey; an unknown workflow: 404 NoSuchWorkflow; neither starts a run."""
    ci = any_ci
    wid = simple(ci, p, templates["one"])
    key = f"{p}src/clip.mp4"
    put(ci, key)
    assert all_runs(ci, wid) == []
    first = ci.ci_trigger_workflow(Bucket=BUCKET, WorkflowId=wid, Key=key)["InstanceId"]
    run = get_run(ci, first)
    assert (run["WorkflowId"], run["Object"]) == (wid, key), run
    run = succeeded(ci, first)
    d = job(ci, tasks(run)[0]["JobId"])
    assert output_names(d) == [f"{p}out/clip.jpg"]
    assert keys(s3, prefix=f"{p}out/") == [f"{p}out/clip.jpg"]
    same_picture(picture(s3, f"{p}out/clip.jpg"), CLIP, 1.0, what="triggered picture")

    second = ci.ci_trigger_workflow(Bucket=BUCKET, WorkflowId=wid, Key=key)["InstanceId"]
    assert second != first
    assert tasks(get_run(ci, second))[0]["JobId"] != tasks(run)[0]["JobId"]
    check_error(expect_error(ci.ci_trigger_workflow, Bucket=BUCKET, WorkflowId=wid,
                             Key=f"{p}src/missing.mp4"), 404, "NoSuchKey")
    check_error(expect_error(ci.ci_trigger_workflow, Bucket=BUCKET, WorkflowId=new_id("w"),
                             Key=key), 404, "NoSuchWorkflow")
    assert sorted(r["RunId"] for r in all_runs(ci, wid)) == sorted([first, second])
    succeeded(ci, second)


# --------------------------------------------------------------------------
# 4. Get, list, update, pause, delete
# --------------------------------------------------------------------------

def test_get_and_list_workflows_by_ids_name_and_page(any_ci, p, templates):
    """ci_get_workflow: Ids (comma list; unknown ones in NonExistIDs), the
    Name filter, PageNumber/PageSize; the document echoes the definition."""
    ci = any_ci
    stem = unique("wf-list")
    made = {}
    for suffix in ("a", "b", "c"):
        wf = create(ci, body(f"{stem}-{suffix}", f"{p}{suffix}/",
                             {"Snapshot_1": node(templates["one"], f"{p}out/{suffix}.jpg")},
                             ext_filter=VIDEO_ONLY))
        made[suffix] = wf["WorkflowId"]
    assert len(set(made.values())) == 3

    wf = get_workflow(ci, made["b"])
    assert (wf["Name"], wf["State"]) == (f"{stem}-b", "Active"), wf
    parse_time(wf["CreateTime"])
    parse_time(wf["UpdateTime"])
    assert start_input(wf)["ObjectPrefix"] == f"{p}b/"
    assert start_input(wf)["ExtFilter"]["State"] == "On"
    assert start_input(wf)["ExtFilter"]["Video"] == "true"
    snap = wf["Topology"]["Nodes"]["Snapshot_1"]
    assert snap["Type"] == "Snapshot"
    assert snap["Operation"]["TemplateId"] == templates["one"]
    assert snap["Operation"]["Output"] == {"Region": REGION, "Bucket": BUCKET,
                                           "Object": f"{p}out/b.jpg"}, snap
    assert wf["Topology"]["Dependencies"] == {"Start": "Snapshot_1", "Snapshot_1": "End"}, wf

    bogus = new_id("w")
    found, missing = get_workflows(ci, Ids=f"{made['a']},{bogus},{made['c']}")
    assert sorted(w["WorkflowId"] for w in found) == sorted([made["a"], made["c"]])
    assert missing == [bogus]

    found, missing = get_workflows(ci, Name=f"{stem}-b")
    assert [w["WorkflowId"] for w in found] == [made["b"]] and missing == []
    found, _ = get_workflows(ci, Name=unique("no-such-workflow"))
    assert found == []

    first, _ = get_workflows(ci, Name=stem, PageNumber=1, PageSize=2)
    second, _ = get_workflows(ci, Name=stem, PageNumber=2, PageSize=2)
    third, _ = get_workflows(ci, Name=stem, PageNumber=3, PageSize=2)
    assert (len(first), len(second), third) == (2, 1, [])
    assert sorted(w["WorkflowId"] for w in first + second) == sorted(made.values())
    assert set(made.values()) <= {w["WorkflowId"] for w in every_workflow(ci)}


def test_update_pause_and_delete_a_workflow(any_ci, s3, p, templates):
    """ci_update_workflow replaces the definition (same id and CreateTime):
    the new prefix applies to later uploads, the old one no longer does;
    paused/active show in the document; after ci_delete_workflow the id is in
    NonExistIDs, updating, pausing or deleting it again is 404
    NoSuchWorkflow, uploads start nothing, and its runs and jobs stay."""
    ci = any_ci
    name = unique("wf-update")
    wf = create(ci, body(name, f"{p}old/", {"Snapshot_1": node(templates["one"],
                                                                 f"{p}out/${{InputName}}.jpg")},
                         ext_filter=VIDEO_ONLY))
    wid = wf["WorkflowId"]
    renamed = unique("wf-updated")
    updated = ci.ci_update_workflow(Bucket=BUCKET, WorkflowId=wid, Body=body(
        renamed, f"{p}new/", {"Snapshot_1": node(templates["one"],
                                                 f"{p}out/new-${{InputName}}.jpg")},
        ext_filter=VIDEO_ONLY))["MediaWorkflow"]
    assert updated["WorkflowId"] == wid and start_input(updated)["ObjectPrefix"] == f"{p}new/"
    got = get_workflow(ci, wid)
    assert (got["Name"], got["CreateTime"]) == (renamed, wf["CreateTime"]), got
    assert start_input(got)["ObjectPrefix"] == f"{p}new/"
    assert get_workflows(ci, Name=name)[0] == []

    put(ci, f"{p}old/a.mp4")
    nothing_started_for(ci, wid, f"{p}new/b.mp4")
    run = succeeded(ci, all_runs(ci, wid)[0]["RunId"])
    assert run["WorkflowName"] == renamed
    assert keys(s3, prefix=f"{p}out/") == [f"{p}out/new-b.jpg"]

    paused = ci.ci_update_workflow_state(Bucket=BUCKET, WorkflowId=wid, UpdateState="paused")
    assert paused["MediaWorkflow"]["State"] == "Paused", paused
    assert get_workflow(ci, wid)["State"] == "Paused"
    active = ci.ci_update_workflow_state(Bucket=BUCKET, WorkflowId=wid, UpdateState="active")
    assert active["MediaWorkflow"]["State"] == "Active", active
    assert get_workflow(ci, wid)["State"] == "Active"

    ci.ci_delete_workflow(Bucket=BUCKET, WorkflowId=wid)
    found, missing = get_workflows(ci, Ids=wid)
    assert found == [] and missing == [wid]
    assert wid not in {w["WorkflowId"] for w in every_workflow(ci)}
    check_error(expect_error(ci.ci_update_workflow, Bucket=BUCKET, WorkflowId=wid, Body=body(
        renamed, f"{p}new/", {"Snapshot_1": node(templates["one"], f"{p}out/x.jpg")})),
        404, "NoSuchWorkflow")
    for state in ("paused", "active"):
        check_error(expect_error(ci.ci_update_workflow_state, Bucket=BUCKET, WorkflowId=wid,
                                 UpdateState=state), 404, "NoSuchWorkflow")
    check_error(expect_error(ci.ci_delete_workflow, Bucket=BUCKET, WorkflowId=wid),
                404, "NoSuchWorkflow")
    jobs_before = all_job_ids(ci)
    put(ci, f"{p}new/after-delete.mp4")
    # The run and its job stay.
    again = get_run(ci, run["RunId"])
    assert (again["State"], again["Object"]) == ("Success", f"{p}new/b.mp4"), again
    assert job(ci, tasks(again)[0]["JobId"])["State"] == "Success"
    # A trigger after the delete is refused; nothing started.
    check_error(expect_error(ci.ci_trigger_workflow, Bucket=BUCKET, WorkflowId=wid,
                             Key=f"{p}new/b.mp4"), 404, "NoSuchWorkflow")
    assert all_job_ids(ci) == jobs_before, "an upload after the delete started a job"


# --------------------------------------------------------------------------
# 5. Refused definitions
# --------------------------------------------------------------------------

def _no_start(b, t):
    del b["MediaWorkflow"]["Topology"]["Nodes"]["Start"]


def _unknown_type(b, t):
    b["MediaWorkflow"]["Topology"]["Nodes"]["Snapshot_1"]["Type"] = "Transcode"


def _unknown_template(b, t):
    b["MediaWorkflow"]["Topology"]["Nodes"]["Snapshot_1"]["Operation"]["TemplateId"] = new_id("t")


def _no_number(b, t):
    op = b["MediaWorkflow"]["Topology"]["Nodes"]["Snapshot_1"]["Operation"]
    op["TemplateId"] = t["three"]
    op["Output"]["Object"] = "out/${InputName}.jpg"


def _no_snapshot_node(b, t):
    del b["MediaWorkflow"]["Topology"]["Nodes"]["Snapshot_1"]


def _long_name(b, t):
    b["MediaWorkflow"]["Name"] = "n" * 129


def _bad_state(b, t):
    b["MediaWorkflow"]["State"] = "Sleeping"


def _bad_filter_state(b, t):
    b["MediaWorkflow"]["Topology"]["Nodes"]["Start"]["Input"]["ExtFilter"]["State"] = "Maybe"


def _no_output_bucket(b, t):
    del b["MediaWorkflow"]["Topology"]["Nodes"]["Snapshot_1"]["Operation"]["Output"]["Bucket"]


def _unknown_output_bucket(b, t):
    b["MediaWorkflow"]["Topology"]["Nodes"]["Snapshot_1"]["Operation"]["Output"]["Bucket"] = \
        "nosuch-1250000000"


@pytest.mark.parametrize("mutate, status, code, fields", [
    (_no_start, 400, "InvalidArgument", ["Start"]),
    (_unknown_type, 400, "InvalidArgument", ["Snapshot_1", "Type"]),
    (_unknown_template, 404, "NoSuchTemplate", []),
    (_no_number, 400, "InvalidArgument", ["Snapshot_1", "Output.Object"]),
    (_no_snapshot_node, 400, "InvalidArgument", []),
    (_long_name, 400, "InvalidArgument", ["Name"]),
    (_bad_state, 400, "InvalidArgument", ["State"]),
    (_bad_filter_state, 400, "InvalidArgument", ["ExtFilter.State"]),
    (_no_output_bucket, 400, "InvalidArgument", ["Bucket"]),
    (_unknown_output_bucket, 404, "NoSuchBucket", []),
], ids=lambda v: v.__name__.strip("_") if callable(v) else None)
def test_bad_definitions_are_refused_and_change_nothing(any_ci, p, templates, mutate, status,
                                                        code, fields):
    """A refused create makes no workflow; a refused update leaves the
    workflow as it was. The error names the field."""
    ci = any_ci
    good = simple(ci, p, templates["one"], name=unique("wf-good"))
    before = get_workflow(ci, good)
    name = unique("wf-bad")
    request = body(name, f"{p}up/", {"Snapshot_1": node(templates["one"],
                                                        f"{p}out/${{InputName}}.jpg")},
                   ext_filter=dict(VIDEO_ONLY))
    mutate(request, templates)
    count = len(every_workflow(ci))
    err = expect_error(ci.ci_create_workflow, Bucket=BUCKET, Body=request)
    check_error(err, status, code)
    for field in fields:
        assert field in err.message, f"the message does not name {field}: {err.message!r}"
    assert get_workflows(ci, Name=name)[0] == []
    assert len(every_workflow(ci)) == count
    err = expect_error(ci.ci_update_workflow, Bucket=BUCKET, WorkflowId=good, Body=request)
    check_error(err, status, code)
    assert get_workflow(ci, good) == before


@pytest.mark.parametrize("data", [
    b'<?xml version="1.0"?><Request><MediaWorkflow><Name>x</Name><State>Active',
    b"MediaWorkflow.Name=x&MediaWorkflow.State=Active",
    b"",
], ids=["truncated", "not-xml", "empty"])
def test_malformed_xml_is_refused(gw, ci, data):
    """POST /workflow (and PUT /workflow/<id>) whose body is not a Request
    document, sent raw and signed like the COS client, on the object host and
    on the bare host: 400 MalformedXML (docs: "Errors"), no workflow made or
    changed."""
    before = every_workflow(ci)
    r = raw(gw, "POST", "/workflow", data=data, host=f"{BUCKET}.cos.{REGION}.{DOMAIN}",
            headers={"Content-Type": "application/xml"})
    check_error(parse_error(r.status_code, r.content), 400, "MalformedXML")
    r = raw(gw, "POST", "/workflow", data=data, headers={"Content-Type": "application/xml"})
    check_error(parse_error(r.status_code, r.content), 400, "MalformedXML")
    assert every_workflow(ci) == before
    if before:
        wid = before[0]["WorkflowId"]
        r = raw(gw, "PUT", f"/workflow/{wid}", data=data,
                host=f"{BUCKET}.cos.{REGION}.{DOMAIN}", headers={"Content-Type": "application/xml"})
        check_error(parse_error(r.status_code, r.content), 400, "MalformedXML")
        assert every_workflow(ci) == before


# --------------------------------------------------------------------------
# 6. Crash safety
# --------------------------------------------------------------------------

class Store:
    """Direct access to the job store of a stopped gateway: the upload
    records (`fg_uploads`) a gateway killed between committing an upload and
    starting its runs leaves behind."""

    def __init__(self, queue: str, data, request):
        self.queue = queue
        self.data = data
        self.pg = None
        if queue == "postgres":
            # A database of its own: this module's gateway uses the shared one.
            self.pg = request.getfixturevalue("postgres")
            self.pg.psql('DROP DATABASE IF EXISTS "ci_wf_crash" WITH (FORCE)',
                         'CREATE DATABASE "ci_wf_crash"', database="postgres")
            self.url = self.pg.url.rsplit("/", 1)[0] + "/ci_wf_crash"
        else:
            self.url = "sqlite"

    def _sql(self, statement: str, args=()) -> list[tuple]:
        if self.pg is None:
            with sqlite3.connect(self.data / "jobs.sqlite3") as db:
                return db.execute(statement, args).fetchall()
        for a in args:
            literal = "NULL" if a is None else (str(a) if isinstance(a, int)
                                                 else "'" + str(a).replace("'", "''") + "'")
            statement = statement.replace("?", literal, 1)
        out = self.pg.psql(statement, database="ci_wf_crash")
        return [tuple(line.split("|")) for line in out.splitlines() if line]

    def record(self, key: str, seq: int | None = None) -> int:
        """An upload record of BUCKET/key by this gateway's node; its seq."""
        node = (self.data / "node-id").read_text().strip()
        if seq is None:
            self._sql("INSERT INTO fg_uploads (node, bucket, object_key, procedure, created_ms) "
                      "VALUES (?, ?, ?, NULL, 0)", (node, BUCKET, key))
        else:
            self._sql("INSERT INTO fg_uploads (seq, node, bucket, object_key, procedure, "
                      "created_ms) VALUES (?, ?, ?, ?, NULL, 0)", (seq, node, BUCKET, key))
        [(found,)] = self._sql("SELECT MAX(seq) FROM fg_uploads WHERE object_key = ?", (key,))
        return int(found)

    def records(self) -> list[tuple]:
        return [(b, k) for b, k in self._sql("SELECT bucket, object_key FROM fg_uploads")]


def kill_9(gw) -> None:
    gw.proc.kill()   # SIGKILL: no chance to finish anything
    gw.proc.wait()


@pytest.mark.parametrize("queue", ["sqlite", "postgres"])
def test_an_upload_interrupted_by_kill_9_starts_its_run_exactly_once(gateway_factory, request,
                                                                     queue):
    """A gateway killed between committing a matching upload and starting its
    run leaves the upload's record; restarted on the same data dir it starts
    the run (one run, one job per node, the outputs), a record whose object
    was never committed starts nothing, and no record is left. A record left
    after the run started (killed before removing it) starts nothing new:
    same run, same jobs, not run again. An upload followed at once by kill -9
    runs once after the restart."""
    name = f"wf-crash-{queue}"
    store = Store(queue, gateway_factory.root / name / "data", request)
    gw = gateway_factory.start("file", name, extra=jobs_toml(store.url, workers=1))
    assert gw.config.parent / "data" == store.data
    ci, s3 = client(gw, "vhost"), support.boto3_client(gw)
    three = template(ci, Mode="Average", Count="3")
    one = template(ci, Mode="Interval", Start="1", Count="1")
    # Paused while the object is committed: the upload starts nothing.
    wid = create(ci, body(unique("wf-crash"), "up/", {
        "Snapshot_1": node(three, "out/${InputName}-${Number}.jpg"),
        "Snapshot_2": node(one, "one/${InputName}.jpg"),
    }, state="Paused", ext_filter=VIDEO_ONLY))["WorkflowId"]
    put(ci, "up/late.mp4")
    ci.ci_update_workflow_state(Bucket=BUCKET, WorkflowId=wid, UpdateState="active")
    assert all_runs(ci, wid) == []
    kill_9(gw)
    # What a gateway killed after the commit and before the run started leaves.
    seq = store.record("up/late.mp4")
    store.record("up/never.mp4")   # recorded, never committed: starts nothing
    gw.start()
    ci, s3 = client(gw, "vhost"), support.boto3_client(gw)
    [run] = wait_runs(ci, wid, lambda rs: len(rs) >= 1, "run of the recorded upload")
    assert run["Object"] == "up/late.mp4", run
    run = succeeded(ci, run["RunId"], nodes=2)
    assert sorted(t["NodeName"] for t in tasks(run)) == ["Snapshot_1", "Snapshot_2"]
    outputs = ["one/late.jpg"] + [f"out/late-{k}.jpg" for k in range(3)]
    assert sorted(keys(s3, prefix="o")) == outputs
    same_picture(picture(s3, "out/late-1.jpg"), CLIP, 10 / 3, what="out/late-1.jpg")
    assert store.records() == [], "the record outlived the run it started"
    assert [r["Object"] for r in all_runs(ci, wid)] == ["up/late.mp4"]
    jobs = {t["JobId"]: job(ci, t["JobId"]) for t in tasks(run)}
    files = listing(s3, prefix="o")

    # Killed after the run started and before its record was removed.
    kill_9(gw)
    store.record("up/late.mp4", seq=seq)
    gw.start()
    ci, s3 = client(gw, "vhost"), support.boto3_client(gw)
    assert store.records() == [], "the left-over record was not removed"
    runs = all_runs(ci, wid)
    assert [r["RunId"] for r in runs] == [run["RunId"]], runs
    again = get_run(ci, run["RunId"])
    assert sorted(t["JobId"] for t in tasks(again)) == sorted(jobs)
    for job_id, before in jobs.items():
        now = job(ci, job_id)
        assert (now["State"], now["StartTime"], now["EndTime"]) == \
            (before["State"], before["StartTime"], before["EndTime"]), "the job ran again"
    assert listing(s3, prefix="o") == files
    assert sorted(all_job_ids(ci)) == sorted(jobs)

    # An upload, then kill -9 at once: its run happens once.
    put(ci, "up/now.mp4")
    kill_9(gw)
    gw.start()
    ci, s3 = client(gw, "vhost"), support.boto3_client(gw)
    now_run = wait_run_of(ci, wid, "up/now.mp4")
    succeeded(ci, now_run["RunId"], nodes=2)
    assert sorted(keys(s3, prefix="out/now-")) == [f"out/now-{k}.jpg" for k in range(3)]
    assert keys(s3, prefix="one/now") == ["one/now.jpg"]
    # And a further restart starts nothing new.
    settled = sorted(all_job_ids(ci))
    kill_9(gw)
    gw.start()
    ci = client(gw, "vhost")
    assert run_objects(ci, wid) == ["up/late.mp4", "up/now.mp4"]
    assert sorted(all_job_ids(ci)) == settled
    assert store.records() == []
    assert gw.stop() == 0


# --------------------------------------------------------------------------
# 7. Executions
# --------------------------------------------------------------------------

def test_executions_page_order_and_unknown_ids(ci, p, templates):
    """ci_list_workflowexecution pages with Size=1 and NextToken (empty on the
    last page), oldest first with Asc and newest first with Desc; the runs of
    other workflows are not listed; an unknown run id or workflow id: 404."""
    wid = simple(ci, p, templates["one"])
    other = simple(ci, p, templates["one"], prefix="elsewhere/")
    key = f"{p}src/clip.mp4"
    put(ci, key)
    first = ci.ci_trigger_workflow(Bucket=BUCKET, WorkflowId=wid, Key=key)["InstanceId"]
    time.sleep(1.1)   # distinct CreateTimes even at second resolution
    second = ci.ci_trigger_workflow(Bucket=BUCKET, WorkflowId=wid, Key=key)["InstanceId"]
    third = ci.ci_trigger_workflow(Bucket=BUCKET, WorkflowId=other, Key=key)["InstanceId"]

    page, token = list_runs(ci, wid, OrderByTime="Asc", Size=1)
    assert [r["RunId"] for r in page] == [first] and token
    page, token = list_runs(ci, wid, OrderByTime="Asc", Size=1, NextToken=token)
    assert [r["RunId"] for r in page] == [second] and token == ""

    page, token = list_runs(ci, wid, OrderByTime="Desc", Size=1)
    assert [r["RunId"] for r in page] == [second] and token
    page, token = list_runs(ci, wid, OrderByTime="Desc", Size=1, NextToken=token)
    assert [r["RunId"] for r in page] == [first] and token == ""

    page, token = list_runs(ci, wid, OrderByTime="Asc", Size=10)
    assert [r["RunId"] for r in page] == [first, second] and token == ""
    assert parse_time(page[0]["CreateTime"]) < parse_time(page[1]["CreateTime"])
    page, token = list_runs(ci, wid, OrderByTime="Desc", Size=10)
    assert [r["RunId"] for r in page] == [second, first] and token == ""
    for r in page:
        assert (r["WorkflowId"], r["Object"]) == (wid, key), r
        assert [t["NodeName"] for t in tasks(r)] == ["Snapshot_1"], r
    assert [r["RunId"] for r in all_runs(ci, other)] == [third]

    e = expect_error(ci.ci_get_workflowexecution, Bucket=BUCKET, RunId=new_id("i"))
    assert e.status == 404 and e.code.startswith("NoSuch"), e
    check_error(expect_error(ci.ci_list_workflowexecution, Bucket=BUCKET,
                             WorkflowId=new_id("w")), 404, "NoSuchWorkflow")
    for run_id in (first, second, third):
        succeeded(ci, run_id)


def test_run_state_follows_its_jobs(gw, ci, s3, p, templates):
    """A run whose job fails (an input that is not a video, let in by a filter
    that is Off) is Failed, its task names the failure and no output is
    visible; a run whose job is cancelled is Cancel."""
    wid = simple(ci, p, templates["one"], ext_filter={"State": "Off"})
    put(ci, f"{p}up/notes.txt", TEXT_BYTES)
    run = wait_run(ci, wait_run_of(ci, wid, f"{p}up/notes.txt")["RunId"])
    assert run["State"] == "Failed", run
    [t] = tasks(run)
    assert t["State"] == "Failed" and t["Code"] and t["Code"] != "Success", t
    assert keys(s3, prefix=f"{p}out/") == []

    set_queue(ci, "Paused")
    try:
        put(ci, f"{p}up/clip.mp4")
        run = wait_run_of(ci, wid, f"{p}up/clip.mp4")
        [t] = tasks(run)
        assert get_run(ci, run["RunId"])["State"] == "Running"
        ci.ci_cancel_jobs(Bucket=BUCKET, JobID=t["JobId"])
    finally:
        set_queue(ci, "Active")
    run = wait_run(ci, run["RunId"])
    assert run["State"] == "Cancel", run
    assert tasks(run)[0]["State"] == "Cancel"
    assert keys(s3, prefix=f"{p}out/") == []
