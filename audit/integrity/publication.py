"""Copies of every checkpoint where the customer keeps them (optional).

A copy outside Lens's database is what catches even a full rewrite of it: whoever holds
the database and the signing secret can recompute the chain and re-sign checkpoints, but
cannot change the copies already published. Settings ("{org}" becomes the slug):

* LENS_CHECKPOINT_PUBLISH_DIR: each checkpoint is written, atomically, as
  `<dir>/<org>-<signed_at>-<digest prefix>.json` (its JSON and a line feed);
* LENS_CHECKPOINT_PUBLISH_URL: each checkpoint's JSON is POSTed there (any 2xx is done;
  an `Idempotency-Key` header carries its digest, so a repeat can be recognized).

A checkpoint is marked published when every configured place has it; the hourly task
retries the rest. `python -m audit.verify … --published DIR` and
`verify_chain --published DIR` compare against the copies.
"""

import json
import logging
import os
import tempfile
from pathlib import Path

import httpx
from django.conf import settings
from django.utils import timezone

from audit.integrity.checkpoints import checkpoint_wire
from audit.integrity.models import Checkpoint
from audit.integrity.signatures import checkpoint_digest

logger = logging.getLogger(__name__)


class PublishFailed(Exception):
    pass


def publication_configured() -> bool:
    return bool(settings.LENS_CHECKPOINT_PUBLISH_DIR or settings.LENS_CHECKPOINT_PUBLISH_URL)


def published_file_name(wire: dict) -> str:
    stamp = wire["signed_at"].replace("-", "").replace(":", "").replace(".", "")
    return f"{wire['org']}-{stamp}-{checkpoint_digest(wire)[:16]}.json"


def _write(directory: Path, wire: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    body = json.dumps(wire, sort_keys=True).encode() + b"\n"
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".checkpoint-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, directory / published_file_name(wire))
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _post(url: str, wire: dict) -> None:
    headers = {"Idempotency-Key": checkpoint_digest(wire)}
    with httpx.Client(timeout=settings.LENS_CHECKPOINT_PUBLISH_TIMEOUT, follow_redirects=False) as client:
        response = client.post(url, json=wire, headers=headers)
    if not response.is_success:
        raise PublishFailed(f"{url} answered {response.status_code}")


def checkpoint_publish(*, checkpoint: Checkpoint) -> None:
    """Publish one checkpoint to every configured place, then mark it published.
    Raises PublishFailed (leaving it unpublished) when a place did not take it."""
    wire = checkpoint_wire(checkpoint)
    org = wire["org"]
    try:
        if settings.LENS_CHECKPOINT_PUBLISH_DIR:
            _write(Path(settings.LENS_CHECKPOINT_PUBLISH_DIR.replace("{org}", org)), wire)
        if settings.LENS_CHECKPOINT_PUBLISH_URL:
            _post(settings.LENS_CHECKPOINT_PUBLISH_URL.replace("{org}", org), wire)
    except (OSError, httpx.HTTPError) as exc:
        raise PublishFailed(f"{exc.__class__.__name__}: {exc}") from exc
    Checkpoint.objects.filter(pk=checkpoint.pk).update(published_at=timezone.now())


def checkpoints_publish_pending(*, checkpoint_id: int | None = None) -> int:
    """Publish the unpublished checkpoints (or just one), oldest first; returns how many
    were published. A failure is logged and left for the next run."""
    if not publication_configured():
        return 0
    pending = Checkpoint.objects.filter(published_at=None).select_related("org", "signing_key").order_by("id")
    if checkpoint_id is not None:
        pending = pending.filter(pk=checkpoint_id)
    done = 0
    for checkpoint in pending.iterator():
        try:
            checkpoint_publish(checkpoint=checkpoint)
        except PublishFailed as exc:
            logger.warning("checkpoint %s of %s not published: %s", checkpoint.pk, checkpoint.org.slug, exc)
            continue
        done += 1
    return done
