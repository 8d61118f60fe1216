"""The API's JSON renderer: DRF's output, written by orjson.

DRF's JSONRenderer runs the standard library's encoder over every answer; for a page of
50 events that was a good part of a read's Python time (bench/profile.py). orjson writes
the same JSON (compact, UTF-8, keys in order); what it does not take as is goes through
DRF's own encoder (`default`: times, decimals, lazy text), U+2028/U+2029 are escaped as
DRF escapes them, and anything orjson refuses (an integer beyond 64 bits, keys that are
not strings, an indented answer) is rendered by DRF itself.
"""

import orjson
from rest_framework import renderers
from rest_framework.utils.encoders import JSONEncoder

_default = JSONEncoder().default
_LINE_SEPARATORS = ((b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))


class JSONRenderer(renderers.JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        if self.get_indent(accepted_media_type, renderer_context or {}) is None:
            try:
                text = orjson.dumps(data, default=_default, option=orjson.OPT_PASSTHROUGH_DATETIME)
            except (orjson.JSONEncodeError, TypeError):
                pass
            else:
                if b"\xe2\x80" in text:
                    for raw, escaped in _LINE_SEPARATORS:
                        text = text.replace(raw, escaped)
                return text
        return super().render(data, accepted_media_type, renderer_context)
