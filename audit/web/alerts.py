"""/alerts/: the organization's admins see and manage destinations, alert rules and
deliveries. Every change is a POST form (CSRF-protected) that redirects back, except
adding a webhook without a secret: that page shows the generated secret, once."""

import functools

from django import forms
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from audit.accounts.caller import request_caller
from audit.alerts import selectors, services
from audit.alerts.models import AlertRule, Delivery, Destination
from audit.explore.pagination import CURSOR_PARAM, BadPage, keyset_page

DELIVERIES_PER_PAGE = 25


def admin_view(view):
    """Signed in, and an admin of the organization (403 for the organization's viewers)."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        caller = request_caller(request)
        if caller.org is None:
            raise Http404("This login is not a member of any organization.")
        if not caller.is_admin:
            raise PermissionDenied("Alerts are managed by the organization's admins.")
        return view(request, caller.org, *args, **kwargs)

    return wrapper


class DestinationForm(forms.Form):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, auto_id="destination-%s", **kwargs)  # ids unique on a page with two forms

    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=Destination.Kind.choices)
    url = forms.CharField(max_length=2000, label="URL")
    secret = forms.CharField(
        max_length=200, required=False, label="Secret or token",
        help_text="Webhook: whsec_… (empty: Lens makes one). Splunk HEC: the token. Slack: none.",
    )


class RuleForm(forms.Form):
    name = forms.CharField(max_length=100)
    query = forms.CharField(max_length=2000, help_text=f"A search query; {AlertRule.EVERYTHING} streams every event.")
    destination = forms.TypedChoiceField(coerce=int)
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, org, **kwargs):
        super().__init__(*args, auto_id="rule-%s", **kwargs)
        self.fields["destination"].choices = list(selectors.destination_list(org=org).values_list("pk", "name"))


def _page(request, org, *, destination_form=None, rule_form=None, new_secret=None, status=200):
    destinations = selectors.destination_list(org=org).annotate(
        pending=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.PENDING))
    )
    page_error = None
    listing = {
        "queryset": selectors.delivery_list(org=org), "time_field": "created_at", "size": DELIVERIES_PER_PAGE,
        "org_id": org.pk,
    }
    try:
        deliveries = keyset_page(**listing, cursor=request.GET.get(CURSOR_PARAM))
    except BadPage as error:
        deliveries, page_error, status = keyset_page(**listing), str(error), 400
    context = {
        "org": org,
        "nav": "alerts",
        "destinations": list(destinations),
        "rules": list(selectors.rule_list(org=org)),
        "page": deliveries,
        "deliveries": deliveries.rows,
        "page_error": page_error,
        "destination_form": destination_form or DestinationForm(),
        "rule_form": rule_form or RuleForm(org=org),
        "new_secret": new_secret,
    }
    return render(request, "audit/alerts.html", context, status=status)


def _back():
    return HttpResponseRedirect(reverse("alerts"))


@admin_view
def alerts_page(request, org):
    return _page(request, org)


def _form_errors(form, error: services.AlertsError):
    for field, problems in error.errors.items():
        form.add_error(field if field in form.fields else "secret" if field == "token" else None, problems)


@require_POST
@admin_view
def destination_add(request, org):
    form = DestinationForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            destination, generated = services.destination_create(
                org=org, name=data["name"], kind=data["kind"], url=data["url"], secret=data["secret"] or None
            )
        except services.AlertsError as error:
            _form_errors(form, error)
        else:
            if generated:
                return _page(request, org, new_secret={"destination": destination, "secret": generated})
            messages.success(request, f"Destination {destination.name} added.")
            return _back()
    return _page(request, org, destination_form=form, status=400)


DESTINATION_ACTIONS = {
    "pause": lambda d: (services.destination_pause(destination=d), "paused: its deliveries wait here"),
    "resume": lambda d: (services.destination_resume(destination=d), "resumed: what waited is sent first"),
    "delete": lambda d: (services.destination_delete(destination=d), "deleted"),
}


@require_POST
@admin_view
def destination_action(request, org, pk, action):
    destination = selectors.destination_get(org=org, destination_id=pk)
    if action == "test":
        sent = services.destination_test(destination=destination)
        level = messages.SUCCESS if sent.status == Delivery.Status.DELIVERED else messages.ERROR
        answer = f"HTTP {sent.last_status_code}" if sent.last_status_code else "no answer"
        messages.add_message(request, level, f"Test to {destination.name}: {answer}. {sent.last_error}".strip())
        return _back()
    if action not in DESTINATION_ACTIONS:
        raise Http404("No such action.")
    try:
        _, done = DESTINATION_ACTIONS[action](destination)
    except services.AlertsError as error:
        messages.error(request, f"{destination.name}: {' '.join(sum(error.errors.values(), []))}")
    else:
        messages.success(request, f"Destination {destination.name} {done}.")
    return _back()


@require_POST
@admin_view
def rule_add(request, org):
    form = RuleForm(request.POST, org=org)
    if form.is_valid():
        data = form.cleaned_data
        try:
            rule = services.rule_create(
                org=org, name=data["name"], query=data["query"], enabled=data["enabled"],
                destination=selectors.destination_get(org=org, destination_id=data["destination"]),
            )
        except services.AlertsError as error:
            _form_errors(form, error)
        else:
            messages.success(request, f"Alert rule {rule.name} added: it matches events stored from now on.")
            return _back()
    return _page(request, org, rule_form=form, status=400)


@require_POST
@admin_view
def rule_action(request, org, pk, action):
    rule = selectors.rule_get(org=org, rule_id=pk)
    if action == "delete":
        services.rule_delete(rule=rule)
        messages.success(request, f"Alert rule {rule.name} deleted.")
    elif action in ("enable", "disable"):
        services.rule_update(rule=rule, enabled=action == "enable")
        messages.success(request, f"Alert rule {rule.name} {action}d.")
    else:
        raise Http404("No such action.")
    return _back()
