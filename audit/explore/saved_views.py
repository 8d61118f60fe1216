"""Saved views (SPEC §9): reads and writes, always within the caller's organization.

Who sees what: a view is visible to its owner and, when `shared`, to everyone of its
organization (people and API keys with the read scope); only its owner may change or
delete it. The owner is the signed-in person, or the API key, that created it. Another
organization's view, or someone else's private one, is Http404: "not yours" and "not
there" look the same. `query` is validated as the /events/ filters are.
"""

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404, QueryDict

from audit.accounts.caller import Caller
from audit.events.models import AuditEvent
from audit.explore.filters import EventFilterSet, FilterError, filterset_bind
from audit.explore.models import SavedView
from audit.explore.vocabulary import ParameterError, is_filter_param

MAX_NAME = 100
MAX_QUERY = 4000


def _owned_by(caller: Caller) -> Q:
    if caller.key is not None:
        return Q(owner_key=caller.key)
    return Q(owner_user=caller.user)


def saved_view_owner(view: SavedView) -> str:
    """How a view names its owner: as the access log names callers."""
    if view.owner_key_id is not None:
        key = view.owner_key
        return f"key:{key.prefix}" + (f" ({key.name})" if key.name else "")
    return f"user:{view.owner_user.get_username()}"


def saved_view_is_own(view: SavedView, *, caller: Caller) -> bool:
    if caller.key is not None:
        return view.owner_key_id == caller.key.pk
    return caller.user is not None and view.owner_user_id == caller.user.pk


def saved_view_list(*, caller: Caller) -> QuerySet:
    """The caller's own views and the organization's shared ones, by name."""
    return (
        SavedView.objects.filter(Q(org=caller.org) & (_owned_by(caller) | Q(shared=True)))
        .select_related("owner_user", "owner_key")
        .order_by("name", "id")
    )


def saved_view_get(*, caller: Caller, view_id: int) -> SavedView:
    view = saved_view_list(caller=caller).filter(pk=view_id).first()
    if view is None:
        raise Http404("No such view.")
    return view


def saved_view_query_clean(query: str) -> str:
    """The query string as /events/ would use it, or ParameterError naming what is wrong."""
    if not isinstance(query, str) or len(query) > MAX_QUERY:
        raise ParameterError.one("query", f"must be a query string of at most {MAX_QUERY} characters")
    params = QueryDict(query.removeprefix("?"), mutable=True)
    unknown = [name for name in params if not is_filter_param(name)]
    if unknown:
        raise ParameterError.one("query", f"{', '.join(sorted(unknown))}: not a filter of /events/")
    clean = QueryDict(mutable=True)
    for name, values in params.lists():
        kept = [value for value in values if value != ""]
        if kept:
            clean.setlist(name, kept)
    try:
        filterset_bind(EventFilterSet, data=clean, queryset=AuditEvent.objects.none())
    except FilterError as error:
        messages = [f"{name}: {message}" for name, problems in error.errors.items() for message in problems]
        raise ParameterError({"query": messages}) from None
    return clean.urlencode()


def _name_clean(name) -> str:
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME:
        raise ParameterError.one("name", f"must be 1–{MAX_NAME} characters")
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        raise ParameterError.one("name", "must not contain control characters")
    return name.strip()


def saved_view_create(*, caller: Caller, name: str, query: str, shared: bool = False) -> SavedView:
    owner = {"owner_key": caller.key} if caller.key is not None else {"owner_user": caller.user}
    return SavedView.objects.create(
        org=caller.org, name=_name_clean(name), query=saved_view_query_clean(query), shared=bool(shared), **owner
    )


def _own(caller: Caller, view_id: int) -> SavedView:
    view = saved_view_get(caller=caller, view_id=view_id)
    if not saved_view_is_own(view, caller=caller):
        raise PermissionDenied("Only the owner of a view may change or delete it.")
    return view


def saved_view_update(
    *, caller: Caller, view_id: int, name: str | None = None, query: str | None = None, shared: bool | None = None
) -> SavedView:
    view = _own(caller, view_id)
    if name is not None:
        view.name = _name_clean(name)
    if query is not None:
        view.query = saved_view_query_clean(query)
    if shared is not None:
        view.shared = bool(shared)
    view.save()
    return view


def saved_view_delete(*, caller: Caller, view_id: int) -> None:
    _own(caller, view_id).delete()
