"""A lean decoding path for the Mixtral-style checkpoint: the same weights, far fewer operations.

Decoding a few candidates one token at a time on a CPU is bound by the number of tensor
operations, not by arithmetic: each costs microseconds of dispatch whatever its size, and
transformers' forward (general caches, masks, hooks, per-expert routing) issues hundreds per
step. This module runs the same computation from the model's own tensors in about twenty
operations per layer:

- a preallocated KV cache;
- matrix weights in bf16, as stored, prepacked once into oneDNN's blocked layout where the
  CPU has bf16 kernels (the same products, bit for bit, in about half the time);
- RMSNorm as one ``F.rms_norm``;
- RoPE as one complex multiplication over q and k together (q and k projection rows are
  permuted at load time so that each rotated pair is adjacent; attention scores are unchanged
  because q and k get the same permutation);
- every expert computed for every row, weighted by the router (zero for experts not chosen),
  as two products: all experts' gate/up projections side by side, then the router-weighted
  hidden states of all experts against their down projections stacked, which sums over the
  experts inside the product. With a few rows and top-2 routing most experts are hit anyway,
  so this reads little more weight memory than routing and issues a tenth of the ops.

With float32 weights the logits match the transformers forward to rounding; with bf16 (the
default) they stay within bf16 rounding of it (tests check both).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel


def _onednn_bf16() -> bool:
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


class _Linear:
    """``x @ w.T`` with ``w`` (out, in) in ``dtype``; float32 out.

    In bf16 the weight is reordered once into oneDNN's blocked layout (what torch.compile's
    freezing does): measured here with 4 rows, 256 -> 5120 took 77 us against 144 us for
    ``F.linear`` on the plain layout, with identical results.
    """

    def __init__(self, w: torch.Tensor, dtype: torch.dtype, rows: int):
        self.w = w.detach().to(dtype).contiguous()
        self.packed = None
        if dtype == torch.bfloat16 and _onednn_bf16():
            self.packed = torch.ops.mkldnn._reorder_linear_weight(self.w, rows)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., in) -> (..., out)"""
        x = x.to(self.w.dtype)
        if self.packed is None:
            return F.linear(x, self.w).float()
        flat = x.reshape(-1, x.shape[-1])
        y = torch.ops.mkldnn._linear_pointwise(flat, self.packed, None, "none", [], "")
        return y.view(*x.shape[:-1], -1).float()


class FastDecoder:
    """Incremental forward over a Mixtral-style model for ``batch`` rows of up to ``max_len``."""

    @staticmethod
    def supports(model: PreTrainedModel) -> bool:
        return model.config.model_type == "mixtral"

    def __init__(
        self, model: PreTrainedModel, batch: int, max_len: int, dtype: torch.dtype = torch.bfloat16
    ):
        cfg = model.config
        self.dtype = dtype
        nh, nkv = cfg.num_attention_heads, cfg.num_key_value_heads
        d = getattr(cfg, "head_dim", None) or cfg.hidden_size // nh
        self.heads, self.kv_heads, self.head_dim = nh, nkv, d
        self.top_k = cfg.num_experts_per_tok
        self.eps = cfg.rms_norm_eps
        m = model.model
        # Matrix weights in ``dtype`` (see _Linear). bf16 is what the checkpoint stores, and its
        # few-row products ran 2x faster than float32 here (4 x 256 by 256 x 5120: 0.14 vs
        # 0.28 ms on the plain layout). Norms, router, softmax, RoPE, attention and the
        # residual stream stay float32.
        lin = lambda w: _Linear(w, dtype, batch)  # noqa: E731
        # Within each head, row i and row i + d/2 form a rotated pair; put them side by side.
        pairs = torch.stack([torch.arange(d // 2), torch.arange(d // 2) + d // 2], -1).flatten()
        self.embed = m.embed_tokens.weight.detach().float()
        self.lm_head = lin(model.lm_head.weight)
        self.final_norm = m.norm.weight.detach().float()
        self.layers = []
        for layer in m.layers:
            att, moe = layer.self_attn, layer.mlp
            q = att.q_proj.weight.view(nh, d, -1)[:, pairs].reshape(nh * d, -1)
            k = att.k_proj.weight.view(nkv, d, -1)[:, pairs].reshape(nkv * d, -1)
            gate_up = moe.experts.gate_up_proj  # (E, 2I, H)
            down = moe.experts.down_proj  # (E, H, I)
            n_exp, two_i, hidden = gate_up.shape
            self.layers.append({
                "in_norm": layer.input_layernorm.weight.detach().float(),
                "post_norm": layer.post_attention_layernorm.weight.detach().float(),
                "qkv": lin(torch.cat([q, k, att.v_proj.weight])),  # H -> (nh + 2 nkv) d
                "o": lin(att.o_proj.weight),
                "router": moe.gate.weight.detach().float().t().contiguous(),  # (H, E)
                "gate_up": lin(gate_up.reshape(n_exp * two_i, hidden)),  # H -> E * 2I
                "down": lin(down.permute(1, 0, 2).reshape(hidden, -1)),  # E * I -> H
            })  # fmt: skip
        self.experts = n_exp
        self.act = m.layers[0].mlp.experts.act_fn
        # RoPE as unit complex numbers per position and pair: (max_len, d/2).
        inv_freq = m.rotary_emb.inv_freq.float()
        angles = torch.arange(max_len, dtype=torch.float32)[:, None] * inv_freq[None]
        scale = float(getattr(m.rotary_emb, "attention_scaling", 1.0))
        self.rot = torch.polar(torch.full_like(angles, scale), angles)
        shape = (len(self.layers), batch, nkv, max_len, d)
        self.k_cache = torch.zeros(shape)
        self.v_cache = torch.zeros(shape)
        self.max_len = max_len
        # Tokens held per row: rows may hold different numbers after speculative steps, whose
        # rejected tail stays in the cache as junk that the next write overwrites.
        self.lengths = torch.zeros(batch, dtype=torch.long)

    def reset(self) -> None:
        self.lengths.zero_()

    def rewind(self, lengths: torch.Tensor) -> None:
        """Keep only the first ``lengths[b]`` cached tokens of each row (B,)."""
        self.lengths = lengths.clone()

    def _experts(self, x: torch.Tensor, layer: dict) -> torch.Tensor:
        """x: (N, H) -> (N, H): the router's top-k experts, renormalised, as Mixtral does."""
        logits = x @ layer["router"]  # (N, E)
        top, index = torch.topk(logits, self.top_k, -1)
        weights = torch.zeros_like(logits).scatter_(-1, index, torch.softmax(top, -1))
        gate, up = layer["gate_up"](x).view(len(x), self.experts, -1).chunk(2, -1)
        hidden = self.act(gate) * up * weights[..., None]  # (N, E, I)
        return layer["down"](hidden.view(len(x), -1))

    @torch.inference_mode()
    def forward_all(
        self, ids: torch.Tensor | None = None, embeds: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Append ``ids`` (B, T), or input vectors ``embeds`` (B, T, H) such as an instruction's
        prefix, to every row; return the logits of every new position (B, T, V).

        Row b's tokens go to positions ``lengths[b]`` onwards, so rows of different lengths
        (after a speculative step) share one call.
        """
        h = self.embed[ids] if embeds is None else embeds.float()  # (B, T, H)
        b, t = h.shape[:2]
        lengths = self.lengths[:b]
        pos = lengths[:, None] + torch.arange(t)  # (B, T) absolute positions
        end = int(pos.max()) + 1
        rot = self.rot[pos]  # (B, T, d/2) complex
        d, nh, nkv = self.head_dim, self.heads, self.kv_heads
        rows = torch.arange(b)[:, None].expand(b, t)
        # Grouped-query attention with each kv head's g query heads folded into the query
        # length, as g * T queries against that head's cache: SDPA with enable_gqa ran 10%
        # slower on the same sizes.
        g = nh // nkv
        mask = None
        if t > 1 or bool((lengths != lengths[0]).any()):
            # Row b's query at t sees its own positions up to pos[b, t]; junk past a row's end
            # (a rejected draft, or another row's longer run) stays hidden.
            mask = torch.arange(end)[None, None] <= pos[:, :, None]  # (B, T, end)
            mask = mask.repeat_interleave(g, 1)[:, None]  # (B, 1, T * g, end)
        for i, layer in enumerate(self.layers):
            x = F.rms_norm(h, (h.shape[-1],), layer["in_norm"], self.eps)
            a = layer["qkv"](x)  # (B, T, (nh + 2 nkv) d)
            qk = torch.view_as_complex(a[..., : (nh + nkv) * d].reshape(b, t, nh + nkv, d // 2, 2))
            qk = torch.view_as_real(qk * rot[:, :, None]).view(b, t, nh + nkv, d)
            # Advanced indices around a slice: the cache slots read as (B, T, nkv, d).
            self.k_cache[i][rows, :, pos] = qk[:, :, nh:]
            self.v_cache[i][rows, :, pos] = a[..., (nh + nkv) * d :].view(b, t, nkv, d)
            q = qk[:, :, :nh].reshape(b, t, nkv, g, d).transpose(1, 2).reshape(b, nkv, t * g, d)
            o = F.scaled_dot_product_attention(
                q, self.k_cache[i, :b, :, :end], self.v_cache[i, :b, :, :end], attn_mask=mask
            )  # (B, nkv, T * g, d)
            o = o.view(b, nkv, t, g * d).transpose(1, 2).reshape(b, t, nh * d)
            h = h + layer["o"](o)
            x = F.rms_norm(h, (h.shape[-1],), layer["post_norm"], self.eps).view(b * t, -1)
            h = h + self._experts(x, layer).view(b, t, -1)
        self.lengths[:b] += t
        x = F.rms_norm(h, (h.shape[-1],), self.final_norm, self.eps)
        return self.lm_head(x)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Append ``ids`` (B, T) to every row; return the last position's logits (B, V)."""
        return self.forward_all(ids)[:, -1]
