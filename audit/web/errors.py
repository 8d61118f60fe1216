"""Every error answer, in one place: the API's JSON under /api/, a Lens page elsewhere.

Django calls these for 400, 403, 404 and 500 (lens/urls.py `handler…`); `api_not_found`
also answers every /api/ path no route matches, so the API keeps its JSON 404 with
DEBUG on too (Django's debug 404 page, with the URL list, never shows there).
"""

from django.http import HttpResponseBadRequest, JsonResponse
from django.template import loader
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt, requires_csrf_token

API_PREFIX = "/api/"
_DETAIL = {
    400: "Bad request.",
    403: "You do not have permission to perform this action.",
    404: "Not found.",
    500: "Server error; nothing you sent is at fault. Try again later.",
}


def _is_api(request) -> bool:
    return request.path.startswith(API_PREFIX)


def api_error(status: int, detail: str | None = None) -> JsonResponse:
    return JsonResponse({"detail": detail or _DETAIL[status]}, status=status)


@csrf_exempt  # a 404 changes nothing; a CSRF check would answer a PATCH here with an HTML 403
def api_not_found(request, *args, **kwargs):
    return api_error(404)


@requires_csrf_token
def bad_request(request, exception):
    return api_error(400) if _is_api(request) else defaults.bad_request(request, exception)


@requires_csrf_token
def permission_denied(request, exception):
    return api_error(403) if _is_api(request) else defaults.permission_denied(request, exception)


def page_not_found(request, exception):
    return api_error(404) if _is_api(request) else defaults.page_not_found(request, exception)


@requires_csrf_token
def server_error(request):
    if _is_api(request):
        return api_error(500)
    # No request context: a 500 may come from the database, which the context would query.
    return defaults.server_error(request)


def too_many_parameters(request, limit: int):
    """More query parameters than DATA_UPLOAD_MAX_NUMBER_FIELDS (see the middleware)."""
    detail = f"Too many query parameters: at most {limit}."
    if _is_api(request):
        return api_error(400, detail)
    body = loader.render_to_string("400.html", {"detail": detail}, request=request)
    return HttpResponseBadRequest(body)
