"""`{% chain_status_badge seq %}`: an event's place in the tamper-evident chain, as judged
by the last verification (audit.integrity.chain_status). Needs `org` in the context; the
last verification is read once per page however many badges it shows."""

from django import template
from django.utils.html import format_html

from audit import integrity

register = template.Library()

_LOOK = {
    "verified": ("o-success", "verified", "Recomputed and intact at the last chain verification ({when})."),
    "unverified": ("", "not yet verified", "Stored after the last chain verification, or none has run yet."),
    "broken": ("o-bad", "chain broken", "The last verification found the chain broken at seq {bad}, at or before this event."),
}
_CACHE_KEY = "audit.integrity.last_verification"


@register.simple_tag(takes_context=True)
def chain_status_badge(context, seq):
    org = context["org"]
    cache = context.render_context
    if _CACHE_KEY not in cache:
        cache[_CACHE_KEY] = integrity.chain_verification_last(org=org)
    status = integrity.chain_status(org=org, seq=seq, last=cache[_CACHE_KEY])
    css, label, title = _LOOK[status["state"]]
    return format_html(
        '<span class="badge chain-status chain-{} {}" title="{}">{} · seq {}</span>',
        status["state"], css, title.format(when=status["verified_at"], bad=status["first_bad_seq"]), label, status["seq"],
    )
