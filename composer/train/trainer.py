"""``composer train``: AdamW with warm-up and cosine decay, bf16 autocast, gradient accumulation,
resumable state, validation every epoch, on CPU or GPUs through accelerate."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from composer.model import ModelSpec, build_model, count_parameters, save_checkpoint
from composer.progress import ProgressFn, log, no_progress
from composer.tokens import ScoreTokenizer
from composer.train.data import TokenCache, WindowSampler, eval_windows, style_textures


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Saved into the checkpoint's composer.json."""

    model: ModelSpec = ModelSpec()
    seq_len: int = 512
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 2e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 200
    weight_decay: float = 0.1
    epochs: float = 1.0  # passes over the training tokens
    max_minutes: float = 0.0  # stop (and save) after this long; 0 = no limit
    eval_every_epochs: float = 1.0
    checkpoint_every_steps: int = 500
    seed: int = 0
    mixed_precision: str = "bf16"  # bf16 | no

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        raw = json.loads(text)
        raw["model"] = ModelSpec(**raw.get("model", {}))
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})


@dataclass
class TrainResult:
    checkpoint: Path
    steps: int
    tokens_seen: int
    minutes: float
    val_loss: float  # nats per token on the validation windows
    history: list[dict]


def evaluate(
    model: torch.nn.Module,
    windows: list[np.ndarray],
    pad_id: int,
    batch_size: int = 8,
    autocast: bool = True,
) -> float:
    """Mean NLL (nats) per predicted token over ``windows``, headers' first token excluded."""
    model.eval()
    total, count = 0.0, 0
    order = sorted(range(len(windows)), key=lambda i: len(windows[i]))
    with torch.no_grad():
        for s in range(0, len(order), batch_size):
            rows = [windows[i] for i in order[s : s + batch_size]]
            L = max(len(r) for r in rows)
            ids = torch.full((len(rows), L), pad_id, dtype=torch.long)
            mask = torch.zeros((len(rows), L), dtype=torch.bool)
            for r, w in enumerate(rows):
                ids[r, : len(w)] = torch.from_numpy(np.asarray(w, dtype=np.int64))
                mask[r, : len(w)] = True
            with torch.autocast(ids.device.type, dtype=torch.bfloat16, enabled=autocast):
                logits = model(input_ids=ids.to(model.device)).logits.float()
            logp = torch.log_softmax(logits[:, :-1], dim=-1)
            target = ids[:, 1:].to(logp.device)
            nll = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
            m = mask[:, 1:].to(nll.device)
            total += float(nll[m].sum())
            count += int(m.sum())
    model.train()
    return total / max(count, 1)


def train(
    cache: TokenCache,
    tokenizer: ScoreTokenizer,
    config: TrainConfig,
    out: str | Path,
    *,
    resume: bool = False,
    progress: ProgressFn = no_progress,
    model: torch.nn.Module | None = None,
    save: Callable[[torch.nn.Module, dict], None] | None = None,
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]] | None = None,
    validate: Callable[[torch.nn.Module], float] | None = None,
) -> TrainResult:
    """Train a decoder on ``cache`` and save the checkpoint folder ``out``.

    ``model`` replaces the fresh one (a peft-wrapped base: only its trainable parameters are
    optimised), and ``save(model, info)`` replaces writing a checkpoint to ``out`` (the
    resumable state still goes beside ``out``). ``batches`` ((input_ids, labels) pairs)
    replace the cache's random windows, and ``validate(model)`` (nats per token) the loss on
    its validation windows: the infill adapter trains on its own layout (composer.train.infill).
    """
    from accelerate import Accelerator

    out = Path(out)
    state_dir = out.with_name(out.name + ".state")
    spec = dataclasses.replace(
        config.model,
        vocab_size=len(tokenizer),
        tokenizer=tokenizer.spec.name,
        tokenizer_hash=tokenizer.vocab_hash,
    )
    acc = Accelerator(
        mixed_precision=config.mixed_precision,
        gradient_accumulation_steps=config.grad_accum,
        cpu=not torch.cuda.is_available(),
    )
    torch.manual_seed(config.seed)
    model = build_model(spec, seed=config.seed) if model is None else model
    log.info("model: %s, %.2fM parameters", spec.arch, count_parameters(model) / 1e6)
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [p for n, p in params if p.ndim >= 2 and "norm" not in n]
    no_decay = [p for n, p in params if not (p.ndim >= 2 and "norm" not in n)]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.lr,
        betas=(0.9, 0.95),
    )
    train_tokens = sum(p.length for p in cache.split("train"))
    tokens_per_step = config.batch_size * config.grad_accum * config.seq_len * acc.num_processes
    steps_per_epoch = max(1, train_tokens // tokens_per_step)
    total_steps = max(1, math.ceil(config.epochs * steps_per_epoch))

    def lr_at(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        t = (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps)
        return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    model, opt, sched = acc.prepare(model, opt, sched)
    step, history = 0, []
    if resume and (state_dir / "step.json").exists():
        acc.load_state(str(state_dir))
        saved = json.loads((state_dir / "step.json").read_text())
        step, history = saved["step"], saved["history"]
        log.info("resumed at step %d", step)
    if batches is None:
        sampler = WindowSampler(cache, tokenizer, config.seq_len, seed=config.seed + step)
        batches = sampler.batches(config.batch_size)
    if validate is None:
        val = eval_windows(cache, "val", config.seq_len)

        def validate(m: torch.nn.Module) -> float:
            return evaluate(m, val, tokenizer.pad_id, autocast=config.mixed_precision == "bf16")

    eval_every = max(1, round(config.eval_every_epochs * steps_per_epoch))
    start = time.monotonic()
    model.train()

    def save_state() -> None:
        acc.save_state(str(state_dir))
        (state_dir / "step.json").write_text(json.dumps({"step": step, "history": history}))

    fitted = not config.max_minutes  # with a time limit, the schedule is fitted to it below
    timed_from = (step, time.monotonic())
    while step < total_steps:
        if not fitted and step - timed_from[0] == 30:
            # Fit the cosine to the steps that the time limit allows at the measured speed,
            # so a run stopped by the clock still ends at its low learning rate.
            rate = 30 / (time.monotonic() - timed_from[1])
            left = config.max_minutes * 60 - (time.monotonic() - start)
            total_steps = min(total_steps, step + max(1, int(rate * left * 0.97)))
            fitted = True
            log.info("time limit: schedule fitted to %d steps", total_steps)
        for _ in range(config.grad_accum):
            ids, labels = next(batches)
            with acc.accumulate(model):
                out_ = model(input_ids=ids.to(acc.device), labels=labels.to(acc.device))
                acc.backward(out_.loss)
                acc.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                opt.zero_grad()
        step += 1
        loss = float(out_.loss.detach())
        progress("train", step, total_steps)
        if step % 50 == 0:
            log.info(
                "step %d/%d loss %.3f lr %.2e", step, total_steps, loss, sched.get_last_lr()[0]
            )
        minutes = (time.monotonic() - start) / 60
        out_of_time = config.max_minutes and minutes >= config.max_minutes
        if step % eval_every == 0 or step == total_steps or out_of_time:
            v = validate(acc.unwrap_model(model))
            history.append(
                {
                    "step": step,
                    "epoch": round(step / steps_per_epoch, 3),
                    "train_loss": round(loss, 4),
                    "val_loss": round(v, 4),
                    "minutes": round(minutes, 1),
                }
            )
            log.info("step %d epoch %.2f val loss %.4f", step, step / steps_per_epoch, v)
        if step % config.checkpoint_every_steps == 0 or out_of_time:
            save_state()
        if out_of_time:
            break
    minutes = (time.monotonic() - start) / 60
    info = {
        "train_config": json.loads(json.dumps(dataclasses.asdict(config))),
        "steps": step,
        "tokens_seen": step * tokens_per_step,
        "train_tokens_per_epoch": train_tokens,
        "minutes": round(minutes, 1),
        "hardware": "cuda" if torch.cuda.is_available() else f"cpu x{torch.get_num_threads()}",
        "parameters": count_parameters(acc.unwrap_model(model)),
        "history": history,
        "data": {
            "pieces": cache.manifest.total.pieces,
            "tokens": cache.manifest.total.tokens,
            "seed": cache.manifest.seed,
            "min_held_out": cache.manifest.min_held_out,
            "held_out": cache.held_out_digest,
            "skipped": len(cache.manifest.skipped),
        },
        "style_roles": style_textures(cache, tokenizer),
    }
    save_state()  # first: a run that fails while writing its result can --resume to write it
    if save is None:
        save_checkpoint(acc.unwrap_model(model), spec, out, info=info)
    else:
        save(acc.unwrap_model(model), info)
    return TrainResult(
        out,
        step,
        step * tokens_per_step,
        minutes,
        history[-1]["val_loss"] if history else float("nan"),
        history,
    )
