"""The one FilterSet of SPEC §3, shared by the API and the browser pages.

Its filters are built from the vocabulary (audit/explore/vocabulary.py). Different
parameters are ANDed; repeating one ORs its values:

* `actor`, `slug`, `tool`, `method`, `decision`, `outcome`: exact match.
* `trace_id`: exact match.
* `metadata.<key>=<value>`: the metadata key equals the value (audit/explore/metadata.py).
* `since`, `until`: RFC 3339 with a zone, or relative to now (`30s`, `15m`, `24h`,
  `7d`, `2w`); both bounds are inclusive.
* `q`: a query in the Lens query language (audit/explore/query/, SPEC §7), ANDed with
  the rest; a query that does not parse is a form error naming the position.

An invalid value is a form error keyed by the parameter's name: the API answers 400
with it, the browser form shows it.
"""

import copy
from collections.abc import Mapping

import django_filters
from django import forms
from django.db import connections

from audit.events.models import AuditEvent
from audit.explore import vocabulary as v
from audit.explore.filter_fields import (
    CONTROL_RE, ChoicesField, MetadataPairsField, MetadataValueField, MomentField, RepeatedValueField,
)
from audit.explore.metadata import metadata_match
from audit.explore.query import QuerySyntaxError, query_condition, query_parse
from audit.ingest.models import TraceSummary


class FilterError(v.ParameterError):
    """Raised by selectors for invalid filters."""

    def __init__(self, filterset):
        self.filterset = filterset
        super().__init__({name: [str(m) for m in messages] for name, messages in filterset.form.errors.items()})


class AnyOfFilter(django_filters.Filter):
    """Exact match on any of the repeated values (`decision=deny&decision=alert`)."""

    field_class = RepeatedValueField

    def filter(self, qs, value):
        if not value:
            return qs
        return qs.filter(**{f"{self.field_name}__in": value})


class AnyOfChoiceFilter(django_filters.MultipleChoiceFilter):
    field_class = ChoicesField


class QueryField(forms.CharField):
    """The text of `q`, parsed (audit/explore/query/nodes.Query; None when blank)."""

    def to_python(self, value):
        text = super().to_python(value)
        if not text or not text.strip():
            return None
        try:
            return query_parse(text)
        except QuerySyntaxError as error:
            raise forms.ValidationError(str(error)) from None


class QueryFilter(django_filters.Filter):
    field_class = QueryField

    def filter(self, qs, value):
        if value is None or not value.terms:
            return qs
        return qs.filter(query_condition(value, vendor=connections[qs.db].vendor))


class MomentFilter(django_filters.Filter):
    field_class = MomentField


class MetadataFilter(django_filters.Filter):
    field_class = MetadataValueField

    def __init__(self, *, key, **kwargs):
        self.key = key
        super().__init__(field_name="metadata", **kwargs)

    def filter(self, qs, value):
        if not value:
            return qs
        return metadata_match(qs, key=self.key, values=value)


class MetadataPairsFilter(django_filters.Filter):
    """`metadata=<key>=<value>`, repeatable: each key ANDed, a repeated key ORed."""

    field_class = MetadataPairsField

    def filter(self, qs, value):
        for key, values in (value or {}).items():
            qs = metadata_match(qs, key=key, values=values)
        return qs


def metadata_key_error(key: str, index: int = 0) -> str | None:
    """What is wrong with a metadata key a request names (None: nothing)."""
    if not key:
        return "name a metadata key: metadata.<key>=<value>"
    if key.startswith("<") and key.endswith(">"):
        # The schema's own placeholder, sent as is by a client that took it for a name.
        return f"{key} is a placeholder: put a metadata key in its place (metadata.env=production)"
    if len(key) > 128 or CONTROL_RE.search(key):
        return "metadata keys are 1–128 printable characters"
    if index >= v.MAX_METADATA_FILTERS:
        return f"at most {v.MAX_METADATA_FILTERS} metadata filters"
    return None


def _filter(term: v.FilterTerm) -> django_filters.Filter:
    """The django-filter Filter of a vocabulary term."""
    if term.kind == v.VALUES:
        return AnyOfFilter(field_name=term.field, label=term.label, max_length=term.max_length)
    if term.kind == v.CHOICE:
        choices = [(value, value) for value in term.choices]
        return AnyOfChoiceFilter(
            field_name=term.field, label=term.label, choices=choices, widget=forms.CheckboxSelectMultiple, distinct=False
        )
    if term.kind == v.EXACT:
        return django_filters.CharFilter(field_name=term.field, label=term.label, max_length=term.max_length, strip=False)
    if term.kind == v.MOMENT:
        return MomentFilter(field_name=term.field, lookup_expr=term.lookup, label=term.label)
    if term.kind == v.SEARCH:
        return QueryFilter(label=term.label, strip=False)
    raise ValueError(f"no filter for kind {term.kind!r}")


class _Filters(dict):
    """A FilterSet's declared filters (`base_filters`). django-filter deep-copies them for
    every bound FilterSet, options, choices and widgets included: half the Python time of
    binding a request's filters (bench/profile.py). A shallow copy of each is enough: what
    a request sets on a filter (model, parent, its form field) is set on its own copy, and
    the options are only read (a filter's form field is built from a copy of them)."""

    def __deepcopy__(self, memo):
        return {name: copy.copy(filter_) for name, filter_ in self.items()}


class EventFilterForm(forms.Form):
    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", "must not be before since")
        return cleaned


class EventFilterSet(django_filters.FilterSet):
    """SPEC §3 filters over AuditEvent. Bind it to the query dict as is (repeats matter)."""

    class Meta:
        model = AuditEvent
        fields = []
        form = EventFilterForm

    @classmethod
    def get_filters(cls):
        filters = super().get_filters()
        filters.update({term.name: _filter(term) for term in v.TERMS})
        return _Filters(filters)

    def get_form_class(self):
        """The form of the declared filters is the same for every request: built once per
        FilterSet class (each form deep-copies its fields anyway). With metadata filters,
        whose names vary, it is built per request, as django-filter does."""
        if self.filters.keys() != self.base_filters.keys():
            return super().get_form_class()
        form_class = type(self).__dict__.get("_declared_form_class")
        if form_class is None:
            form_class = super().get_form_class()
            type(self)._declared_form_class = form_class
        return form_class

    def __init__(self, data=None, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        keys = [name for name in (data or {}) if name.startswith(v.METADATA_PREFIX)]
        # The pairs parameter shares the limit on keys with the metadata.<key> form.
        self.filters[v.METADATA_PARAM] = MetadataPairsFilter(
            label="metadata", key_error=lambda key, index: metadata_key_error(key, index + len(keys))
        )
        for index, name in enumerate(keys):
            key = name[len(v.METADATA_PREFIX) :]
            self.filters[name] = MetadataFilter(key=key, label=f"metadata {key}", key_error=metadata_key_error(key, index))


class TraceFilterSet(EventFilterSet):
    """The same parameters over TraceSummary.

    `since`/`until` keep traces whose span [started_at, ended_at] overlaps the window;
    `trace_id` matches the trace; every other parameter keeps traces that contain at
    least one matching event (all such parameters on the same event, inside the window
    when one is given). `events` is the organization's events: the matching trace ids
    are one `trace_id IN (SELECT …)` over them, never a GROUP BY over events. (A
    correlated EXISTS per trace was measured 60–240x slower on SQLite at 100k events,
    whose planner probes it through the decision or actor index.)
    """

    class Meta:
        model = TraceSummary
        fields = []
        form = EventFilterForm

    def __init__(self, data=None, queryset=None, *, events=None, **kwargs):
        super().__init__(data, queryset, **kwargs)
        self.events = events

    def filter_queryset(self, queryset):
        data = self.form.cleaned_data
        since, until = data.get("since"), data.get("until")
        if since:
            queryset = queryset.filter(ended_at__gte=since)
        if until:
            queryset = queryset.filter(started_at__lte=until)
        if data.get("trace_id"):
            queryset = queryset.filter(trace_id=data["trace_id"])

        event_filters = {
            name: value
            for name, value in data.items()
            if name not in ("since", "until", "trace_id") and value not in v.UNUSED_VALUES
        }
        if event_filters:
            if self.events is None:
                raise TypeError("TraceFilterSet needs events= (the organization's events) to filter by event fields")
            events = self.events
            for name, value in event_filters.items():
                events = self.filters[name].filter(events, value)
            if since:
                events = events.filter(timestamp__gte=since)
            if until:
                events = events.filter(timestamp__lte=until)
            queryset = queryset.filter(trace_id__in=events.order_by().values("trace_id"))
        return queryset


def filterset_bind(filterset_class, *, data: Mapping | None, queryset, **kwargs):
    """A bound, validated filterset; raises FilterError when a parameter is invalid."""
    filterset = filterset_class(data if data is not None else {}, queryset=queryset, **kwargs)
    if not filterset.is_valid():
        raise FilterError(filterset)
    return filterset
