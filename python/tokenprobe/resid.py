"""TransformerLens's residual-stream analyses on a live ActivationCache (docs/python.md).

accumulated_resid, decompose_resid, stack_head_results, apply_ln_to_stack and logit_attrs
with TransformerLens's arguments, labels and shapes ([components, 1, pos, d_model]; an int
pos_slice drops the pos axis). The final norm is the model's own: with the norm's scale
frozen at the value the run cached (ln_final.hook_scale), the logits are linear in the
residual stream, so a stack of parts read through it sums to the real logits. The final
norm's weight lives in the read-out directions (Model.W_U, tokens_to_residual_directions),
as in a TransformerLens model loaded with fold_ln=True, its default.
"""

from typing import List, Optional, Tuple, Union

import numpy as np

SliceInput = Union[None, int, Tuple[Optional[int], ...], slice, List[int], np.ndarray]


def _pos_index(pos_slice: SliceInput):
    """TransformerLens's Slice: None keeps every position, an int picks one (dropping the
    axis), a tuple is slice(*tuple), a slice or a list/array of indices as numpy takes them."""
    if pos_slice is None:
        return slice(None)
    if isinstance(pos_slice, tuple):
        return slice(*pos_slice)
    if isinstance(pos_slice, (int, np.integer)):
        return int(pos_slice)
    if isinstance(pos_slice, slice):
        return pos_slice
    return np.asarray(pos_slice)


def _apply(x: np.ndarray, pos_slice: SliceInput, dim: int) -> np.ndarray:
    index = [slice(None)] * x.ndim
    index[dim] = _pos_index(pos_slice)
    return x[tuple(index)]


class ResidualAnalyses:
    """Mixed into live.ActivationCache: needs self[...] and self.model."""

    def _final_layer(self, layer: Optional[int]) -> int:
        n = self.model.cfg.n_layers
        if layer is None or layer == -1:
            return n
        if not 0 <= layer <= n:
            raise ValueError(f"layer {layer}: give 0..{n} ({n}, -1 or None: the input to the unembedding)")
        return layer

    def _recurrent(self) -> bool:
        return self.model.cfg.extra.get("sequence_mixer", "attention") != "attention"

    def accumulated_resid(self, layer: Optional[int] = None, incl_mid: bool = False, apply_ln: bool = False,
                          pos_slice: SliceInput = None, mlp_input: bool = False, return_labels: bool = False):
        """The residual stream entering each block up to `layer` ("0_pre", "1_pre", ...; with
        incl_mid also "L_mid"), and "final_post" (the last block's output) when layer is
        n_layers, -1 or None. apply_ln at the final layer normalises each entry with its own
        statistics (the logit lens: entry @ model.W_U + model.b_U are its logits); at an
        earlier layer it divides by that layer's cached ln1 (ln2 with mlp_input) scale."""
        layer = self._final_layer(layer)
        n_layers = self.model.cfg.n_layers
        parts, labels = [], []
        for l in range(layer + 1):
            if l == n_layers:
                parts.append(self["resid_post", n_layers - 1])
                labels.append("final_post")
                continue
            parts.append(self["resid_pre", l])
            labels.append(f"{l}_pre")
            if (incl_mid and l < layer) or (mlp_input and l == layer):
                parts.append(self["resid_mid", l])
                labels.append(f"{l}_mid")
        stack = np.stack([_apply(p, pos_slice, -2) for p in parts])
        if apply_ln:
            stack = self.apply_ln_to_stack(stack, layer, mlp_input=mlp_input, pos_slice=pos_slice,
                                           recompute_ln=layer == n_layers)
        return (stack, labels) if return_labels else stack

    def decompose_resid(self, layer: Optional[int] = None, mlp_input: bool = False, mode: str = "all",
                        apply_ln: bool = False, pos_slice: SliceInput = None, incl_embeds: bool = True,
                        return_labels: bool = False):
        """The residual stream entering block `layer` (n_layers, -1, None: the final one) as the
        parts that wrote it: "embed" (and "pos_embed"), then per layer "L_attn_out" and
        "L_mlp_out" (mode "attn" or "mlp" keeps one kind); they sum to it. attn_out and
        mlp_out include their output biases. RWKV: "embed" is ln0's output (block 0's
        resid_pre), the parts "L_time_mix_out" and "L_channel_mix_out"; where RWKV-6 halves
        the stream every few blocks (rwkv_rescale_every), each part is scaled by the halvings
        between its block and `layer`, as it arrives there."""
        if mode not in ("all", "attn", "mlp"):
            raise ValueError(f"mode {mode!r}: 'all', 'attn' or 'mlp'")
        layer = self._final_layer(layer)
        attn, mlp = ("time_mix_out", "channel_mix_out") if self._recurrent() else ("attn_out", "mlp_out")
        parts, labels = [], []
        if incl_embeds:
            if self._recurrent():
                parts.append(self["resid_pre", 0])
                labels.append("embed")
            else:
                parts.append(self["hook_embed"])
                labels.append("embed")
                if self.model.cfg.positional_embedding_type == "standard":
                    parts.append(self["hook_pos_embed"])
                    labels.append("pos_embed")
        for l in range(layer):
            if mode != "mlp":
                parts.append(self[attn, l])
                labels.append(f"{l}_{attn}")
            if mode != "attn":
                parts.append(self[mlp, l])
                labels.append(f"{l}_{mlp}")
        if mlp_input and mode != "mlp":
            parts.append(self[attn, layer])
            labels.append(f"{layer}_{attn}")
        if not parts:
            raise ValueError("decompose_resid: nothing to stack (layer 0 without embeddings)")
        stack = np.stack([_apply(p, pos_slice, -2) for p in parts])
        every = self.model.cfg.extra.get("rwkv_rescale_every", 0)
        if every:  # RWKV-6 halves the stream after every `every` blocks: each part as it arrives
            written = [-1 if label == "embed" else int(label.split("_")[0]) for label in labels]
            halvings = [sum(1 for L in range(max(w, 0), layer) if (L + 1) % every == 0) for w in written]
            stack = stack * np.array([0.5 ** h for h in halvings], dtype=np.float32).reshape(-1, *[1] * (stack.ndim - 1))
        if apply_ln:
            stack = self.apply_ln_to_stack(stack, layer, mlp_input=mlp_input, pos_slice=pos_slice)
        return (stack, labels) if return_labels else stack

    def stack_head_results(self, layer: Optional[int] = -1, return_labels: bool = False,
                           incl_remainder: bool = False, pos_slice: SliceInput = None, apply_ln: bool = False):
        """Every head's write into the residual stream (attn.hook_result, without b_O) of the
        blocks before `layer`, as components "L0H0", "L0H1", ...: [layer * n_heads, 1, pos,
        d_model]. incl_remainder adds "remainder", the rest of block layer-1's resid_post."""
        if self._recurrent():
            raise ValueError("stack_head_results: an RWKV model has no attention heads (decompose_resid splits it by block)")
        layer = self._final_layer(layer)
        parts, labels = [], []
        for l in range(layer):
            result = _apply(self["result", l], pos_slice, -3)  # [1, pos, head, d_model]
            parts += [np.take(result, h, axis=-2) for h in range(result.shape[-2])]
            labels += [f"L{l}H{h}" for h in range(result.shape[-2])]
        if incl_remainder:
            total = _apply(self["resid_post", layer - 1], pos_slice, -2) if layer else None
            if total is None:
                raise ValueError("stack_head_results: layer 0 has no resid_post before it for a remainder")
            parts.append(total - (np.sum(parts, axis=0) if parts else 0))
            labels.append("remainder")
        if parts:
            stack = np.stack(parts)
        else:
            stack = np.zeros((0, *_apply(self["resid_pre", 0], pos_slice, -2).shape), dtype=np.float32)
        if apply_ln:
            stack = self.apply_ln_to_stack(stack, layer, pos_slice=pos_slice)
        return (stack, labels) if return_labels else stack

    def apply_ln_to_stack(self, residual_stack: np.ndarray, layer: Optional[int] = None, mlp_input: bool = False,
                          pos_slice: SliceInput = None, batch_slice: SliceInput = None, has_batch_dim: bool = True,
                          recompute_ln: bool = False) -> np.ndarray:
        """Each component as the input of block `layer`'s ln1 (ln2 with mlp_input) or, for
        n_layers, -1 or None, of the final norm: centred (LayerNorm) and divided by the scale
        this run cached there (its hook_scale is 1/rms or 1/std, so this multiplies), without the
        norm's weight and bias. pos_slice must be what was applied to the stack. recompute_ln
        (final norm only) normalises each component by its own statistics instead. As
        TransformerLens: the stack is [components, 1, pos, d_model] or with pos sliced off."""
        layer = self._final_layer(layer)
        stack = np.asarray(residual_stack, dtype=np.float32)
        if has_batch_dim and batch_slice is not None:
            stack = _apply(stack, batch_slice, 1)
        layer_norm = self.model.cfg.normalization_type == "LN"
        if layer_norm:
            stack = stack - stack.mean(axis=-1, keepdims=True)
        if recompute_ln and layer == self.model.cfg.n_layers:
            ms = np.mean(np.square(stack, dtype=np.float64), axis=-1, keepdims=True)
            return (stack / np.sqrt(ms + self.model.cfg.eps)).astype(np.float32)
        if layer == self.model.cfg.n_layers:
            name = "ln_final.hook_scale"
        else:
            name = f"blocks.{layer}.ln{2 if mlp_input else 1}.hook_scale"
        try:
            scale = self[name]  # [1, pos, 1]: 1/rms or 1/std
        except KeyError:
            raise KeyError(f"apply_ln needs {name} in the cache: capture it too (names_filter)") from None
        scale = _apply(scale, pos_slice, -2)
        if has_batch_dim and batch_slice is not None:
            scale = _apply(scale, batch_slice, 0)
        return stack * scale

    def logit_attrs(self, residual_stack: np.ndarray, tokens, incorrect_tokens=None, pos_slice: SliceInput = None,
                    batch_slice: SliceInput = None, has_batch_dim: bool = True) -> np.ndarray:
        """Each component's share of the logit of `tokens` (minus that of incorrect_tokens):
        the component through the final norm frozen at this run's scale (apply_ln_to_stack),
        dotted with the tokens' read-out directions (model.tokens_to_residual_directions).
        Summed over a decomposition of the final residual stream this is the logit (the
        difference), less the final norm's bias term b_U (zero for RMSNorm; cancels in no
        difference). tokens: an id, a one-token string, or ids per position."""
        directions = self.model.tokens_to_residual_directions(tokens)
        if incorrect_tokens is not None:
            wrong = self.model.tokens_to_residual_directions(incorrect_tokens)
            if wrong.shape != directions.shape:
                raise ValueError(f"tokens and incorrect_tokens must have the same shape ({directions.shape[:-1]} and "
                                 f"{wrong.shape[:-1]})")
            directions = directions - wrong
        scaled = self.apply_ln_to_stack(residual_stack, None, pos_slice=pos_slice, batch_slice=batch_slice,
                                        has_batch_dim=has_batch_dim)
        return (scaled * directions).sum(axis=-1)
