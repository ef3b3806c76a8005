"""A lean decoding path for the Mixtral-style checkpoint: the same weights, fewer layers of code.

transformers' forward is general (caches of many kinds, hooks, masks, grouped expert kernels for
big batches); decoding a few candidates one token at a time on a CPU spends most of its time
there rather than in arithmetic. This module runs the same computation from the model's own
tensors with a preallocated KV cache and multiplies only the routed experts' weights (decoding
is bound by reading weights: a dense product over all experts, or a gather of their weights,
reads several times more). Logits match the transformers forward (tests check it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel


class FastDecoder:
    """Incremental forward over a Mixtral-style model for ``batch`` rows of up to ``max_len``."""

    @staticmethod
    def supports(model: PreTrainedModel) -> bool:
        return model.config.model_type == "mixtral"

    def __init__(self, model: PreTrainedModel, batch: int, max_len: int):
        cfg = model.config
        self.heads, self.kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.heads
        self.top_k = cfg.num_experts_per_tok
        self.eps = cfg.rms_norm_eps
        m = model.model
        self.embed = m.embed_tokens.weight.detach().float()
        self.lm_head = model.lm_head.weight.detach().float()
        self.final_norm = m.norm.weight.detach().float()
        self.layers = []
        for layer in m.layers:
            att, moe = layer.self_attn, layer.mlp
            self.layers.append({
                "in_norm": layer.input_layernorm.weight.detach().float(),
                "post_norm": layer.post_attention_layernorm.weight.detach().float(),
                "qkv": torch.cat([att.q_proj.weight, att.k_proj.weight,
                                  att.v_proj.weight]).detach().float(),
                "o": att.o_proj.weight.detach().float(),
                "router": moe.gate.weight.detach().float(),
                "gate_up": moe.experts.gate_up_proj.detach().float(),  # (E, 2I, H)
                "down": moe.experts.down_proj.detach().float(),  # (E, H, I)
            })  # fmt: skip
        self.act = model.model.layers[0].mlp.experts.act_fn
        # RoPE tables for every position: (max_len, head_dim).
        inv_freq = m.rotary_emb.inv_freq.float()
        freqs = torch.arange(max_len, dtype=torch.float32)[:, None] * inv_freq[None]
        emb = torch.cat([freqs, freqs], -1)
        scale = float(getattr(m.rotary_emb, "attention_scaling", 1.0))
        self.cos, self.sin = emb.cos() * scale, emb.sin() * scale
        shape = (len(self.layers), batch, self.kv_heads, max_len, self.head_dim)
        self.k_cache = torch.zeros(shape)
        self.v_cache = torch.zeros(shape)
        self.length = 0

    def reset(self) -> None:
        self.length = 0

    def _norm(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))

    def _rope(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], -1)
        return x * cos + rotated * sin

    def _experts(self, x: torch.Tensor, layer: dict) -> torch.Tensor:
        """x: (N, H) -> (N, H), each token through its top-k experts, weighted."""
        probs = torch.softmax(F.linear(x, layer["router"]), -1)  # (N, E)
        weights, index = torch.topk(probs, self.top_k, -1)  # (N, k)
        weights = weights / weights.sum(-1, keepdim=True)
        # Only the routed experts' weights are read: decoding is bound by memory traffic, and
        # a dense product over all experts (or a gather of their weights) reads several times
        # more of it than the arithmetic needs.
        out = torch.zeros_like(x)
        for e in index.unique().tolist():
            rows, slot = torch.where(index == e)
            gate, up = F.linear(x[rows], layer["gate_up"][e]).chunk(2, -1)
            y = F.linear(self.act(gate) * up, layer["down"][e])
            out.index_add_(0, rows, y * weights[rows, slot, None])
        return out

    @torch.inference_mode()
    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Append ``ids`` (B, T) to every row; return the last position's logits (B, V)."""
        b, t = ids.shape
        start, end = self.length, self.length + t
        cos, sin = self.cos[start:end], self.sin[start:end]  # (T, D)
        h = self.embed[ids]  # (B, T, H)
        d, nh, nkv = self.head_dim, self.heads, self.kv_heads
        mask = None
        if t > 1:  # causal over the new positions, everything before visible
            mask = torch.ones(t, end, dtype=torch.bool).tril(diagonal=start)
        for i, layer in enumerate(self.layers):
            a = F.linear(self._norm(h, layer["in_norm"]), layer["qkv"])  # (B, T, (nh + 2 nkv) d)
            q, k, v = a.split([nh * d, nkv * d, nkv * d], -1)
            q = self._rope(q.view(b, t, nh, d).transpose(1, 2), cos, sin)  # (B, nh, T, d)
            k = self._rope(k.view(b, t, nkv, d).transpose(1, 2), cos, sin)
            self.k_cache[i, :b, :, start:end] = k
            self.v_cache[i, :b, :, start:end] = v.view(b, t, nkv, d).transpose(1, 2)
            o = F.scaled_dot_product_attention(
                q,
                self.k_cache[i, :b, :, :end],
                self.v_cache[i, :b, :, :end],
                attn_mask=mask,
                enable_gqa=nh != nkv,
            )  # (B, nh, T, d)
            h = h + F.linear(o.transpose(1, 2).reshape(b, t, nh * d), layer["o"])
            x = self._norm(h, layer["post_norm"]).reshape(b * t, -1)
            h = h + self._experts(x, layer).view(b, t, -1)
        self.length = end
        return F.linear(self._norm(h[:, -1], self.final_norm), self.lm_head)
