"""The live cache's residual-stream analyses (tokenprobe/resid.py) against the run itself:
decompositions add up to the residual stream they decompose, and read through the final norm
and the unembedding they give the model's own logits. Run by ctest beside test_live.py (same
environment: PYTHONPATH at the build's python/ folder, TOKENPROBE_SHARED)."""

import os

import numpy as np
import pytest

import tokenprobe as tp

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("TOKENPROBE_SHARED", os.path.join(HERE, "..", "..", "..", "shared"))
# stories260K: trained, RMSNorm, grouped queries; the synthetic ones: LayerNorm with learned
# positions (gpt2), a parallel block (gptneox), an embedding scale (gemma).
MODELS = [os.path.join(SHARED, "models", "real", "stories260K.gguf")] + [
    os.path.join(SHARED, "models", "synthetic", f"{name}.gguf") for name in ("gpt2-tiny", "gptneox-tiny", "gemma-tiny")]
MODELS = [m for m in MODELS if os.path.exists(m)]
# float32 sums of a dozen parts of size ~10-100: a few ulps of the largest (6e-6 .. 8e-6 each).
TOL = 1e-4

_models = {}


def run(path, text="Once upon a time, there was a little"):
    if path not in _models:
        _models[path] = tp.Model.from_pretrained(path, threads=2)
    model = _models[path]
    tokens = model.to_tokens(text)
    logits, cache = model.run_with_cache(tokens)
    return model, tokens, logits, cache


pytestmark = pytest.mark.skipif(not MODELS, reason="shared models absent (set TOKENPROBE_SHARED)")


@pytest.mark.parametrize("path", MODELS)
def test_decompose_resid_sums_to_the_residual_stream(path):
    model, tokens, _, cache = run(path)
    n_layers, n = model.cfg.n_layers, tokens.shape[1]
    stack, labels = cache.decompose_resid(return_labels=True)
    embeds = ["embed", "pos_embed"] if model.cfg.positional_embedding_type == "standard" else ["embed"]
    assert labels == embeds + [f"{l}_{part}" for l in range(n_layers) for part in ("attn_out", "mlp_out")]
    assert stack.shape == (len(labels), 1, n, model.cfg.d_model)
    np.testing.assert_allclose(stack.sum(0), cache["resid_post", -1], rtol=0, atol=TOL)
    np.testing.assert_allclose(cache.decompose_resid(layer=2).sum(0), cache["resid_pre", 2], rtol=0, atol=TOL)
    if "blocks.1.hook_resid_mid" in cache:  # sequential blocks
        np.testing.assert_allclose(cache.decompose_resid(layer=1, mlp_input=True).sum(0), cache["resid_mid", 1],
                                   rtol=0, atol=TOL)
    attn_only = cache.decompose_resid(mode="attn", incl_embeds=False, pos_slice=-1)
    assert attn_only.shape == (n_layers, 1, model.cfg.d_model)
    np.testing.assert_array_equal(attn_only[3], cache["attn_out", 3][:, -1])


@pytest.mark.parametrize("path", MODELS)
def test_accumulated_resid_through_the_final_norm_gives_the_logits(path):
    model, tokens, logits, cache = run(path)
    n_layers = model.cfg.n_layers
    stack, labels = cache.accumulated_resid(return_labels=True)
    assert labels == [f"{l}_pre" for l in range(n_layers)] + ["final_post"]
    np.testing.assert_array_equal(stack[2], cache["resid_pre", 2])
    np.testing.assert_array_equal(stack[-1], cache["resid_post", -1])
    if "blocks.0.hook_resid_mid" in cache:
        _, mid_labels = cache.accumulated_resid(layer=2, incl_mid=True, return_labels=True)
        assert mid_labels == ["0_pre", "0_mid", "1_pre", "1_mid", "2_pre"]
    # The logit lens: every entry normalised by its own statistics, then W_U and b_U; the last
    # entry is the model's own final norm and unembedding.
    lens = cache.accumulated_resid(apply_ln=True, pos_slice=-1)
    assert lens.shape == (n_layers + 1, 1, model.cfg.d_model)
    np.testing.assert_allclose(lens[-1] @ model.W_U + model.b_U, logits[:, -1], rtol=0, atol=TOL)
    # The cached final scale gives the same for the final entry.
    frozen = cache.apply_ln_to_stack(stack, pos_slice=None)
    np.testing.assert_allclose(frozen[-1] @ model.W_U + model.b_U, logits, rtol=0, atol=TOL)


@pytest.mark.parametrize("path", MODELS)
def test_logit_attrs_add_up_to_the_logit_difference(path):
    model, tokens, logits, cache = run(path)
    last = logits[0, -1]
    target, other = (int(i) for i in np.argsort(-last)[:2])
    want = (last[target] - last[other]) - (model.b_U[target] - model.b_U[other])  # b_U: LayerNorm's bias
    accumulated = cache.accumulated_resid(pos_slice=-1)
    attrs = cache.logit_attrs(accumulated, target, incorrect_tokens=other, pos_slice=-1)
    assert attrs.shape == (model.cfg.n_layers + 1, 1)
    np.testing.assert_allclose(attrs[-1, 0], want, rtol=0, atol=TOL)
    parts, labels = cache.decompose_resid(pos_slice=-1, return_labels=True)
    np.testing.assert_allclose(cache.logit_attrs(parts, target, other, pos_slice=-1).sum(0)[0], want, rtol=0, atol=TOL)
    # Per position: each position's own next token, every position at once.
    per_pos = cache.logit_attrs(cache.decompose_resid(), tokens[0, 1:].tolist() + [target])
    want_logit = np.take_along_axis(logits[0], np.array(tokens[0, 1:].tolist() + [target])[:, None], 1)[:, 0]
    b_u = model.b_U[tokens[0, 1:].tolist() + [target]]
    np.testing.assert_allclose(per_pos.sum(0)[0], want_logit - b_u, rtol=0, atol=TOL)
    # A one-token string names the token.
    piece = model.to_str_tokens([target])[0]
    if model.to_tokens(piece, prepend_bos=False).shape[1] == 1:
        np.testing.assert_array_equal(cache.logit_attrs(accumulated, piece, pos_slice=-1),
                                      cache.logit_attrs(accumulated, target, pos_slice=-1))
    with pytest.raises(ValueError, match="same shape"):
        cache.logit_attrs(accumulated, [target, target], incorrect_tokens=other, pos_slice=-1)


@pytest.mark.parametrize("path", MODELS)
def test_stack_head_results_with_the_remainder_is_the_residual_stream(path):
    model, tokens, _, cache = run(path)
    n_layers, n_heads, n = model.cfg.n_layers, model.cfg.n_heads, tokens.shape[1]
    heads, labels = cache.stack_head_results(return_labels=True, incl_remainder=True)
    assert labels == [f"L{l}H{h}" for l in range(n_layers) for h in range(n_heads)] + ["remainder"]
    assert heads.shape == (n_layers * n_heads + 1, 1, n, model.cfg.d_model)
    np.testing.assert_array_equal(heads[n_heads + 2], cache["result", 1][:, :, 2])
    np.testing.assert_allclose(heads.sum(0), cache["resid_post", -1], rtol=0, atol=TOL)
    two = cache.stack_head_results(layer=2, pos_slice=(1, 3), apply_ln=True)
    assert two.shape == (2 * n_heads, 1, 2, model.cfg.d_model)
    head = cache["result", 0][:, 1:3, 0]
    if model.cfg.normalization_type == "LN":  # LayerNorm centres what it normalises
        head = head - head.mean(-1, keepdims=True)
    np.testing.assert_allclose(two[0], head * cache["scale", 2][:, 1:3], rtol=0, atol=1e-6)


def test_the_analyses_need_what_they_read():
    if not MODELS:
        pytest.skip("shared models absent")
    model = tp.Model.from_pretrained(MODELS[0], threads=1)
    _, cache = model.run_with_cache(model.to_tokens("Hi there"), names_filter="blocks.*.hook_resid_post")
    with pytest.raises(KeyError, match="not captured"):
        cache.accumulated_resid()
    with pytest.raises(KeyError, match="ln_final.hook_scale"):
        cache.apply_ln_to_stack(np.stack([cache["resid_post", -1]]))
    with pytest.raises(ValueError, match="layer 9"):
        cache.decompose_resid(layer=9)
    with pytest.raises(ValueError, match="not one"):
        model.to_single_token("Once upon a time")


MAKE_FIXTURES = os.environ.get("TOKENPROBE_MAKE_FIXTURES", "")


@pytest.mark.skipif(not MAKE_FIXTURES, reason="TOKENPROBE_MAKE_FIXTURES not set")
def test_rwkv_decomposition_sums_to_the_stream(tmp_path):
    """RWKV: ln0's output and each block's time-mix and channel-mix outputs make the stream;
    RWKV-6's halving after every few blocks scales the earlier parts."""
    import subprocess
    subprocess.run([MAKE_FIXTURES, str(tmp_path)], check=True, capture_output=True)
    for name in ("rwkv6-tiny-f32", "rwkv7-tiny-f32"):
        model = tp.Model.from_pretrained(str(tmp_path / f"{name}.gguf"), threads=1)
        logits, cache = model.run_with_cache([0, 17, 42, 9, 100, 3])
        stack, labels = cache.decompose_resid(return_labels=True)
        assert labels[:3] == ["embed", "0_time_mix_out", "0_channel_mix_out"]
        np.testing.assert_allclose(stack.sum(0), cache["resid_post", -1], rtol=0, atol=TOL, err_msg=name)
        np.testing.assert_allclose(cache.decompose_resid(layer=2).sum(0), cache["resid_pre", 2], rtol=0, atol=TOL)
        last = logits[0, -1]
        target, other = (int(i) for i in np.argsort(-last)[:2])
        want = (last[target] - last[other]) - (model.b_U[target] - model.b_U[other])
        attrs = cache.logit_attrs(stack, target, other, pos_slice=None)
        np.testing.assert_allclose(attrs.sum(0)[0, -1], want, rtol=0, atol=TOL, err_msg=name)
        with pytest.raises(ValueError, match="no attention heads"):
            cache.stack_head_results()
