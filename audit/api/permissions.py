"""Who may call what: read, ingest, admin, decided by the caller (audit/accounts/caller.py)."""

from rest_framework import permissions

from audit.accounts.caller import INGEST, READ, request_caller


class _HasScope(permissions.BasePermission):
    scope = ""

    def has_permission(self, request, view):
        caller = request_caller(request)
        if caller.may(self.scope):
            return True
        if caller.key is not None:
            self.message = f"This API key lacks the '{self.scope}' scope."
        return False


class CanIngest(_HasScope):
    scope = INGEST


class CanRead(_HasScope):
    scope = READ


class IsOrgAdmin(permissions.BasePermission):
    message = "This is for your organization's admins: signed in as one, or with a key that has the 'admin' scope."

    def has_permission(self, request, view):
        return request_caller(request).is_admin
