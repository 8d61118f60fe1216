"""POST /api/v1/policy/simulate (SPEC §14): the thin face of `audit.policy.selectors.policy_simulate`."""

import json

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from audit.accounts.access_log import access_record
from audit.accounts.caller import request_caller
from audit.accounts.models import AccessRecord
from audit.api import serializers as s
from audit.api.base import READ_ERRORS, ReadView
from audit.explore.filters import FilterError
from audit.explore.vocabulary import ParameterError
from audit.policy.model import MAX_POLICY_BYTES, PolicyError, Problem, policy_parse, storable
from audit.policy.selectors import TRANSITIONS, policy_simulate

MAX_BODY_BYTES = 2 * MAX_POLICY_BYTES


class SimulateSerializer(serializers.Serializer):
    policy = serializers.JSONField(help_text='`{"name", "default", "rules": [{"id", "tool", "action", "conditions"}]}`')
    query = serializers.CharField(required=False, allow_blank=True, help_text="A §7 query: which stored calls to replay.")


class RuleCountSerializer(serializers.Serializer):
    id = serializers.CharField()
    index = serializers.IntegerField()
    tool = serializers.CharField()
    action = serializers.CharField()
    matched = serializers.IntegerField(help_text="Calls this rule decides in the draft.")
    changed = serializers.IntegerField(help_text="Of those, calls whose recorded decision differs.")


# Built with type(): "from" is a Python keyword.
SampleSerializer = type(
    "SampleSerializer",
    (serializers.Serializer,),
    {
        "id": serializers.CharField(),
        "from": serializers.CharField(help_text="The recorded decision."),
        "to": serializers.CharField(help_text="The draft's decision."),
        "rule": serializers.CharField(allow_null=True, help_text="The draft's rule that decides it; null for the default."),
        "timestamp": s.TimestampField(),
        "actor": serializers.CharField(allow_null=True),
        "tool": serializers.CharField(),
    },
)


class ActorCountSerializer(serializers.Serializer):
    actor = serializers.CharField(allow_null=True)
    changed = serializers.IntegerField()


class ToolCountSerializer(serializers.Serializer):
    tool = serializers.CharField()
    changed = serializers.IntegerField()


class SimulationSerializer(serializers.Serializer):
    evaluated = serializers.IntegerField(help_text="Stored tools/call events matching the query.")
    changed = serializers.IntegerField(help_text="Of those, calls the draft decides differently.")
    transitions = serializers.DictField(child=serializers.IntegerField(), help_text=f"Every flip: {', '.join(TRANSITIONS)}.")
    by_rule = RuleCountSerializer(many=True)
    default_matched = serializers.IntegerField()
    default_changed = serializers.IntegerField()
    samples = SampleSerializer(many=True, help_text="The newest flips, at most 20.")
    actors = ActorCountSerializer(many=True, help_text="The 10 actors with most flips.")
    tools = ToolCountSerializer(many=True, help_text="The 10 tools with most flips.")
    evaluated_in = serializers.ChoiceField(choices=["database", "python"])


class PolicyProblemSerializer(serializers.Serializer):
    rule = serializers.IntegerField(allow_null=True, help_text="The rule's index; null for the policy's own fields.")
    id = serializers.CharField(allow_null=True, help_text="The rule's id, when it has one.")
    field = serializers.CharField()
    message = serializers.CharField()


class PolicyErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False,
        help_text="`policy.rules[<index>].<field>` or `query` → what is wrong.",
    )
    problems = PolicyProblemSerializer(many=True, required=False, help_text="For an invalid policy: each problem, by rule and field.")


def _invalid_policy(problems: list[Problem]) -> Response:
    return Response(
        {
            "detail": "Invalid policy: " + "; ".join(str(problem) for problem in problems),
            "errors": {f"policy.{p.location}": [str(p)] for p in problems},
            "problems": [{"rule": p.rule, "id": p.rule_id, "field": p.field, "message": p.message} for p in problems],
        },
        status=status.HTTP_400_BAD_REQUEST,
    )


def _bad_body(message: str, code=status.HTTP_400_BAD_REQUEST) -> Response:
    return Response({"detail": message}, status=code)


class PolicySimulateView(ReadView):
    parser_classes = [JSONParser]  # bodies are JSON; one request media type for the schema and its clients
    @extend_schema(
        operation_id="policy_simulate",
        summary="Replay a draft policy over stored calls",
        description=(
            "Evaluates the draft over every stored `tools/call` event matching `query` (a §7 query; empty: all) and "
            "answers, exactly, how many it would decide differently: by transition, by rule, the default, the most "
            "affected actors and tools, and the newest flips. Rules are tried in order; the first whose `tool` glob "
            "matches and whose every condition holds decides; none: `default`. Conditions: `actor`, `slug`, "
            "`metadata.<key>`, `arguments.<key>[.<key>…]`; a string is a case-sensitive glob (`*`), other values "
            "match by equality (numbers by value, booleans only as booleans), `null` matches an absent or null "
            "field. An invalid policy is a 400 whose `problems` name the rule (index and id) and the field. "
            "See docs/policy-what-if.md."
        ),
        request=SimulateSerializer,
        responses={
            200: SimulationSerializer,
            400: OpenApiResponse(PolicyErrorSerializer, description="The policy or the query is invalid."),
            413: s.DetailSerializer,
            **{code: answer for code, answer in READ_ERRORS.items() if code != 400},
        },
        examples=[
            OpenApiExample(
                "Deny deletes for all but admins",
                request_only=True,
                value={
                    "policy": {
                        "name": "github-guardrails", "default": "allow",
                        "rules": [
                            {"id": "r-admin-del", "tool": "delete_*", "action": "allow", "conditions": {"actor": "admin@*"}},
                            {"id": "r-del", "tool": "delete_*", "action": "deny"},
                        ],
                    },
                    "query": "slug:github-prod",
                },
            )
        ],
    )
    def post(self, request, *args, **kwargs):
        self.check_query_params(request)
        body = request.read(MAX_BODY_BYTES + 1)
        if len(body) > MAX_BODY_BYTES:
            return _bad_body(f"body is over the limit of {MAX_BODY_BYTES} bytes", status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return _bad_body('send JSON: {"policy": {...}, "query": "<§7 query>"}')
        if not isinstance(data, dict) or "policy" not in data or set(data) - {"policy", "query"}:
            return _bad_body('send {"policy": {...}, "query": "<§7 query>"} and nothing else')
        query = "" if data.get("query") is None else data["query"]
        if not isinstance(query, str):
            return _bad_body("query must be a string (a §7 query)")
        if not storable(query):
            raise ParameterError.one("query", "must be valid Unicode, without NUL")
        try:
            policy = policy_parse(data["policy"])
        except PolicyError as error:
            return _invalid_policy(error.problems)
        try:
            simulation = policy_simulate(org=request_caller(request).org, policy=policy, filters={"q": query})
        except FilterError as error:  # the query is the body's "query", not a parameter "q"
            raise ParameterError({"query": [m for messages in error.errors.values() for m in messages]}) from None
        access_record(request=request, action=AccessRecord.Action.POLICY_SIMULATE, filters={"q": [query]} if query else {})
        return Response(simulation.as_json())
