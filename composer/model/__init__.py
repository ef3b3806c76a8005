"""The music model: a transformers mixture-of-experts decoder over composer's tokens."""

from composer.model.checkpoint import (
    DEFAULT_MODEL,
    Checkpoint,
    ModelSpec,
    build_model,
    count_parameters,
    load_checkpoint,
    save_checkpoint,
)

__all__ = ["DEFAULT_MODEL", "Checkpoint", "ModelSpec", "build_model", "count_parameters",
           "load_checkpoint", "save_checkpoint"]  # fmt: skip
