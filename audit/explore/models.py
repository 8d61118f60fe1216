"""Saved views (SPEC §9): a named filter of /events/, private to its owner unless shared."""

from django.conf import settings
from django.db import models

from audit.accounts.models import ApiKey, Organization


class SavedView(models.Model):
    """`query` is the filter query string of /events/ (`decision=deny&q=tool%3Adelete_*`).

    Owned by the signed-in person or the API key that created it (exactly one of the two).
    """

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="saved_views")
    owner_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)
    owner_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.CASCADE)
    name = models.CharField(max_length=100)
    query = models.TextField(blank=True)
    shared = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["org", "name"], name="audit_savedview_org_name")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(owner_user__isnull=True) ^ models.Q(owner_key__isnull=True),
                name="audit_savedview_one_owner",
            )
        ]

    def __str__(self):
        return self.name
