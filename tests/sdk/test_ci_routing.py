"""Where CI calls arrive and what they may not do (docs/ci-media-api.md,
"Where CI calls arrive"): every management `ci_*` method of
cos-python-sdk-v5 that addresses the CI endpoint, sent through both client
configurations that reach an object host, with ids that look right and ids
that do not, against a bucket holding objects whose keys look like CI paths
(some of them exactly the path a call uses). Each call must either succeed
(the few read calls framegate serves) or fail with a CI error document, and
afterwards no object may have changed, disappeared or appeared.

Also: ordinary keys under CI names still work for the COS client; two-segment
dotless keys under CI names are out of the COS client's reach but not of S3
clients or multi-delete; a CI host addresses its bucket and nothing there is
an object; served CI resources refuse methods they do not take with 405; the
SDK can read CI error codes.
"""

from __future__ import annotations

import uuid

import pytest
from qcloud_cos.cos_exception import CosServiceError

import support
from ci_support import (CI_ERROR_STATUSES, OTHER, QUEUE_ID, as_list, check_error, ci_host,
                        client, error_of, expect_error, listing, new_id, parse_error, raw, read)
from support import BUCKET, REGION

OK = "ok"


def err(statuses, codes=None):
    """Expected: a CI error with one of these statuses (and codes, if given)."""
    statuses = (statuses,) if isinstance(statuses, int) else tuple(statuses)
    codes = (codes,) if isinstance(codes, str) else (tuple(codes) if codes else None)
    return ("err", statuses, codes)


ANY_ERROR = err(CI_ERROR_STATUSES)
UNSERVED = err(501, "NotImplemented")
# Another job or template Tag: the table says InvalidArgument, the
# "Not served" section NotImplemented; either refuses it.
OTHER_TAG = err((400, 501), ("InvalidArgument", "NotImplemented"))
# An unknown workflow given a body that is not a valid workflow either: which
# is checked first is not said.
NO_WORKFLOW = err((400, 404), ("InvalidArgument", "NoSuchWorkflow"))
# Listing the runs of an unknown workflow: an empty list or NoSuchWorkflow.
OK_OR_NO_WORKFLOW = ("ok-or", err(404, "NoSuchWorkflow"))


def ci_like_keys(backend: str, ids: dict) -> list[str]:
    """Keys named like CI paths, several exactly what a call below addresses.
    The file store cannot hold both `jobs` and `jobs/...` (a file and a
    directory of the same name: KNOWN_GAPS in conftest), so the bare `jobs`
    object (and `virus/detect`) exist on the other stores only."""
    names = [
        "jobs/2024/report.mp4",
        f"jobs/{ids['job']}",                 # what GET /jobs/<id> and PUT ?cancel address
        "jobs/nope",
        "template/a.png",
        "template/nope",                      # what DELETE/PUT /template/nope address
        f"template/{ids['template']}",
        "queue/p1.jpg",
        f"queue/{ids['queue']}",              # what PUT /queue/<id> addresses
        "queue/p1",
        "workflow/w1/x.txt",
        f"workflow/{ids['workflow']}",
        "playKey",                            # what GET/PUT /playKey address
        "inventorytriggerjob/abc",            # what GET /inventorytriggerjob/abc addresses
        "mediabucket",
        "triggerworkflow",
        f"workflowexecution/{ids['run']}",
        f"pic_jobs/{ids['job']}",
        f"doc_jobs/{ids['job']}",
        f"asr_jobs/{ids['job']}",
        f"file_jobs/{ids['job']}",
        "picbucket",
        "asrbucket",
        "ai_bucket",
        f"docqueue/{ids['queue']}",
        "snapshot",
    ]
    if backend != "file":
        # What POST /virus/detect addresses; GET /virus/detect/<id> is an object
        # read below it, which the file store answers 500 when virus/detect is a file.
        names += ["jobs", "virus/detect"]
    return names


def sweep(cos, ids: dict) -> list[tuple[str, object, object]]:
    """(label, call, expectation) for every CI-endpoint method of the SDK.
    `ids` holds well-formed ids nothing has; "nope", "abc", "p1", "w1" are
    the bogus ones (some of them also object names)."""
    b = BUCKET
    jid, tid, pid, wid, rid = ids["job"], ids["template"], ids["queue"], ids["workflow"], ids["run"]
    missing_input = f"missing-{uuid.uuid4().hex}.mp4"
    snapshot_job = {"Tag": "Snapshot", "Input": {"Object": missing_input}, "Operation": {
        "Snapshot": {"Mode": "Interval", "Start": "0", "Count": "1"},
        "Output": {"Region": REGION, "Bucket": b, "Object": "template/a.png"}}}
    zero_count = {"Tag": "Snapshot", "Input": {"Object": "jobs/2024/report.mp4"}, "Operation": {
        "Snapshot": {"Count": "0"},
        "Output": {"Region": REGION, "Bucket": b, "Object": "queue/p1.jpg"}}}
    transcode_job = {"Tag": "Transcode", "Input": {"Object": "jobs/2024/report.mp4"},
                     "Operation": {"Output": {"Region": REGION, "Bucket": b,
                                              "Object": "jobs/2024/report.mp4"}}}
    template = {"Tag": "Snapshot", "Name": "", "Snapshot": {"Count": "1"}}
    transcode_template = {"Tag": "Transcode", "Name": f"tc-{uuid.uuid4().hex[:8]}",
                          "Container": {"Format": "mp4"}}
    queue_body = {"Name": "queue-1", "QueueID": pid, "State": "Paused"}
    # No Snapshot node: refused (a workflow that were taken would start runs on
    # every later upload under jobs/).
    workflow = {"MediaWorkflow": {"Name": "wf", "State": "Active", "Topology": {
        "Dependencies": {"Start": "End"}, "Nodes": {"Start": {"Type": "Start", "Input": {
            "ObjectPrefix": "jobs/"}}}}}}
    pic_job = {"Tag": "PicProcess", "Input": {"Object": "template/a.png"}, "Operation": {
        "Output": {"Region": REGION, "Bucket": b, "Object": "template/a.png"}}}
    inventory = {"Name": "inv", "Input": {"Prefix": "jobs/"}, "Operation": {
        "WorkflowIds": wid, "TimeInterval": {"Start": "2022-02-01T12:00:00+0800",
                                             "End": "2022-05-01T12:00:00+0800"}}}
    out = dict(OutputBucket=b, OutputRegion=REGION)

    def nonexist(*expected):
        def check(response):
            assert not as_list(response.get("JobsDetail")), response
            assert as_list(response.get("NonExistJobIds")) == list(expected), response
        return check

    def no_workflow(response):
        assert not as_list(response.get("MediaWorkflowList")), response
        assert as_list(response.get("NonExistIDs")) == [wid], response

    def one_queue(response):
        queues = response.get("QueueList")
        assert isinstance(queues, list) and len(queues) == 1, response
        assert QUEUE_ID.fullmatch(queues[0].get("QueueId") or ""), response

    return [
        # ---- media jobs (served)
        ("ci_create_media_jobs(missing input)",
         lambda: cos.ci_create_media_jobs(Bucket=b, Jobs=snapshot_job, Lst={}), err(404, "NoSuchKey")),
        ("ci_create_media_jobs(Count 0)",
         lambda: cos.ci_create_media_jobs(Bucket=b, Jobs=zero_count, Lst={}),
         err(400, "InvalidArgument")),
        ("ci_create_media_jobs(Tag Transcode)",
         lambda: cos.ci_create_media_jobs(Bucket=b, Jobs=transcode_job, Lst={}), OTHER_TAG),
        ("ci_get_media_jobs(well-formed unknown id)",
         lambda: cos.ci_get_media_jobs(Bucket=b, JobIDs=jid), (OK, nonexist(jid))),
        ("ci_get_media_jobs(nope)",
         lambda: cos.ci_get_media_jobs(Bucket=b, JobIDs="nope"), (OK, nonexist("nope"))),
        ("ci_list_media_jobs(Snapshot)",
         lambda: cos.ci_list_media_jobs(Bucket=b, Tag="Snapshot"), OK),
        ("ci_cancel_jobs(well-formed unknown id)",
         lambda: cos.ci_cancel_jobs(Bucket=b, JobID=jid), err(404, "NoSuchJob")),
        ("ci_cancel_jobs(nope)",
         lambda: cos.ci_cancel_jobs(Bucket=b, JobID="nope"), err(404, "NoSuchJob")),
        # ---- templates (served), the speech ones go to the same /template
        ("ci_create_template(no Name)",
         lambda: cos.ci_create_template(Bucket=b, Template=template), err(400, "InvalidArgument")),
        ("ci_create_template(Tag Transcode)",
         lambda: cos.ci_create_template(Bucket=b, Template=transcode_template), OTHER_TAG),
        ("ci_update_template(well-formed unknown id)",
         lambda: cos.ci_update_template(Bucket=b, TemplateId=tid, Template={
             "Tag": "Snapshot", "Name": "x", "Snapshot": {"Count": "1"}}),
         err(404, "NoSuchTemplate")),
        ("ci_update_template(nope)",
         lambda: cos.ci_update_template(Bucket=b, TemplateId="nope", Template={
             "Tag": "Snapshot", "Name": "x", "Snapshot": {"Count": "1"}}),
         err(404, "NoSuchTemplate")),
        ("ci_get_template()", lambda: cos.ci_get_template(Bucket=b), OK),
        ("ci_get_template(Ids=unknown)", lambda: cos.ci_get_template(Bucket=b, Ids=tid), OK),
        ("ci_delete_template(well-formed unknown id)",
         lambda: cos.ci_delete_template(Bucket=b, TemplateId=tid), err(404, "NoSuchTemplate")),
        ("ci_delete_template(nope)",
         lambda: cos.ci_delete_template(Bucket=b, TemplateId="nope"), err(404, "NoSuchTemplate")),
        ("ci_create_asr_template",
         lambda: cos.ci_create_asr_template(Bucket=b, Name="asr", EngineModelType="16k_zh",
                                            ChannelNum=1), OTHER_TAG),
        ("ci_update_asr_template(well-formed unknown id)",
         lambda: cos.ci_update_asr_template(Bucket=b, TemplateId=tid, Name="asr",
                                            EngineModelType="16k_zh", ChannelNum=1,
                                            ResTextFormat=0),
         err((400, 404, 501), ("InvalidArgument", "NoSuchTemplate", "NotImplemented"))),
        ("ci_get_asr_template()", lambda: cos.ci_get_asr_template(Bucket=b), OK),
        ("ci_delete_asr_template(well-formed unknown id)",
         lambda: cos.ci_delete_asr_template(Bucket=b, TemplateId=tid), err(404, "NoSuchTemplate")),
        # ---- the media queue and buckets (served)
        ("ci_get_media_queue", lambda: cos.ci_get_media_queue(Bucket=b), (OK, one_queue)),
        ("ci_update_media_queue(well-formed unknown id)",
         lambda: cos.ci_update_media_queue(Bucket=b, QueueId=pid, Request=queue_body),
         err(404, "NoSuchQueue")),
        ("ci_update_media_queue(p1)",
         lambda: cos.ci_update_media_queue(Bucket=b, QueueId="p1", Request=queue_body),
         err(404, "NoSuchQueue")),
        ("ci_get_media_bucket", lambda: cos.ci_get_media_bucket(), OK),
        # ---- pictures
        ("ci_create_media_pic_jobs",
         lambda: cos.ci_create_media_pic_jobs(Bucket=b, Jobs=pic_job, Lst={}), UNSERVED),
        ("ci_get_media_pic_jobs", lambda: cos.ci_get_media_pic_jobs(Bucket=b, JobIDs=jid), UNSERVED),
        ("ci_list_media_pic_jobs",
         lambda: cos.ci_list_media_pic_jobs(Bucket=b, Tag="PicProcess"), UNSERVED),
        ("ci_get_media_pic_queue", lambda: cos.ci_get_media_pic_queue(Bucket=b), UNSERVED),
        ("ci_update_media_pic_queue",
         lambda: cos.ci_update_media_pic_queue(Bucket=b, QueueId=pid, Request=queue_body), UNSERVED),
        ("ci_open_pic_bucket", lambda: cos.ci_open_pic_bucket(Bucket=b), UNSERVED),
        ("ci_get_pic_bucket", lambda: cos.ci_get_pic_bucket(), UNSERVED),
        ("ci_close_pic_bucket", lambda: cos.ci_close_pic_bucket(Bucket=b), UNSERVED),
        # ---- documents
        ("ci_get_doc_queue", lambda: cos.ci_get_doc_queue(Bucket=b), UNSERVED),
        ("ci_update_doc_queue",
         lambda: cos.ci_update_doc_queue(Bucket=b, QueueId=pid, Request=queue_body), UNSERVED),
        ("ci_create_doc_job",
         lambda: cos.ci_create_doc_job(Bucket=b, InputObject="template/a.png",
                                       OutputObject="doc-${Number}.jpg", **out), UNSERVED),
        ("ci_get_doc_job", lambda: cos.ci_get_doc_job(Bucket=b, JobID=jid), UNSERVED),
        ("ci_list_doc_jobs", lambda: cos.ci_list_doc_jobs(Bucket=b), UNSERVED),
        ("ci_get_doc_bucket", lambda: cos.ci_get_doc_bucket(), UNSERVED),
        # ---- speech
        ("ci_open_asr_bucket", lambda: cos.ci_open_asr_bucket(Bucket=b), UNSERVED),
        ("ci_get_asr_bucket", lambda: cos.ci_get_asr_bucket(), UNSERVED),
        ("ci_close_asr_bucket", lambda: cos.ci_close_asr_bucket(Bucket=b), UNSERVED),
        ("ci_get_asr_queue", lambda: cos.ci_get_asr_queue(Bucket=b), UNSERVED),
        ("ci_update_asr_queue",
         lambda: cos.ci_update_asr_queue(Bucket=b, QueueId=pid, Request=queue_body), UNSERVED),
        ("ci_create_asr_job",
         lambda: cos.ci_create_asr_job(Bucket=b, InputObject="jobs/2024/report.mp4",
                                       OutputObject="asr.txt", SpeechRecognition={
                                           "EngineModelType": "16k_zh", "ChannelNum": "1"},
                                       **out), UNSERVED),
        ("ci_get_asr_job", lambda: cos.ci_get_asr_job(Bucket=b, JobID=jid), UNSERVED),
        ("ci_list_asr_jobs", lambda: cos.ci_list_asr_jobs(Bucket=b), UNSERVED),
        # ---- AI
        ("ci_open_ai_bucket", lambda: cos.ci_open_ai_bucket(Bucket=b), UNSERVED),
        ("ci_get_ai_bucket", lambda: cos.ci_get_ai_bucket(), UNSERVED),
        ("ci_close_ai_bucket", lambda: cos.ci_close_ai_bucket(Bucket=b), UNSERVED),
        ("ci_get_ai_queue", lambda: cos.ci_get_ai_queue(Bucket=b), UNSERVED),
        ("ci_update_ai_queue",
         lambda: cos.ci_update_ai_queue(Bucket=b, QueueId=pid, Request=queue_body), UNSERVED),
        # ---- workflows (served)
        ("ci_create_workflow(no Snapshot node)",
         lambda: cos.ci_create_workflow(Bucket=b, Body=workflow), err(400, "InvalidArgument")),
        ("ci_update_workflow(well-formed unknown id)",
         lambda: cos.ci_update_workflow(Bucket=b, WorkflowId=wid, Body=workflow), NO_WORKFLOW),
        ("ci_update_workflow(w1)",
         lambda: cos.ci_update_workflow(Bucket=b, WorkflowId="w1", Body=workflow), NO_WORKFLOW),
        ("ci_update_workflow_state(active)",
         lambda: cos.ci_update_workflow_state(Bucket=b, WorkflowId=wid, UpdateState="active"),
         err(404, "NoSuchWorkflow")),
        ("ci_update_workflow_state(w1, paused)",
         lambda: cos.ci_update_workflow_state(Bucket=b, WorkflowId="w1", UpdateState="paused"),
         err(404, "NoSuchWorkflow")),
        ("ci_get_workflow(unknown id)", lambda: cos.ci_get_workflow(Bucket=b, Ids=wid),
         (OK, no_workflow)),
        ("ci_delete_workflow(well-formed unknown id)",
         lambda: cos.ci_delete_workflow(Bucket=b, WorkflowId=wid), err(404, "NoSuchWorkflow")),
        ("ci_delete_workflow(w1)", lambda: cos.ci_delete_workflow(Bucket=b, WorkflowId="w1"),
         err(404, "NoSuchWorkflow")),
        ("ci_trigger_workflow(unknown id)",
         lambda: cos.ci_trigger_workflow(Bucket=b, WorkflowId=wid, Key="jobs/2024/report.mp4"),
         err(404, "NoSuchWorkflow")),
        ("ci_get_workflowexecution(unknown run)",
         lambda: cos.ci_get_workflowexecution(Bucket=b, RunId=rid),
         err(404, ("NoSuchJob", "NoSuchWorkflow"))),
        ("ci_list_workflowexecution(unknown workflow)",
         lambda: cos.ci_list_workflowexecution(Bucket=b, WorkflowId=wid), OK_OR_NO_WORKFLOW),
        # ---- inventory triggers
        ("ci_create_inventory_trigger_jobs",
         lambda: cos.ci_create_inventory_trigger_jobs(Bucket=b, JobBody=inventory), UNSERVED),
        ("ci_list_inventory_trigger_jobs",
         lambda: cos.ci_list_inventory_trigger_jobs(Bucket=b), UNSERVED),
        ("ci_get_inventory_trigger_jobs(abc)",
         lambda: cos.ci_get_inventory_trigger_jobs(Bucket=b, JobID="abc"), UNSERVED),
        ("ci_delete_inventory_trigger_jobs(abc)",
         lambda: cos.ci_delete_inventory_trigger_jobs(Bucket=b, JobId="abc"), UNSERVED),
        # ---- HLS play keys
        ("ci_get_hls_play_key", lambda: cos.ci_get_hls_play_key(Bucket=b), UNSERVED),
        ("ci_update_hls_play_key",
         lambda: cos.ci_update_hls_play_key(Bucket=b, MasterPlayKey="m" * 32,
                                            BackupPlayKey="b" * 32), UNSERVED),
        # ---- file processing
        ("ci_create_file_hash_job",
         lambda: cos.ci_create_file_hash_job(Bucket=b, InputObject="jobs/2024/report.mp4",
                                             FileHashCodeConfig={"Type": "MD5"}), UNSERVED),
        ("ci_create_file_uncompress_job",
         lambda: cos.ci_create_file_uncompress_job(
             Bucket=b, InputObject="template/a.png", FileUncompressConfig={"Prefix": "template/"},
             **out), UNSERVED),
        ("ci_create_file_compress_job",
         lambda: cos.ci_create_file_compress_job(
             Bucket=b, OutputObject="template/a.png",
             FileCompressConfig={"Flatten": "0", "Format": "zip", "Prefix": "jobs/"}, **out),
         UNSERVED),
        ("ci_get_file_process_jobs",
         lambda: cos.ci_get_file_process_jobs(Bucket=b, JobIDs=jid), UNSERVED),
        # ---- auditing. Only /virus/... starts with a CI name: on an object
        # host the others are object paths (/video/auditing/<id> ...), which
        # must fail as objects do and write nothing.
        ("ci_auditing_virus_submit",
         lambda: cos.ci_auditing_virus_submit(Bucket=b, Key="jobs/2024/report.mp4"), UNSERVED),
        ("ci_auditing_virus_query",
         lambda: cos.ci_auditing_virus_query(Bucket=b, JobID=jid), ANY_ERROR),
        ("ci_auditing_video_submit",
         lambda: cos.ci_auditing_video_submit(Bucket=b, Key="jobs/2024/report.mp4"), ANY_ERROR),
        ("ci_auditing_video_query", lambda: cos.ci_auditing_video_query(Bucket=b, JobID=jid),
         ANY_ERROR),
        ("ci_auditing_audio_submit",
         lambda: cos.ci_auditing_audio_submit(Bucket=b, Key="jobs/2024/report.mp4"), ANY_ERROR),
        ("ci_auditing_audio_query", lambda: cos.ci_auditing_audio_query(Bucket=b, JobID=jid),
         ANY_ERROR),
        ("ci_auditing_text_submit",
         lambda: cos.ci_auditing_text_submit(Bucket=b, Content=b"hello"), ANY_ERROR),
        ("ci_auditing_text_query", lambda: cos.ci_auditing_text_query(Bucket=b, JobID=jid),
         ANY_ERROR),
        ("ci_auditing_document_submit",
         lambda: cos.ci_auditing_document_submit(Bucket=b, Key="template/a.png"), ANY_ERROR),
        ("ci_auditing_document_query",
         lambda: cos.ci_auditing_document_query(Bucket=b, JobID=jid), ANY_ERROR),
        ("ci_auditing_html_submit",
         lambda: cos.ci_auditing_html_submit(Bucket=b, Url="http://127.0.0.1:9/"), ANY_ERROR),
        ("ci_auditing_html_query", lambda: cos.ci_auditing_html_query(Bucket=b, JobID=jid),
         ANY_ERROR),
        ("ci_auditing_image_batch",
         lambda: cos.ci_auditing_image_batch(Bucket=b, Input=[{"Object": "template/a.png"}]),
         ANY_ERROR),
        ("ci_auditing_image_query", lambda: cos.ci_auditing_image_query(Bucket=b, JobID=jid),
         ANY_ERROR),
        ("ci_auditing_live_video_submit",
         lambda: cos.ci_auditing_live_video_submit(Bucket=b, BizType="b" * 32,
                                                   Url="rtmp://127.0.0.1/live"), ANY_ERROR),
        ("ci_auditing_live_video_cancle",
         lambda: cos.ci_auditing_live_video_cancle(Bucket=b, JobID=jid), ANY_ERROR),
        ("ci_auditing_report_badcase",
         lambda: cos.ci_auditing_report_badcase(Bucket=b, ContentType=2, Label="Porn",
                                                SuggestedLabel="Normal", Text="hello"), ANY_ERROR),
    ]


def run_sweep(calls) -> list[str]:
    """Runs every call; the list of what went against expectations."""
    problems = []
    for label, call, expected in calls:
        check = None
        if isinstance(expected, tuple) and expected and expected[0] == OK:
            expected, check = OK, expected[1]
        either = isinstance(expected, tuple) and expected[0] == "ok-or"
        if either:
            expected = expected[1]
        try:
            response = call()
        except CosServiceError as exc:
            try:
                e = error_of(exc)
            except AssertionError as bad:
                problems.append(f"{label}: {bad}")
                continue
            if expected == OK:
                problems.append(f"{label}: failed with {e}; it should succeed")
            else:
                _, statuses, codes = expected
                if e.status not in statuses or (codes and e.code not in codes):
                    problems.append(f"{label}: {e}; want status {statuses} code {codes or 'any'}")
            continue
        except Exception as exc:   # e.g. an object's bytes where XML was expected
            problems.append(f"{label}: {type(exc).__name__}: {exc}")
            continue
        if expected != OK and not either:
            problems.append(f"{label}: succeeded ({str(response)[:200]}); want {expected[1:]}")
        elif check is not None:
            try:
                check(response)
            except AssertionError as bad:
                problems.append(f"{label}: unexpected answer: {bad}")
    return problems


def bucket_snapshot(s3, names) -> tuple[dict, dict]:
    """(listing of the whole bucket, bytes of the CI-named objects)."""
    return listing(s3), {k: read(s3, k) for k in names}


def test_ci_calls_change_no_object(backend, cos, s3):
    """Every CI-endpoint method of the SDK, with well-formed and bogus ids,
    on an object host (Domain and IP/Port configurations): each gets the
    answer the contract gives (served reads succeed; everything else a CI
    error document with a code), and not one object of the bucket changes,
    disappears or appears — not even the objects whose keys are exactly the
    paths the calls address (`template/nope`, `playKey`,
    `inventorytriggerjob/abc`, `jobs/<id>`, ...)."""
    ids = {"job": new_id("j"), "template": new_id("t"), "queue": new_id("p"),
           "workflow": new_id("w"), "run": new_id("r")}
    names = ci_like_keys(backend, ids)
    stamp = uuid.uuid4().hex
    for key in names:
        # boto3: two-segment dotless keys and bare CI names are CI calls for a COS client.
        s3.put_object(Bucket=BUCKET, Key=key, Body=f"object {key} {stamp}\n".encode() * 50)
    before = bucket_snapshot(s3, names)
    problems = run_sweep(sweep(cos, ids))
    after = bucket_snapshot(s3, names)
    changed = sorted(k for k in before[1] if before[1][k] != after[1].get(k))
    appeared = sorted(set(after[0]) - set(before[0]))
    vanished = sorted(set(before[0]) - set(after[0]))
    touched = sorted(k for k in before[0] if k in after[0] and before[0][k] != after[0][k])
    assert not (problems or changed or appeared or vanished or touched), "\n".join(
        problems + [f"changed bytes: {changed}", f"new objects: {appeared}",
                    f"gone objects: {vanished}", f"changed listing entries: {touched}"])


# (Not under names the sweep above holds as bare objects: on the file store a
# key cannot be both a file and a directory.)
@pytest.mark.parametrize("key", ["jobs/2024/report-{}.mp4", "template/a-{}.png",
                                 "queue/p1-{}.jpg", "workflow/w1/{}.txt", "mediainfo/x/{}.txt",
                                 "picqueue/{}/clip.mp4"])
def test_ordinary_keys_under_ci_names_work_for_the_cos_client(cos, key):
    """Keys under CI names that the rule leaves to objects (a dot in the
    second segment, or more than two segments) are written, read, listed,
    copied and deleted through the COS client like any other."""
    key = key.format(uuid.uuid4().hex[:8])
    body = f"ordinary {key}\n".encode() * 100
    cos.put_object(Bucket=BUCKET, Key=key, Body=body)
    assert support.cos_body(cos.get_object(Bucket=BUCKET, Key=key)) == body
    head = cos.head_object(Bucket=BUCKET, Key=key)
    assert int(support.hget(head, "Content-Length")) == len(body)
    first = key.split("/")[0] + "/"
    listed = cos.list_objects(Bucket=BUCKET, Prefix=first, MaxKeys=1000)
    assert key in [o["Key"] for o in listed.get("Contents", [])]
    copy = key + ".copy"
    cos.copy_object(Bucket=BUCKET, Key=copy, CopySource={
        "Bucket": BUCKET, "Key": key, "Region": REGION})
    assert support.cos_body(cos.get_object(Bucket=BUCKET, Key=copy)) == body
    cos.delete_object(Bucket=BUCKET, Key=key)
    cos.delete_object(Bucket=BUCKET, Key=copy)
    with pytest.raises(CosServiceError) as gone:
        cos.get_object(Bucket=BUCKET, Key=key)
    assert support.cos_error(gone) == (404, "NoSuchKey")


def test_two_segment_dotless_keys_are_ci_calls_for_the_cos_client(cos, s3):
    """The price of the rule: `template/<name without a dot>` cannot be read
    or deleted through the COS client (those are CI calls, answered with CI
    errors, and the object stays); boto3 reaches it, and so does the COS
    client's multi-delete (`POST /?delete`)."""
    key = f"template/readme{uuid.uuid4().hex[:8]}"
    body = b"not a template\n" * 10
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    for call in (lambda: cos.get_object(Bucket=BUCKET, Key=key),
                 lambda: cos.delete_object(Bucket=BUCKET, Key=key),
                 lambda: cos.put_object(Bucket=BUCKET, Key=key, Body=b"overwritten")):
        try:
            response = call()
        except CosServiceError as exc:
            e = error_of(exc)
            assert e.status in CI_ERROR_STATUSES, e
            continue
        body_seen = response.get("Body") if isinstance(response, dict) else None
        raise AssertionError(f"a COS-client call on {key} succeeded as an object operation "
                             f"({'the object was read' if body_seen else response})")
    assert read(s3, key) == body, "the CI call changed the object"
    result = cos.delete_objects(Bucket=BUCKET, Delete={"Object": [{"Key": key}], "Quiet": "false"})
    assert [d["Key"] for d in as_list(result.get("Deleted"))] == [key], result
    assert key not in [o["Key"] for o in s3.list_objects_v2(
        Bucket=BUCKET, Prefix="template/").get("Contents", [])]


@pytest.mark.parametrize("method, path, params", [
    ("DELETE", "/queue/{queue}", None),
    ("POST", "/queue/{queue}", None),
    ("PUT", "/mediabucket", None),
    ("DELETE", "/mediabucket", None),
    ("PUT", "/jobs", None),
    ("DELETE", "/jobs", None),
    ("DELETE", "/jobs/{job}", None),
])
def test_served_ci_resources_refuse_other_methods(gateway, method, path, params):
    """A served CI resource called with a method it does not take: 405
    MethodNotAllowed, as a CI error document (requests signed like the COS
    client's, on the bare host)."""
    cos = support.cos_client(gateway, "domain")
    q = cos.ci_get_media_queue(Bucket=BUCKET)["QueueList"][0]["QueueId"]
    r = raw(gateway, method, path.format(queue=q, job=new_id("j")), params=params, data=b"")
    check_error(parse_error(r.status_code, r.content), 405, "MethodNotAllowed")


def test_sdk_reads_the_code_of_ci_errors(cos):
    """cos-python-sdk-v5's CosServiceError.get_error_code() only works when the
    error document carries <Code>, <Message>, <Resource> and <RequestId>, all
    non-empty (qcloud_cos.cos_exception.digest_xml gives up otherwise and the
    code reads "Unknown"): the CI errors must be readable by SDK users."""
    for call, status, code in (
            (lambda: cos.ci_cancel_jobs(Bucket=BUCKET, JobID=new_id("j")), 404, "NoSuchJob"),
            (lambda: cos.ci_get_media_pic_queue(Bucket=BUCKET), 501, "NotImplemented"),
            (lambda: cos.ci_delete_template(Bucket=BUCKET, TemplateId=new_id("t")), 404,
             "NoSuchTemplate")):
        with pytest.raises(CosServiceError) as info:
            call()
        e = info.value
        assert (e.get_status_code(), e.get_error_code()) == (status, code), e.get_origin_msg()
        assert e.get_error_msg() and e.get_request_id() not in ("", "Unknown")


@pytest.fixture
def two_buckets(gateway_factory):
    """A gateway with BUCKET (file) and OTHER (memory)."""
    return gateway_factory.start("file", "ci-host", extra_buckets=[
        (OTHER, "memory://", "public-read-write")])


def test_ci_host_addresses_its_bucket_and_holds_no_objects(two_buckets):
    """`Host: <bucket>.ci.<region>.myqcloud.com` (the SDK with
    Endpoint=ci.<region>.myqcloud.com): the queue it shows is that bucket's
    (the same as on the bucket's object host; another bucket, another queue);
    unserved CI APIs there are 501 NotImplemented — also the auditing paths
    that on an object host are object keys; and nothing on a CI host is an
    object: an existing key is not read, a PUT writes nothing."""
    gw = two_buckets
    s3 = support.boto3_client(gw)
    ci, vhost = client(gw, "ci"), client(gw, "vhost")
    main_queue = vhost.ci_get_media_queue(Bucket=BUCKET)["QueueList"][0]["QueueId"]
    other_queue = vhost.ci_get_media_queue(Bucket=OTHER)["QueueList"][0]["QueueId"]
    assert QUEUE_ID.fullmatch(main_queue) and QUEUE_ID.fullmatch(other_queue)
    assert main_queue != other_queue, "two buckets, one queue id"
    assert ci.ci_get_media_queue(Bucket=BUCKET)["QueueList"][0]["QueueId"] == main_queue
    assert ci.ci_get_media_queue(Bucket=OTHER)["QueueList"][0]["QueueId"] == other_queue
    # The raw request says the same (the Host alone picks the bucket).
    r = raw(gw, "GET", "/queue", host=ci_host(OTHER))
    assert r.status_code == 200 and other_queue.encode() in r.content, r.text

    for label, call in (
            ("ci_get_doc_queue", lambda: ci.ci_get_doc_queue(Bucket=BUCKET)),
            ("ci_get_media_pic_queue", lambda: ci.ci_get_media_pic_queue(Bucket=OTHER)),
            ("ci_auditing_video_query", lambda: ci.ci_auditing_video_query(Bucket=BUCKET,
                                                                          JobID=new_id("v"))),
            ("ci_auditing_text_submit", lambda: ci.ci_auditing_text_submit(Bucket=BUCKET,
                                                                          Content=b"x")),
            ("ci_get_inventory_trigger_jobs", lambda: ci.ci_get_inventory_trigger_jobs(
                Bucket=BUCKET, JobID="abc")),
            ("ci_get_asr_queue", lambda: ci.ci_get_asr_queue(Bucket=OTHER)),
            ("ci_auditing_virus_submit", lambda: ci.ci_auditing_virus_submit(
                Bucket=OTHER, Key="x.mp4"))):
        e = expect_error(call)
        assert (e.status, e.code) == (501, "NotImplemented"), f"{label}: {e}"

    s3.put_object(Bucket=BUCKET, Key="probe/clip.txt", Body=b"an object\n")
    s3.put_object(Bucket=OTHER, Key="video/auditing/abc", Body=b"another object\n")
    before = (listing(s3, BUCKET), listing(s3, OTHER))
    e = expect_error(ci.get_object, Bucket=BUCKET, Key="probe/clip.txt")
    assert e.status in CI_ERROR_STATUSES, e
    e = expect_error(ci.ci_auditing_video_query, Bucket=OTHER, JobID="abc")
    assert (e.status, e.code) == (501, "NotImplemented"), e
    for bucket, key in ((BUCKET, "probe/new.txt"), (BUCKET, "probe/clip.txt"), (OTHER, "x.txt")):
        e = expect_error(ci.put_object, Bucket=bucket, Key=key, Body=b"written on a CI host")
        assert e.status in CI_ERROR_STATUSES, e
    e = expect_error(ci.delete_object, Bucket=BUCKET, Key="probe/clip.txt")
    assert e.status in CI_ERROR_STATUSES, e
    assert (listing(s3, BUCKET), listing(s3, OTHER)) == before
    assert read(s3, "probe/clip.txt") == b"an object\n"


def test_s3_clients_never_make_ci_calls(s3):
    """boto3 (SigV4) reaches keys that are CI paths for a COS client: bare
    CI names and two-segment dotless keys are plain objects for it (PUT, GET,
    HEAD, DELETE)."""
    stamp = uuid.uuid4().hex[:8]
    for key in ("docbucket", "ai_queue", "asrqueue", f"template/t{stamp}", f"queue/p{stamp}"):
        body = f"s3 {key} {stamp}".encode()
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        assert read(s3, key) == body
        assert s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"] == len(body)
        s3.delete_object(Bucket=BUCKET, Key=key)
        assert key not in [o["Key"] for o in s3.list_objects_v2(
            Bucket=BUCKET, Prefix=key).get("Contents", [])]
