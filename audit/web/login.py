"""The login form, throttled per username and per address (audit/accounts/throttle.py).

Past `LENS_LOGIN_FAILURES_PER_USERNAME` failed logins for one username, or
`LENS_LOGIN_FAILURES_PER_ADDRESS` from one address, the form answers 429 with a clear
message until the window ends, without checking the password: a right guess then
fails too, so guessing gains nothing.
"""

from django.conf import settings
from django.contrib.auth.views import LoginView

from audit.accounts.caller import client_address
from audit.accounts.throttle import FailureWindow


def _windows(request) -> list[FailureWindow]:
    username = request.POST.get("username", "").strip().lower()[:150]
    return [
        FailureWindow(kind="login-failures:user", ident=username, rate=settings.LENS_LOGIN_FAILURES_PER_USERNAME),
        FailureWindow(kind="login-failures:address", ident=str(client_address(request)),
                      rate=settings.LENS_LOGIN_FAILURES_PER_ADDRESS),
    ]


class ThrottledLoginView(LoginView):
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        self.failures = _windows(request)
        exhausted = [window for window in self.failures if window.exhausted]
        if not exhausted:
            return super().post(request, *args, **kwargs)
        wait = max(window.retry_after for window in exhausted)
        form = self.get_form()
        form.errors.clear()
        form.add_error(None, f"Too many failed logins for this username or from this address. "
                             f"Try again in {max(1, round(wait / 60))} minute{'s' if wait > 90 else ''}.")
        response = self.render_to_response(self.get_context_data(form=form), status=429)
        response["Retry-After"] = str(wait)
        return response

    def form_invalid(self, form):
        for window in self.failures:
            window.record_failure()
        return super().form_invalid(form)
