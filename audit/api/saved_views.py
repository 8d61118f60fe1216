"""Saved views (SPEC §9): /api/v1/views and /api/v1/views/<id>.

A signed-in person or an API key with the `read` scope lists its own views and the
organization's shared ones, creates views (owned by itself) and changes or deletes
only its own (403 for a shared view of someone else). Another organization's view, or
another caller's private one, is a 404.
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from audit.accounts.caller import request_caller
from audit.api import serializers as s
from audit.api.base import NOT_FOUND, READ_ERRORS, ReadView
from audit.explore import saved_views
from audit.explore.vocabulary import ParameterError

FIELDS = ("name", "query", "shared")


class SavedViewSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=saved_views.MAX_NAME)
    query = serializers.CharField(
        allow_blank=True, help_text="The filter query string of /events/ (`decision=deny&q=tool%3Adelete_*`)."
    )
    shared = serializers.BooleanField(default=False, help_text="Visible to everyone of the organization.")
    owner = serializers.CharField(read_only=True, help_text="`user:<username>` or `key:<prefix> (name)`.")


def _wire(view) -> dict:
    return {"id": view.pk, "name": view.name, "query": view.query, "shared": view.shared,
            "owner": saved_views.saved_view_owner(view)}


def _body(request, *, partial: bool) -> dict:
    try:
        data = request.data
    except ParseError as error:
        raise ParameterError.one("body", f"is not JSON: {error.detail}") from None
    if not isinstance(data, dict):
        raise ParameterError.one("body", "must be a JSON object")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise ParameterError({name: ["is not a field of a view"] for name in unknown})
    if not partial and "name" not in data:
        raise ParameterError.one("name", "is required")
    if "shared" in data and not isinstance(data["shared"], bool):
        raise ParameterError.one("shared", "must be true or false")
    return {name: data[name] for name in FIELDS if name in data}


_WRITE_ERRORS = {**READ_ERRORS, 400: OpenApiResponse(s.ParameterErrorSerializer, description="A field is invalid.")}


class SavedViewListView(ReadView):
    parser_classes = [JSONParser]

    @extend_schema(operation_id="views_list", summary="Saved views", description=__doc__,
                   responses={200: SavedViewSerializer(many=True), **READ_ERRORS})
    def get(self, request):
        return Response([_wire(view) for view in saved_views.saved_view_list(caller=request_caller(request))])

    @extend_schema(operation_id="views_create", summary="Save a view", request=SavedViewSerializer,
                   responses={201: SavedViewSerializer, **_WRITE_ERRORS})
    def post(self, request):
        fields = _body(request, partial=False)
        view = saved_views.saved_view_create(caller=request_caller(request), **{"query": "", **fields})
        return Response(_wire(view), status=status.HTTP_201_CREATED)


class SavedViewDetailView(ReadView):
    parser_classes = [JSONParser]

    @extend_schema(operation_id="views_retrieve", summary="One saved view",
                   responses={200: SavedViewSerializer, **READ_ERRORS, **NOT_FOUND})
    def get(self, request, view_id):
        return Response(_wire(saved_views.saved_view_get(caller=request_caller(request), view_id=view_id)))

    @extend_schema(operation_id="views_update", summary="Change your saved view", request=SavedViewSerializer,
                   responses={200: SavedViewSerializer, **_WRITE_ERRORS, **NOT_FOUND})
    def patch(self, request, view_id):
        fields = _body(request, partial=True)
        view = saved_views.saved_view_update(caller=request_caller(request), view_id=view_id, **fields)
        return Response(_wire(view))

    @extend_schema(operation_id="views_destroy", summary="Delete your saved view",
                   responses={204: None, **_WRITE_ERRORS, **NOT_FOUND})
    def delete(self, request, view_id):
        saved_views.saved_view_delete(caller=request_caller(request), view_id=view_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
