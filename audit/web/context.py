"""What every page's template knows about the caller (a template context processor)."""

from audit.accounts.caller import request_caller


def caller(request) -> dict:
    """Whether the signed-in person is an admin of their organization (for the navigation).
    Pages have read the caller already (org_view), so this costs no query there."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"caller_is_admin": request_caller(request).is_admin}
