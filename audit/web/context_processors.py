from audit.accounts.caller import request_caller


def caller_is_admin(request) -> dict:
    """`caller_is_admin` for the header's admin links; asked (one cached lookup) only when a
    template reads it."""
    return {"caller_is_admin": lambda: request_caller(request).is_admin}
