"""COS XML errors with the statuses SDKs expect."""

import xml.etree.ElementTree as ET

import pytest
from botocore.exceptions import ClientError
from qcloud_cos.cos_exception import CosServiceError

from support import BUCKET, boto_error, cos_error

UNKNOWN_BUCKET = "nosuchbucket-1250000000"


def test_cos_get_missing_key_is_no_such_key(cos, key_prefix):
    with pytest.raises(CosServiceError) as err:
        cos.get_object(Bucket=BUCKET, Key=key_prefix + "missing")
    assert cos_error(err) == (404, "NoSuchKey")


def test_boto3_get_and_head_missing_key(s3, key_prefix):
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=BUCKET, Key=key_prefix + "missing")
    assert boto_error(err) == (404, "NoSuchKey")
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=BUCKET, Key=key_prefix + "missing")
    assert boto_error(err)[0] == 404


def test_boto3_unknown_bucket_is_no_such_bucket(s3):
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=UNKNOWN_BUCKET, Key="anything")
    assert boto_error(err) == (404, "NoSuchBucket")
    with pytest.raises(ClientError) as err:
        s3.list_objects_v2(Bucket=UNKNOWN_BUCKET)
    assert boto_error(err) == (404, "NoSuchBucket")
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=UNKNOWN_BUCKET, Key="anything", Body=b"x")
    assert boto_error(err) == (404, "NoSuchBucket")


def test_virtual_host_of_unknown_bucket_is_no_such_bucket(http):
    r = http.get("anything", bucket=None,
                 headers={"Host": f"{UNKNOWN_BUCKET}.cos.ap-guangzhou.myqcloud.com"})
    assert r.status_code == 404
    assert "<Code>NoSuchBucket</Code>" in r.text


def test_error_body_is_cos_xml_with_request_id(http, key_prefix):
    r = http.get(key_prefix + "missing")
    assert r.status_code == 404
    assert "xml" in r.headers.get("Content-Type", "")
    root = ET.fromstring(r.content)
    assert root.tag == "Error"
    fields = {child.tag: (child.text or "") for child in root}
    assert fields["Code"] == "NoSuchKey"
    assert fields.get("Message")
    assert fields.get("RequestId") == r.headers["x-cos-request-id"]
    assert "Resource" in fields


def test_head_of_missing_key_is_404_without_body(http, key_prefix):
    r = http.head(key_prefix + "missing")
    assert r.status_code == 404
    assert r.content == b""


def test_unsupported_method_is_405(http, key_prefix):
    http.put(key_prefix + "x", data=b"x")
    r = http.request("PATCH", key_prefix + "x", data=b"y")
    assert r.status_code == 405, r.text
    assert "<Code>MethodNotAllowed</Code>" in r.text


def test_oversized_request_header_is_rejected(http, key_prefix):
    r = http.get(key_prefix + "x", headers={"x-cos-meta-huge": "a" * (128 * 1024)})
    assert r.status_code in (400, 431), r.status_code
