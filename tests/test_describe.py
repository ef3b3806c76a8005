"""Stage 2: the signal describer, and an OpenAI-compatible describer against a local server."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from composer.describe import describe, describe_signal
from composer.errors import ComposerError
from composer.types import Brief
from composer.video import analyze
from composer.video.synthetic import Shot, make_clip

GOOD = {
    "mood": {"valence": 0.8, "arousal": 0.3, "words": ["tender", "hopeful"]},
    "pacing": {"energy": 0.3, "tempo_min": 66, "tempo_max": 80},
    "scenes": [{"start": 0, "end": 2.0, "caption": "a test pattern"}],
    "reasoning": [{"text": "Slow cuts, so calm.", "evidence": ["keyframe@0.5s"]}],
}


@pytest.fixture(scope="module")
def analysis(clip_dir):
    clip = make_clip(clip_dir / "describe.mp4", [Shot(2.0), Shot(1.6), Shot(2.4)])
    return analyze(clip)


def test_signal_brief_cites_its_numbers(analysis):
    b = describe_signal(analysis)
    assert 0 <= b.mood.valence <= 1 and 0 <= b.mood.arousal <= 1 and b.mood.words
    assert b.pacing.tempo_min < b.pacing.tempo_max
    assert [e.time for e in b.events if e.kind == "cut"] == pytest.approx([2.0, 3.6], abs=0.05)
    assert all(step.evidence for step in b.reasoning)
    assert "cuts_per_10s" in b.reasoning[0].evidence[0]
    assert Brief.from_json(b.to_json()) == b
    with pytest.raises(ComposerError, match="valid: signal"):
        describe(analysis, "magic")


class Server:
    """A chat-completions endpoint that plays back scripted replies and records requests."""

    def __init__(self, replies):
        self.replies, self.requests = list(replies), []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append((self.path, dict(self.headers), body))
                text = owner.replies.pop(0) if owner.replies else "no more"
                out = json.dumps({"choices": [{"message": {"content": text}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"

    def close(self):
        self.httpd.shutdown()


def test_openai_describer_reasons_then_answers(analysis, monkeypatch, caplog):
    monkeypatch.setenv("COMPOSER_API_KEY", "sk-secret-123")
    server = Server(["Step 1: the shots are long.\n\nStep 2: so it is calm.\n" + json.dumps(GOOD)])
    caplog.set_level(logging.DEBUG)
    try:
        b = describe(analysis, f"openai:{server.url}")
    finally:
        server.close()
    assert b.describer.startswith("openai:") and b.fallback is None
    assert b.mood.words == ["tender", "hopeful"] and b.pacing.tempo_max == 80
    assert b.reasoning[0].text == "Slow cuts, so calm."
    assert [e.time for e in b.events] == [e.time for e in describe_signal(analysis).events]
    path, headers, body = server.requests[0]
    assert path == "/v1/chat/completions" and headers["Authorization"] == "Bearer sk-secret-123"
    images = [c for c in body["messages"][1]["content"] if c["type"] == "image_url"]
    assert images and images[0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert "sk-secret-123" not in caplog.text


def test_one_repair_then_fallback(analysis):
    bad = dict(GOOD, mood={"valence": "high", "arousal": 0.3, "words": ["x"]})
    server = Server(["thinking... " + json.dumps(bad), json.dumps(GOOD)])
    try:
        repaired = describe(analysis, f"openai:{server.url}/v1")
        assert repaired.fallback is None and repaired.mood.valence == 0.8
        assert "valence must be a number" in server.requests[1][2]["messages"][-1]["content"]
        server.replies = ["not json at all", '{"mood": 3}']
        fallback = describe(analysis, f"openai:{server.url}")
    finally:
        server.close()
    assert fallback.fallback and "the signal describer's answer is used" in fallback.fallback
    assert fallback.mood == describe_signal(analysis).mood
    dead = describe(analysis, "openai:http://127.0.0.1:9")  # nothing listens there
    assert dead.fallback and "failed" in dead.fallback


def test_transformers_describer_runs_a_local_model_and_falls_back_on_nonsense(analysis, tmp_path):
    from tiny_vlm import make_tiny_llava

    folder = make_tiny_llava(tmp_path / "tiny-llava")
    b = describe(analysis, f"transformers:{folder}")  # random weights: no JSON comes back
    assert b.describer == "signal" or b.describer.startswith("transformers:")
    assert b.fallback and f"transformers:{folder}" in b.fallback
    assert b.mood == describe_signal(analysis).mood
    missing = describe(analysis, f"transformers:{tmp_path / 'nope'}")
    assert missing.fallback and "could not load" in missing.fallback


def _monochrome(analysis, brightness: float, contrast: float):
    from dataclasses import replace

    from composer.types import ColourCurves

    n = len(analysis.colour.times)
    colour = ColourCurves(analysis.colour.times, [brightness] * n, [0.0] * n, [0.5] * n,
                          [contrast] * n)  # fmt: skip
    return replace(analysis, colour=colour)


def test_a_black_and_white_picture_is_not_read_as_sad_for_lacking_colour(analysis):
    """Saturation 0 says nothing of mood: a crisp, mid-lit monochrome picture reads as light;
    a murky dark one still reads as dark."""
    crisp = describe_signal(_monochrome(analysis, 0.45, 0.45))
    murky = describe_signal(_monochrome(analysis, 0.12, 0.05))
    assert crisp.mood.valence >= 0.5 and "melancholic" not in crisp.mood.words
    assert murky.mood.valence < 0.5
    assert any("contrast=" in e for step in crisp.reasoning for e in step.evidence)


def test_the_silent_black_and_white_comedy_is_not_sombre():
    from pathlib import Path

    clip = Path(__file__).resolve().parents[2] / "shared/media/videos/moviepy_chaplin.mp4"
    if not clip.exists():
        pytest.skip(f"{clip} is not here")
    brief = describe_signal(analyze(clip))
    assert brief.mood.valence >= 0.5, brief.reasoning[1].text
