"""Model-backed describers: a local transformers vision-language model, or an OpenAI-compatible
chat-completions endpoint (vLLM serve, for one).

Both get the clip's keyframes with their timestamps and the measurements, reason, answer in
JSON, get one repair attempt, and otherwise fall back to the signal describer's Brief, with the
reason recorded in ``Brief.fallback``. They never raise for a bad reply.
"""

from __future__ import annotations

import base64
import io
import json
import os
import urllib.request
from collections.abc import Callable

from composer.describe.answer import BadAnswer, parse_answer, prompt_texts, repair_text
from composer.progress import log
from composer.types import Brief, VideoAnalysis

MAX_FRAMES = 6
API_KEY_ENV = ("COMPOSER_API_KEY", "OPENAI_API_KEY")  # the first one set is used
Chat = Callable[[list[dict]], str]  # messages -> the reply's text


def frames(a: VideoAnalysis) -> list:
    """Up to MAX_FRAMES keyframes spread over the clip (those with images)."""
    have = [k for k in a.keyframes if k.image is not None]
    step = max(1, len(have) // MAX_FRAMES)
    return have[::step][:MAX_FRAMES]


def converse(chat: Chat, messages: list[dict], signal: Brief, describer: str) -> Brief:
    """Ask, validate, ask once more with the problem, else fall back to ``signal``."""
    problem = ""
    for attempt in range(2):
        try:
            reply = chat(messages)
        except Exception as e:  # a dead server or a model error is a fallback, not a crash
            problem = f"{describer} failed: {type(e).__name__}: {e}"[:300]
            break
        try:
            return parse_answer(reply, signal, describer)
        except BadAnswer as e:
            problem = str(e)
            log.info("describer reply unusable (attempt %d): %s", attempt + 1, problem)
            messages = [*messages, {"role": "assistant", "content": reply},
                        {"role": "user", "content": repair_text(problem)}]  # fmt: skip
    return _fallback(signal, describer, problem)


def _fallback(signal: Brief, describer: str, problem: str) -> Brief:
    from dataclasses import replace

    note = f"{describer}: {problem}; the signal describer's answer is used"
    return replace(signal, fallback=note)


def describe_openai(a: VideoAnalysis, signal: Brief, url: str, timeout: float = 120.0) -> Brief:
    """Describe with an OpenAI-compatible endpoint; images go as JPEG data URLs."""
    system, user = prompt_texts(signal)
    content: list[dict] = [{"type": "text", "text": user}]
    for k in frames(a):
        content.append({"type": "text", "text": f"keyframe@{k.time:.1f}s"})
        content.append({"type": "image_url", "image_url": {"url": _data_url(k.image)}})
    messages = [{"role": "system", "content": system}, {"role": "user", "content": content}]
    endpoint = url.rstrip("/")
    if not endpoint.endswith("/chat/completions"):
        endpoint += "/chat/completions" if endpoint.endswith("/v1") else "/v1/chat/completions"
    key = next((os.environ[k] for k in API_KEY_ENV if os.environ.get(k)), None)
    model = os.environ.get("COMPOSER_DESCRIBER_MODEL", "default")

    def chat(msgs: list[dict]) -> str:
        body = json.dumps({"model": model, "messages": msgs, "temperature": 0}).encode()
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"  # sent, never logged
        req = urllib.request.Request(endpoint, body, headers, method="POST")
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            data = json.loads(resp.read())
        return data["choices"][0]["message"]["content"]

    return converse(chat, messages, signal, f"openai:{url}")


def describe_transformers(
    a: VideoAnalysis, signal: Brief, path: str, max_new_tokens: int = 512
) -> Brief:
    """Describe with any AutoModelForImageTextToText checkpoint on disk (greedy decoding)."""
    describer = f"transformers:{path}"
    try:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        from composer.progress import quiet_loading

        with quiet_loading():
            processor = AutoProcessor.from_pretrained(path, local_files_only=True)
            model = AutoModelForImageTextToText.from_pretrained(path, local_files_only=True)
        model.eval()
    except Exception as e:
        return _fallback(signal, describer, f"could not load ({type(e).__name__}: {e})"[:300])
    system, user = prompt_texts(signal)
    shown = frames(a)
    content: list[dict] = [{"type": "text", "text": user}]
    for k in shown:
        content += [{"type": "text", "text": f"keyframe@{k.time:.1f}s"}, {"type": "image"}]
    messages = [{"role": "system", "content": [{"type": "text", "text": system}]},
                {"role": "user", "content": content}]  # fmt: skip
    images = [k.image for k in shown] or None

    def chat(msgs: list[dict]) -> str:
        prompt = processor.apply_chat_template(msgs, add_generation_prompt=True)
        inputs = processor(text=prompt, images=images, return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        new = out[0, inputs["input_ids"].shape[1] :]
        return processor.decode(new, skip_special_tokens=True)

    def chat_with_text_turns(msgs: list[dict]) -> str:
        # Repair turns are plain strings; chat templates want content lists.
        fixed = [
            m if isinstance(m["content"], list)
            else {**m, "content": [{"type": "text", "text": m["content"]}]}
            for m in msgs
        ]  # fmt: skip
        return chat(fixed)

    return converse(chat_with_text_turns, messages, signal, describer)


def _data_url(image) -> str:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()
