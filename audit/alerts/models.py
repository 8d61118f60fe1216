"""Alerts and streaming out (SPEC §12): where events go, which events, and the outbox of
what is still to be delivered."""

from django.db import models

from audit.accounts.models import Organization


class Destination(models.Model):
    """A receiver of events: a signed webhook, a Slack incoming webhook or a Splunk HEC endpoint."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook"
        SLACK = "slack"
        SPLUNK_HEC = "splunk_hec"

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="destinations")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # The address as shown. A Slack incoming-webhook URL is itself the credential, so for
    # Slack this is only its scheme and host, and the whole URL is sealed below.
    url = models.CharField(max_length=2000)
    # Sealed (audit/alerts/sealing.py): the webhook's whsec_ secret, the HEC token, or Slack's URL.
    sealed_secret = models.TextField(blank=True)
    paused = models.BooleanField(default=False)
    paused_reason = models.CharField(max_length=500, blank=True)
    # The first failure since the last success: a day of nothing but failures pauses it.
    failing_since = models.DateTimeField(null=True, blank=True)
    # One sender at a time per destination (audit/alerts/delivery.py): who holds it, until when.
    lease_owner = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["org", "-created_at", "-id"], name="audit_destination_org")]

    def __str__(self):
        return f"{self.name} ({self.kind})"


class AlertRule(models.Model):
    """A §7 query and a destination: every newly stored event that matches is delivered there.

    `position` is the last chain seq this rule has matched through; the matcher moves it
    under the rule's row lock, so every stored event is considered exactly once, whoever
    (the after-store hook or the periodic catch-up) gets there first.
    """

    EVERYTHING = "*"  # the query of a stream: every event, in batches

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="alert_rules")
    name = models.CharField(max_length=100)
    query = models.CharField(max_length=2000)
    destination = models.ForeignKey(Destination, on_delete=models.PROTECT, related_name="rules")
    enabled = models.BooleanField(default=True)
    position = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["org", "-created_at", "-id"], name="audit_alertrule_org"),
            models.Index(fields=["org", "enabled", "position"], name="audit_alertrule_behind"),
        ]

    @property
    def streams(self) -> bool:
        return self.query.strip() == self.EVERYTHING

    def __str__(self):
        return self.name


class Delivery(models.Model):
    """One POST to make, and what became of it: the delivery outbox.

    An alert is one event (first_seq = last_seq); a stream's delivery is a batch, the
    events first_seq..last_seq of the organization's chain, fixed when it is made. Either
    way every attempt carries the same `message_id` (the `webhook-id`). A test (`rule` is
    null) is sent once, at once, and only recorded.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"  # given up: rejected for a day while the destination took others

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="deliveries")
    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="deliveries")
    rule = models.ForeignKey(AlertRule, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries")
    first_seq = models.BigIntegerField(null=True, blank=True)
    last_seq = models.BigIntegerField(null=True, blank=True)
    event_id = models.CharField(max_length=64, blank=True)  # an alert's event
    ordered = models.BooleanField(default=False)  # a stream's batch: sent only after the one before
    message_id = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.IntegerField(default=0)
    created_at = models.DateTimeField()
    next_attempt_at = models.DateTimeField(null=True, blank=True)  # null once delivered or given up
    retry_until = models.DateTimeField(null=True, blank=True)  # a day after its first failure
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.IntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "first_seq"], name="audit_delivery_rule_seq_uniq")]
        indexes = [
            # The sender's scan, oldest due first; a stream's check for an earlier batch still pending.
            models.Index(fields=["destination", "status", "next_attempt_at", "id"], name="audit_delivery_due"),
            models.Index(fields=["rule", "status", "first_seq"], name="audit_delivery_rule_pending"),
            models.Index(fields=["org", "-created_at", "-id"], name="audit_delivery_org"),
        ]

    @property
    def event_count(self) -> int:
        return 0 if self.first_seq is None else self.last_seq - self.first_seq + 1

    def __str__(self):
        return self.message_id


class DeliveryAttempt(models.Model):
    """One try of a delivery: when, the answer's status code (none when there was no
    answer), what went wrong, how long it took."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField()
    status_code = models.IntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    duration_ms = models.FloatField()

    class Meta:
        indexes = [models.Index(fields=["delivery", "at"], name="audit_attempt_delivery")]

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    def __str__(self):
        return f"{self.delivery_id} at {self.at}: {self.status_code or self.error}"
