"""Signatures and bucket ACLs as the SDKs meet them: the right credential
works on a private bucket; a wrong key, an unknown id, an anonymous caller or
an expired pre-signed URL get the COS 403s. One gateway (memory backend) with
a private, a public-read and the public-read-write test bucket."""

import time
from urllib.parse import urlsplit, urlunsplit

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from qcloud_cos import CosConfig, CosS3Client
from qcloud_cos.cos_exception import CosServiceError

from support import (
    BUCKET, REGION, SECRET_ID, SECRET_KEY, Gateway, boto_error, cos_body, cos_error, write_config,
)

PRIVATE = "private-1250000000"
PUBLIC_READ = "publicread-1250000000"


@pytest.fixture(scope="module")
def auth_gateway(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("auth")
    config = write_config(workdir / "framegate.toml", workdir / "data", "memory://", extra_buckets=[
        (PRIVATE, "memory://", "private"),
        (PUBLIC_READ, "memory://", "public-read"),
    ])
    gw = Gateway(config, workdir, "auth").start()
    yield gw
    assert gw.stop() == 0, gw.stderr_tail()


def cos_vhost(gw, secret_id=SECRET_ID, secret_key=SECRET_KEY):
    conf = CosConfig(Region=REGION, SecretId=secret_id, SecretKey=secret_key,
                     IP="127.0.0.1", Port=gw.port, Scheme="http", Timeout=30)
    return CosS3Client(conf, retry=0)


def cos_presigner(secret_id=SECRET_ID, secret_key=SECRET_KEY):
    """A plain Region client: its pre-signed URLs name the real virtual host
    (<bucket>.cos.<region>.myqcloud.com), which vhost_request sends to the
    gateway. (A client made with IP= signs URLs that point at the IP.)"""
    conf = CosConfig(Region=REGION, SecretId=secret_id, SecretKey=secret_key, Scheme="http")
    return CosS3Client(conf, retry=0)


def s3_client(gw, secret_id=SECRET_ID, secret_key=SECRET_KEY, **config):
    return boto3.client(
        "s3", endpoint_url=gw.url, region_name="us-east-1",
        aws_access_key_id=secret_id, aws_secret_access_key=secret_key,
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}, **config),
    )


def vhost_request(gw, method, url, **kw):
    """Send a virtual-host URL to the gateway (as a hosts entry would)."""
    parts = urlsplit(url)
    headers = kw.pop("headers", {})
    headers["Host"] = parts.netloc
    url = urlunsplit(parts._replace(netloc=f"127.0.0.1:{gw.port}"))
    return requests.request(method, url, headers=headers, timeout=30, **kw)


def test_right_credential_reads_and_writes_a_private_bucket(auth_gateway, key_prefix):
    cos = cos_vhost(auth_gateway)
    cos.put_object(Bucket=PRIVATE, Key=key_prefix + "k", Body=b"secret body")
    assert cos_body(cos.get_object(Bucket=PRIVATE, Key=key_prefix + "k")) == b"secret body"
    s3 = s3_client(auth_gateway)
    assert s3.get_object(Bucket=PRIVATE, Key=key_prefix + "k")["Body"].read() == b"secret body"
    s3.put_object(Bucket=PRIVATE, Key=key_prefix + "中文 key+1", Body=b"x")
    assert [c["Key"] for c in s3.list_objects_v2(Bucket=PRIVATE, Prefix=key_prefix)["Contents"]] == [
        key_prefix + "k", key_prefix + "中文 key+1",
    ]


def test_anonymous_access_to_a_private_bucket_is_access_denied(auth_gateway, key_prefix):
    s3_client(auth_gateway).put_object(Bucket=PRIVATE, Key=key_prefix + "k", Body=b"x")
    base = f"{auth_gateway.url}/{PRIVATE}/{key_prefix}k"
    for method in ("GET", "HEAD", "PUT", "DELETE"):
        r = requests.request(method, base, data=b"y" if method == "PUT" else None, timeout=30)
        assert r.status_code == 403, (method, r.status_code, r.text)
        if method != "HEAD":
            assert "<Code>AccessDenied</Code>" in r.text
    assert requests.get(f"{auth_gateway.url}/{PRIVATE}/?prefix=", timeout=30).status_code == 403


def test_public_read_bucket_lets_anonymous_read_but_not_write(auth_gateway, key_prefix):
    s3_client(auth_gateway).put_object(Bucket=PUBLIC_READ, Key=key_prefix + "k", Body=b"public")
    url = f"{auth_gateway.url}/{PUBLIC_READ}/{key_prefix}k"
    r = requests.get(url, timeout=30)
    assert r.status_code == 200 and r.content == b"public"
    r = requests.put(url, data=b"vandal", timeout=30)
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text
    assert requests.delete(url, timeout=30).status_code == 403


@pytest.mark.parametrize("bucket", [PRIVATE, BUCKET])
def test_wrong_secret_key_is_signature_does_not_match(auth_gateway, key_prefix, bucket):
    """Also on the public-read-write bucket: a signed request is verified."""
    with pytest.raises(CosServiceError) as err:
        cos_vhost(auth_gateway, secret_key="not-the-key").put_object(
            Bucket=bucket, Key=key_prefix + "k", Body=b"x")
    assert cos_error(err) == (403, "SignatureDoesNotMatch")
    with pytest.raises(ClientError) as err:
        s3_client(auth_gateway, secret_key="not-the-key").get_object(Bucket=bucket, Key=key_prefix + "k")
    assert boto_error(err) == (403, "SignatureDoesNotMatch")


def test_unknown_secret_id_is_invalid_access_key_id(auth_gateway, key_prefix):
    with pytest.raises(CosServiceError) as err:
        cos_vhost(auth_gateway, secret_id="AKIDunknown").get_object(Bucket=PRIVATE, Key=key_prefix + "k")
    assert cos_error(err) == (403, "InvalidAccessKeyId")
    with pytest.raises(ClientError) as err:
        s3_client(auth_gateway, secret_id="AKIDunknown").get_object(Bucket=PRIVATE, Key=key_prefix + "k")
    assert boto_error(err) == (403, "InvalidAccessKeyId")


def test_cos_presigned_url_on_private_bucket(auth_gateway, key_prefix):
    cos = cos_vhost(auth_gateway)
    cos.put_object(Bucket=PRIVATE, Key=key_prefix + "clip.mp4", Body=b"video bytes")
    url = cos_presigner().get_presigned_url(Bucket=PRIVATE, Key=key_prefix + "clip.mp4", Method="GET",
                                            Expired=300)
    r = vhost_request(auth_gateway, "GET", url)
    assert r.status_code == 200 and r.content == b"video bytes"
    sig = url.split("q-signature=")[1].split("&")[0]
    tampered = url.replace(sig, ("0" if sig[0] != "0" else "1") + sig[1:])
    r = vhost_request(auth_gateway, "GET", tampered)
    assert r.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in r.text
    other_key = url.replace("clip.mp4", "other.mp4")
    assert vhost_request(auth_gateway, "GET", other_key).status_code == 403


def test_expired_cos_presigned_url_is_access_denied(auth_gateway, key_prefix):
    cos = cos_vhost(auth_gateway)
    cos.put_object(Bucket=PRIVATE, Key=key_prefix + "k", Body=b"x")
    url = cos_presigner().get_presigned_url(Bucket=PRIVATE, Key=key_prefix + "k", Method="GET", Expired=1)
    time.sleep(2.5)
    r = vhost_request(auth_gateway, "GET", url)
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text, r.text


def test_boto3_sigv4_presigned_url_on_private_bucket(auth_gateway, key_prefix):
    s3 = s3_client(auth_gateway, signature_version="s3v4")
    s3.put_object(Bucket=PRIVATE, Key=key_prefix + "k", Body=b"presigned")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": PRIVATE, "Key": key_prefix + "k"},
                                    ExpiresIn=300)
    r = requests.get(url, timeout=30)
    assert r.status_code == 200 and r.content == b"presigned"
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": PRIVATE, "Key": key_prefix + "up"},
                                        ExpiresIn=300)
    assert requests.put(put_url, data=b"up", timeout=30).status_code == 200


def test_expired_boto3_sigv4_presigned_url_is_access_denied(auth_gateway, key_prefix):
    s3 = s3_client(auth_gateway, signature_version="s3v4")
    s3.put_object(Bucket=PRIVATE, Key=key_prefix + "k", Body=b"presigned")
    short = s3.generate_presigned_url("get_object", Params={"Bucket": PRIVATE, "Key": key_prefix + "k"},
                                      ExpiresIn=1)
    time.sleep(2.5)
    r = requests.get(short, timeout=30)
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text, r.text


def test_boto3_default_presigned_url_on_private_bucket(auth_gateway, key_prefix):
    """botocore's default presign for us-east-1 is the legacy query form
    (AWSAccessKeyId/Signature/Expires): what boto3 users get out of the box."""
    s3 = s3_client(auth_gateway)
    s3.put_object(Bucket=PRIVATE, Key=key_prefix + "k", Body=b"presigned")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": PRIVATE, "Key": key_prefix + "k"},
                                    ExpiresIn=300)
    r = requests.get(url, timeout=30)
    assert r.status_code == 200, r.text
    assert r.content == b"presigned"
