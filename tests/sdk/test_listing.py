"""Bucket listing: COS GET Bucket (v1: prefix, delimiter, marker, max-keys) and
S3 list-type=2 (continuation tokens, common prefixes)."""

import pytest

from support import BUCKET, quoted_md5

TREE = ["a.txt", "b/1.txt", "b/2.txt", "c/d/3.txt", "e.txt", "f/g.txt"]


@pytest.fixture
def tree(s3, key_prefix):
    """Objects under a fresh prefix; returns the full keys, sorted."""
    keys = [key_prefix + name for name in TREE]
    for i, key in enumerate(keys):
        s3.put_object(Bucket=BUCKET, Key=key, Body=f"body {i}".encode())
    return sorted(keys)


def cos_list_all(cos, **kw):
    """Page through COS list_objects; returns (keys, prefixes, pages)."""
    keys, prefixes, pages, marker = [], [], 0, ""
    while True:
        r = cos.list_objects(Bucket=BUCKET, Marker=marker, **kw)
        pages += 1
        keys += [c["Key"] for c in r.get("Contents", [])]
        prefixes += [p["Prefix"] for p in r.get("CommonPrefixes", [])]
        if r.get("IsTruncated") != "true":
            return keys, prefixes, pages
        marker = r.get("NextMarker") or keys[-1]
        assert pages < 50, "listing does not end"


def boto3_list_all(s3, **kw):
    keys, prefixes, pages, token = [], [], 0, None
    while True:
        args = dict(kw)
        if token:
            args["ContinuationToken"] = token
        r = s3.list_objects_v2(Bucket=BUCKET, **args)
        pages += 1
        keys += [c["Key"] for c in r.get("Contents", [])]
        prefixes += [p["Prefix"] for p in r.get("CommonPrefixes", [])]
        assert r["KeyCount"] == len(r.get("Contents", [])) + len(r.get("CommonPrefixes", []))
        if not r["IsTruncated"]:
            assert "NextContinuationToken" not in r
            return keys, prefixes, pages
        token = r["NextContinuationToken"]
        assert pages < 50, "listing does not end"


def test_cos_list_by_prefix_returns_keys_in_order_with_sizes_and_etags(cos, tree, key_prefix):
    r = cos.list_objects(Bucket=BUCKET, Prefix=key_prefix)
    assert [c["Key"] for c in r["Contents"]] == tree
    assert r["IsTruncated"] == "false"
    assert r.get("Name") == BUCKET
    by_key = {c["Key"]: c for c in r["Contents"]}
    i = [key_prefix + n for n in TREE].index(tree[0])
    first = by_key[tree[0]]
    assert int(first["Size"]) == len(f"body {i}".encode())
    assert first["ETag"] == quoted_md5(f"body {i}".encode())
    assert first.get("LastModified")


def test_cos_list_with_delimiter_groups_common_prefixes(cos, tree, key_prefix):
    r = cos.list_objects(Bucket=BUCKET, Prefix=key_prefix, Delimiter="/")
    assert [c["Key"] for c in r.get("Contents", [])] == [key_prefix + "a.txt", key_prefix + "e.txt"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == [
        key_prefix + "b/", key_prefix + "c/", key_prefix + "f/",
    ]


def test_cos_list_pages_with_marker_and_max_keys(cos, tree, key_prefix):
    keys, prefixes, pages = cos_list_all(cos, Prefix=key_prefix, MaxKeys=2)
    assert keys == tree
    assert prefixes == []
    assert pages == 3


def test_cos_list_pages_with_delimiter(cos, tree, key_prefix):
    keys, prefixes, pages = cos_list_all(cos, Prefix=key_prefix, Delimiter="/", MaxKeys=1)
    assert keys == [key_prefix + "a.txt", key_prefix + "e.txt"]
    assert prefixes == [key_prefix + "b/", key_prefix + "c/", key_prefix + "f/"]
    assert pages == 5


def test_cos_list_marker_starts_after_the_marker(cos, tree, key_prefix):
    r = cos.list_objects(Bucket=BUCKET, Prefix=key_prefix, Marker=key_prefix + "b/2.txt")
    assert [c["Key"] for c in r["Contents"]] == [key_prefix + n for n in ("c/d/3.txt", "e.txt", "f/g.txt")]


def test_cos_list_of_unused_prefix_is_empty(cos, key_prefix):
    r = cos.list_objects(Bucket=BUCKET, Prefix=key_prefix + "nothing/")
    assert r.get("Contents", []) == []
    assert r["IsTruncated"] == "false"


def test_boto3_list_v2_by_prefix(s3, tree, key_prefix):
    r = s3.list_objects_v2(Bucket=BUCKET, Prefix=key_prefix)
    assert [c["Key"] for c in r["Contents"]] == tree
    assert r["KeyCount"] == len(tree)
    assert r["IsTruncated"] is False
    assert all(c["ETag"].startswith('"') and c["Size"] > 0 for c in r["Contents"])


def test_boto3_list_v2_pages_with_continuation_token(s3, tree, key_prefix):
    keys, prefixes, pages = boto3_list_all(s3, Prefix=key_prefix, MaxKeys=2)
    assert keys == tree
    assert pages == 3


def test_boto3_list_v2_common_prefixes_and_paging(s3, tree, key_prefix):
    keys, prefixes, pages = boto3_list_all(s3, Prefix=key_prefix, Delimiter="/", MaxKeys=2)
    assert keys == [key_prefix + "a.txt", key_prefix + "e.txt"]
    assert prefixes == [key_prefix + "b/", key_prefix + "c/", key_prefix + "f/"]
    assert pages == 3


def test_boto3_list_v2_nested_delimiter(s3, tree, key_prefix):
    r = s3.list_objects_v2(Bucket=BUCKET, Prefix=key_prefix + "c/", Delimiter="/")
    assert r.get("Contents", []) == []
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == [key_prefix + "c/d/"]


def test_boto3_list_v2_start_after(s3, tree, key_prefix):
    r = s3.list_objects_v2(Bucket=BUCKET, Prefix=key_prefix, StartAfter=key_prefix + "b/1.txt")
    assert [c["Key"] for c in r["Contents"]] == [
        key_prefix + n for n in ("b/2.txt", "c/d/3.txt", "e.txt", "f/g.txt")
    ]


def test_boto3_paginator_walks_everything(s3, tree, key_prefix):
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, Prefix=key_prefix, PaginationConfig={"PageSize": 4}
    )
    keys = [c["Key"] for page in pages for c in page.get("Contents", [])]
    assert keys == tree


def test_boto3_list_v1_with_marker(s3, tree, key_prefix):
    r = s3.list_objects(Bucket=BUCKET, Prefix=key_prefix, MaxKeys=3)
    assert [c["Key"] for c in r["Contents"]] == tree[:3]
    assert r["IsTruncated"] is True
    r = s3.list_objects(Bucket=BUCKET, Prefix=key_prefix, Marker=tree[2])
    assert [c["Key"] for c in r["Contents"]] == tree[3:]
    assert r["IsTruncated"] is False


def test_deleted_objects_leave_the_listing(s3, tree, key_prefix):
    s3.delete_object(Bucket=BUCKET, Key=key_prefix + "b/1.txt")
    keys, _, _ = boto3_list_all(s3, Prefix=key_prefix)
    assert keys == [k for k in tree if k != key_prefix + "b/1.txt"]


def test_folder_marker_keys_are_refused_with_invalid_argument(s3, cos, key_prefix):
    """Documented limit (README): keys ending in '/' are refused. (COS and S3
    accept them as "folder" markers; consoles create them.)"""
    from botocore.exceptions import ClientError
    from qcloud_cos.cos_exception import CosServiceError

    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=BUCKET, Key=key_prefix + "folder/", Body=b"")
    assert err.value.response["Error"]["Code"] == "InvalidArgument"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(CosServiceError) as err:
        cos.put_object(Bucket=BUCKET, Key=key_prefix + "folder/", Body=b"")
    assert (err.value.get_status_code(), err.value.get_error_code()) == (400, "InvalidArgument")


def test_key_can_be_both_an_object_and_a_prefix(s3, cos, key_prefix):
    """"clip" and "clip/frame-1.jpg" coexist (a file and a directory of the same
    name on a filesystem), in either order of creation."""
    s3.put_object(Bucket=BUCKET, Key=key_prefix + "clip", Body=b"plain")
    s3.put_object(Bucket=BUCKET, Key=key_prefix + "clip/frame-1.jpg", Body=b"in")
    s3.put_object(Bucket=BUCKET, Key=key_prefix + "still/frame-1.jpg", Body=b"in")
    s3.put_object(Bucket=BUCKET, Key=key_prefix + "still", Body=b"plain too")
    keys, prefixes, _ = boto3_list_all(s3, Prefix=key_prefix)
    assert keys == [key_prefix + k for k in ("clip", "clip/frame-1.jpg", "still", "still/frame-1.jpg")]
    assert s3.get_object(Bucket=BUCKET, Key=key_prefix + "clip")["Body"].read() == b"plain"
    assert s3.get_object(Bucket=BUCKET, Key=key_prefix + "still")["Body"].read() == b"plain too"
    r = cos.list_objects(Bucket=BUCKET, Prefix=key_prefix, Delimiter="/")
    assert [c["Key"] for c in r["Contents"]] == [key_prefix + "clip", key_prefix + "still"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == [key_prefix + "clip/", key_prefix + "still/"]
    s3.delete_object(Bucket=BUCKET, Key=key_prefix + "clip")
    assert s3.get_object(Bucket=BUCKET, Key=key_prefix + "clip/frame-1.jpg")["Body"].read() == b"in"
