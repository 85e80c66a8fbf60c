"""Snapshots and media info over HTTP: `?ci-process=snapshot` through the COS
SDK's `get_snapshot`, pre-signed URLs and raw HTTP, checked by picture
content against frames ffmpeg extracts by index from the same fixture.

The fixtures (fixtures/make.sh) burn the frame number into the top centre of
each frame, so the frame a snapshot shows can be told from its neighbours.
"""

import io
import json
import re
import subprocess
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import requests
from PIL import Image

import support
from support import BUCKET

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
FPS = 25


def upload(cos, key: str, name: str) -> None:
    cos.put_object(Bucket=BUCKET, Key=key, Body=(FIXTURES / name).read_bytes())


def reference_frame(name: str, index: int, size=None, autorotate=True) -> Image.Image:
    """Frame `index` (decode order by presentation) of a fixture, as ffmpeg sees it."""
    vf = f"select=eq(n\\,{index})"
    if size:
        vf += f",scale={size[0]}:{size[1]}"
    args = ["ffmpeg", "-nostdin", "-loglevel", "error"]
    if not autorotate:
        args.append("-noautorotate")
    args += ["-i", str(FIXTURES / name), "-vf", vf, "-frames:v", "1", "-f", "image2pipe",
             "-vcodec", "png", "-"]
    out = subprocess.run(args, check=True, capture_output=True).stdout
    return Image.open(io.BytesIO(out)).convert("RGB")


def number_region(img: Image.Image) -> Image.Image:
    """The top-centre band where the frame number is drawn."""
    w, h = img.size
    return img.crop((w // 4, 0, 3 * w // 4, h // 4)).convert("L")


def mad(a: Image.Image, b: Image.Image) -> float:
    if a.size != b.size:
        b = b.resize(a.size)
    pa, pb = a.tobytes(), b.tobytes()
    return sum(abs(x - y) for x, y in zip(pa, pb)) / len(pa)


def closest_frame(img: Image.Image, name: str, candidates) -> int:
    """The candidate frame index whose number band best matches `img`."""
    region = number_region(img)
    scores = {i: mad(region, number_region(reference_frame(name, i))) for i in candidates}
    return min(scores, key=scores.get)


def decode(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def snapshot_bytes(cos, key: str, **kw) -> bytes:
    response = cos.get_snapshot(Bucket=BUCKET, Key=key, **kw)
    return response["Body"].get_raw_stream().read()


@pytest.fixture(scope="module")
def videos(gateway, request):
    cos = support.cos_client(gateway, "domain")
    names = ["h264_bframes.mp4", "h264_moov_end.mp4", "rotate90.mp4", "anamorphic.mp4",
             "not_video.txt", "truncated.mp4", "audio_only.m4a", "demo.mp4", "vp9.webm",
             "hevc.mp4"]
    for name in names:
        upload(cos, f"snap/{name}", name)
    return cos


@pytest.mark.backends("file", "s3")
@pytest.mark.parametrize("mode", ["exactframe", "keyframe"])
def test_snapshot_shows_the_frame_the_mode_selects(videos, mode):
    # h264_bframes.mp4: 25 fps from 0, one keyframe at frame 0 (GOP 250).
    data = snapshot_bytes(videos, "snap/h264_bframes.mp4", Time="3.3", Mode=mode)
    img = decode(data)
    expected = 82 if mode == "exactframe" else 0
    assert closest_frame(img, "h264_bframes.mp4", [0, 81, 82, 83]) == expected


@pytest.mark.backends("file", "s3")
def test_moov_at_the_end_is_read_by_ranges(videos):
    img = decode(snapshot_bytes(videos, "snap/h264_moov_end.mp4", Time="6.02"))
    assert closest_frame(img, "h264_moov_end.mp4", [149, 150, 151]) == 150


@pytest.mark.backends("file")
@pytest.mark.parametrize("name", ["vp9.webm", "hevc.mp4"])
def test_other_codecs_give_the_exact_frame(videos, name):
    img = decode(snapshot_bytes(videos, f"snap/{name}", Time="1.25"))
    assert closest_frame(img, name, [30, 31, 32]) == 31


@pytest.mark.backends("file")
@pytest.mark.parametrize("width,height,expected", [
    (0, 0, (320, 240)),
    (160, 0, (160, 120)),
    (0, 60, (80, 60)),
    (100, 100, (100, 100)),
])
def test_output_sizes_follow_the_width_height_rules(videos, http, width, height, expected):
    # demo.mp4 is 640x360; use the anamorphic fixture for SAR below.
    r = http.get("snap/h264_bframes.mp4", params={
        "ci-process": "snapshot", "time": "1", "width": str(width), "height": str(height)})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "image/jpeg"
    native = decode(r.content).size
    if (width, height) == (0, 0):
        ref = reference_frame("h264_bframes.mp4", 25)
        assert native == ref.size
    else:
        src = reference_frame("h264_bframes.mp4", 25).size
        if width and not height:
            assert native == (width, round(width * src[1] / src[0]))
        elif height and not width:
            assert native == (round(height * src[0] / src[1]), height)
        else:
            assert native == (width, height)


@pytest.mark.backends("file")
def test_rotation_metadata_is_applied_unless_off(videos):
    # The picture must be oriented as ffmpeg (and so players) display it with
    # autorotation, and as coded with rotate=off; the wrong orientation would
    # not even have the same size, and a mirrored one differs by far more.
    auto = decode(snapshot_bytes(videos, "snap/rotate90.mp4", Time="1"))
    off = decode(snapshot_bytes(videos, "snap/rotate90.mp4", Time="1", Rotate="off"))
    assert off.size == (320, 180)
    assert auto.size == (180, 320)
    displayed = reference_frame("rotate90.mp4", 25)
    coded = reference_frame("rotate90.mp4", 25, autorotate=False)
    assert mad(auto, displayed) < 6.0
    assert mad(off, coded) < 6.0
    assert mad(auto, displayed.transpose(Image.Transpose.ROTATE_180)) > 20.0

@pytest.mark.backends("file")
def test_non_square_pixels_are_honoured(videos):
    img = decode(snapshot_bytes(videos, "snap/anamorphic.mp4", Time="1"))
    assert abs(img.size[0] - 427) <= 1 and img.size[1] == 240


@pytest.mark.backends("file")
def test_png_is_lossless_and_typed(videos, http):
    r = http.get("snap/h264_bframes.mp4", params={
        "ci-process": "snapshot", "time": "2", "format": "png", "mode": "exactframe"})
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"
    assert r.content[:8] == b"\x89PNG\r\n\x1a\n"
    img = decode(r.content)
    ref = reference_frame("h264_bframes.mp4", 50)
    assert mad(img, ref) < 3.0


@pytest.mark.backends("file")
def test_etag_304_head_and_cache_headers(videos, http):
    params = {"ci-process": "snapshot", "time": "1.5", "width": "160"}
    first = http.get("snap/h264_bframes.mp4", params=params)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert "max-age" in first.headers["Cache-Control"]
    again = http.get("snap/h264_bframes.mp4", params=params, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = http.get("snap/h264_bframes.mp4", params={**params, "width": "161"})
    assert other.headers["ETag"] != etag
    head = http.head("snap/h264_bframes.mp4", params=params)
    assert head.status_code == 200
    assert int(head.headers["Content-Length"]) == len(first.content)


@pytest.mark.backends("file", "memory")
def test_repeated_snapshots_come_from_the_cache_until_the_object_changes(gateway, http):
    cos = support.cos_client(gateway, "domain")
    upload(cos, "snap/cached.mp4", "h264_bframes.mp4")
    params = {"ci-process": "snapshot", "time": "3.3", "width": "200"}
    first = http.get("snap/cached.mp4", params=params)
    second = http.get("snap/cached.mp4", params=params)
    assert (first.status_code, second.status_code) == (200, 200)
    assert (first.headers["x-framegate-cache"], second.headers["x-framegate-cache"]) == ("miss", "hit")
    assert second.content == first.content
    # Another video under the same key: a new ETag, so a new decode.
    upload(cos, "snap/cached.mp4", "vp9.webm")
    third = http.get("snap/cached.mp4", params=params)
    assert third.headers["x-framegate-cache"] == "miss"
    assert third.headers["ETag"] != first.headers["ETag"]
    assert closest_frame(decode(third.content), "vp9.webm", [81, 82, 83]) == 82


@pytest.mark.backends("file")
@pytest.mark.parametrize("params,name", [
    ({}, "time"),
    ({"time": "-1"}, "time"),
    ({"time": "abc"}, "time"),
    ({"time": "nan"}, "time"),
    ({"time": "1", "width": "-3"}, "width"),
    ({"time": "1", "width": "5000"}, "width"),
    ({"time": "1", "height": "x"}, "height"),
    ({"time": "1", "format": "gif"}, "format"),
    ({"time": "1", "rotate": "90"}, "rotate"),
    ({"time": "1", "mode": "fast"}, "mode"),
])
def test_bad_parameters_get_invalid_argument_naming_them(videos, http, params, name):
    r = http.get("snap/h264_bframes.mp4", params={"ci-process": "snapshot", **params})
    assert r.status_code == 400, r.text
    root = ET.fromstring(r.content)
    assert root.findtext("Code") == "InvalidArgument"
    assert name in root.findtext("Message")


@pytest.mark.backends("file")
@pytest.mark.parametrize("key,status,code", [
    ("snap/missing.mp4", 404, "NoSuchKey"),
    ("snap/not_video.txt", 400, "InvalidMediaFile"),
    ("snap/audio_only.m4a", 400, "NoVideoStream"),
    ("snap/truncated.mp4", 400, "CorruptMedia"),
])
def test_objects_that_are_not_videos_get_their_own_errors(videos, http, gateway, key, status, code):
    r = http.get(key, params={"ci-process": "snapshot", "time": "1"})
    assert (r.status_code, ET.fromstring(r.content).findtext("Code")) == (status, code), r.text
    assert gateway.alive()


@pytest.mark.backends("file")
def test_time_past_the_end_gives_the_last_frame(videos):
    img = decode(snapshot_bytes(videos, "snap/h264_bframes.mp4", Time="1000"))
    assert closest_frame(img, "h264_bframes.mp4", [0, 248, 249]) == 249


@pytest.mark.backends("file")
def test_presigned_snapshot_url_works_with_curl(videos, gateway, tmp_path):
    url = videos.get_presigned_url(
        Bucket=BUCKET, Key="snap/demo.mp4", Method="GET", Expired=300,
        Params={"ci-process": "snapshot", "time": "2", "width": "320"})
    out = tmp_path / "frame.jpg"
    code = subprocess.run(["curl", "-s", "-o", str(out), "-w", "%{http_code}", url],
                          capture_output=True, text=True, check=True).stdout
    assert code == "200"
    assert decode(out.read_bytes()).size == (320, 180)


@pytest.mark.backends("file")
def ffprobe_streams(name: str) -> tuple[list[dict], dict]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json",
                          str(FIXTURES / name)], capture_output=True, text=True, check=True)
    doc = json.loads(out.stdout)
    return doc["streams"], doc["format"]


def test_videoinfo_is_the_cos_document(videos, http):
    """?ci-process=videoinfo answers COS's GetMediaInfo document:
    MediaInfo/Stream/{Video, Audio} in file order and Format, with the values
    ffprobe reads (codec names, profile, pixel and sample formats, layout,
    sizes, durations; bit rates in kbit/s)."""
    r = http.get("snap/demo.mp4", params={"ci-process": "videoinfo"})
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/xml"
    info = ET.fromstring(r.content).find("MediaInfo")
    streams, fmt = ffprobe_streams("demo.mp4")
    got = list(info.find("Stream"))
    assert [e.tag for e in got] == [{"video": "Video", "audio": "Audio"}[s["codec_type"]]
                                    for s in streams]
    for element, want in zip(got, streams):
        assert int(element.findtext("Index")) == want["index"]
        assert element.findtext("CodecName") == want["codec_name"]
        assert element.findtext("CodecLongName") == want["codec_long_name"]
        assert element.findtext("CodecTagString") == want["codec_tag_string"]
        assert element.findtext("Profile") == want.get("profile", "")
        assert element.findtext("Timebase") == want["time_base"]
        assert abs(float(element.findtext("Duration")) - float(want["duration"])) < 0.01
        assert abs(float(element.findtext("Bitrate")) - int(want["bit_rate"]) / 1000) < 1
        if element.tag == "Video":
            assert (element.findtext("Width"), element.findtext("Height")) == \
                (str(want["width"]), str(want["height"]))
            assert element.findtext("PixFormat") == want["pix_fmt"]
            assert element.findtext("Dar") == want["display_aspect_ratio"]
            assert element.findtext("Sar") == want["sample_aspect_ratio"]
            assert int(element.findtext("Level")) == want["level"]
            assert int(element.findtext("NumFrames")) == int(want["nb_frames"])
            assert abs(float(element.findtext("Fps")) - eval(want["r_frame_rate"])) < 0.01
            assert element.findtext("Rotation") == "0"
        else:
            assert element.findtext("SampleFmt") == want["sample_fmt"]
            assert element.findtext("SampleRate") == want["sample_rate"]
            assert int(element.findtext("Channel")) == want["channels"]
            assert element.findtext("ChannelLayout") == want["channel_layout"]
    f = info.find("Format")
    assert f.findtext("FormatName") == fmt["format_name"]
    assert f.findtext("FormatLongName") == fmt["format_long_name"]
    assert int(f.findtext("NumStream")) == fmt["nb_streams"]
    assert int(f.findtext("Size")) == int(fmt["size"])
    assert abs(float(f.findtext("Duration")) - float(fmt["duration"])) < 0.01
    j = http.get("snap/demo.mp4", params={"ci-process": "videoinfo", "format": "json"}).json()
    assert j["MediaInfo"]["Stream"]["Video"]["Width"] == "640"
    # HEAD answers the headers of the same document, without it.
    head = http.head("snap/demo.mp4", params={"ci-process": "videoinfo"})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Type"] == "application/xml"
    assert int(head.headers["Content-Length"]) == len(r.content)


def test_videoinfo_rotation_is_the_turn_players_apply(videos, http):
    """Rotation is the clockwise turn players apply (ffprobe's rotation is
    counter-clockwise: -90 there is 90 here)."""
    for name in ("rotate90.mp4",):
        r = http.get(f"snap/{name}", params={"ci-process": "videoinfo"})
        video = ET.fromstring(r.content).find("MediaInfo/Stream/Video")
        out = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                              "stream_side_data=rotation", "-of", "csv=p=0",
                              str(FIXTURES / name)], capture_output=True, text=True)
        ccw = int(out.stdout.split()[0])
        assert int(video.findtext("Rotation")) == (-ccw) % 360 == 90


def test_cos_sdk_get_media_info_reads_the_document(videos, gateway):
    """cos-python-sdk-v5's get_media_info parses it where COS code looks."""
    cos = support.cos_client(gateway, "domain")
    # The SDK makes MediaInfo a list (format_dict), one document here.
    [info] = cos.get_media_info(Bucket=BUCKET, Key="snap/demo.mp4")["MediaInfo"]
    assert info["Stream"]["Video"]["CodecName"] == "h264"
    assert info["Stream"]["Audio"]["CodecName"] == "aac"
    assert info["Format"]["NumStream"] == "2"


def decodes_logged(gw) -> list[dict]:
    """The snapshot decodes the gateway logged: store bytes, requests, reopened."""
    pattern = r"store_bytes=(\d+) store_requests=(\d+) reopened=(true|false)"
    return [{"bytes": int(b), "requests": int(r), "reopened": o == "true"}
            for b, r, o in re.findall(pattern, gw.stderr_log.read_text())]


@pytest.mark.backends("file", "s3")
def test_snapshots_of_one_object_version_reuse_its_opened_video(gateway_factory, backend):
    # The first snapshot opens the video (its moov is at the end); another
    # time and mode of the same version reuse the opened container; a new
    # version of the object is opened afresh.
    gw = gateway_factory.start(backend, "reuse")
    cos = support.cos_client(gw, "domain")
    upload(cos, "v.mp4", "h264_moov_end.mp4")
    url = f"{gw.url}/{BUCKET}/v.mp4"

    def snap(time, mode):
        r = requests.get(url, params={"ci-process": "snapshot", "time": str(time), "mode": mode},
                         auth=support.CosSigned(), timeout=60)
        assert r.status_code == 200, r.text
        return decode(r.content)

    assert closest_frame(snap(1, "keyframe"), "h264_moov_end.mp4", [0, 1, 25]) == 0
    assert closest_frame(snap(7.3, "exactframe"), "h264_moov_end.mp4", [181, 182, 183]) == 182
    assert closest_frame(snap(0.5, "exactframe"), "h264_moov_end.mp4", [11, 12, 13]) == 12
    assert [d["reopened"] for d in decodes_logged(gw)] == [True, False, False]
    upload(cos, "v.mp4", "vp9.webm")
    assert closest_frame(snap(3.3, "exactframe"), "vp9.webm", [81, 82, 83]) == 82
    assert [d["reopened"] for d in decodes_logged(gw)] == [True, False, False, True]


@pytest.mark.backends("file", "s3")
def test_scrubbing_continues_a_parked_decoder_with_the_same_pictures(gateway_factory, backend):
    # Increasing exact times inside one GOP (h264_bframes.mp4: one keyframe,
    # B-pyramid): after the first, each request continues the decoder the
    # last one parked. Each time requested from its own copy of the object
    # (opened and decoded afresh) gives the same picture, byte for byte.
    gw = gateway_factory.start(backend, "scrub")
    cos = support.cos_client(gw, "domain")
    times = [2.0, 2.3, 2.31, 2.9, 3.3, 4.1, 5.5, 6.2, 7.7, 8.0, 9.5]
    upload(cos, "scrubbed.mp4", "h264_bframes.mp4")
    for i in range(len(times)):
        upload(cos, f"fresh{i}.mp4", "h264_bframes.mp4")

    def snap(key, time):
        r = requests.get(f"{gw.url}/{BUCKET}/{key}",
                         params={"ci-process": "snapshot", "time": str(time), "format": "png"},
                         auth=support.CosSigned(), timeout=60)
        assert r.status_code == 200, r.text
        return r.headers["x-framegate-frame-time"], r.content

    scrubbed = [snap("scrubbed.mp4", t) for t in times]
    reuse = re.findall(r"reuse=(\w+)", gw.stderr_log.read_text())
    assert reuse == ["opened"] + ["continued"] * (len(times) - 1), reuse
    fresh = [snap(f"fresh{i}.mp4", t) for i, t in enumerate(times)]
    for t, (s_time, s_png), (f_time, f_png) in zip(times, scrubbed, fresh):
        assert s_time == f_time == f"{int(t * FPS) / FPS:.6f}", t
        assert s_png == f_png, f"the picture at {t} differs from a fresh decode"


@pytest.mark.backends("file")
def test_identical_concurrent_snapshots_share_one_decode(gateway_factory):
    gw = gateway_factory.start("file", "coalesce")
    cos = support.cos_client(gw, "domain")
    upload(cos, "v.mp4", "h264_bframes.mp4")
    url = f"{gw.url}/{BUCKET}/v.mp4"
    # An exact frame deep in the GOP, lossless: slow enough that the others
    # arrive while the first decodes.
    params = {"ci-process": "snapshot", "time": "9.5", "format": "png"}
    start = threading.Barrier(8)
    results = []

    def one():
        start.wait()
        r = requests.get(url, params=params, auth=support.CosSigned(), timeout=60)
        results.append((r.status_code, r.headers.get("x-framegate-cache"), r.content))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert [r[0] for r in results] == [200] * 8
    sources = sorted(r[1] for r in results)
    assert sources.count("miss") == 1, sources
    assert set(sources) <= {"miss", "shared", "hit"}, sources
    assert len({r[2] for r in results}) == 1, "every request got the same picture"
    assert len(decodes_logged(gw)) == 1, "one decode for all"
    assert closest_frame(decode(results[0][2]), "h264_bframes.mp4", [236, 237, 238]) == 237


@pytest.mark.backends("file")
def test_overload_answers_slow_down_quickly_and_recovers(gateway_factory, tmp_path):
    # One worker, no queue: of many simultaneous snapshots some must be refused
    # with 503 SlowDown, none may hang, and the gateway must stay up.
    gw = gateway_factory.start("file", "overload")
    text = gw.config.read_text() + "\n[media]\nworkers = 1\nqueue = 0\n"
    gw.stop()
    gw.config.write_text(text)
    gw.start()
    cos = support.cos_client(gw, "domain")
    upload(cos, "v.mp4", "h264_bframes.mp4")
    url = f"{gw.url}/{BUCKET}/v.mp4"
    results = []

    def one(i):
        r = requests.get(url, params={"ci-process": "snapshot", "time": str(9 + i / 100),
                                      "format": "png"}, timeout=60, auth=support.CosSigned())
        results.append((r.status_code, r.headers.get("Retry-After"),
                        ET.fromstring(r.content).findtext("Code") if r.status_code != 200 else None))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    codes = [r[0] for r in results]
    assert len(results) == 12
    assert 200 in codes
    assert 503 in codes, codes
    assert all(c == "SlowDown" for s, _, c in results if s == 503)
    assert requests.get(url, params={"ci-process": "snapshot", "time": "1"},
                        auth=support.CosSigned()).status_code == 200
    assert gw.alive()
