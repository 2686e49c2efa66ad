"""Jupyter's rich display: the `tokenprobe report` page (the viewer with a trace's data,
self-contained: its script and styles inlined) inside an iframe, so that its script and
styles stay apart from the notebook's."""

import html
from typing import Optional


def report_page(trace_dir: str, native_model=None) -> Optional[str]:
    """The report page of a trace directory: with a native model its logit-lens heatmap too.
    None when the native module is missing (the trace reader works without it)."""
    if native_model is not None:
        return native_model.report_html(trace_dir)
    try:
        from . import _native
    except ImportError:
        return None
    return _native.report_html(trace_dir)


def inline(page: Optional[str], height: int = 720) -> Optional[str]:
    """The page as one iframe element (srcdoc), for _repr_html_."""
    if page is None:
        return None
    return (f'<iframe srcdoc="{html.escape(page, quote=True)}" style="width:100%;height:{height}px;border:0" '
            f'sandbox="allow-scripts allow-downloads"></iframe>')
