"""Pictures beyond COS's JPEG and PNG: WebP and AVIF (synchronous snapshots,
VOD templates, CI outputs by extension), `fg-quality`, and the `fg-fit`
modes (pad with a colour, blurred bars, crop) — each checked by content
against the frame ffmpeg decodes."""

from __future__ import annotations

import io
import subprocess

import pytest
from PIL import Image
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

import ci_support
import support
from ci_support import assert_colour, colour_of, frame_at, mad, same_picture

from jobs_support import call, error_of, fetch, image, process, results, vod, wait

DEMO = "demo.mp4"          # 640x360, 25 fps, frame number drawn in
KEY = "pictures/demo.mp4"


@pytest.fixture(scope="module")
def demo(gateway):
    ci_support.upload(gateway, KEY, DEMO)
    return gateway


def snapshot(http, status=200, **params):
    r = http.get(KEY, params={"ci-process": "snapshot", **params})
    assert r.status_code == status, r.text
    return r


def decode(data: bytes) -> Image.Image:
    """Any picture, through ffmpeg (which reads AVIF as PIL here does not)."""
    png = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", "-",
                          "-frames:v", "1", "-f", "image2pipe", "-vcodec", "png", "-"],
                         input=data, check=True, capture_output=True).stdout
    return Image.open(io.BytesIO(png)).convert("RGB")


@pytest.mark.backends("file")
@pytest.mark.parametrize("fmt, content_type, magic", [
    ("webp", "image/webp", lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP"),
    ("avif", "image/avif", lambda b: b[4:12] == b"ftypavif"),
])
def test_webp_and_avif_snapshots_show_the_frame(demo, http, fmt, content_type, magic):
    r = snapshot(http, time="2.4", width="320", format=fmt)
    assert r.headers["Content-Type"] == content_type and magic(r.content)
    img = decode(r.content)
    assert img.size == (320, 180)
    same_picture(img, DEMO, 2.4, what=fmt)
    # The format is part of the picture's identity.
    jpeg = snapshot(http, time="2.4", width="320")
    assert jpeg.headers["ETag"] != r.headers["ETag"]


@pytest.mark.backends("file")
@pytest.mark.parametrize("fmt", ["jpg", "webp", "avif"])
def test_quality_trades_bytes_for_fidelity(demo, http, fmt):
    low = snapshot(http, time="3", format=fmt, **{"fg-quality": "10"})
    high = snapshot(http, time="3", format=fmt, **{"fg-quality": "95"})
    assert len(low.content) < len(high.content)
    want = frame_at(DEMO, 3.0)
    assert mad(decode(high.content), want) < mad(decode(low.content), want)
    assert low.headers["ETag"] != high.headers["ETag"]


@pytest.mark.backends("file")
@pytest.mark.parametrize("params, name", [
    ({"format": "gif"}, "format"),
    ({"fg-quality": "0"}, "fg-quality"),
    ({"fg-quality": "high"}, "fg-quality"),
    ({"fg-fit": "cover"}, "fg-fit"),
    ({"fg-fit": "pad", "fg-pad-color": "red"}, "fg-pad-color"),
    ({"fg-pad-color": "ff0000"}, "fg-pad-color"),
])
def test_bad_picture_parameters_are_named(demo, http, params, name):
    r = snapshot(http, 400, time="1", **params)
    assert "<Code>InvalidArgument</Code>" in r.text and f"Parameter {name}" in r.text


# The demo video is 16:9; a 300x300 picture of it has a 300x169 band.
BAND = (0, 66, 300, 234)


@pytest.mark.backends("file")
def test_pad_keeps_the_aspect_ratio_with_bars_of_the_colour(demo, http):
    img = decode(snapshot(http, time="1", width="300", height="300", format="png",
                          **{"fg-fit": "pad", "fg-pad-color": "ff8000"}).content)
    assert img.size == (300, 300)
    assert_colour(img, (0, 0, 300, 60), (255, 128, 0), "top bar")
    assert_colour(img, (0, 240, 300, 300), (255, 128, 0), "bottom bar")
    band = img.crop(BAND)
    assert mad(band, frame_at(DEMO, 1.0, band.size)) < 6


@pytest.mark.backends("file")
def test_blur_fills_the_bars_with_the_picture_blurred(demo, http):
    img = decode(snapshot(http, time="1", width="300", height="300", format="png",
                          **{"fg-fit": "blur"}).content)
    band = img.crop(BAND)
    assert mad(band, frame_at(DEMO, 1.0, band.size)) < 6
    _, spread = colour_of(img, (0, 0, 300, 60))
    assert spread > 3, "the bars are not flat: they show the picture"
    stretched = frame_at(DEMO, 1.0, (300, 300)).crop((0, 0, 300, 60))
    assert mad(img.crop((0, 0, 300, 60)), stretched) < 40


@pytest.mark.backends("file")
def test_crop_fills_the_size_and_cuts_the_sides(demo, http):
    img = decode(snapshot(http, time="1", width="300", height="300", format="png",
                          **{"fg-fit": "crop"}).content)
    covering = frame_at(DEMO, 1.0, (533, 300))
    want = covering.crop((116, 0, 416, 300))
    assert mad(img, want) < 6
    # Not the stretched picture.
    assert mad(img, frame_at(DEMO, 1.0, (300, 300))) > mad(img, want) + 5


@pytest.mark.backends("file")
def test_stretch_is_the_default_as_in_cos(demo, http):
    img = decode(snapshot(http, time="1", width="300", height="300", format="png").content)
    assert mad(img, frame_at(DEMO, 1.0, (300, 300))) < 6


@pytest.mark.backends("file")
def test_a_fit_with_one_side_keeps_the_aspect_ratio(demo, http):
    img = decode(snapshot(http, time="1", width="320", format="png", **{"fg-fit": "crop"}).content)
    assert img.size == (320, 180)


@pytest.mark.backends("file")
def test_vod_templates_make_webp_pictures_and_sprites(demo):
    client = vod(demo)
    shots = call(client, "CreateSnapshotByTimeOffsetTemplate", {
        "Format": "webp", "Width": 320, "Height": 0}).Definition
    sprites = call(client, "CreateImageSpriteTemplate", {
        "Format": "webp", "SampleType": "Time", "SampleInterval": 1, "RowCount": 2,
        "ColumnCount": 2, "Width": 160, "Height": 90}).Definition
    [shown] = call(client, "DescribeSnapshotByTimeOffsetTemplates",
                   {"Definitions": [shots]}).SnapshotByTimeOffsetTemplateSet
    assert shown.Format == "webp"
    task_id = process(client, f"/{KEY}", {
        "SnapshotByTimeOffsetTaskSet": [{"Definition": shots, "ExtTimeOffsetSet": ["1.2s"]}],
        "ImageSpriteTaskSet": [{"Definition": sprites}]})
    d = wait(client, task_id)
    assert d.Status == "FINISH"
    [(_, pictures), (_, sheet)] = results(d)
    [pic] = pictures.Output.PicInfoSet
    assert pic.Url.split("?")[0].endswith(".webp")
    same_picture(image(pic.Url), DEMO, 1.2, what="webp template picture")
    first = image(sheet.Output.ImageUrlSet[0])
    assert first.size == (320, 180)
    assert sheet.Output.ImageUrlSet[0].split("?")[0].endswith(".webp")
    same_picture(first.crop((0, 0, 160, 90)), DEMO, 0.0, what="first sprite cell")


@pytest.mark.backends("file")
@pytest.mark.parametrize("extension", ["webp", "avif"])
def test_ci_outputs_take_the_format_of_their_extension(demo, extension):
    cos = ci_support.client(demo)
    s3 = support.boto3_client(demo)
    out = f"pictures/ci-{extension}/shot-${{Number}}.{extension}"
    detail = ci_support.run(cos, ci_support.snapshot_request(
        KEY, out, Mode="Interval", Start="1", TimeInterval="1", Count="2",
        Width="320", Height="180"))
    assert detail["State"] == "Success", detail
    for n, seconds in ((0, 1.0), (1, 2.0)):
        data = ci_support.read(s3, f"pictures/ci-{extension}/shot-{n}.{extension}")
        head = s3.head_object(Bucket=support.BUCKET,
                              Key=f"pictures/ci-{extension}/shot-{n}.{extension}")
        assert head["ContentType"] == f"image/{extension}"
        same_picture(decode(data), DEMO, seconds, what=f"{extension} output {n}")


# ------------------------------------------------------------------ HDR

def ffmpeg_picture(name: str, index: int, chain: str) -> Image.Image:
    vf = f"select=eq(n\\,{index}),{chain},format=rgb24"
    out = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error",
                          "-i", str(ci_support.FIXTURES / name), "-vf", vf, "-frames:v", "1",
                          "-f", "image2pipe", "-vcodec", "png", "-"],
                         check=True, capture_output=True).stdout
    return Image.open(io.BytesIO(out)).convert("RGB")


# FFmpeg's tone mapping (zimg linearises and converts the primaries, Hable
# without desaturation), and the signal read as if it were SDR.
TONE_MAPPED = ("zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,"
               "tonemap=tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=pc")
RAW = "scale=in_color_matrix=bt2020:out_range=pc"


@pytest.fixture(scope="module")
def hdr(gateway):
    for name in ("hdr10.mp4", "hlg.mp4"):
        ci_support.upload(gateway, f"pictures/{name}", name)
    return gateway


@pytest.mark.backends("file")
@pytest.mark.parametrize("name", ["hdr10.mp4", "hlg.mp4"])
@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_hdr_sources_are_tone_mapped_as_players_show_them(hdr, http, name, fmt):
    r = http.get(f"pictures/{name}", params={"ci-process": "snapshot", "time": "1",
                                              "format": fmt})
    assert r.status_code == 200, r.text
    got = decode(r.content)
    mapped = ffmpeg_picture(name, 25, TONE_MAPPED)
    raw = ffmpeg_picture(name, 25, RAW)
    to_mapped, to_raw = mad(got, mapped), mad(got, raw)
    assert to_mapped < 18 and to_mapped * 2.5 < to_raw, (to_mapped, to_raw)


@pytest.mark.backends("file")
def test_tone_mapping_can_be_turned_off(hdr, http):
    r = http.get("pictures/hdr10.mp4", params={"ci-process": "snapshot", "time": "1",
                                               "format": "png", "fg-tonemap": "off"})
    got = decode(r.content)
    raw = ffmpeg_picture("hdr10.mp4", 25, RAW)
    assert mad(got, raw) < 6
    on = http.get("pictures/hdr10.mp4", params={"ci-process": "snapshot", "time": "1",
                                                "format": "png"})
    assert on.headers["ETag"] != r.headers["ETag"]


@pytest.mark.backends("file")
def test_job_pictures_of_hdr_sources_are_tone_mapped(hdr):
    client = vod(hdr)
    task_id = process(client, "/pictures/hdr10.mp4", {
        "SnapshotByTimeOffsetTaskSet": [{"Definition": 10, "ExtTimeOffsetSet": ["1s"]}]})
    d = wait(client, task_id)
    [(_, shots)] = results(d)
    [pic] = shots.Output.PicInfoSet
    got = image(pic.Url)
    mapped = ffmpeg_picture("hdr10.mp4", 25, TONE_MAPPED)
    raw = ffmpeg_picture("hdr10.mp4", 25, RAW)
    assert mad(got, mapped) * 2.5 < mad(got, raw)


# ------------------------------------------------------------ animations

def animation_frames(data: bytes) -> list[tuple[Image.Image, int]]:
    """Every frame of an animated GIF or WebP with its duration (ms)."""
    img = Image.open(io.BytesIO(data))
    frames = []
    for k in range(getattr(img, "n_frames", 1)):
        img.seek(k)
        frames.append((img.convert("RGB"), img.info.get("duration", 0)))
    return frames


@pytest.mark.backends("file")
@pytest.mark.parametrize("fmt, magic", [("gif", b"GIF89a"), ("webp", b"RIFF")])
def test_vod_animated_graphics_show_the_frames_of_the_stretch(demo, fmt, magic):
    client = vod(demo)
    definition = call(client, "CreateAnimatedGraphicsTemplate", {
        "Fps": 10, "Width": 320, "Height": 0, "Format": fmt, "Quality": 90}).Definition
    [shown] = call(client, "DescribeAnimatedGraphicsTemplates",
                   {"Definitions": [definition]}).AnimatedGraphicsTemplateSet
    assert (shown.Fps, shown.Format, shown.Quality, shown.Width) == (10, fmt, 90, 320)
    task_id = process(client, f"/{KEY}", {"AnimatedGraphicTaskSet": [
        {"Definition": definition, "StartTimeOffset": 1.0, "EndTimeOffset": 3.0}]})
    d = wait(client, task_id)
    assert d.Status == "FINISH"
    [(kind, result)] = results(d)
    assert kind == "AnimatedGraphics" and result.Status == "SUCCESS", result.Message
    out = result.Output
    assert (out.Container, out.Width, out.Height) == (fmt, 320, 180)
    assert (out.StartTimeOffset, out.EndTimeOffset) == (1.0, 3.0)
    data = fetch(out.Url)
    assert data.startswith(magic) and out.Size == len(data)
    frames = animation_frames(data)
    assert len(frames) == 20
    assert sum(ms for _, ms in frames) == 2000
    for k in (0, 7, 19):
        same_picture(frames[k][0], DEMO, 1.0 + k / 10, limit=14, what=f"{fmt} frame {k}")


@pytest.mark.backends("file")
@pytest.mark.parametrize("kind, fields, code", [
    ("AnimatedGraphics", {"Fps": 31}, "InvalidParameterValue.Fps"),
    ("AnimatedGraphics", {"Fps": 10, "Format": "jpg"}, "InvalidParameterValue.Format"),
    ("AnimatedGraphics", {"Fps": 10, "Quality": 0}, "InvalidParameterValue.Quality"),
    ("AnimatedGraphics", {"Width": 320}, "MissingParameter"),
    ("SnapshotByTimeOffset", {"Format": "gif"}, "InvalidParameterValue.Format"),
])
def test_animated_template_ranges(demo, kind, fields, code):
    err = error_of(vod(demo), f"Create{kind}Template", fields)
    assert err.code == code, err.message


@pytest.mark.backends("file")
@pytest.mark.parametrize("start, end, code", [
    (2.0, 2.0, "InvalidParameterValue.EndTimeOffset"),
    (-1.0, 2.0, "InvalidParameterValue.StartTimeOffset"),
    (0.0, 20.0, "InvalidParameterValue.EndTimeOffset"),   # 600 frames at 30 fps
])
def test_animations_out_of_range_are_refused_before_queueing(demo, start, end, code):
    client = vod(demo)
    definition = call(client, "CreateAnimatedGraphicsTemplate", {"Fps": 30}).Definition
    err = error_of(client, "ProcessMedia", {"MediaStoragePath": f"/{KEY}", "MediaProcessTask": {
        "AnimatedGraphicTaskSet": [{"Definition": definition, "StartTimeOffset": start,
                                    "EndTimeOffset": end}]}})
    assert err.code == code, err.message


# ----------------------------------------------------------- scene changes

def smart_cover(cos, out: str, count: int, fmt: str = "jpg", dedupe: bool = True,
                key: str = "pictures/scenes.mp4") -> dict:
    return ci_support.run(cos, {
        "Tag": "SmartCover", "Input": {"Object": key},
        "Operation": {"SmartCover": {"Format": fmt, "Width": "320", "Height": "240",
                                     "Count": str(count),
                                     "DeleteDuplicates": "true" if dedupe else "false"},
                      "Output": {"Region": ci_support.REGION, "Bucket": support.BUCKET,
                                 "Object": f"{out}/cover-${{Number}}.{fmt}"}}})


@pytest.fixture(scope="module")
def scenes(gateway):
    ci_support.upload(gateway, "pictures/scenes.mp4", "scenes.mp4")
    ci_support.upload(gateway, "pictures/black_lead.mp4", "black_lead.mp4")
    return gateway


@pytest.mark.backends("file")
def test_smart_cover_picks_the_frames_just_after_the_cuts(scenes):
    cos = ci_support.client(scenes)
    s3 = support.boto3_client(scenes)
    detail = smart_cover(cos, "pictures/smart", 3)
    assert detail["Tag"] == "SmartCover"
    node = detail["Operation"]["SmartCover"]
    assert (node["Count"], node["Format"], node["DeleteDuplicates"]) == ("3", "jpg", "true")
    names = ci_support.output_names(detail)
    assert names == [f"pictures/smart/cover-{n}.jpg" for n in range(3)]
    for name, cut in zip(names, (2.0, 4.0, 6.0)):
        got = ci_support.picture(s3, name)
        want = ci_support.frame_at("scenes.mp4", cut)
        others = [ci_support.frame_at("scenes.mp4", t) for t in (0.0, 2.0, 4.0, 6.0) if t != cut]
        d = mad(got, want)
        assert d < 10 and all(mad(got, o) > d + 10 for o in others), (name, cut, d)
    jobs, _ = ci_support.list_jobs(cos, tag="SmartCover")
    assert detail["JobId"] in [j["JobId"] for j in jobs]


@pytest.mark.backends("file")
def test_scene_change_sprite_tiles_the_frames_just_after_the_cuts(scenes):
    """`Mode=FgSceneChange` on a Snapshot job: one sheet whose cells are the
    pictures after each cut, in time order, black lead-in never."""
    cos = ci_support.client(scenes)
    s3 = support.boto3_client(scenes)
    sprite = {"CellWidth": "160", "CellHeight": "120", "Padding": "0", "Margin": "0",
              "Color": "Black", "Columns": "2", "Lines": "2"}
    detail = ci_support.run(cos, ci_support.snapshot_request(
        "pictures/scenes.mp4", sprite_object="pictures/scene-sprite/sheet-${Number}.png",
        sprite=sprite, Mode="FgSceneChange", Count="3", SnapshotOutMode="OnlySprite"))
    assert detail["Tag"] == "Snapshot"
    assert detail["Operation"]["Snapshot"]["Mode"] == "FgSceneChange"
    [name] = ci_support.sprite_names(detail)
    sheet = ci_support.picture(s3, name)
    assert sheet.size == (320, 240)
    cells = [sheet.crop((x, y, x + 160, y + 120)) for y in (0, 120) for x in (0, 160)]
    for cell, cut in zip(cells, (2.0, 4.0, 6.0)):
        want = ci_support.frame_at("scenes.mp4", cut, size=(160, 120))
        others = [ci_support.frame_at("scenes.mp4", t, size=(160, 120))
                  for t in (0.0, 2.0, 4.0, 6.0) if t != cut]
        d = mad(cell, want)
        assert d < 12 and all(mad(cell, o) > d + 10 for o in others), (cut, d)
    # Three picks on a 2x2 sheet: the fourth cell is the background.
    assert ci_support.mean_luma(cells[3]) < 3


@pytest.mark.backends("file")
@pytest.mark.parametrize("fields, field", [
    ({"SnapshotOutMode": "OnlySnapshot"}, "Operation.Snapshot.SnapshotOutMode"),
    ({"SnapshotOutMode": "OnlySprite", "Start": "1"}, "Operation.Snapshot.Start"),
])
def test_scene_change_snapshot_settings_are_named(scenes, fields, field):
    cos = ci_support.client(scenes)
    sprite = {"Color": "Black", "Columns": "2", "Lines": "2"}
    request = ci_support.snapshot_request(
        "pictures/scenes.mp4", "pictures/bad/p-${Number}.jpg",
        sprite_object="pictures/bad/s-${Number}.jpg", sprite=sprite,
        Mode="FgSceneChange", Count="3", **fields)
    err = ci_support.expect_error(cos.ci_create_media_jobs, Bucket=support.BUCKET,
                                  Jobs=request, Lst={})
    ci_support.check_error(err, 400, "InvalidArgument", field)


@pytest.mark.backends("file")
def test_smart_cover_never_picks_black_frames(scenes):
    cos = ci_support.client(scenes)
    s3 = support.boto3_client(scenes)
    detail = smart_cover(cos, "pictures/smart-black", 2, fmt="png",
                         key="pictures/black_lead.mp4")
    for name in ci_support.output_names(detail):
        assert ci_support.mean_luma(ci_support.picture(s3, name)) > 40, name


@pytest.mark.backends("file")
@pytest.mark.parametrize("node, field", [
    ({"Count": "11"}, "Operation.SmartCover.Count"),
    ({"Count": "2", "Format": "gif"}, "Operation.SmartCover.Format"),
    ({"Count": "2", "Format": "png"}, "Operation.SmartCover.Format"),   # the name says .jpg
    ({"Count": "2", "Width": "5000"}, "Operation.SmartCover.Width"),
])
def test_smart_cover_settings_out_of_range_are_named(scenes, node, field):
    cos = ci_support.client(scenes)
    err = ci_support.expect_error(cos.ci_create_media_jobs, Bucket=support.BUCKET, Jobs={
        "Tag": "SmartCover", "Input": {"Object": "pictures/scenes.mp4"},
        "Operation": {"SmartCover": node,
                      "Output": {"Region": ci_support.REGION, "Bucket": support.BUCKET,
                                 "Object": "pictures/bad/c-${Number}.jpg"}}}, Lst={})
    ci_support.check_error(err, 400, "InvalidArgument", field)


@pytest.mark.backends("file")
def test_a_vod_cover_on_a_black_frame_moves_to_the_first_lit_one(scenes):
    client = vod(scenes)
    task_id = process(client, "/pictures/black_lead.mp4", {"CoverBySnapshotTaskSet": [
        {"Definition": 10, "PositionType": "Time", "PositionValue": 0.5}]})
    d = wait(client, task_id)
    [(_, cover)] = results(d)
    assert cover.Status == "SUCCESS", cover.Message
    got = image(cover.Output.CoverUrl)
    assert ci_support.mean_luma(got) > 40
    same_picture(got, "black_lead.mp4", 2.0, what="cover")


@pytest.mark.backends("file")
@pytest.mark.parametrize("kind, black_frames", [("SampleSnapshot", "skip"),
                                                ("SampleSnapshot", "keep"),
                                                ("ImageSprite", "skip")])
def test_vod_samples_skip_black_frames_when_the_template_says(scenes, kind, black_frames):
    """`FgBlackFrames` (sent with the SDK's `call_json`, as an extension
    field is): a sample on the 2 s black lead-in moves to the first lit
    frame; `keep` is VOD's behaviour."""
    client = vod(scenes)
    fields = {"SampleType": "Time", "SampleInterval": 3, "Width": 160, "Height": 0,
              "Format": "png", "FgBlackFrames": black_frames}
    if kind == "ImageSprite":
        fields.update(RowCount=1, ColumnCount=2)
    created = client.call_json(f"Create{kind}Template", fields)["Response"]
    listed = client.call_json(f"Describe{kind}Templates",
                              {"Definitions": [created["Definition"]]})["Response"]
    [template] = listed[f"{kind}TemplateSet"]
    assert template["FgBlackFrames"] == black_frames
    task_id = process(client, "/pictures/black_lead.mp4", {f"{kind}TaskSet": [
        {"Definition": created["Definition"]}]})
    d = wait(client, task_id)
    [(_, task)] = results(d)
    assert task.Status == "SUCCESS", task.Message
    if kind == "ImageSprite":
        sheet = image(task.Output.ImageUrlSet[0])
        w = sheet.width // 2
        first, second = sheet.crop((0, 0, w, sheet.height)), sheet.crop((w, 0, 2 * w, sheet.height))
    else:
        first, second = (image(url) for url in task.Output.ImageUrlSet)
    if black_frames == "skip":
        assert ci_support.mean_luma(first) > 40
        same_picture(first, "black_lead.mp4", 2.0, what="first sample")
    else:
        assert ci_support.mean_luma(first) < 3
    same_picture(second, "black_lead.mp4", 3.0, what="second sample")


@pytest.mark.backends("file")
@pytest.mark.parametrize("action, fields", [
    ("CreateSnapshotByTimeOffsetTemplate", {"FgBlackFrames": "skip"}),
    ("CreateSampleSnapshotTemplate", {"SampleType": "Time", "SampleInterval": 3,
                                      "FgBlackFrames": "maybe"}),
])
def test_black_frames_are_refused_where_they_do_not_apply(scenes, action, fields):
    # The typed request models drop unknown fields, so they go raw.
    with pytest.raises(TencentCloudSDKException) as caught:
        vod(scenes).call_json(action, fields)
    assert caught.value.code == "InvalidParameterValue.FgBlackFrames", caught.value


@pytest.mark.backends("file")
@pytest.mark.parametrize("fmt", ["gif", "webp"])
def test_ci_animation_jobs_make_one_animated_picture(demo, fmt):
    cos = ci_support.client(demo)
    s3 = support.boto3_client(demo)
    name = f"pictures/ci-anim/preview.{fmt}"
    detail = ci_support.run(cos, {
        "Tag": "Animation", "Input": {"Object": KEY},
        "Operation": {"Animation": {
            "Container": {"Format": fmt},
            "Video": {"Codec": fmt, "Width": "320", "Fps": "10", "Quality": "90"},
            "TimeInterval": {"Start": "1", "Duration": "2"}},
            "Output": {"Region": ci_support.REGION, "Bucket": support.BUCKET,
                       "Object": name}}})
    assert detail["Tag"] == "Animation"
    node = detail["Operation"]["Animation"]
    assert node["Container"]["Format"] == fmt and node["Video"]["Fps"] == "10"
    assert ci_support.output_names(detail) == [name]
    head = s3.head_object(Bucket=support.BUCKET, Key=name)
    assert head["ContentType"] == f"image/{fmt}"
    frames = animation_frames(ci_support.read(s3, name))
    assert len(frames) == 20 and sum(ms for _, ms in frames) == 2000
    for k in (0, 10, 19):
        same_picture(frames[k][0], DEMO, 1.0 + k / 10, limit=14, what=f"{fmt} frame {k}")
    # Keyframes only: the demo has one every 2 s.
    detail = ci_support.run(cos, {
        "Tag": "Animation", "Input": {"Object": KEY},
        "Operation": {"Animation": {
            "Container": {"Format": fmt},
            "Video": {"Width": "160", "Fps": "2", "AnimateOnlyKeepKeyFrame": "true"},
            "TimeInterval": {"Start": "0", "Duration": "7"}},
            "Output": {"Region": ci_support.REGION, "Bucket": support.BUCKET,
                       "Object": f"pictures/ci-anim/keys.{fmt}"}}})
    frames = animation_frames(ci_support.read(s3, f"pictures/ci-anim/keys.{fmt}"))
    keys = ci_support.keyframe_times(DEMO)
    assert len(frames) == len([t for t in keys if t < 7]) and len(frames) >= 2


@pytest.mark.backends("file")
@pytest.mark.parametrize("animation, field", [
    ({"Container": {"Format": "mp4"}}, "Operation.Animation.Container.Format"),
    ({"Container": {"Format": "gif"}, "Video": {"Codec": "webp"}}, "Operation.Animation.Video.Codec"),
    ({"Video": {"Fps": "31"}}, "Operation.Animation.Video.Fps"),
    ({"Video": {"Quality": "0"}}, "Operation.Animation.Video.Quality"),
    ({"Video": {"Fps": "30"}, "TimeInterval": {"Duration": "11"}},
     "Operation.Animation.TimeInterval.Duration"),
])
def test_ci_animation_settings_out_of_range_are_named(demo, animation, field):
    cos = ci_support.client(demo)
    err = ci_support.expect_error(cos.ci_create_media_jobs, Bucket=support.BUCKET, Jobs={
        "Tag": "Animation", "Input": {"Object": KEY},
        "Operation": {"Animation": animation,
                      "Output": {"Region": ci_support.REGION, "Bucket": support.BUCKET,
                                 "Object": "pictures/bad/a.gif"}}}, Lst={})
    ci_support.check_error(err, 400, "InvalidArgument", field)
