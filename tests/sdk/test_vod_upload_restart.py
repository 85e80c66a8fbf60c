"""VOD uploads across gateways: a CommitUpload acknowledged before `kill -9`
has started its procedure once (SQLite and PostgreSQL); a commit recorded
but stopped before its procedure was queued is resumed at the next start,
once; and two gateways on one PostgreSQL store accept each other's
sessions and temporary credentials."""

from __future__ import annotations

import sqlite3

import pytest

from conftest import queue_store
from jobs_support import FIXTURES, call, fetch, vod
from upload_support import (MEDIA_BUCKET, PROCEDURE, VIDEO, check_thumbnail, create_procedure,
                            file_id, start_gateway, tasks_of, temp_cos, wait_until)


@pytest.mark.parametrize("queue", ["sqlite", "postgres"])
def test_a_commit_acknowledged_before_kill_9_starts_its_procedure_once(gateway_factory,
                                                                       request, queue):
    store = queue_store(queue, request)
    first = start_gateway(gateway_factory, f"upload-kill9-{queue}", store)
    client = vod(first)
    create_procedure(client)
    answer = call(client, "ApplyUpload", {"MediaType": "mp4", "Procedure": PROCEDURE,
                                          "SessionContext": "before the crash"})
    temp_cos(first, answer).put_object(Bucket=MEDIA_BUCKET, Key=answer.MediaStoragePath,
                                       Body=(FIXTURES / VIDEO).read_bytes())
    committed = call(client, "CommitUpload", {"VodSessionKey": answer.VodSessionKey})
    first.proc.kill()
    first.proc.wait()
    first.start()
    client = vod(first)
    [task] = tasks_of(client, committed.FileId)
    check_thumbnail(client, task.TaskId, "before the crash")
    again = call(client, "CommitUpload", {"VodSessionKey": answer.VodSessionKey})
    assert again.FileId == committed.FileId
    assert [t.TaskId for t in tasks_of(client, committed.FileId)] == [task.TaskId]


def test_a_commit_interrupted_before_its_procedure_was_queued_is_resumed(gateway_factory):
    # A gateway killed between recording a commit and queuing its procedure
    # leaves the session committed with its start pending: the store is put
    # in that state by hand, and the next start queues the procedure once.
    first = start_gateway(gateway_factory, "upload-resume-a", "sqlite")
    client = vod(first)
    create_procedure(client)
    answer = call(client, "ApplyUpload", {"MediaType": "mp4", "Procedure": PROCEDURE})
    temp_cos(first, answer).put_object(Bucket=MEDIA_BUCKET, Key=answer.MediaStoragePath,
                                       Body=(FIXTURES / VIDEO).read_bytes())
    assert first.stop() == 0
    data = first.config.parent / "data"
    with sqlite3.connect(data / "jobs.sqlite3") as db:
        changed = db.execute(
            "UPDATE fg_vod_uploads SET state = 'committed', start_pending = 1, "
            "committed_ms = CAST(strftime('%s', 'now') AS INTEGER) * 1000 "
            "WHERE session_key = ?", (answer.VodSessionKey,)).rowcount
    assert changed == 1
    gw = start_gateway(gateway_factory, "upload-resume-b", "sqlite", data_dir=data)
    client = vod(gw)
    fid = file_id(MEDIA_BUCKET, answer.MediaStoragePath[1:])
    wait_until(lambda: tasks_of(client, fid), "queued")
    [task] = tasks_of(client, fid)
    check_thumbnail(client, task.TaskId)
    with sqlite3.connect(data / "jobs.sqlite3") as db:
        [(pending,)] = db.execute("SELECT start_pending FROM fg_vod_uploads WHERE session_key = ?",
                                  (answer.VodSessionKey,)).fetchall()
    assert pending == 0
    committed = call(client, "CommitUpload", {"VodSessionKey": answer.VodSessionKey})
    assert committed.FileId == fid
    assert [t.TaskId for t in tasks_of(client, fid)] == [task.TaskId]
    assert "resuming the procedure of a committed upload" in gw.stderr_log.read_text()


def test_a_fleet_shares_sessions_and_temporary_credentials(gateway_factory, request, tmp_path):
    store = queue_store("postgres", request)
    media = f"file://{tmp_path / 'media'}"
    first = start_gateway(gateway_factory, "upload-fleet-a", store, media_store=media)
    second = start_gateway(gateway_factory, "upload-fleet-b", store, media_store=media)
    create_procedure(vod(first))
    answer = call(vod(first), "ApplyUpload", {"MediaType": "mp4", "Procedure": PROCEDURE})
    video = (FIXTURES / VIDEO).read_bytes()
    # Issued by the first gateway, accepted by the second.
    temp_cos(second, answer).put_object(Bucket=MEDIA_BUCKET, Key=answer.MediaStoragePath,
                                        Body=video)
    client = vod(second)
    committed = call(client, "CommitUpload", {"VodSessionKey": answer.VodSessionKey})
    assert committed.FileId == file_id(MEDIA_BUCKET, answer.MediaStoragePath[1:])
    assert fetch(committed.MediaUrl) == video
    again = call(vod(first), "CommitUpload", {"VodSessionKey": answer.VodSessionKey})
    assert again.FileId == committed.FileId
    [task] = tasks_of(client, committed.FileId)
    check_thumbnail(client, task.TaskId)
