"""``kill -9`` in the middle of an upload: nothing half-visible, nothing acknowledged lost.

(Ingestion and streamed responses killed mid-way are covered where those features are tested:
``test_vector_stores_api.test_restart_keeps_everything_and_resumes`` and
``test_responses_api.test_interrupted_stream_is_failed_after_restart`` / ``test_background_job_survives_a_crash``.)
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from vistack.testing.replay_server import replay_distribution
from vistack.testing.server import ServerProcess

pytestmark = pytest.mark.slow


def test_kill_during_upload_leaves_no_partial_file(tmp_path):
    script = tmp_path / "script.jsonl"
    script.write_text("")
    dist = replay_distribution(script, name="crash", responses=False)
    with ServerProcess(dist, tmp_path / "srv") as server:
        with httpx.Client(base_url=server.base_url, timeout=60) as http:
            kept = http.post("/v1/files", data={"purpose": "assistants"},
                             files={"file": ("kept.txt", b"acknowledged bytes", "text/plain")})
            assert kept.status_code == 200
            kept_id = kept.json()["id"]

        sent = threading.Event()

        def slow_body():
            yield b"--b\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nassistants\r\n"
            yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n"
            yield b"Content-Type: application/octet-stream\r\n\r\n"
            for _ in range(200):
                yield b"x" * 65536
                sent.set()
                time.sleep(0.02)
            yield b"\r\n--b--\r\n"

        def upload() -> None:
            try:
                httpx.post(f"{server.base_url}/v1/files", content=slow_body(), timeout=30,
                           headers={"Content-Type": "multipart/form-data; boundary=b"})
            except httpx.HTTPError:
                pass  # the server died under it: expected

        thread = threading.Thread(target=upload, daemon=True)
        thread.start()
        assert sent.wait(30)
        time.sleep(0.5)  # a few MiB are on the server's disk, in a temp file
        server.kill()
        thread.join(timeout=30)
        server.start()
        with httpx.Client(base_url=server.base_url, timeout=60) as http:
            listed = http.get("/v1/files").json()["data"]
            assert [f["id"] for f in listed] == [kept_id], "the unfinished upload is not visible"
            assert http.get(f"/v1/files/{kept_id}/content").content == b"acknowledged bytes"
        files_dir = tmp_path / "srv" / "home" / "crash" / "files"
        names = [p.name for p in files_dir.iterdir()]
        assert kept_id in names and not [n for n in names if n.startswith("file-") and n != kept_id]
