"""CI's synchronous media calls (docs/ci-media-api.md, "Synchronous calls"),
sent as the Go/Java/JS SDKs send them (q-signed XML POSTs on the object host):

- `POST /snapshot` (GenerateSnapshot): the frame `?ci-process=snapshot`
  answers, saved as an object; the parameters and their ranges are the
  query's;
- `POST /mediainfo` (GenerateMediaInfo): the document `?ci-process=videoinfo`
  answers.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import pytest
import requests
from PIL import Image

from ci_support import (BUCKET, MAIN_ONLY_ID, MAIN_ONLY_KEY, OTHER, REGION, check_error, frame_at,
                        keys, main_only_credential_toml, mad, parse_error, raw, read, upload)
from conftest import GatewayFactory
import support

CLIP = "h264_bframes.mp4"     # 320x240, 25 fps, 10 s, frame numbers burnt in
HOST = f"{BUCKET}.cos.{REGION}.{support.DOMAIN}"


@pytest.fixture(scope="module")
def gw(workroot, request):
    name = "ci-sync"
    factory = GatewayFactory(workroot / name, request)
    gateway = factory.start("file", name, extra_buckets=[(OTHER, "file://", "public-read-write")],
                            extra=main_only_credential_toml())
    upload(gateway, "in/clip.mp4", CLIP)
    yield gateway
    factory.stop_all()


@pytest.fixture
def s3(gw):
    return support.boto3_client(gw)


def xml(root: str, fields: dict) -> bytes:
    def build(parent, value):
        for name, v in value.items():
            child = ET.SubElement(parent, name)
            if isinstance(v, dict):
                build(child, v)
            else:
                child.text = str(v)
    top = ET.Element(root)
    build(top, fields)
    return ET.tostring(top)


def post(gw, path: str, fields: dict, **kw):
    return raw(gw, "POST", path, data=xml("Request", fields), host=HOST,
               headers={"Content-Type": "application/xml"}, **kw)


def snapshot_request(out: str, **params) -> dict:
    return {"Input": {"Object": "in/clip.mp4"}, **params,
            "Output": {"Region": REGION, "Bucket": BUCKET, "Object": out}}


def test_post_snapshot_saves_the_frame_the_query_would_answer(gw, s3, key_prefix):
    """The saved object is byte for byte the picture of the same parameters
    through `?ci-process=snapshot`, and it is the frame on screen at 3.3 s."""
    out = f"{key_prefix}saved.jpg"
    r = post(gw, "/snapshot", snapshot_request(out, Time="3.3", Width="160", Mode="exactframe"))
    assert r.status_code == 200, r.text
    doc = ET.fromstring(r.content)
    assert doc.findtext("Output/Object") == out
    assert doc.findtext("Output/Bucket") == BUCKET and doc.findtext("Output/Region") == REGION
    saved = read(s3, out)
    direct = raw(gw, "GET", "/in/clip.mp4", params={"ci-process": "snapshot", "time": "3.3",
                                                   "width": "160", "mode": "exactframe"})
    assert direct.status_code == 200
    assert saved == direct.content
    img = Image.open(io.BytesIO(saved))
    assert img.format == "JPEG" and img.size == (160, 120)
    want, neighbour = frame_at(CLIP, 3.3, (160, 120)), frame_at(CLIP, 3.6, (160, 120))
    assert mad(img.convert("RGB"), want) < mad(img.convert("RGB"), neighbour)


def test_post_snapshot_png_into_another_bucket(gw, s3, key_prefix):
    """Format=png writes a PNG; Output may name another bucket."""
    out = f"{key_prefix}saved.png"
    fields = snapshot_request(out, Time="1", Format="png")
    fields["Output"]["Bucket"] = OTHER
    r = post(gw, "/snapshot", fields)
    assert r.status_code == 200, r.text
    img = Image.open(io.BytesIO(read(s3, out, OTHER)))
    assert img.format == "PNG" and img.size == (320, 240)


@pytest.mark.parametrize("fields,status,code,field", [
    ({"Input": {"Object": "in/clip.mp4"}, "Width": "100"}, 400, "InvalidArgument", "time"),
    ({"Time": "-1"}, 400, "InvalidArgument", "time"),
    ({"Time": "1", "Width": "5000"}, 400, "InvalidArgument", "width"),
    ({"Time": "1", "Format": "gif"}, 400, "InvalidArgument", "format"),
    ({"Time": "1", "Mode": "nearest"}, 400, "InvalidArgument", "mode"),
    ({"Time": "1", "Input": {"Object": "in/missing.mp4"}}, 404, "NoSuchKey", "Input.Object"),
    ({"Time": "1", "Output": {"Region": REGION, "Bucket": "nosuch-1250000000",
                              "Object": "x.jpg"}}, 404, "NoSuchBucket", "Output.Bucket"),
    ({"Time": "1", "Output": {"Region": REGION, "Bucket": BUCKET}}, 400, "InvalidArgument",
     "Output.Object"),
])
def test_post_snapshot_refusals_name_the_field_and_write_nothing(gw, s3, key_prefix, fields,
                                                                 status, code, field):
    before = keys(s3)
    request = snapshot_request(f"{key_prefix}never.jpg")
    request.update(fields)
    r = post(gw, "/snapshot", request)
    check_error(parse_error(r.status_code, r.content), status, code, field)
    assert keys(s3) == before


def test_post_snapshot_needs_write_access_to_the_output(gw, s3, key_prefix):
    """A credential that may write only BUCKET asks for a frame saved into
    OTHER: 403 naming Output, nothing written there; into BUCKET it may."""
    fields = snapshot_request(f"{key_prefix}denied.jpg", Time="1")
    fields["Output"]["Bucket"] = OTHER
    limited = support.CosSigned(secret_id=MAIN_ONLY_ID, secret_key=MAIN_ONLY_KEY)
    r = requests.post(f"{gw.url}/snapshot", data=xml("Request", fields), auth=limited,
                      headers={"Host": HOST, "Content-Type": "application/xml"}, timeout=60)
    check_error(parse_error(r.status_code, r.content), 403, "AccessDenied", "Output")
    assert f"{key_prefix}denied.jpg" not in keys(s3, OTHER)
    fields["Output"]["Bucket"] = BUCKET
    r = requests.post(f"{gw.url}/snapshot", data=xml("Request", fields), auth=limited,
                      headers={"Host": HOST, "Content-Type": "application/xml"}, timeout=60)
    assert r.status_code == 200, r.text
    assert f"{key_prefix}denied.jpg" in keys(s3)


def test_post_mediainfo_is_the_videoinfo_document(gw):
    """GenerateMediaInfo answers what `?ci-process=videoinfo` answers."""
    r = post(gw, "/mediainfo", {"Input": {"Object": "in/clip.mp4"}})
    assert r.status_code == 200, r.text
    direct = raw(gw, "GET", "/in/clip.mp4", params={"ci-process": "videoinfo"})
    assert direct.status_code == 200
    assert ET.tostring(ET.fromstring(r.content)) == ET.tostring(ET.fromstring(direct.content))
    doc = ET.fromstring(r.content)
    assert doc.find("MediaInfo") is not None


def test_post_mediainfo_of_a_missing_object(gw):
    r = post(gw, "/mediainfo", {"Input": {"Object": "in/missing.mp4"}})
    check_error(parse_error(r.status_code, r.content), 404, "NoSuchKey", "Input.Object")


def test_other_methods_on_the_synchronous_calls(gw):
    """GET /snapshot and PUT /mediainfo are not these calls: 405, never an
    object read or write."""
    for method, path in (("GET", "/snapshot"), ("PUT", "/mediainfo"), ("DELETE", "/snapshot")):
        r = raw(gw, method, path, host=HOST)
        check_error(parse_error(r.status_code, r.content), 405, "MethodNotAllowed")
