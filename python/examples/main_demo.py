"""TransformerLens's "main demo" steps on a tokenprobe model: the logit lens, direct logit
attribution, head ablation and activation patching, on a prompt whose answer is one of two
names (docs/python.md shows its output on stories260K and TinyStories-656K).

    PYTHONPATH=build/python python3 python/examples/main_demo.py MODEL
"""

import sys

import numpy as np

import tokenprobe as tp

model = tp.Model.from_pretrained(sys.argv[1], threads=2)
print(model)


def prompt_and_answers(text, a, b):
    """The tokens of `text` up to where `text a` and `text b` part, and the two tokens there:
    the answers as this model's tokenizer splits them (a space may belong to either side)."""
    with_a, with_b = model.to_tokens(f"{text} {a}")[0], model.to_tokens(f"{text} {b}")[0]
    n = next(i for i in range(min(len(with_a), len(with_b))) if with_a[i] != with_b[i])
    return with_a[None, :n], int(with_a[n]), int(with_b[n])


# Two prompts of the same length that differ in which name comes back: the answer of the
# clean one is " Lily" rather than " Tim", the corrupted one's the other way round.
clean, right, wrong = prompt_and_answers("Lily and Tim went to the park. Tim gave the ball to", "Lily", "Tim")
corrupt, _, _ = prompt_and_answers("Lily and Tim went to the park. Lily gave the ball to", "Lily", "Tim")
assert clean.shape == corrupt.shape, (model.to_str_tokens(clean), model.to_str_tokens(corrupt))
print("clean prompt:", model.to_str_tokens(clean))
print("answer tokens:", model.to_str_tokens([right, wrong]))


def logit_diff(logits):
    return float(logits[0, -1, right] - logits[0, -1, wrong])


logits, cache = model.run_with_cache(clean)
corrupt_logits = model(corrupt)
clean_diff, corrupt_diff = logit_diff(logits), logit_diff(corrupt_logits)
print(f"logit difference Lily - Tim: clean {clean_diff:.3f}, corrupted {corrupt_diff:.3f}")

# 1. The logit lens: the residual stream after each half-block, read through the final norm
# (its cached scale) and the unembedding, as the logit difference it already carries.
stack, labels = cache.accumulated_resid(layer=-1, incl_mid=True, pos_slice=-1, return_labels=True)
lens = cache.logit_attrs(stack, right, incorrect_tokens=wrong, pos_slice=-1)[:, 0]
print("logit lens:", " ".join(f"{l}={v:.2f}" for l, v in zip(labels, lens)))

# 2. Direct logit attribution: which block's attention and MLP write the difference, and
# which heads.
parts, labels = cache.decompose_resid(layer=-1, pos_slice=-1, return_labels=True)
attrs = cache.logit_attrs(parts, right, incorrect_tokens=wrong, pos_slice=-1)[:, 0]
print("per part:", " ".join(f"{l}={v:.2f}" for l, v in zip(labels, attrs)),
      f"(sum {attrs.sum():.3f})")
heads, head_labels = cache.stack_head_results(layer=-1, pos_slice=-1, return_labels=True)
head_attrs = cache.logit_attrs(heads, right, incorrect_tokens=wrong, pos_slice=-1)[:, 0]
top = np.argsort(-np.abs(head_attrs))[:4]
print("heads with the largest direct effect:", " ".join(f"{head_labels[i]}={head_attrs[i]:.2f}" for i in top))

# 3. Head ablation: zero the strongest head's output (its z) and see the difference drop;
# the same ablation as an intervention string gives the same logits.
layer, head = (int(x) for x in head_labels[top[0]][1:].split("H"))


def ablate(z, hook):
    z[0, :, head] = 0


ablated = model.run_with_hooks(clean, fwd_hooks=[(f"blocks.{layer}.attn.hook_z", ablate)])
same = model(clean, intervene=f"zero(blocks.{layer}.attn.hook_z[heads={head}])")
print(f"ablating L{layer}H{head}: logit difference {clean_diff:.3f} -> {logit_diff(ablated):.3f}",
      "(intervene= gives the same logits)" if np.array_equal(ablated, same) else "(intervene= differs!)")

# 4. Activation patching: the clean run's residual stream at one position and layer put into
# the corrupted run; 1 = the clean difference fully restored, 0 = nothing.
n = clean.shape[1]
restored = np.zeros((model.cfg.n_layers, n))
for L in range(model.cfg.n_layers):
    for p in range(n):
        def patch(resid, hook, p=p):
            resid[0, p] = cache[hook.name][0, p]

        patched = model.run_with_hooks(corrupt, fwd_hooks=[(f"blocks.{L}.hook_resid_pre", patch)])
        restored[L, p] = (logit_diff(patched) - corrupt_diff) / (clean_diff - corrupt_diff)
tokens = model.to_str_tokens(clean)
print("patching resid_pre (rows: layers; columns: positions where the prompts differ and the last two):")
differ = [p for p in range(n) if clean[0, p] != corrupt[0, p]]
cols = differ + [n - 2, n - 1]
print("        " + " ".join(f"{tokens[p]!r:>8}" for p in cols))
for L in range(model.cfg.n_layers):
    print(f"  L{L:<4}  " + " ".join(f"{restored[L, p]:8.2f}" for p in cols))
