"""The retention form on the integrity page: an organization's admins set how long events,
and their arguments, are kept (SPEC §11; `set_retention` on the command line)."""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from audit.accounts.caller import request_caller
from audit.retention.services import RetentionError, duration_parse, duration_text, retention_set
from audit.web.views import org_view

_HELP = "12h, 90d, 2w, or forever"


class RetentionForm(forms.Form):
    keep = forms.CharField(max_length=16, help_text=_HELP)
    keep_arguments = forms.CharField(max_length=16, required=False, help_text=_HELP)

    def clean_keep(self):
        return self._duration("keep")

    def clean_keep_arguments(self):
        return self._duration("keep_arguments")

    def _duration(self, name):
        try:
            return duration_parse(self.cleaned_data.get(name) or "")
        except RetentionError as exc:
            raise forms.ValidationError(str(exc)) from None


@require_POST
@org_view
def retention_update(request, org):
    if not request_caller(request).is_admin:
        raise PermissionDenied("Only the organization's admins can change its retention.")
    form = RetentionForm(request.POST)
    if form.is_valid():
        try:
            policy = retention_set(org=org, keep=form.cleaned_data["keep"], keep_arguments=form.cleaned_data["keep_arguments"])
        except RetentionError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request,
                f"Events are kept {duration_text(policy.keep_seconds)}, their arguments "
                f"{duration_text(policy.keep_arguments_seconds)}; the periodic task removes what expired.",
            )
    else:
        messages.error(request, " ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items()))
    return HttpResponseRedirect(reverse("integrity") + "#retention-h")
