"""Form fields of the filters: repeated values, choices, moments in time."""

import re
from datetime import timedelta

import django_filters.fields
from django import forms
from django.utils import timezone

from audit.events.wire import parse_timestamp
from audit.explore.vocabulary import TIME_HELP

MAX_VALUES = 100  # repeats of one parameter
MAX_VALUE_LENGTH = 1000

CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_RELATIVE_RE = re.compile(r"^(\d{1,7})([smhdw])$")
_RELATIVE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# A "+01:00" zone arrives as " 01:00" when the client did not percent-encode the "+".
_UNENCODED_PLUS_RE = re.compile(r" (\d{2}:\d{2})$")


class RepeatedTextInput(forms.MultipleHiddenInput):
    """Reads every value of a repeated parameter; renders one text box per value."""

    input_type = "text"


class RepeatedValueField(forms.Field):
    """A list of exact values from a repeated query parameter (empty values ignored)."""

    widget = RepeatedTextInput

    def __init__(self, *, max_length=MAX_VALUE_LENGTH, **kwargs):
        self.max_length = max_length
        super().__init__(**kwargs)

    def to_python(self, value):
        if value in (None, ""):
            return []
        values = [value] if isinstance(value, str) else list(value)
        return [item for item in values if item != ""]

    def validate(self, value):
        super().validate(value)
        if len(value) > MAX_VALUES:
            raise forms.ValidationError(f"may be repeated at most {MAX_VALUES} times")
        for item in value:
            if not isinstance(item, str) or len(item) > self.max_length:
                raise forms.ValidationError(f"values must be at most {self.max_length} characters")
            if CONTROL_RE.search(item):
                raise forms.ValidationError("values must not contain control characters")


class ChoicesField(django_filters.fields.MultipleChoiceField):
    """Repeated choices; a plain dict may hold one value as a bare string."""

    def to_python(self, value):
        return super().to_python([value] if isinstance(value, str) else value)


class MetadataValueField(RepeatedValueField):
    def __init__(self, *, key_error=None, **kwargs):
        self.key_error = key_error
        super().__init__(**kwargs)

    def validate(self, value):
        if self.key_error:
            raise forms.ValidationError(self.key_error)
        super().validate(value)


class MetadataPairsField(RepeatedValueField):
    """`metadata=<key>=<value>` values as {key: [values]}; `key_error(key, index)` judges each key."""

    def __init__(self, *, key_error, **kwargs):
        self.key_error = key_error
        super().__init__(**kwargs)

    def clean(self, value):
        pairs = super().clean(value)
        grouped: dict[str, list[str]] = {}
        for pair in pairs:
            key, equals, text = pair.partition("=")
            if not equals:
                raise forms.ValidationError(f"{pair[:64]!r} is not <key>=<value> (metadata=env=production)")
            if key not in grouped and (problem := self.key_error(key, len(grouped))):
                raise forms.ValidationError(f"{key[:64]!r}: {problem}")
            grouped.setdefault(key, []).append(text)
        return grouped


class MomentField(forms.CharField):
    """An absolute (RFC 3339) or relative (`15m`) moment, as an aware UTC datetime."""

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", TIME_HELP)
        super().__init__(**kwargs)

    def to_python(self, value):
        text = super().to_python(value)
        if not text:
            return None
        try:
            return moment_parse(text)
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None


def moment_parse(text: str):
    """`since`/`until` text as an aware UTC datetime: RFC 3339, or relative to now (`15m`)."""
    problem = f"{text[:64]!r} is not a time: use {TIME_HELP}"
    if len(text) > 64:
        raise ValueError(problem)
    relative = _RELATIVE_RE.match(text)
    try:
        if relative:
            amount, unit = relative.groups()
            return timezone.now() - timedelta(**{_RELATIVE_UNITS[unit]: int(amount)})
        return parse_timestamp(_UNENCODED_PLUS_RE.sub(r"+\1", text))
    except (ValueError, OverflowError):
        raise ValueError(problem) from None
