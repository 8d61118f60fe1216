"""The organization's integrity page (SPEC §10 in the browser): its chain head, the last
verification and its result, the live signing key and the last checkpoints; admins can
start a verification ("verify now", a CSRF-protected POST)."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from audit.accounts.caller import request_caller
from audit.integrity import selectors, tasks
from audit.integrity.publication import publication_configured
from audit.retention.selectors import retention_overview
from audit.web.views import org_view


@org_view
def integrity(request, org):
    context = {
        "org": org,
        "nav": "integrity",
        "is_admin": request_caller(request).is_admin,
        "publishing": publication_configured(),
        "retention": retention_overview(org=org),
        **selectors.integrity_overview(org=org),
    }
    return render(request, "audit/integrity.html", context)


@require_POST
@org_view
def integrity_verify(request, org):
    if not request_caller(request).is_admin:
        raise PermissionDenied("Only the organization's admins can start a verification.")
    # With a broker this is queued and the page shows the result once it is done; embedded, it runs now.
    tasks.verify_chain_now.delay(org_id=org.pk)
    messages.info(request, "Verification started: the result is below once it has finished.")
    return HttpResponseRedirect(reverse("integrity"))
