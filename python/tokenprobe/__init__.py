"""tokenprobe from Python: run models live, and read traces (docs/python.md).

    import tokenprobe as tp
    model = tp.Model.from_pretrained("stories260K.gguf")
    logits, cache = model.run_with_cache(model.to_tokens("Once upon a time"))
    cache["resid_post", -1]                 # [1, pos, d_model], TransformerLens's layout

    tr = tp.load_trace("run.tptrace")
    tr.cache["blocks.3.hook_resid_post"]    # [pos, d_model], every captured position
    tr.cache["pattern", 3]                  # TransformerLens short names work too
    tr.tokens, tr.steps, tr.manifest
    tr.hooks["blocks.3.attn.hook_pattern"]  # its axes, sizes, dtype (HookFacts)

The trace reader needs only numpy (and uses the `safetensors` package when it is installed);
Model needs the native module tokenprobe._native, built by `pip install ./python` or by CMake.
"""

from .trace import ActivationCache, HookFacts, Trace, TraceFormatError, load_trace, read_safetensors

__all__ = ["ActivationCache", "HookFacts", "Trace", "TraceFormatError", "load_trace", "read_safetensors"]
__version__ = "0.1.0"

try:
    from ._native import FileError, NotFoundError, TokenprobeError, UsageError
    from .live import ActivationCache as LiveActivationCache
    from .live import Config, Explanation, Generation, Model
except ImportError as e:  # the trace reader still works without the native module
    _native_missing = e

    def __getattr__(name):
        if name in ("Model", "Config", "Explanation", "Generation", "LiveActivationCache", "TokenprobeError",
                    "UsageError", "FileError", "NotFoundError"):
            raise ImportError(f"tokenprobe.{name} needs the native module tokenprobe._native, which did not import "
                              f"({_native_missing}); install with `pip install ./python` (docs/python.md)")
        raise AttributeError(f"module 'tokenprobe' has no attribute {name!r}")
else:
    __all__ += ["Config", "Explanation", "FileError", "Generation", "LiveActivationCache", "Model", "NotFoundError",
                "TokenprobeError", "UsageError"]
