"""VOD's upload flow as `vod-python-sdk`'s VodUploadClient runs it:
`ApplyUpload` through tencentcloud-sdk-python, the upload through
cos-python-sdk-v5 with the session's temporary credential (SecretId,
SecretKey, Token → `x-cos-security-token`), then `CommitUpload`; on the
SQLite queue and on PostgreSQL.

The session bucket is private; the default bucket next to it is
public-read-write, so a refusal there is the temporary credential's own
limit, not the bucket's.
"""

from __future__ import annotations

import time

import pytest
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.vod.v20180717 import vod_client

import support
from conftest import GatewayFactory, queue_store
from jobs_support import FIXTURES, call, error_of, fetch, vod
from upload_support import (MEDIA_BUCKET, PROCEDURE, VIDEO, check_thumbnail, create_procedure,
                            exists, file_id, iso_in, refused, root_cos, start_gateway, tasks_of,
                            temp_cos, wait_until)


@pytest.fixture(scope="module")
def gw(queue, workroot, request):
    name = f"vod-upload-{queue}"
    factory = GatewayFactory(workroot / name, request)
    gateway = start_gateway(factory, name, queue_store(queue, request))
    create_procedure(vod(gateway))
    yield gateway
    factory.stop_all()


@pytest.fixture
def client(gw):
    return vod(gw)


# ---------------------------------------------------------------- the flow

def test_apply_put_commit_starts_the_procedure_exactly_once(gw, client):
    video = (FIXTURES / VIDEO).read_bytes()
    cover = (FIXTURES / "not_video.txt").read_bytes() * 10
    answer = call(client, "ApplyUpload", {
        "MediaType": "MP4", "MediaName": "holiday", "CoverType": "jpg",
        "Procedure": PROCEDURE, "SessionContext": "ctx-42", "SourceContext": "src"})
    assert answer.StorageBucket == MEDIA_BUCKET and answer.StorageRegion == support.REGION
    assert answer.MediaStoragePath.startswith("/vod-uploads/")
    assert answer.MediaStoragePath.endswith("/holiday.mp4")
    assert answer.CoverStoragePath.rsplit("/", 1)[0] == answer.MediaStoragePath.rsplit("/", 1)[0]
    assert answer.CoverStoragePath.endswith(".jpg")
    assert answer.TempCertificate.ExpiredTime > time.time()
    cos = temp_cos(gw, answer)
    cos.put_object(Bucket=answer.StorageBucket, Key=answer.MediaStoragePath, Body=video)
    cos.put_object(Bucket=answer.StorageBucket, Key=answer.CoverStoragePath, Body=cover)

    committed = call(client, "CommitUpload", {"VodSessionKey": answer.VodSessionKey})
    key = answer.MediaStoragePath[1:]
    assert committed.FileId == file_id(MEDIA_BUCKET, key)
    assert fetch(committed.MediaUrl) == video
    assert fetch(committed.CoverUrl) == cover
    [task] = tasks_of(client, committed.FileId)
    check_thumbnail(client, task.TaskId, "ctx-42")

    again = call(client, "CommitUpload", {"VodSessionKey": answer.VodSessionKey})
    assert again.FileId == committed.FileId
    assert fetch(again.MediaUrl) == video
    assert [t.TaskId for t in tasks_of(client, committed.FileId)] == [task.TaskId]

    [info] = call(client, "DescribeMediaInfos", {"FileIds": [committed.FileId]}).MediaInfoSet
    assert info.BasicInfo.StoragePath == answer.MediaStoragePath
    assert fetch(info.BasicInfo.MediaUrl) == video


def test_multipart_upload_file_with_the_temporary_credential(gw, client, tmp_path):
    data = support.payload(3 * 1024 * 1024 + 12345, seed=7)
    local = tmp_path / "big.mp4"
    local.write_bytes(data)
    answer = call(client, "ApplyUpload", {"MediaType": "mp4"})
    assert answer.CoverStoragePath == ""
    cos = temp_cos(gw, answer)
    cos.upload_file(Bucket=answer.StorageBucket, Key=answer.MediaStoragePath,
                    LocalFilePath=str(local), PartSize=1, MAXThread=2)
    key = answer.MediaStoragePath[1:]
    uploads = root_cos(gw).list_multipart_uploads(Bucket=MEDIA_BUCKET, Prefix=key)
    assert "Upload" not in uploads
    committed = call(client, "CommitUpload", {"VodSessionKey": answer.VodSessionKey})
    assert committed.FileId == file_id(MEDIA_BUCKET, key)
    assert committed.CoverUrl == ""
    assert fetch(committed.MediaUrl) == data
    # No procedure named: nothing started.
    assert tasks_of(client, committed.FileId) == []


def test_boto3_uploads_with_the_temporary_credential_too(gw, client):
    import boto3
    import botocore.exceptions
    from botocore.config import Config

    answer = call(client, "ApplyUpload", {"MediaType": "mov"})
    cert = answer.TempCertificate
    s3 = boto3.client("s3", endpoint_url=gw.url, region_name="us-east-1",
                      aws_access_key_id=cert.SecretId, aws_secret_access_key=cert.SecretKey,
                      aws_session_token=cert.Token,
                      config=Config(s3={"addressing_style": "path"},
                                    retries={"total_max_attempts": 1}))
    key = answer.MediaStoragePath[1:]
    s3.put_object(Bucket=MEDIA_BUCKET, Key=key, Body=b"sigv4 upload")
    with pytest.raises(botocore.exceptions.ClientError) as err:
        s3.get_object(Bucket=MEDIA_BUCKET, Key=key)
    assert err.value.response["Error"]["Code"] == "AccessDenied"
    committed = call(client, "CommitUpload", {"VodSessionKey": answer.VodSessionKey})
    assert fetch(committed.MediaUrl) == b"sigv4 upload"


# ------------------------------------------------- what the credential cannot do

def test_the_temporary_credential_writes_only_its_own_keys(gw, client):
    root = root_cos(gw)
    root.put_object(Bucket=MEDIA_BUCKET, Key="private/other.mp4", Body=b"someone else's")
    answer = call(client, "ApplyUpload", {"MediaType": "mp4"})
    bucket, path = answer.StorageBucket, answer.MediaStoragePath
    cos = temp_cos(gw, answer)
    cos.put_object(Bucket=bucket, Key=path, Body=b"mine")

    denied = (403, "AccessDenied")
    assert refused(lambda: cos.get_object(Bucket=bucket, Key=path)) == denied
    assert refused(lambda: cos.get_object(Bucket=bucket, Key="private/other.mp4")) == denied
    assert refused(lambda: cos.head_object(Bucket=bucket, Key=path))[0] == 403
    assert refused(lambda: cos.list_objects(Bucket=bucket, Prefix=path[1:])) == denied
    assert refused(lambda: cos.list_objects(Bucket=bucket)) == denied
    assert refused(lambda: cos.delete_object(Bucket=bucket, Key=path)) == denied
    assert refused(lambda: cos.put_object(Bucket=bucket, Key=path + ".jpg", Body=b"x")) == denied
    assert refused(lambda: cos.put_object(Bucket=bucket, Key="private/other.mp4",
                                          Body=b"x")) == denied
    assert refused(lambda: cos.create_multipart_upload(Bucket=bucket,
                                                       Key="private/new.mp4")) == denied
    assert refused(lambda: cos.list_multipart_uploads(Bucket=bucket, Prefix="private/")) == denied
    # Its own key, but as a copy of an object it cannot read.
    assert refused(lambda: cos.copy_object(Bucket=bucket, Key=path, CopySource={
        "Bucket": bucket, "Key": "private/other.mp4", "Region": support.REGION})) == denied
    # The public-read-write bucket next door: anyone may write there, this
    # credential may not.
    assert refused(lambda: cos.put_object(Bucket=support.BUCKET, Key=path[1:],
                                          Body=b"x")) == denied
    # Other APIs: CI, VOD.
    assert refused(lambda: cos.ci_get_media_queue(Bucket=bucket))[0] == 403
    cert = answer.TempCertificate
    temp_vod = vod_client.VodClient(
        credential.Credential(cert.SecretId, cert.SecretKey, cert.Token), support.REGION,
        ClientProfile(httpProfile=HttpProfile(endpoint=f"127.0.0.1:{gw.port}", protocol="http")))
    for action, params in [("DescribeTasks", {}), ("CommitUpload",
                                                   {"VodSessionKey": answer.VodSessionKey}),
                           ("ApplyUpload", {"MediaType": "mp4"})]:
        assert error_of(temp_vod, action, params).code.startswith(("AuthFailure",
                                                                    "UnauthorizedOperation"))
    # Nothing it tried changed anything.
    assert support.cos_body(root.get_object(Bucket=bucket, Key=path[1:])) == b"mine"
    assert support.cos_body(root.get_object(Bucket=bucket, Key="private/other.mp4")) == \
        b"someone else's"
    assert not exists(gw, path[1:] + ".jpg")


def test_a_tampered_or_mismatched_credential_is_refused(gw, client):
    answer = call(client, "ApplyUpload", {"MediaType": "mp4", "CoverType": "png"})
    bucket, path = answer.StorageBucket, answer.MediaStoragePath
    token = answer.TempCertificate.Token
    payload, tag = token.split(".")
    flipped = payload[:10] + ("A" if payload[10] != "A" else "B") + payload[11:]
    for override, want in [
        ({"Token": f"{flipped}.{tag}"}, (400, "InvalidToken")),
        ({"Token": token + "x"}, (400, "InvalidToken")),
        ({"Token": "garbage"}, (400, "InvalidToken")),
        ({"SecretKey": "not-the-derived-key"}, (403, "SignatureDoesNotMatch")),
        ({"SecretId": "AKIDfgtmp" + "0" * 24}, (400, "InvalidToken")),
        ({"SecretId": "AKIDsomeoneelse"}, (403, "InvalidAccessKeyId")),
    ]:
        cos = temp_cos(gw, answer, **override)
        assert refused(lambda: cos.put_object(Bucket=bucket, Key=path, Body=b"x")) == want, \
            override
    # Another session's token with this session's id and key.
    other = call(client, "ApplyUpload", {"MediaType": "mp4"})
    cos = temp_cos(gw, answer, Token=other.TempCertificate.Token)
    assert refused(lambda: cos.put_object(Bucket=bucket, Key=path, Body=b"x")) == \
        (400, "InvalidToken")
    assert not exists(gw, path[1:])
    # The genuine credential still works, on both its keys.
    cos = temp_cos(gw, answer)
    cos.put_object(Bucket=bucket, Key=path, Body=b"ok")
    cos.put_object(Bucket=bucket, Key=answer.CoverStoragePath, Body=b"png")


def test_the_temporary_credential_expires(gw, client):
    answer = call(client, "ApplyUpload", {"MediaType": "mp4", "ExpireTime": iso_in(3)})
    assert answer.TempCertificate.ExpiredTime <= time.time() + 3
    cos = temp_cos(gw, answer)
    cos.put_object(Bucket=answer.StorageBucket, Key=answer.MediaStoragePath, Body=b"early")
    time.sleep(max(0.0, answer.TempCertificate.ExpiredTime - time.time()) + 0.5)
    assert refused(lambda: cos.put_object(Bucket=answer.StorageBucket,
                                          Key=answer.MediaStoragePath, Body=b"late")) == \
        (400, "ExpiredToken")


# ------------------------------------------------------------- parameters

@pytest.mark.parametrize("params, code", [
    ({}, "MissingParameter"),
    ({"MediaType": "exe"}, "InvalidParameterValue.MediaType"),
    ({"MediaType": "mp4", "CoverType": "svg"}, "InvalidParameterValue.CoverType"),
    ({"MediaType": "mp4", "MediaName": "a/b"}, "InvalidParameterValue.MediaName"),
    ({"MediaType": "mp4", "MediaName": "x" * 65}, "InvalidParameterValue.MediaName"),
    ({"MediaType": "mp4", "ExpireTime": "2020-01-01T00:00:00Z"},
     "InvalidParameterValue.ExpireTime"),
    ({"MediaType": "mp4", "ExpireTime": "next week"}, "InvalidParameterValue.ExpireTime"),
    ({"MediaType": "mp4", "Procedure": "no-such-procedure"}, "InvalidParameterValue.Procedure"),
    ({"MediaType": "mp4", "SessionContext": "x" * 1001}, "InvalidParameterValue.SessionContext"),
    ({"MediaType": "mp4", "SourceContext": "x" * 251}, "InvalidParameterValue.SourceContext"),
])
def test_apply_upload_checks_its_parameters(client, params, code):
    err = error_of(client, "ApplyUpload", params)
    assert err.code == code, err
    field = code.split(".")[-1]
    if field != "MissingParameter":
        assert field in err.message


def test_commit_upload_needs_a_live_session_and_the_media(client):
    assert error_of(client, "CommitUpload", {}).code == "MissingParameter"
    err = error_of(client, "CommitUpload", {"VodSessionKey": "f" * 64})
    assert err.code == "InvalidParameterValue.VodSessionKey", err
    answer = call(client, "ApplyUpload", {"MediaType": "mp4", "Procedure": PROCEDURE})
    err = error_of(client, "CommitUpload", {"VodSessionKey": answer.VodSessionKey})
    assert err.code == "FailedOperation" and "MediaStoragePath" in err.message, err


# ------------------------------------------------------------- expiry

def test_uncommitted_sessions_are_cleaned_up_and_committed_ones_kept(gw, client):
    root = root_cos(gw)
    kept = call(client, "ApplyUpload", {"MediaType": "mp4", "ExpireTime": iso_in(5)})
    dropped = call(client, "ApplyUpload", {"MediaType": "mp4", "CoverType": "jpg",
                                           "ExpireTime": iso_in(5)})
    temp_cos(gw, kept).put_object(Bucket=MEDIA_BUCKET, Key=kept.MediaStoragePath, Body=b"kept")
    cos = temp_cos(gw, dropped)
    cos.put_object(Bucket=MEDIA_BUCKET, Key=dropped.MediaStoragePath, Body=b"dropped")
    # A multipart upload left open on the cover path.
    upload_id = cos.create_multipart_upload(Bucket=MEDIA_BUCKET,
                                            Key=dropped.CoverStoragePath)["UploadId"]
    cos.upload_part(Bucket=MEDIA_BUCKET, Key=dropped.CoverStoragePath, Body=b"part",
                    PartNumber=1, UploadId=upload_id)
    committed = call(client, "CommitUpload", {"VodSessionKey": kept.VodSessionKey})

    media, cover = dropped.MediaStoragePath[1:], dropped.CoverStoragePath[1:]
    wait_until(lambda: not exists(gw, media), "swept")
    assert "Upload" not in root.list_multipart_uploads(Bucket=MEDIA_BUCKET, Prefix=cover)
    err = error_of(client, "CommitUpload", {"VodSessionKey": dropped.VodSessionKey})
    assert err.code == "InvalidParameterValue.VodSessionKey", err
    # The committed session's media stays, and committing again answers it.
    assert exists(gw, kept.MediaStoragePath[1:])
    again = call(client, "CommitUpload", {"VodSessionKey": kept.VodSessionKey})
    assert again.FileId == committed.FileId
    assert fetch(again.MediaUrl) == b"kept"
    assert "expired upload session cleaned up" in gw.stderr_log.read_text()
