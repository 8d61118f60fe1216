"""What every read endpoint shares: who may read, rate limits, the unknown-parameter
check, and keyset pages with `next`/`previous` links (audit/explore/pagination.py)."""

from dataclasses import dataclass, field

from drf_spectacular.utils import OpenApiResponse
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from audit.accounts.access_log import access_record
from audit.accounts.caller import request_caller
from audit.api import serializers as s
from audit.api.permissions import CanRead
from audit.api.throttling import ReadThrottle
from audit.explore.pagination import CURSOR_PARAM, PAGE_SIZE_PARAM, Cursor, keyset_page, page_size
from audit.explore.vocabulary import ParameterError, filter_params, is_filter_param

FORMAT_PARAM = "format"
PAGE_PARAMS = (CURSOR_PARAM, PAGE_SIZE_PARAM)

READ_ERRORS = {
    400: OpenApiResponse(s.ParameterErrorSerializer, description="A parameter is invalid; `errors` names it."),
    401: s.DetailSerializer,
    403: OpenApiResponse(s.DetailSerializer, description="The key lacks the `read` scope."),
    429: OpenApiResponse(s.DetailSerializer, description="Over the read rate limit; see Retry-After."),
}
NOT_FOUND = {404: OpenApiResponse(s.DetailSerializer, description="No such id in your organization.")}


class JSONNegotiation(BaseContentNegotiation):
    """Always JSON for DRF's own answers; `format` is ours to read (and to reject with a 400)."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ReadView(APIView):
    permission_classes = [CanRead]
    throttle_classes = [ReadThrottle]
    content_negotiation_class = JSONNegotiation
    extra_params: tuple = ()  # query parameters besides the filters
    takes_filters = False

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method in ("GET", "HEAD"):  # HEAD runs the GET view: the same checks
            self.check_query_params(request)

    def check_query_params(self, request):
        """An unknown parameter (a typo of a filter) is an error, never silently ignored."""
        for name in request.query_params:
            if name not in self.extra_params and not (self.takes_filters and is_filter_param(name)):
                raise ParameterError.one(name, "is not a parameter of this endpoint")

    def output_format(self, request, choices, default):
        value = request.query_params.get(FORMAT_PARAM) or default
        if value not in choices:
            raise ParameterError.one(FORMAT_PARAM, f"must be one of {', '.join(choices)}")
        return value

    def record(self, request, action: str, target: str = ""):
        """Note the read in the access log (audit/accounts/access_log.py)."""
        access_record(request=request, action=action, target=target, filters=filter_params(request.query_params))


@dataclass
class ApiPage:
    items: list
    next_url: str | None = None
    previous_url: str | None = None
    next_cursor: str | None = None
    previous_cursor: str | None = None
    links: dict = field(default_factory=dict)

    @property
    def link_header(self) -> str:
        """RFC 8288 Link header (for CSV and NDJSON pages, which have no envelope)."""
        return ", ".join(f'<{url}>; rel="{rel}"' for rel, url in self.links.items())

    def envelope(self, results: list) -> dict:
        # The cursors beside the links, so a client that builds its own requests (a generated
        # one) passes `cursor=` without taking a URL apart.
        return {
            "next": self.next_url, "previous": self.previous_url,
            "next_cursor": self.next_cursor, "previous_cursor": self.previous_cursor, "results": results,
        }


def api_page(queryset, request, *, time_field: str) -> ApiPage:
    """A keyset page of `queryset` for `?cursor=&page_size=`, with its links."""
    params = request.query_params
    page = keyset_page(
        queryset=queryset, time_field=time_field, size=page_size(params.get(PAGE_SIZE_PARAM)),
        org_id=request_caller(request).org.pk, cursor=params.get(CURSOR_PARAM),
    )
    result = ApiPage(items=page.rows)
    if page.older is not None:
        result.next_cursor = page.older.encode()
        result.next_url = result.links["next"] = page_url(request, page.older)
    if page.newer is not None:
        result.previous_cursor = page.newer.encode()
        result.previous_url = result.links["prev"] = page_url(request, page.newer)
    return result


def page_url(request, cursor: Cursor) -> str:
    return replace_query_param(request.build_absolute_uri(), CURSOR_PARAM, cursor.encode())
