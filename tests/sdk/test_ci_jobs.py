"""CI screenshot jobs through cos-python-sdk-v5 (`ci_create_media_jobs`,
`ci_get_media_jobs`, `ci_list_media_jobs`, `ci_cancel_jobs`) on a gateway
with two buckets and one job worker, on the SQLite queue and on PostgreSQL
(docs/ci-media-api.md, "Jobs").

Every picture is checked by content: it must be the frame ffmpeg shows at
the time the mode selects (closer to it than to the frames just before and
after; the fixtures burn the frame number in). Sprite sheets are checked by
geometry, by the colour of their margin and padding pixels, and cell by cell.
Refused submissions must leave no job and no object behind; cancelled and
failed jobs no visible output.
"""

from __future__ import annotations

import copy
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from PIL import Image

import support
from ci_support import (BUCKET, DOMAIN, ENDED, JOB_ID, MAIN_ONLY_ID, MAIN_ONLY_KEY, OTHER, QUEUE_ID,
                        REGION, all_job_ids, assert_colour, check_error, client,
                        duration, expect_error, frame_at, get_jobs, is_jpeg, is_png, job,
                        keyframe_times, keys, list_jobs, listing, mad, main_only_credential_toml,
                        mean_luma, new_id, output_names, parse_error, parse_time, picture,
                        queue, raw, read, result_file, run, same_picture, set_queue,
                        snapshot_request, sprite_names, submit, upload, wait_job, wait_until)
from conftest import GatewayFactory, queue_store
from jobs_support import jobs_toml

CLIP = "h264_bframes.mp4"     # 320x240, 25 fps, 10 s, frame numbers burnt in
BLACK = "black_lead.mp4"      # 320x240, 25 fps, 6 s: 2.0 s black, keyframes 0 0.6 2 3.4 5.2
INPUTS = {"in/clip.mp4": CLIP, "in/black.mp4": BLACK, "in/rotate90.mp4": "rotate90.mp4",
          "in/notes.txt": "not_video.txt"}
RED, WHITE, BLUE = (255, 0, 0), (255, 255, 255), (0, 0, 255)


@pytest.fixture(scope="module")
def gw(queue, workroot, request):
    """BUCKET (file) and OTHER (file), one worker on `queue`, plus a
    credential that may write BUCKET only; the fixtures uploaded under in/."""
    name = f"ci-jobs-{queue}"
    factory = GatewayFactory(workroot / name, request)
    gateway = factory.start(
        "file", name, extra_buckets=[(OTHER, "file://", "public-read-write")],
        extra=jobs_toml(queue_store(queue, request), workers=1) + main_only_credential_toml())
    for key, fixture in INPUTS.items():
        upload(gateway, key, fixture)
    yield gateway
    factory.stop_all()


@pytest.fixture
def ci(gw):
    """The SDK with `CosConfig(Region, IP, Port)`: Host <bucket>.cos.<region>...,
    so `Bucket=` picks the bucket."""
    yield client(gw, "vhost")
    assert gw.alive(), f"the gateway died during this test:\n{gw.stderr_tail()}"


@pytest.fixture
def s3(gw):
    return support.boto3_client(gw)


@pytest.fixture
def out(key_prefix) -> str:
    """This test's output prefix."""
    return f"ci/{key_prefix}"


def numbered(out: str, stem: str, count: int, ext: str = "jpg") -> list[str]:
    return [f"{out}{stem}-{k}.{ext}" for k in range(count)]


def pictures(ci, s3, out, input_key="in/clip.mp4", stem="pic", ext="jpg", bucket=BUCKET,
             **snapshot):
    """Runs a job writing `<out><stem>-${Number}.<ext>`; (detail, names)."""
    d = run(ci, snapshot_request(input_key, f"{out}{stem}-${{Number}}.{ext}",
                                 output_bucket=bucket, **snapshot))
    names = output_names(d)
    assert names == numbered(out, stem, len(names), ext), names
    assert sorted(keys(s3, bucket, f"{out}{stem}-")) == sorted(names), \
        "the listing differs from the result"
    return d, names


def check_frames(s3, names, fixture, times, size=(320, 240), limit=12.0, bucket=BUCKET):
    assert len(names) == len(times), f"{len(names)} pictures, want {len(times)} ({times})"
    for name, t in zip(names, times):
        img = picture(s3, name, bucket)
        assert img.size == size, f"{name}: {img.size}"
        same_picture(img, fixture, t, limit=limit, what=name)


# ------------------------------------------------------------------ the modes

def test_interval_pictures_are_the_frames_at_start_plus_k_intervals(ci, s3, out):
    """Interval: Start, Start+TimeInterval, ... (1.5 s falls inside frame 37:
    the frame on screen, not the next one); names from ${Number} = 0; JPEG."""
    _, names = pictures(ci, s3, out, Mode="Interval", Start="1.5", TimeInterval="2.5", Count="3")
    assert names == numbered(out, "pic", 3)
    assert all(is_jpeg(read(s3, n)) for n in names)
    check_frames(s3, names, CLIP, [1.5, 4.0, 6.5])


def test_interval_stops_at_the_end_of_the_video(ci, s3, out):
    """Count is a maximum: 6, 7.5 and 9 s of a 10 s video, not 10.5 or 12."""
    _, names = pictures(ci, s3, out, Mode="Interval", Start="6", TimeInterval="1.5", Count="5")
    check_frames(s3, names, CLIP, [6, 7.5, 9])


def test_count_may_be_up_to_10000(ci, s3, out):
    """Count 10000 (the largest allowed) every second of a 10 s video: taken,
    and the job stops at the end with 10 pictures (0..9 s)."""
    _, names = pictures(ci, s3, out, Mode="Interval", Start="0", TimeInterval="1",
                        Count="10000", Width="128")
    check_frames(s3, names, CLIP, list(range(10)), size=(128, 96))


def test_interval_without_time_interval_takes_consecutive_frames(ci, s3, out):
    """No TimeInterval: Count consecutive frames from Start (frames 50-53);
    `.png` names make PNG (lossless: nearly equal to ffmpeg's frames)."""
    _, names = pictures(ci, s3, out, ext="png", Mode="Interval", Start="2", Count="4")
    assert all(is_png(read(s3, n)) for n in names)
    check_frames(s3, names, CLIP, [(50 + k) / 25 for k in range(4)], limit=4.0)


def test_average_spreads_count_pictures_from_start_to_the_end(ci, s3, out):
    """Average: picture k at Start + k*(duration-Start)/Count."""
    total = duration(CLIP)
    _, names = pictures(ci, s3, out, Mode="Average", Start="1", Count="3")
    check_frames(s3, names, CLIP, [1 + k * (total - 1) / 3 for k in range(3)])


def test_keyframe_mode_takes_the_keyframes_at_or_after_start(ci, s3, out):
    """KeyFrame: the keyframes (ffprobe's) at or after Start, Count at most."""
    expected = [t for t in keyframe_times(BLACK) if t >= 1.0]
    assert expected == [2.0, 3.4, 5.2], f"the fixture changed: {keyframe_times(BLACK)}"
    _, names = pictures(ci, s3, out, input_key="in/black.mp4", Mode="KeyFrame", Start="1",
                        Count="10")
    check_frames(s3, names, BLACK, expected)
    _, two = pictures(ci, s3, out, input_key="in/black.mp4", stem="two", Mode="KeyFrame",
                      Start="1", Count="2")
    check_frames(s3, two, BLACK, expected[:2])


@pytest.mark.parametrize("size, expected", [
    ({"Width": "160"}, (160, 120)),
    ({"Height": "180"}, (240, 180)),
    ({"Width": "200", "Height": "200"}, (200, 200)),
    ({"Width": "128", "Height": "4096"}, (128, 4096)),
], ids=["width", "height", "both", "limits"])
def test_width_or_height_alone_keeps_the_aspect_ratio_both_stretch(ci, s3, out, size, expected):
    """One dimension: the other follows the 4:3 source; both: stretched to
    exactly that size (the whole frame, no bars)."""
    _, names = pictures(ci, s3, out, Mode="Interval", Start="3", Count="1", **size)
    check_frames(s3, names, CLIP, [3], size=expected)
    if expected == (200, 200):
        img = picture(s3, names[0])
        letterboxed = Image.new("RGB", (200, 200))
        letterboxed.paste(frame_at(CLIP, 3, (200, 150)), (0, 25))
        assert mad(img, frame_at(CLIP, 3, (200, 200))) + 5 < mad(img, letterboxed), \
            "fitted with bars, not stretched"


def test_rotated_video_pictures_are_upright(ci, s3, out):
    """A video whose display matrix turns it 90 degrees: pictures as shown."""
    _, names = pictures(ci, s3, out, input_key="in/rotate90.mp4", Mode="Interval", Start="1",
                        Count="1")
    check_frames(s3, names, "rotate90.mp4", [1], size=(180, 320))


def test_is_check_count_switches_to_average_when_the_video_runs_out(ci, s3, out):
    """Every 4 s from 0, 5 pictures, of 10 s: 3 pictures (0, 4, 8) without
    IsCheckCount; with it, 5 spread evenly (0, 2, 4, 6, 8)."""
    _, plain = pictures(ci, s3, out, stem="plain", Mode="Interval", Start="0",
                        TimeInterval="4", Count="5")
    check_frames(s3, plain, CLIP, [0, 4, 8])
    _, checked = pictures(ci, s3, out, stem="checked", Mode="Interval", Start="0",
                          TimeInterval="4", Count="5", IsCheckCount="true")
    check_frames(s3, checked, CLIP, [0, 2, 4, 6, 8])


def test_black_frames_are_skipped_from_a_zero_start(ci, s3, out):
    """IsCheckBlack (default thresholds) with Start 0 on a video whose first
    2 s are pure black: the job starts at the first frame that is not black
    (2.0 s), and no picture is black. Without it the first picture is black."""
    _, control = pictures(ci, s3, out, input_key="in/black.mp4", stem="control",
                          Mode="Interval", Start="0", Count="1")
    assert mean_luma(picture(s3, control[0])) < 3, "the control picture is not black"
    _, names = pictures(ci, s3, out, input_key="in/black.mp4", Mode="Interval", Start="0",
                        TimeInterval="1", Count="3", IsCheckBlack="true")
    for name in names:
        assert mean_luma(picture(s3, name)) > 60, f"{name} is black"
    check_frames(s3, names, BLACK, [2.0, 3.0, 4.0])


def test_a_black_picture_is_replaced_by_the_next_frame_that_is_not(ci, s3, out):
    """Start 1 (black) and 4 s: the first is replaced by the first frame that
    is not black (2.0 s); BlackLevel and PixelBlackThreshold are taken."""
    _, names = pictures(ci, s3, out, input_key="in/black.mp4", Mode="Interval", Start="1",
                        TimeInterval="3", Count="2", IsCheckBlack="true", BlackLevel="90",
                        PixelBlackThreshold="20")
    check_frames(s3, names, BLACK, [2.0, 4.0])


# ------------------------------------------------------------------- sprites

def cell_box(margin, padding, cell, column, line):
    x = margin + column * (cell[0] + padding)
    y = margin + line * (cell[1] + padding)
    return (x, y, x + cell[0], y + cell[1])


def sheet_size(margin, padding, cell, columns, lines):
    return (2 * margin + columns * cell[0] + (columns - 1) * padding,
            2 * margin + lines * cell[1] + (lines - 1) * padding)


def check_background(sheet, margin, padding, cell, columns, lines, rgb, what):
    """Margins all round and the padding between cells have the colour."""
    w, h = sheet.size
    assert sheet.size == sheet_size(margin, padding, cell, columns, lines), (what, sheet.size)
    if margin:
        for box in ((0, 0, w, margin), (0, h - margin, w, h), (0, 0, margin, h),
                    (w - margin, 0, w, h)):
            assert_colour(sheet, box, rgb, f"{what} margin")
    if padding:
        for c in range(columns - 1):
            x = margin + (c + 1) * cell[0] + c * padding
            assert_colour(sheet, (x, margin, x + padding, h - margin), rgb, f"{what} padding")
        for line in range(lines - 1):
            y = margin + (line + 1) * cell[1] + line * padding
            assert_colour(sheet, (margin, y, w - margin, y + padding), rgb, f"{what} padding")


def test_only_sprite_sheets_geometry_colours_and_cells(ci, s3, out):
    """OnlySprite: 5 pictures (0..4 s) in 2x2 sheets of 80x60 cells, 6 px
    margin, 4 px padding, #FF0000: two sheets, the first 176x136, the last
    full width and one line (176x72) with its unused cell in the colour; no
    pictures written; every cell the right frame."""
    sprite = {"CellWidth": "80", "CellHeight": "60", "Padding": "4", "Margin": "6",
              "Color": "#FF0000", "Columns": "2", "Lines": "2"}
    d = run(ci, snapshot_request("in/clip.mp4", sprite_object=f"{out}sheet-${{Number}}.png",
                                 sprite=sprite, Mode="Interval", Start="0", TimeInterval="1",
                                 Count="5", SnapshotOutMode="OnlySprite"))
    sheets = sprite_names(d)
    assert sheets == numbered(out, "sheet", 2, "png"), sheets
    assert output_names(d) == []
    assert sorted(keys(s3, prefix=out)) == sheets, "OnlySprite wrote something else"
    first, last = picture(s3, sheets[0]), picture(s3, sheets[1])
    assert is_png(read(s3, sheets[0]))
    check_background(first, 6, 4, (80, 60), 2, 2, RED, "sheet 0")
    check_background(last, 6, 4, (80, 60), 2, 1, RED, "sheet 1")
    for k in range(5):
        sheet = first if k < 4 else last
        box = cell_box(6, 4, (80, 60), k % 2, (k % 4) // 2)
        same_picture(sheet.crop(box), CLIP, k, what=f"cell {k}")
    assert_colour(last, cell_box(6, 4, (80, 60), 1, 0), RED, "the unused cell")


def test_snapshot_and_sprite_writes_pictures_and_sheets(ci, s3, out):
    """SnapshotAndSprite: the pictures (160x120) and one 3x1 sheet whose
    cells default to the picture size, colour given by name (White)."""
    sprite = {"Padding": "2", "Margin": "0", "Color": "White", "Columns": "3", "Lines": "1"}
    d = run(ci, snapshot_request("in/clip.mp4", f"{out}pic-${{Number}}.jpg",
                                 sprite_object=f"{out}sheet-${{Number}}.png", sprite=sprite,
                                 Mode="Interval", Start="1", TimeInterval="2", Count="3",
                                 Width="160", SnapshotOutMode="SnapshotAndSprite"))
    names, sheets = output_names(d), sprite_names(d)
    assert names == numbered(out, "pic", 3) and sheets == numbered(out, "sheet", 1, "png")
    assert sorted(keys(s3, prefix=out)) == sorted(names + sheets)
    check_frames(s3, names, CLIP, [1, 3, 5], size=(160, 120))
    sheet = picture(s3, sheets[0])
    check_background(sheet, 0, 2, (160, 120), 3, 1, WHITE, "sheet")
    for k, t in enumerate([1, 3, 5]):
        same_picture(sheet.crop(cell_box(0, 2, (160, 120), k, 0)), CLIP, t, what=f"cell {k}")


@pytest.mark.parametrize("method", ["DirectScale", "MaxWHScaleAndPad", "MaxWHScale"])
def test_sprite_scale_methods(ci, s3, out, method):
    """4:3 pictures into 100x100 cells (colour 0x0000FF): DirectScale
    stretches; MaxWHScaleAndPad fits 100x75 centred on the colour;
    MaxWHScale fits and shrinks the cells to 100x75 (a shorter sheet)."""
    sprite = {"CellWidth": "100", "CellHeight": "100", "Padding": "2", "Margin": "2",
              "Color": "0x0000FF", "Columns": "2", "Lines": "1", "ScaleMethod": method}
    d = run(ci, snapshot_request("in/clip.mp4", sprite_object=f"{out}sheet-${{Number}}.png",
                                 sprite=sprite, Mode="Interval", Start="1", TimeInterval="4",
                                 Count="2", SnapshotOutMode="OnlySprite"))
    [name] = sprite_names(d)
    sheet = picture(s3, name)
    cell = (100, 75) if method == "MaxWHScale" else (100, 100)
    check_background(sheet, 2, 2, cell, 2, 1, BLUE, method)
    for k, t in enumerate([1, 5]):
        got = sheet.crop(cell_box(2, 2, cell, k, 0))
        if method != "MaxWHScaleAndPad":
            same_picture(got, CLIP, t, what=f"{method} cell {k}")
            continue
        # 75 rows of picture, 12 or 13 rows of colour above and below.
        assert_colour(got, (0, 0, 100, 12), BLUE, "the bar above")
        assert_colour(got, (0, 88, 100, 100), BLUE, "the bar below")
        want = frame_at(CLIP, t, (100, 75))
        top = min((12, 13), key=lambda y: mad(got.crop((0, y, 100, y + 75)), want))
        same_picture(got.crop((0, top, 100, top + 75)), CLIP, t, what=f"{method} cell {k}")


# ----------------------------------------------------------------- outputs

def test_output_into_another_bucket(ci, s3, out):
    """Output.Bucket names another bucket of the gateway: the pictures are
    there (and not in the input's bucket), and the result says so."""
    d, names = pictures(ci, s3, out, bucket=OTHER, Mode="Interval", Start="2", Count="2",
                        TimeInterval="3")
    assert result_file(d).get("Bucket") == OTHER
    assert keys(s3, BUCKET, out) == []
    check_frames(s3, names, CLIP, [2, 5], bucket=OTHER)


def test_an_output_bucket_the_credential_may_not_write_is_refused(gw, s3, out):
    """A credential that may do everything on BUCKET only: its job into
    BUCKET runs; into OTHER it is refused with 403 AccessDenied, and no job
    or object appears."""
    limited = client(gw, "vhost", MAIN_ONLY_ID, MAIN_ONLY_KEY)
    run(limited, snapshot_request("in/clip.mp4", f"{out}mine.jpg", Count="1"))
    assert keys(s3, BUCKET, out) == [f"{out}mine.jpg"]
    admin = client(gw, "vhost")
    jobs_before = all_job_ids(admin)
    e = expect_error(limited.ci_create_media_jobs, Bucket=BUCKET, Lst={}, Jobs=snapshot_request(
        "in/clip.mp4", f"{out}theirs.jpg", output_bucket=OTHER, Count="1"))
    check_error(e, 403, "AccessDenied")
    assert all_job_ids(admin) == jobs_before
    assert keys(s3, OTHER, out) == []


def test_a_single_picture_needs_no_number(ci, s3, out):
    """Count 1: the name is used as it is."""
    d = run(ci, snapshot_request("in/clip.mp4", f"{out}cover.jpg", Start="7", Count="1"))
    assert output_names(d) == [f"{out}cover.jpg"]
    check_frames(s3, [f"{out}cover.jpg"], CLIP, [7])


def test_media_bucket_lists_every_bucket(ci):
    """ci_get_media_bucket: both buckets of the gateway, in its region."""
    response = ci.ci_get_media_bucket()
    found = response.get("MediaBucketList")
    assert isinstance(found, list), response
    assert sorted(b.get("BucketId") or b.get("Name") for b in found) == sorted([BUCKET, OTHER])
    assert all(b.get("Region") == REGION for b in found), found


# --------------------------------------------------------- the job document

def test_jobs_detail_describes_the_job(gw, ci, s3, out):
    """JobsDetail: JobId j+32 hex, Tag, State Success, Code Success,
    Progress 100, ISO 8601 times in order, the bucket's QueueId and
    QueueType Common, Input{Object, Region, BucketId}, the Snapshot and
    Output as submitted, UserData (escaped characters included) and JobLevel
    echoed, MediaInfo, MediaResult.OutputFile{Bucket, Region, ObjectName
    list}. The same document through the Domain client and the CI host."""
    user_data = f"user <data> & 'quotes' ✓ {uuid.uuid4().hex}"
    request = snapshot_request("in/clip.mp4", f"{out}d-${{Number}}.jpg", user_data=user_data,
                               job_level=1, Mode="Interval", Start="1", TimeInterval="2",
                               Count="2")
    created = submit(ci, request)
    assert created["Tag"] == "Snapshot" and created["State"] in ("Submitted", "Running"), created
    assert created["Input"]["Object"] == "in/clip.mp4"
    d = wait_job(ci, created["JobId"])
    assert (d["State"], d["Code"], int(d["Progress"]), d["Tag"]) == ("Success", "Success", 100,
                                                                      "Snapshot"), d
    assert JOB_ID.fullmatch(d["JobId"]) and d["JobId"] == created["JobId"]
    times = [parse_time(d[f]) for f in ("CreationTime", "StartTime", "EndTime")]
    assert times == sorted(times), times
    assert abs(times[0] - parse_time(created["CreationTime"])) < timedelta(seconds=1)
    assert abs(times[2] - datetime.now(timezone.utc)) < timedelta(minutes=2)
    assert d["QueueId"] == queue(ci)["QueueId"] and QUEUE_ID.fullmatch(d["QueueId"])
    assert d["QueueType"] == "Common"
    assert (d["Input"]["Object"], d["Input"]["Region"], d["Input"]["BucketId"]) == \
        ("in/clip.mp4", REGION, BUCKET)
    op = d["Operation"]
    assert op["UserData"] == user_data
    assert int(op["JobLevel"]) == 1
    assert (op["Output"]["Bucket"], op["Output"]["Region"], op["Output"]["Object"]) == \
        (BUCKET, REGION, f"{out}d-${{Number}}.jpg")
    snap = op["Snapshot"]
    assert (snap["Mode"], float(snap["Start"]), float(snap["TimeInterval"]),
            int(snap["Count"])) == ("Interval", 1, 2, 2), snap
    assert op.get("MediaInfo"), "no MediaInfo"
    assert "320" in str(op["MediaInfo"]) and "240" in str(op["MediaInfo"]), op["MediaInfo"]
    result = result_file(d)
    assert (result["Bucket"], result["Region"]) == (BUCKET, REGION)
    assert output_names(d) == numbered(out, "d", 2)
    check_frames(s3, output_names(d), CLIP, [1, 3])
    for other in (client(gw, "domain"), client(gw, "ci")):
        again = job(other, d["JobId"])
        assert (again["State"], output_names(again), again["Operation"]["UserData"]) == \
            ("Success", output_names(d), user_data)


def test_undecodable_input_fails_the_job_without_outputs(ci, s3, out):
    """An input that exists but is no video: accepted, then Failed with an
    error Code and a Message; no picture appears."""
    created = submit(ci, snapshot_request("in/notes.txt", f"{out}p-${{Number}}.jpg",
                                          Mode="Interval", Start="0", Count="2"))
    d = wait_job(ci, created["JobId"])
    assert d["State"] == "Failed", d
    assert d.get("Code") and d["Code"] != "Success" and d.get("Message"), d
    parse_time(d["EndTime"])
    assert output_names(d) == []
    assert keys(s3, prefix=out) == []


def test_job_level_orders_the_queue(ci, out):
    """With the queue paused, jobs of level 0, 2 and 1 wait; resumed, the one
    worker takes them highest level first."""
    heavy = dict(Mode="Interval", Start="0", Count="6", Width="1280", Height="960")
    set_queue(ci, "Paused")
    try:
        low = submit(ci, snapshot_request("in/clip.mp4", f"{out}low-${{Number}}.png",
                                          job_level=0, **heavy))["JobId"]
        high = submit(ci, snapshot_request("in/clip.mp4", f"{out}high-${{Number}}.png",
                                           job_level=2, **heavy))["JobId"]
        mid = submit(ci, snapshot_request("in/clip.mp4", f"{out}mid-${{Number}}.png",
                                          job_level=1, **heavy))["JobId"]
        details, _ = get_jobs(ci, [low, high, mid])
        assert [d["State"] for d in details] == ["Submitted"] * 3, details
        assert [int(d["Operation"]["JobLevel"]) for d in details] == [0, 2, 1]
    finally:
        set_queue(ci, "Active")
    started: list[str] = []
    deadline = time.monotonic() + 90
    while len(started) < 3:
        assert time.monotonic() < deadline, f"started so far: {started}"
        details, _ = get_jobs(ci, [low, high, mid])
        fresh = [d for d in details if d["State"] != "Submitted" and d["JobId"] not in started]
        # One worker: a job already ended started before one still running.
        fresh.sort(key=lambda d: (d["State"] not in ENDED, d.get("StartTime") or ""))
        started += [d["JobId"] for d in fresh]
        time.sleep(0.01)
    assert started == [high, mid, low], {high: "high", mid: "mid", low: "low"}
    for job_id in (high, mid, low):
        assert wait_job(ci, job_id)["State"] == "Success"


# ------------------------------------------------------------ refusals

def without(path: str):
    def mutate(r):
        *parents, last = path.split(".")
        node = r
        for p in parents:
            node = node[p]
        del node[last]
    return mutate


def setting(path: str, value):
    def mutate(r):
        *parents, last = path.split(".")
        node = r
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = copy.deepcopy(value)
    return mutate


def both(*mutations):
    def mutate(r):
        for m in mutations:
            m(r)
    return mutate


SNAP = "Operation.Snapshot."
SPRITE = SNAP + "SpriteSnapshotConfig."
GOOD_SPRITE = {"Color": "black", "Columns": "2", "Lines": "1"}
AS_SPRITE = both(setting(SNAP + "SnapshotOutMode", "SnapshotAndSprite"),
                 setting("Operation.Output.SpriteObject", "x/sheet-${Number}.jpg"),
                 setting(SNAP + "SpriteSnapshotConfig", GOOD_SPRITE))

BAD = [
    ("count-0", setting(SNAP + "Count", "0"), "Operation.Snapshot.Count"),
    ("count-10001", setting(SNAP + "Count", "10001"), "Operation.Snapshot.Count"),
    ("count-missing", without(SNAP + "Count"), "Operation.Snapshot.Count"),
    ("count-text", setting(SNAP + "Count", "two"), "Operation.Snapshot.Count"),
    ("width-100", setting(SNAP + "Width", "100"), "Operation.Snapshot.Width"),
    ("width-5000", setting(SNAP + "Width", "5000"), "Operation.Snapshot.Width"),
    ("height-127", setting(SNAP + "Height", "127"), "Operation.Snapshot.Height"),
    ("mode", setting(SNAP + "Mode", "Fancy"), "Operation.Snapshot.Mode"),
    ("start-negative", setting(SNAP + "Start", "-1"), "Operation.Snapshot.Start"),
    ("interval-0", setting(SNAP + "TimeInterval", "0"), "Operation.Snapshot.TimeInterval"),
    ("interval-3601", setting(SNAP + "TimeInterval", "3601"), "Operation.Snapshot.TimeInterval"),
    ("is-check-black", setting(SNAP + "IsCheckBlack", "maybe"), "Operation.Snapshot.IsCheckBlack"),
    ("is-check-count", setting(SNAP + "IsCheckCount", "1x"), "Operation.Snapshot.IsCheckCount"),
    ("black-level-29", both(setting(SNAP + "IsCheckBlack", "true"),
                            setting(SNAP + "BlackLevel", "29")), "Operation.Snapshot.BlackLevel"),
    ("pixel-threshold-256", both(setting(SNAP + "IsCheckBlack", "true"),
                                 setting(SNAP + "PixelBlackThreshold", "256")),
     "Operation.Snapshot.PixelBlackThreshold"),
    ("out-mode", setting(SNAP + "SnapshotOutMode", "Both"), "Operation.Snapshot.SnapshotOutMode"),
    ("ciparam", setting(SNAP + "CIParam", "imageMogr2/thumbnail/100x"),
     "Operation.Snapshot.CIParam"),
    ("no-number", setting("Operation.Output.Object", "x/flat.jpg"), "Operation.Output.Object"),
    ("no-object", without("Operation.Output.Object"), "Operation.Output.Object"),
    ("no-bucket", without("Operation.Output.Bucket"), "Operation.Output.Bucket"),
    ("no-region", without("Operation.Output.Region"), "Operation.Output.Region"),
    ("no-input", without("Input.Object"), "Input.Object"),
    ("template-and-snapshot", setting("Operation.TemplateId", new_id("t")),
     "Operation.TemplateId"),
    ("tag", setting("Tag", "Snapshots"), "Tag"),
    ("no-tag", without("Tag"), "Tag"),
    ("user-data-1025", setting("Operation.UserData", "u" * 1025), "Operation.UserData"),
    ("job-level-3", setting("Operation.JobLevel", "3"), "Operation.JobLevel"),
    ("callback-url", setting("CallBack", "ftp://127.0.0.1/cb"), "CallBack"),
    ("callback-format", setting("CallBackFormat", "YAML"), "CallBackFormat"),
    ("callback-type-tdmq", setting("CallBackType", "TDMQ"), "CallBackType"),
    ("sprite-no-sprite-object", both(AS_SPRITE, without("Operation.Output.SpriteObject")),
     "Operation.Output.SpriteObject"),
    ("sprite-object-no-number", both(AS_SPRITE, setting("Operation.Output.SpriteObject",
                                                        "x/sheet.jpg"), setting(SNAP + "Count", "5")),
     "Operation.Output.SpriteObject"),
    ("only-sprite-no-sprite-object", both(AS_SPRITE, setting(SNAP + "SnapshotOutMode", "OnlySprite"),
                                          without("Operation.Output.SpriteObject")),
     "Operation.Output.SpriteObject"),
    ("sprite-no-color", both(AS_SPRITE, without(SPRITE + "Color")),
     "Operation.Snapshot.SpriteSnapshotConfig.Color"),
    ("sprite-bad-color", both(AS_SPRITE, setting(SPRITE + "Color", "notacolour")),
     "Operation.Snapshot.SpriteSnapshotConfig.Color"),
    ("sprite-bad-hex", both(AS_SPRITE, setting(SPRITE + "Color", "#12345G")),
     "Operation.Snapshot.SpriteSnapshotConfig.Color"),
    ("sprite-columns-0", both(AS_SPRITE, setting(SPRITE + "Columns", "0")),
     "Operation.Snapshot.SpriteSnapshotConfig.Columns"),
    ("sprite-no-lines", both(AS_SPRITE, without(SPRITE + "Lines")),
     "Operation.Snapshot.SpriteSnapshotConfig.Lines"),
    ("sprite-padding-1025", both(AS_SPRITE, setting(SPRITE + "Padding", "1025")),
     "Operation.Snapshot.SpriteSnapshotConfig.Padding"),
    ("sprite-margin-negative", both(AS_SPRITE, setting(SPRITE + "Margin", "-1")),
     "Operation.Snapshot.SpriteSnapshotConfig.Margin"),
    ("sprite-cell-width-7", both(AS_SPRITE, setting(SPRITE + "CellWidth", "7")),
     "Operation.Snapshot.SpriteSnapshotConfig.CellWidth"),
    ("sprite-scale-method", both(AS_SPRITE, setting(SPRITE + "ScaleMethod", "Zoom")),
     "Operation.Snapshot.SpriteSnapshotConfig.ScaleMethod"),
]

MISSING = [
    ("no-such-key", setting("Input.Object", "in/missing.mp4"), "NoSuchKey"),
    ("no-such-template", both(without("Operation.Snapshot"),
                              setting("Operation.TemplateId", new_id("t"))), "NoSuchTemplate"),
    ("no-such-queue", setting("QueueId", new_id("p")), "NoSuchQueue"),
    ("no-such-bucket", setting("Operation.Output.Bucket", "nowhere-1250000000"), "NoSuchBucket"),
]


def newest_jobs(ci) -> list[str]:
    """The ids of the three newest jobs (a new job would be the first)."""
    return [d["JobId"] for d in list_jobs(ci, OrderByTime="Desc", States="All", Size=3)[0]]


def refused(ci, s3, request) -> "CiError":
    """Submits a request that must be refused; no job and no object may
    appear (in either bucket)."""
    jobs_before = newest_jobs(ci)
    objects_before = (listing(s3, BUCKET), listing(s3, OTHER))
    e = expect_error(ci.ci_create_media_jobs, Bucket=BUCKET, Jobs=request, Lst={})
    assert newest_jobs(ci) == jobs_before, "a refused submission left a job"
    assert (listing(s3, BUCKET), listing(s3, OTHER)) == objects_before, \
        "a refused submission wrote something"
    return e


def base_request(out: str) -> dict:
    return snapshot_request("in/clip.mp4", f"{out}bad-${{Number}}.jpg", Mode="Interval",
                            Start="0", TimeInterval="1", Count="2")


@pytest.mark.parametrize("mutate, field", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_submissions_are_refused_naming_the_field(ci, s3, out, mutate, field):
    """400 InvalidArgument whose message names the field; nothing left."""
    request = base_request(out)
    mutate(request)
    check_error(refused(ci, s3, request), 400, "InvalidArgument", field)


@pytest.mark.parametrize("mutate, code", [m[1:] for m in MISSING], ids=[m[0] for m in MISSING])
def test_submissions_naming_what_does_not_exist_get_404(ci, s3, out, mutate, code):
    """A missing input object, template, queue or output bucket: 404 with
    the code that says which; nothing left."""
    request = base_request(out)
    mutate(request)
    check_error(refused(ci, s3, request), 404, code)


@pytest.mark.parametrize("body", [
    b'<?xml version="1.0"?><Request><Tag>Snapshot</Tag><Input><Object>in/clip.mp4</Object>',
    b"Tag=Snapshot&Input.Object=in/clip.mp4",
    b"",
], ids=["truncated", "not-xml", "empty"])
def test_malformed_xml_is_refused(gw, ci, s3, body):
    """POST /jobs whose body is not a Request document (sent raw, signed like
    the COS client, to the bucket's object host): 400 MalformedXML, as COS
    answers an XML body it cannot parse."""
    jobs_before = all_job_ids(ci)
    before = listing(s3, BUCKET)
    r = raw(gw, "POST", "/jobs", data=body, host=f"{BUCKET}.cos.{REGION}.{DOMAIN}",
            headers={"Content-Type": "application/xml"})
    check_error(parse_error(r.status_code, r.content), 400, "MalformedXML")
    assert all_job_ids(ci) == jobs_before and listing(s3, BUCKET) == before


# ------------------------------------------------------------ get and list

def quick(ci, out, stem, **kw) -> str:
    return submit(ci, snapshot_request("in/clip.mp4", f"{out}{stem}.jpg", Start="1", Count="1",
                                       **kw))["JobId"]


def test_get_several_jobs_lists_the_unknown_ones(ci, out):
    """GET /jobs/<a>,<b>,<c>: the known jobs' documents, the unknown ids in
    NonExistJobIds (one of them: a plain string in the SDK's dict)."""
    a, b = quick(ci, out, "a"), quick(ci, out, "b")
    unknown1, unknown2 = new_id("j"), new_id("j")
    details, missing = get_jobs(ci, [a, unknown1, b, unknown2])
    assert sorted(d["JobId"] for d in details) == sorted([a, b])
    assert sorted(missing) == sorted([unknown1, unknown2])
    details, missing = get_jobs(ci, [unknown1])
    assert details == [] and missing == [unknown1]
    for job_id in (a, b):
        wait_job(ci, job_id)


def test_list_filters_orders_and_pages(ci, out):
    """GET /jobs: newest first by default (Desc) and oldest first with Asc,
    jobs of one second in submission order; states filters; size and
    nextToken page through everything exactly once (NextToken empty on the
    last page); creation-time windows; out-of-range parameters refused."""
    mine = [quick(ci, out, f"l{k}", user_data=f"list-{k}") for k in range(3)]
    for job_id in mine:
        assert wait_job(ci, job_id)["State"] == "Success"
    newest, _ = list_jobs(ci, OrderByTime="Desc", States="All", Size=3)
    assert [d["JobId"] for d in newest] == mine[::-1]
    everything_desc = []
    token, pages = "", 0
    while True:
        page, token = list_jobs(ci, OrderByTime="Desc", States="All", Size=2, NextToken=token)
        assert 1 <= len(page) <= 2, page
        everything_desc += [d["JobId"] for d in page]
        pages += 1
        if not token:
            break
        assert pages < 500
    assert len(everything_desc) == len(set(everything_desc)), "a job listed twice"
    everything_asc = all_job_ids(ci, size=3)
    assert sorted(everything_asc) == sorted(everything_desc)
    positions = [everything_asc.index(j) for j in mine]
    assert positions == sorted(positions), "Asc is not in submission order"
    created = [parse_time(d["CreationTime"]) for d in
               list_jobs(ci, OrderByTime="Asc", States="All", Size=100)[0]]
    assert created == sorted(created)

    done, _ = list_jobs(ci, States="Success", Size=100)
    assert {d["State"] for d in done} == {"Success"} and set(mine) <= {d["JobId"] for d in done}
    cancelled, _ = list_jobs(ci, States="Cancel,Failed", Size=100)
    assert {d["State"] for d in cancelled} <= {"Cancel", "Failed"}
    assert not set(mine) & {d["JobId"] for d in cancelled}

    now = datetime.now(timezone.utc)
    fmt = "%Y-%m-%dT%H:%M:%S+00:00"
    later, _ = list_jobs(ci, StartCreationTime=(now + timedelta(hours=1)).strftime(fmt), Size=100)
    assert later == []
    earlier, _ = list_jobs(ci, EndCreationTime=(now - timedelta(days=3650)).strftime(fmt), Size=100)
    assert earlier == []
    window, _ = list_jobs(ci, StartCreationTime=(now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                          EndCreationTime=(now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                          Size=100)
    assert set(mine) <= {d["JobId"] for d in window}
    by_queue, _ = list_jobs(ci, QueueId=queue(ci)["QueueId"], Size=100)
    assert set(mine) <= {d["JobId"] for d in by_queue}

    for kw, field in (({"Size": 0}, "size"), ({"Size": 101}, "size"),
                      ({"OrderByTime": "Sideways"}, "orderByTime"),
                      ({"States": "Sleeping"}, "states")):
        e = expect_error(ci.ci_list_media_jobs, Bucket=BUCKET, Tag="Snapshot", **kw)
        check_error(e, 400, "InvalidArgument", field)


# ------------------------------------------------------------------ cancel

def test_cancelling_a_queued_job_means_it_never_runs(ci, s3, out):
    """A job waiting in a paused queue, cancelled: State Cancel at once, and
    after the queue resumes it still never starts and writes nothing."""
    set_queue(ci, "Paused")
    try:
        job_id = submit(ci, snapshot_request("in/clip.mp4", f"{out}q-${{Number}}.jpg",
                                             Mode="Interval", Start="0", Count="3"))["JobId"]
        assert job(ci, job_id)["State"] == "Submitted"
        assert ci.ci_cancel_jobs(Bucket=BUCKET, JobID=job_id) == ""
        assert job(ci, job_id)["State"] == "Cancel"
    finally:
        set_queue(ci, "Active")
    time.sleep(1.5)
    d = job(ci, job_id)
    assert d["State"] == "Cancel", d
    assert not d.get("StartTime"), f"a cancelled queued job started: {d}"
    assert d.get("Progress") in (None, "0"), d
    assert output_names(d) == [] and keys(s3, prefix=out) == []
    check_error(expect_error(ci.ci_cancel_jobs, Bucket=BUCKET, JobID=job_id), 409,
                "InvalidJobState")


def heavy_request(out, input_key="in/clip.mp4", count=40) -> dict:
    """Seconds of work: `count` 1280x960 PNGs."""
    return snapshot_request(input_key, f"{out}h-${{Number}}.png", Mode="Average", Start="0",
                            Count=str(count), Width="1280", Height="960")


def test_cancelling_a_running_job_stops_it_and_removes_its_outputs(ci, s3, out):
    """A job cancelled after it has made pictures ends in Cancel soon, and
    none of its pictures is visible (not under its names, nowhere else)."""
    before = (listing(s3, BUCKET), listing(s3, OTHER))
    job_id = submit(ci, heavy_request(out))["JobId"]
    wait_until(ci, job_id, lambda d: d["State"] == "Running" and int(d.get("Progress") or 0) > 0,
               "progress")
    asked = time.monotonic()
    ci.ci_cancel_jobs(Bucket=BUCKET, JobID=job_id)
    d = wait_job(ci, job_id, timeout=20)
    assert d["State"] == "Cancel", d
    assert time.monotonic() - asked < 10, "the job did not stop before its next picture"
    assert int(d.get("Progress") or 0) < 100
    assert output_names(d) == []
    time.sleep(0.5)
    assert keys(s3, prefix=out) == []
    assert (listing(s3, BUCKET), listing(s3, OTHER)) == before, "staged pictures became visible"


def test_cancelling_an_ended_or_unknown_job_is_refused(ci, out):
    """An ended job: 409 InvalidJobState (and it stays Success); an unknown
    one: 404 NoSuchJob."""
    job_id = quick(ci, out, "done")
    assert wait_job(ci, job_id)["State"] == "Success"
    check_error(expect_error(ci.ci_cancel_jobs, Bucket=BUCKET, JobID=job_id), 409,
                "InvalidJobState")
    assert job(ci, job_id)["State"] == "Success"
    check_error(expect_error(ci.ci_cancel_jobs, Bucket=BUCKET, JobID=new_id("j")), 404,
                "NoSuchJob")


# ----------------------------------------------------------------- restart

@pytest.mark.parametrize("queue", ["sqlite", "postgres"])
def test_a_job_interrupted_by_kill_9_completes_exactly_once(gateway_factory, request, queue):
    """kill -9 while a job runs (and another waits); the gateway restarted on
    the same data dir finishes both: Success, exactly the pictures asked for
    under their names (no duplicates, no leftovers), each job listed once."""
    if queue == "postgres":
        # A database of its own: this module's gateway still uses the shared one
        # (queue_store would drop it under that gateway's feet).
        server = request.getfixturevalue("postgres")
        server.psql('DROP DATABASE IF EXISTS "ci_kill9" WITH (FORCE)', 'CREATE DATABASE "ci_kill9"',
                    database="postgres")
        store = server.url.rsplit("/", 1)[0] + "/ci_kill9"
    else:
        store = queue_store(queue, request)
    gw = gateway_factory.start("file", f"ci-kill9-{queue}", extra=jobs_toml(store, workers=1))
    upload(gw, "in/clip.mp4", CLIP)
    ci = client(gw, "vhost")
    running = submit(ci, heavy_request("out/run/", count=24))["JobId"]
    waiting = submit(ci, snapshot_request("in/clip.mp4", "out/wait/w-${Number}.jpg",
                                          Mode="Interval", Start="1", TimeInterval="1",
                                          Count="3"))["JobId"]
    wait_until(ci, running, lambda d: d["State"] == "Running" and
               0 < int(d.get("Progress") or 0) < 60, "progress under 60")
    assert job(ci, waiting)["State"] == "Submitted"
    gw.proc.kill()
    gw.proc.wait()
    gw.start()
    ci, s3 = client(gw, "vhost"), support.boto3_client(gw)
    d = wait_job(ci, running, timeout=120)
    assert (d["State"], int(d["Progress"])) == ("Success", 100), d
    names = [f"out/run/h-{k}.png" for k in range(24)]
    assert output_names(d) == names
    w = wait_job(ci, waiting)
    assert w["State"] == "Success" and output_names(w) == [f"out/wait/w-{k}.jpg" for k in range(3)]
    assert sorted(keys(s3, prefix="out/")) == sorted(names + output_names(w))
    assert sorted(keys(s3)) == sorted(names + output_names(w) + ["in/clip.mp4"]), \
        "something else is visible in the bucket"
    for name, t in ((names[0], 0.0), (names[23], 23 * 10 / 24)):
        same_picture(picture(s3, name), CLIP, t, limit=10.0, what=name)
    listed = all_job_ids(ci)
    assert sorted(listed) == sorted([running, waiting]), listed
