"""Asynchronous screenshot jobs through tencentcloud-sdk-python-vod, on the
SQLite queue and on a PostgreSQL queue: templates, ProcessMedia of every
task type, results checked by picture content, per-subtask failures,
priority order.

Frames are compared with what ffmpeg decodes at the same time (accurate
seek); sprite cells are cut out of the sheet at the rectangle the WebVTT cue
names.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid

import pytest

import support
from jobs_support import (FPS, call, detail, error_of, ffmpeg_frame, fetch, image, mad, mean,
                          process, results, stddev, upload, vod, wait)

VIDEO = "h264_bframes.mp4"  # 320x240, 25 fps, 10 s, one 10 s GOP with B-frames


@pytest.fixture(scope="module")
def client(jobs_gateway):
    upload(jobs_gateway, "videos/clip.mp4", VIDEO)
    upload(jobs_gateway, "videos/demo.mp4", "demo.mp4")
    upload(jobs_gateway, "videos/rotate90.mp4", "rotate90.mp4")
    upload(jobs_gateway, "notes/readme.txt", "not_video.txt")
    return vod(jobs_gateway)


def create(client, kind: str, **fields) -> int:
    return call(client, f"Create{kind}Template", fields).Definition


def same_picture(got, name: str, seconds: float, limit: float = 12.0):
    """`got` is the frame on screen at `seconds`: close to it (JPEG allows some
    difference) and closer to it than to the frames before and after."""
    want = ffmpeg_frame(name, seconds, size=got.size)
    d = mad(got, want)
    assert d < limit, f"{name} at {seconds}s differs from ffmpeg's frame by {d:.1f}"
    for step in (-1 / FPS, 1 / FPS):
        if 0 <= seconds + step < 10:
            other = mad(got, ffmpeg_frame(name, seconds + step, size=got.size))
            assert other > d + 1, (
                f"{name} at {seconds}s: the frame {step:+.2f}s away is as close ({other:.1f} vs {d:.1f})")


# ------------------------------------------------------------------ templates

@pytest.mark.parametrize("kind", ["SnapshotByTimeOffset", "SampleSnapshot", "ImageSprite"])
def test_presets_are_listed_and_read_only(client, kind):
    listed = call(client, f"Describe{kind}Templates", {"Type": "Preset"})
    sets = getattr(listed, f"{kind}TemplateSet")
    assert [t.Definition for t in sets] == [10]
    preset = sets[0]
    assert preset.Type == "Preset" and preset.Format == "jpg"
    if kind == "ImageSprite":
        assert (preset.Width, preset.Height, preset.RowCount, preset.ColumnCount,
                preset.SampleType, preset.SampleInterval) == (142, 80, 10, 10, "Time", 10)
    elif kind == "SampleSnapshot":
        assert (preset.Width, preset.Height, preset.SampleType, preset.SampleInterval) == \
            (0, 0, "Percent", 10)
    else:
        assert (preset.Width, preset.Height) == (0, 0)
    for action in ("Modify", "Delete"):
        err = error_of(client, f"{action}{kind}Template", {"Definition": 10, "Name": "x"})
        assert err.code == "InvalidParameterValue.Definition", err


def test_template_crud(client):
    definition = create(client, "SnapshotByTimeOffset", Name="thumbs", Width=640, Height=0,
                        Format="png", FillType="white", Comment="for the list page")
    assert definition > 10
    got = call(client, "DescribeSnapshotByTimeOffsetTemplates",
               {"Definitions": [definition]}).SnapshotByTimeOffsetTemplateSet
    assert len(got) == 1
    t = got[0]
    assert (t.Name, t.Width, t.Height, t.Format, t.FillType, t.Type, t.ResolutionAdaptive) == \
        ("thumbs", 640, 0, "png", "white", "Custom", "open")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", t.CreateTime)
    call(client, "ModifySnapshotByTimeOffsetTemplate",
         {"Definition": definition, "Height": 360, "FillType": "gauss"})
    t = call(client, "DescribeSnapshotByTimeOffsetTemplates",
             {"Definitions": [definition]}).SnapshotByTimeOffsetTemplateSet[0]
    assert (t.Width, t.Height, t.FillType, t.Name) == (640, 360, "gauss", "thumbs")
    second = create(client, "SnapshotByTimeOffset", Name="other")
    assert second == definition + 1
    custom = call(client, "DescribeSnapshotByTimeOffsetTemplates", {"Type": "Custom"})
    assert {definition, second} <= {t.Definition for t in custom.SnapshotByTimeOffsetTemplateSet}
    call(client, "DeleteSnapshotByTimeOffsetTemplate", {"Definition": second})
    err = error_of(client, "DeleteSnapshotByTimeOffsetTemplate", {"Definition": second})
    assert err.code == "ResourceNotFound.TemplateNotExist"
    page = call(client, "DescribeSnapshotByTimeOffsetTemplates", {"Offset": 0, "Limit": 1})
    assert len(page.SnapshotByTimeOffsetTemplateSet) == 1 and page.TotalCount >= 2


@pytest.mark.parametrize("kind, fields, code", [
    ("SnapshotByTimeOffset", {"Width": 127}, "InvalidParameterValue.Width"),
    ("SnapshotByTimeOffset", {"Height": 4097}, "InvalidParameterValue.Height"),
    ("SnapshotByTimeOffset", {"Format": "gif"}, "InvalidParameterValue.Format"),
    ("SnapshotByTimeOffset", {"FillType": "blur"}, "InvalidParameterValue.FillType"),
    ("SnapshotByTimeOffset", {"ResolutionAdaptive": "maybe"},
     "InvalidParameterValue.ResolutionAdaptive"),
    ("SnapshotByTimeOffset", {"Name": "x" * 65}, "InvalidParameterValue.Name"),
    ("SampleSnapshot", {"SampleType": "Percent"}, "MissingParameter"),
    ("SampleSnapshot", {"SampleType": "Percent", "SampleInterval": 0},
     "InvalidParameterValue.SampleInterval"),
    ("SampleSnapshot", {"SampleType": "Percent", "SampleInterval": 101},
     "InvalidParameterValue.SampleInterval"),
    ("SampleSnapshot", {"SampleType": "Frames", "SampleInterval": 5},
     "InvalidParameterValue.SampleType"),
    ("ImageSprite", {"SampleType": "Time", "SampleInterval": 5, "RowCount": 10,
                     "ColumnCount": 40, "Width": 128, "Height": 128},
     "InvalidParameterValue.Width"),
    ("ImageSprite", {"SampleType": "Time", "SampleInterval": 5, "RowCount": 33,
                     "ColumnCount": 1, "Width": 128, "Height": 128},
     "InvalidParameterValue.Height"),
    ("ImageSprite", {"SampleType": "Time", "SampleInterval": 5, "RowCount": 0,
                     "ColumnCount": 1}, "InvalidParameterValue.RowCount"),
    ("ImageSprite", {"SampleType": "Percent", "SampleInterval": 5, "RowCount": 1,
                     "ColumnCount": 1}, "InvalidParameterValue.SampleType"),
    # Cells from 8 px; the whole sheet 128-4096 a side.
    ("ImageSprite", {"SampleType": "Time", "SampleInterval": 5, "RowCount": 20,
                     "ColumnCount": 20, "Width": 7, "Height": 8},
     "InvalidParameterValue.Width"),
    ("ImageSprite", {"SampleType": "Time", "SampleInterval": 5, "RowCount": 3,
                     "ColumnCount": 20, "Width": 8, "Height": 8},
     "InvalidParameterValue.Height"),
])
def test_out_of_range_template_fields_are_refused(client, kind, fields, code):
    err = error_of(client, f"Create{kind}Template", fields)
    assert err.code == code, err
    assert err.message


# ----------------------------------------------------------------- the work

def test_time_point_screenshots_show_the_frames_at_those_times(client):
    task = process(client, "/videos/clip.mp4", {"SnapshotByTimeOffsetTaskSet": [
        {"Definition": 10, "ExtTimeOffsetSet": ["9.5s", "1s", "50%"], "TimeOffsetSet": [2500]},
    ]}, SessionContext="ctx-1")
    d = wait(client, task)
    assert d.Status == "FINISH" and d.TaskType == "Procedure"
    p = d.ProcedureTask
    assert (p.Status, p.ErrCode, p.SessionContext, p.FileName) == ("FINISH", 0, "ctx-1", "clip.mp4")
    assert p.MetaData.Width == 320 and abs(p.MetaData.Duration - 10) < 0.1
    [(kind, r)] = results(d)
    assert (kind, r.Status, r.ErrCode, r.Progress) == ("SnapshotByTimeOffset", "SUCCESS", 0, 100)
    assert r.Input.Definition == 10 and r.Input.ExtTimeOffsetSet == ["9.5s", "1s", "50%"]
    pics = r.Output.PicInfoSet
    assert [pic.TimeOffset for pic in pics] == [9500, 1000, 5000, 2500]
    for pic in pics:
        img = image(pic.Url)
        assert img.size == (320, 240)
        same_picture(img, VIDEO, pic.TimeOffset / 1000)


def test_time_points_past_the_end_show_the_last_frame(client):
    task = process(client, "/videos/clip.mp4", {"SnapshotByTimeOffsetTaskSet": [
        {"Definition": 10, "ExtTimeOffsetSet": ["99s"]}]})
    [(_, r)] = results(wait(client, task))
    assert r.Status == "SUCCESS", r.Message
    same_picture(image(r.Output.PicInfoSet[0].Url), VIDEO, 10 - 1 / FPS)


def test_sampled_screenshots_by_percent_and_by_time(client):
    percent = create(client, "SampleSnapshot", SampleType="Percent", SampleInterval=30,
                     Width=160, Height=0)
    seconds = create(client, "SampleSnapshot", SampleType="Time", SampleInterval=3,
                     Width=0, Height=0, Format="png")
    task = process(client, "/videos/clip.mp4", {"SampleSnapshotTaskSet": [
        {"Definition": percent}, {"Definition": seconds}, {"Definition": 10}]})
    d = wait(client, task)
    (_, by_percent), (_, by_time), (_, preset) = results(d)
    assert by_percent.Status == "SUCCESS"
    assert (by_percent.Output.SampleType, by_percent.Output.Interval) == ("Percent", 30)
    urls = by_percent.Output.ImageUrlSet
    assert len(urls) == 3  # floor(100 / 30): at 0, 30 and 60 %
    for k, url in enumerate(urls):
        img = image(url)
        assert img.size == (160, 120)
        same_picture(img, VIDEO, 10 * k * 0.30)
    urls = by_time.Output.ImageUrlSet
    assert len(urls) == 4  # 0, 3, 6, 9 s: before the end of a 10 s video
    for k, url in enumerate(urls):
        data = fetch(url)
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        same_picture(image(url), VIDEO, 3 * k, limit=5.0)
    assert len(preset.Output.ImageUrlSet) == 10  # every 10 %


@pytest.mark.parametrize("fill", ["black", "white", "gauss", "stretch"])
def test_fill_types_pad_or_stretch_exactly(client, fill):
    # A 4:3 picture into a square: 400x300 content, 50 px bars above and below.
    definition = create(client, "SnapshotByTimeOffset", Width=400, Height=400, FillType=fill,
                        Format="png")
    task = process(client, "/videos/clip.mp4", {"SnapshotByTimeOffsetTaskSet": [
        {"Definition": definition, "ExtTimeOffsetSet": ["2s"]}]})
    [(_, r)] = results(wait(client, task))
    assert r.Status == "SUCCESS", r.Message
    img = image(r.Output.PicInfoSet[0].Url)
    assert img.size == (400, 400)
    top, bottom = (0, 0, 400, 48), (0, 352, 400, 400)
    content = img.crop((0, 52, 400, 348))
    if fill == "stretch":
        same_picture(img, VIDEO, 2, limit=8.0)
        return
    same_picture(content, VIDEO, 2)
    for bar in (top, bottom):
        if fill == "black":
            assert mean(img, bar) < 3 and stddev(img, bar) < 2
        elif fill == "white":
            assert mean(img, bar) > 252 and stddev(img, bar) < 2
        else:
            # Blurred picture: neither flat black/white nor sharp.
            assert 5 < mean(img, bar) < 250
            sharp = ffmpeg_frame(VIDEO, 2, size=(400, 400)).crop(bar)
            assert stddev(img, bar) < stddev(sharp), "the fill is not blurred"
            assert abs(mean(img, bar) - mean(sharp)) < 40, "the fill is not from the picture"


def test_portrait_video_keeps_its_orientation_with_adaptive_sizes(client):
    # rotate90.mp4 is 320x180 coded, shown as 180x320. Width is the long side.
    definition = create(client, "SnapshotByTimeOffset", Width=256, Height=0)
    task = process(client, "/videos/rotate90.mp4", {"SnapshotByTimeOffsetTaskSet": [
        {"Definition": definition, "ExtTimeOffsetSet": ["1s"]}]})
    [(_, r)] = results(wait(client, task))
    assert image(r.Output.PicInfoSet[0].Url).size == (144, 256)


def parse_vtt(text: str):
    assert text.startswith("WEBVTT")
    cues = []
    for block in text.strip().split("\n\n")[1:]:
        times, target = block.strip().splitlines()
        start, end = [sum(float(x) * m for x, m in zip(t.split(":"), (3600, 60, 1)))
                      for t in times.split(" --> ")]
        file, rect = target.split("#xywh=")
        cues.append((start, end, file, tuple(int(v) for v in rect.split(","))))
    return cues


def test_image_sprites_and_webvtt_point_at_the_right_cells(client):
    definition = create(client, "ImageSprite", SampleType="Time", SampleInterval=2,
                        RowCount=2, ColumnCount=2, Width=160, Height=0, FillType="black")
    task = process(client, "/videos/clip.mp4", {"ImageSpriteTaskSet": [{"Definition": definition}]})
    [(kind, r)] = results(wait(client, task))
    assert (kind, r.Status) == ("ImageSprites", "SUCCESS"), r.Message
    out = r.Output
    # 5 cells (0, 2, 4, 6, 8 s) of 160x120 in 2x2 grids: two sheets.
    assert (out.Width, out.Height, out.TotalCount) == (160, 120, 2)
    sheets = {url.split("?")[0].rsplit("/", 1)[1]: image(url) for url in out.ImageUrlSet}
    assert all(s.size == (320, 240) for s in sheets.values())
    cues = parse_vtt(fetch(out.WebVttUrl).decode())
    assert [(c[0], c[1]) for c in cues] == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
    expected_rects = [(0, 0), (160, 0), (0, 120), (160, 120), (0, 0)]
    for (start, _, file, (x, y, w, h)), (ex, ey) in zip(cues, expected_rects):
        assert (x, y, w, h) == (ex, ey, 160, 120)
        assert file in sheets
        same_picture(sheets[file].crop((x, y, x + w, y + h)), VIDEO, start)
    # The unused cells of the last sheet are black.
    last = sheets[cues[-1][2]]
    assert mean(last, (160, 0, 320, 240)) < 3


def test_sprite_cells_may_be_under_128_when_the_sheet_is_not(client):
    """The seed's limit is on the sheet: 160x90 cells in a 3x2 grid make
    480x180 sheets (90 < 128 is fine for a cell)."""
    definition = create(client, "ImageSprite", SampleType="Time", SampleInterval=2,
                        RowCount=2, ColumnCount=3, Width=160, Height=90, FillType="stretch")
    task = process(client, "/videos/clip.mp4", {"ImageSpriteTaskSet": [{"Definition": definition}]})
    [(kind, r)] = results(wait(client, task))
    assert (kind, r.Status) == ("ImageSprites", "SUCCESS"), r.Message
    assert (r.Output.Width, r.Output.Height) == (160, 90)
    sheets = [image(url) for url in r.Output.ImageUrlSet]
    assert sheets and all(s.size == (480, 180) for s in sheets)


def test_preset_sprite_is_142x80_cells_every_10_seconds(client):
    task = process(client, "/videos/demo.mp4", {"ImageSpriteTaskSet": [{"Definition": 10}]})
    [(_, r)] = results(wait(client, task))
    assert (r.Output.Width, r.Output.Height, r.Output.TotalCount) == (142, 80, 1)
    assert image(r.Output.ImageUrlSet[0]).size == (1420, 800)
    cues = parse_vtt(fetch(r.Output.WebVttUrl).decode())
    assert [(c[0], c[1], c[3]) for c in cues] == [(0, 10, (0, 0, 142, 80))]


def test_cover_is_stored_and_shown_in_the_media_info(client):
    task = process(client, "/videos/clip.mp4", {"CoverBySnapshotTaskSet": [
        {"Definition": 10, "PositionType": "Percent", "PositionValue": 30}]})
    d = wait(client, task)
    [(kind, r)] = results(d)
    assert (kind, r.Status, r.Input.PositionType) == ("CoverBySnapshot", "SUCCESS", "Percent")
    same_picture(image(r.Output.CoverUrl), VIDEO, 3)
    # By time: a later cover replaces the first in the media's info.
    by_time = wait(client, process(client, "/videos/clip.mp4", {"CoverBySnapshotTaskSet": [
        {"Definition": 10, "PositionType": "Time", "PositionValue": 7.5}]}))
    [(_, t)] = results(by_time)
    assert (t.Status, t.Input.PositionType) == ("SUCCESS", "Time")
    same_picture(image(t.Output.CoverUrl), VIDEO, 7.5)
    info = call(client, "DescribeMediaInfos", {"FileIds": [d.ProcedureTask.FileId, "1"]})
    assert info.NotExistFileIdSet == ["1"]
    media = info.MediaInfoSet[0]
    assert media.BasicInfo.Name == "clip.mp4"
    assert media.BasicInfo.CoverUrl.split("?")[0] == t.Output.CoverUrl.split("?")[0]
    same_picture(image(media.BasicInfo.CoverUrl), VIDEO, 7.5)


def test_file_id_is_stable_and_accepted(client):
    first = wait(client, process(client, "/videos/clip.mp4", {"SnapshotByTimeOffsetTaskSet": [
        {"Definition": 10, "ExtTimeOffsetSet": ["1s"]}]}))
    file_id = first.ProcedureTask.FileId
    assert re.fullmatch(r"\d{19}", file_id)
    again = call(client, "ProcessMedia", {"FileId": file_id, "MediaProcessTask": {
        "SnapshotByTimeOffsetTaskSet": [{"Definition": 10, "ExtTimeOffsetSet": ["2s"]}]}})
    d = wait(client, again.TaskId)
    assert d.ProcedureTask.FileId == file_id and d.ProcedureTask.FileName == "clip.mp4"
    err = error_of(client, "ProcessMedia", {"FileId": "123", "MediaProcessTask": {
        "SnapshotByTimeOffsetTaskSet": [{"Definition": 10, "ExtTimeOffsetSet": ["2s"]}]}})
    assert err.code == "ResourceNotFound.FileNotExist"


@pytest.mark.parametrize("params, code", [
    ({"MediaProcessTask": {"SampleSnapshotTaskSet": [{"Definition": 10}]}}, "InvalidParameter"),
    ({"MediaStoragePath": "/videos/clip.mp4"}, "MissingParameter"),
    ({"MediaStoragePath": "/videos/clip.mp4", "MediaProcessTask": {}}, "MissingParameter"),
    ({"MediaStoragePath": "/videos/clip.mp4",
      "MediaProcessTask": {"SampleSnapshotTaskSet": [{"Definition": 99}]}},
     "ResourceNotFound.TemplateNotExist"),
    ({"MediaStoragePath": "/videos/clip.mp4", "MediaProcessTask": {
        "SnapshotByTimeOffsetTaskSet": [{"Definition": 10, "ExtTimeOffsetSet": ["soon"]}]}},
     "InvalidParameterValue.ExtTimeOffsetSet"),
    ({"MediaStoragePath": "/videos/clip.mp4", "TasksPriority": 11,
      "MediaProcessTask": {"SampleSnapshotTaskSet": [{"Definition": 10}]}},
     "InvalidParameterValue.TasksPriority"),
    ({"MediaStoragePath": "/videos/clip.mp4", "MediaProcessTask": {"CoverBySnapshotTaskSet": [
        {"Definition": 10, "PositionType": "Percent", "PositionValue": 120}]}},
     "InvalidParameterValue.PositionValue"),
    ({"MediaStoragePath": "/../etc/passwd",
      "MediaProcessTask": {"SampleSnapshotTaskSet": [{"Definition": 10}]}},
     "InvalidParameterValue.MediaStoragePath"),
    # Watermarks are not made: refused, never silently left out.
    ({"MediaStoragePath": "/videos/clip.mp4", "MediaProcessTask": {
        "SnapshotByTimeOffsetTaskSet": [{"Definition": 10, "ExtTimeOffsetSet": ["1s"],
                                         "WatermarkSet": [{"Definition": 1}]}]}},
     "InvalidParameterValue.WatermarkSet"),
    ({"MediaStoragePath": "/videos/clip.mp4", "MediaProcessTask": {
        "SampleSnapshotTaskSet": [{"Definition": 10, "WatermarkSet": [{"Definition": 1}]}]}},
     "InvalidParameterValue.WatermarkSet"),
])
def test_bad_process_media_requests_are_refused_at_once(client, params, code):
    err = error_of(client, "ProcessMedia", params)
    assert err.code == code, err


def file_id_of(bucket: str, key: str) -> str:
    """The gateway's FileId of `bucket/key` (19 digits from SHA-256)."""
    n = int.from_bytes(hashlib.sha256(f"{bucket}/{key}".encode()).digest()[:8], "big")
    return str(10**18 + n % (9 * 10**18))


def test_a_refused_request_records_no_media(client):
    key = f"videos/refused-{uuid.uuid4().hex[:8]}.mp4"
    err = error_of(client, "ProcessMedia", {"MediaStoragePath": f"/{key}", "MediaProcessTask": {
        "SampleSnapshotTaskSet": [{"Definition": 99}]}})
    assert err.code == "ResourceNotFound.TemplateNotExist"
    file_id = file_id_of(support.BUCKET, key)
    infos = call(client, "DescribeMediaInfos", {"FileIds": [file_id]})
    assert infos.NotExistFileIdSet == [file_id] and not infos.MediaInfoSet
    # The same path accepted is recorded under that FileId.
    process(client, f"/{key}", {"SampleSnapshotTaskSet": [{"Definition": 10}]})
    infos = call(client, "DescribeMediaInfos", {"FileIds": [file_id]})
    assert [m.FileId for m in infos.MediaInfoSet] == [file_id]


def test_a_failing_subtask_does_not_sink_the_others(client):
    # Source-size cells in a 20-column grid would be 6400 px wide.
    wide = create(client, "ImageSprite", SampleType="Time", SampleInterval=5, RowCount=1,
                  ColumnCount=20)
    task = process(client, "/videos/clip.mp4", {
        "ImageSpriteTaskSet": [{"Definition": wide}],
        "SnapshotByTimeOffsetTaskSet": [{"Definition": 10, "ExtTimeOffsetSet": ["1s"]}],
    })
    d = wait(client, task)
    assert d.Status == "FINISH"
    by_type = dict(results(d))
    sprite, shot = by_type["ImageSprites"], by_type["SnapshotByTimeOffset"]
    assert (sprite.Status, sprite.ErrCode, sprite.ErrCodeExt) == \
        ("FAIL", 40000, "InvalidParameterValue.OutputSize")
    assert "6400" in sprite.Message
    assert shot.Status == "SUCCESS"
    same_picture(image(shot.Output.PicInfoSet[0].Url), VIDEO, 1)
    assert d.ProcedureTask.ErrCode == 40000


@pytest.mark.parametrize("path, ext", [
    ("/videos/missing.mp4", "SourceFileError.NotFound"),
    ("/notes/readme.txt", "SourceFileError.NotMedia"),
])
def test_missing_or_undecodable_media_fails_each_subtask_clearly(client, path, ext):
    task = process(client, path, {
        "SnapshotByTimeOffsetTaskSet": [{"Definition": 10, "ExtTimeOffsetSet": ["1s"]}],
        "SampleSnapshotTaskSet": [{"Definition": 10}],
    })
    d = wait(client, task)
    assert d.Status == "FINISH"
    for _, r in results(d):
        assert (r.Status, r.ErrCode, r.ErrCodeExt) == ("FAIL", 60000, ext)
        assert r.Message


def test_priority_orders_the_queue(client, jobs_gateway):
    # One worker: a long task holds it while a low and a high priority task
    # wait; the high one must be taken first.
    heavy = create(client, "SampleSnapshot", SampleType="Percent", SampleInterval=1,
                   Format="png")
    blocker = process(client, "/videos/demo.mp4", {"SampleSnapshotTaskSet": [{"Definition": heavy}]})
    deadline = time.monotonic() + 30
    while detail(client, blocker).Status == "WAITING":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    quick = {"SnapshotByTimeOffsetTaskSet": [{"Definition": 10, "ExtTimeOffsetSet": ["1s"]}]}
    low = process(client, "/videos/clip.mp4", quick, TasksPriority=-5)
    high = process(client, "/videos/clip.mp4", quick, TasksPriority=5)
    assert detail(client, blocker).Status == "PROCESSING", "the blocker ended too soon"
    while detail(client, high).Status == "WAITING":
        assert time.monotonic() < deadline
        assert detail(client, low).Status == "WAITING", "the low-priority task ran first"
        time.sleep(0.01)
    assert detail(client, low).Status == "WAITING", "the low-priority task ran first"
    assert wait(client, low).Status == "FINISH"
    tasks = call(client, "DescribeTasks", {"Limit": 3}).TaskSet
    assert [t.TaskId for t in tasks] == [high, low, blocker]


def test_progress_is_reported_while_a_task_runs(client):
    heavy = create(client, "SampleSnapshot", SampleType="Percent", SampleInterval=1,
                   Format="png", Width=640, Height=360)
    task = process(client, "/videos/demo.mp4", {"SampleSnapshotTaskSet": [{"Definition": heavy}]})
    seen = set()
    deadline = time.monotonic() + 60
    while True:
        d = detail(client, task)
        [(_, r)] = results(d)
        seen.add(r.Progress)
        if d.Status == "FINISH":
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert r.Progress == 100 and len(r.Output.ImageUrlSet) == 100
    assert any(0 < p < 100 for p in seen), f"no progress between 0 and 100 was seen: {seen}"


def test_cli_submits_and_watches_a_task(client, jobs_gateway):
    import subprocess

    binary = str(support.gateway_binary())
    base = [binary, "--config", str(jobs_gateway.config), "job"]
    remote = ["--endpoint", jobs_gateway.url, "--secret-id", support.SECRET_ID]
    run = subprocess.run(base + ["submit", "videos/clip.mp4", "--snapshot", "10=1s,50%",
                                 "--sprite", "10", "--cover", "10=Time:2", "--priority", "-3"]
                         + remote, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    task_id = run.stdout.splitlines()[0]
    assert re.fullmatch(r"\d+-Procedure-[0-9a-f]{32}t0", task_id)
    assert "SnapshotByTimeOffset: SUCCESS" in run.stdout and ".vtt" in run.stdout
    d = detail(client, task_id)
    assert d.Status == "FINISH" and d.ProcedureTask.TasksPriority == -3
    watch = subprocess.run(base + ["watch", task_id] + remote, capture_output=True, text=True,
                           timeout=60)
    assert watch.returncode == 0 and "CoverBySnapshot: SUCCESS" in watch.stdout
    bad = subprocess.run(base + ["submit", "videos/none.mp4", "--sample", "10"] + remote,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "SourceFileError.NotFound" in bad.stdout
    unknown = subprocess.run(base + ["submit", "videos/clip.mp4", "--sample", "77"] + remote,
                             capture_output=True, text=True, timeout=60)
    assert unknown.returncode != 0 and "ResourceNotFound.TemplateNotExist" in unknown.stderr
