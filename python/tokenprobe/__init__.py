"""Read tokenprobe traces from Python.

    import tokenprobe
    tr = tokenprobe.load_trace("run.tptrace")
    tr.cache["blocks.3.hook_resid_post"]   # [pos, d_model], every captured position
    tr.cache["pattern", 3]                 # TransformerLens short names work too
    tr.tokens, tr.steps, tr.manifest
    tr.hooks["blocks.3.attn.hook_pattern"]  # its axes, sizes, dtype (HookFacts)

Needs only numpy; uses the `safetensors` package when it is installed.
"""

from .trace import ActivationCache, HookFacts, Trace, TraceFormatError, load_trace, read_safetensors

__all__ = ["ActivationCache", "HookFacts", "Trace", "TraceFormatError", "load_trace", "read_safetensors"]
__version__ = "0.1.0"
