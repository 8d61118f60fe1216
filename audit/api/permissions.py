from rest_framework import permissions

from audit.models import ApiKey


def request_org(request):
    """The organization a request acts for: its API key's, or the logged-in user's."""
    user = request.user
    if getattr(user, "key", None) is not None:
        return user.org
    membership = getattr(user, "membership", None)
    return membership.org if membership is not None else None


class _HasScope(permissions.BasePermission):
    scope = ""

    def has_permission(self, request, view):
        key = getattr(request.user, "key", None)
        if key is not None:
            if not key.has_scope(self.scope):
                self.message = f"This API key lacks the '{self.scope}' scope."
                return False
            return True
        return self.scope == ApiKey.Scope.READ and request_org(request) is not None


class CanIngest(_HasScope):
    scope = ApiKey.Scope.INGEST


class CanRead(_HasScope):
    scope = ApiKey.Scope.READ
