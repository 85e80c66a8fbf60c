"""Bucket CORS through the SDKs (cos-python-sdk-v5 and boto3: PUT/GET/DELETE
?cors), and the headers it puts on object, snapshot and error responses and
preflights (raw HTTP, as a browser sends them). The browser itself is in
tests/browser."""

from __future__ import annotations

import pytest
import requests

import support
from support import BUCKET

RULES = {"CORSRule": [{
    "ID": "pages",
    "AllowedOrigin": ["https://*.example.com", "http://localhost:3000"],
    "AllowedMethod": ["GET", "HEAD"],
    "AllowedHeader": ["range", "x-cos-*"],
    "ExposeHeader": ["ETag", "x-cos-request-id"],
    "MaxAgeSeconds": 600,
}]}


@pytest.fixture
def cors_gateway(gateway_factory):
    gw = gateway_factory.start("file", "cors")
    cos = support.cos_client(gw, "domain")
    cos.put_object(Bucket=BUCKET, Key="v/demo.mp4",
                   Body=(support.REPO / "fixtures" / "demo.mp4").read_bytes())
    return gw, cos


def origin_get(gw, path, origin, **kw):
    return requests.get(gw.url + path, headers={"Origin": origin}, auth=support.CosSigned(), **kw)


def test_cos_sdk_sets_reads_and_deletes_the_rules(cors_gateway):
    gw, cos = cors_gateway
    from qcloud_cos.cos_exception import CosServiceError

    with pytest.raises(CosServiceError) as missing:
        cos.get_bucket_cors(Bucket=BUCKET)
    assert missing.value.get_error_code() == "NoSuchCORSConfiguration"
    cos.put_bucket_cors(Bucket=BUCKET, CORSConfiguration=RULES)
    got = cos.get_bucket_cors(Bucket=BUCKET)["CORSRule"]
    rule = got[0] if isinstance(got, list) else got
    assert rule["ID"] == "pages"
    assert sorted(rule["AllowedOrigin"]) == sorted(RULES["CORSRule"][0]["AllowedOrigin"])
    assert str(rule["MaxAgeSeconds"]) == "600"
    # In force at once, on objects, snapshots and errors.
    ok = origin_get(gw, "/v/demo.mp4", "https://www.example.com")
    assert ok.status_code == 200
    assert ok.headers["Access-Control-Allow-Origin"] == "https://www.example.com"
    assert "ETag" in ok.headers["Access-Control-Expose-Headers"]
    assert "Origin" in ok.headers["Vary"]
    shot = origin_get(gw, "/v/demo.mp4?ci-process=snapshot&time=1&width=64", "http://localhost:3000")
    assert shot.status_code == 200 and shot.headers["Content-Type"] == "image/jpeg"
    assert shot.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    err = origin_get(gw, "/v/none.mp4", "https://www.example.com")
    assert err.status_code == 404
    assert err.headers["Access-Control-Allow-Origin"] == "https://www.example.com"
    other = origin_get(gw, "/v/demo.mp4", "https://evil.example.org")
    assert other.status_code == 200 and "Access-Control-Allow-Origin" not in other.headers
    # Survives a restart.
    gw.stop()
    gw.start()
    assert support.cos_client(gw, "domain").get_bucket_cors(Bucket=BUCKET)["CORSRule"]
    cos = support.cos_client(gw, "domain")
    cos.delete_bucket_cors(Bucket=BUCKET)
    with pytest.raises(CosServiceError):
        cos.get_bucket_cors(Bucket=BUCKET)
    gone = origin_get(gw, "/v/demo.mp4", "https://www.example.com")
    assert "Access-Control-Allow-Origin" not in gone.headers


def test_boto3_round_trip(cors_gateway):
    gw, _ = cors_gateway
    s3 = support.boto3_client(gw)
    s3.put_bucket_cors(Bucket=BUCKET, CORSConfiguration={"CORSRules": [{
        "AllowedOrigins": ["*"], "AllowedMethods": ["GET"], "AllowedHeaders": ["*"],
        "MaxAgeSeconds": 30}]})
    rules = s3.get_bucket_cors(Bucket=BUCKET)["CORSRules"]
    assert rules[0]["AllowedOrigins"] == ["*"] and rules[0]["MaxAgeSeconds"] == 30
    ok = origin_get(gw, "/v/demo.mp4", "https://anyone.test")
    assert ok.headers["Access-Control-Allow-Origin"] == "*"
    s3.delete_bucket_cors(Bucket=BUCKET)


def test_preflight_is_answered_without_a_signature(cors_gateway):
    gw, cos = cors_gateway
    cos.put_bucket_cors(Bucket=BUCKET, CORSConfiguration=RULES)

    def preflight(origin, method, headers=None):
        h = {"Origin": origin, "Access-Control-Request-Method": method}
        if headers:
            h["Access-Control-Request-Headers"] = headers
        return requests.options(gw.url + "/v/demo.mp4", headers=h)

    ok = preflight("https://a.example.com", "GET", "Range, x-cos-meta-x")
    assert ok.status_code == 200
    assert ok.headers["Access-Control-Allow-Methods"] == "GET, HEAD"
    assert ok.headers["Access-Control-Max-Age"] == "600"
    assert ok.headers["Access-Control-Allow-Headers"].lower() == "range, x-cos-meta-x"
    assert preflight("https://a.example.com", "PUT").status_code == 403
    assert preflight("https://a.example.com", "GET", "authorization").status_code == 403
    assert preflight("https://example.net", "GET").status_code == 403
    bad = requests.options(gw.url + "/v/demo.mp4", headers={"Origin": "https://a.example.com"})
    assert bad.status_code == 400


@pytest.mark.parametrize("body, code", [
    (b"<CORSConfiguration></CORSConfiguration>", "MalformedXML"),
    (b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin>"
     b"<AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>", "InvalidArgument"),
    (b"nonsense", "MalformedXML"),
])
def test_bad_cors_documents_are_refused(cors_gateway, body, code):
    gw, _ = cors_gateway
    r = requests.put(gw.url + "/?cors", data=body, auth=support.CosSigned())
    assert r.status_code == 400 and f"<Code>{code}</Code>" in r.text


def test_errors_answered_before_a_handler_carry_the_bucket_cors_headers(cors_gateway):
    """A request refused while it is routed (an unknown ci-process, a
    versionId) still gets the CORS headers of the bucket it addressed, so
    the page can read the error; an origin the rules do not allow gets
    none."""
    gw, cos = cors_gateway
    cos.put_bucket_cors(Bucket=BUCKET, CORSConfiguration=RULES)
    for query in ("ci-process=bogus", "versionId=v1"):
        r = origin_get(gw, f"/v/demo.mp4?{query}", "https://www.example.com")
        assert r.status_code == 400, r.text
        assert r.headers.get("Access-Control-Allow-Origin") == "https://www.example.com"
        assert "x-cos-request-id" in r.headers.get("Access-Control-Expose-Headers", "")
        r = origin_get(gw, f"/v/demo.mp4?{query}", "https://evil.test")
        assert r.status_code == 400
        assert "Access-Control-Allow-Origin" not in r.headers
