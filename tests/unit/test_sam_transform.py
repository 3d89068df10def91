"""The template goes through the real SAM translator, as `sam deploy` would (cfn-lint 1.x validates SAM
resources against their schema but no longer runs the transform, so only this catches e.g. an intrinsic
where SAM needs a literal). The API's authorization is checked on the translated template as CloudFormation
would deploy it for each value of ApiAuth: conditions evaluated, Fn::If resolved, AWS::NoValue removed and the
resources of false conditions dropped (`_as_deployed`)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from cfnlint.decode import decode
from samtranslator.translator.transform import transform

from localcloud.template import TEMPLATE_PATH, resolve_stack

JWT_ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example"
JWT_PARAMETERS = {"ApiAuth": "JWT", "JwtIssuer": JWT_ISSUER, "JwtAudience": "client-a,client-b"}
OPEN_ROUTES = {("/health", "get")}  # liveness: no credentials, reveals nothing


class _NoManagedPolicies:
    def load(self) -> dict[str, str]:
        return {}


def _translate(parameter_values: dict[str, Any]) -> dict[str, Any]:
    """template.yaml after the SAM transform, with the parameter values CloudFormation hands the transform."""
    template, errors = decode(str(TEMPLATE_PATH))
    assert not errors
    template = json.loads(json.dumps(template, default=str))
    for resource in template["Resources"].values():  # what `sam package` does to local paths
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "DefinitionUri", "ContentUri"):
            if key in properties:
                properties[key] = "s3://artifacts-bucket/key"
        if properties.get("PackageType") == "Image":
            properties["ImageUri"] = "123456789012.dkr.ecr.us-east-1.amazonaws.com/modelforge:training"
    return dict(transform(template, dict(parameter_values), _NoManagedPolicies()))


_REMOVED = object()  # what {"Ref": "AWS::NoValue"} becomes, until its key or list item is dropped
_PSEUDO = {"AWS::AccountId", "AWS::NotificationARNs", "AWS::Partition", "AWS::Region", "AWS::StackId",
           "AWS::StackName", "AWS::URLSuffix"}


def _parameter_values(template: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, spec in template.get("Parameters", {}).items():
        value = str(overrides.get(name, spec.get("Default", "")))
        values[name] = value.split(",") if spec["Type"] == "CommaDelimitedList" else value
    return values


def _evaluate(expression: Any, parameters: dict[str, Any], conditions: dict[str, Any]) -> Any:
    """A condition (or rule assertion) expression, evaluated as CloudFormation does."""
    if not isinstance(expression, dict):
        return expression
    ((function, argument),) = expression.items()
    args = argument if isinstance(argument, list) else [argument]
    if function == "Condition":
        return _evaluate(conditions[argument], parameters, conditions)
    values = [_evaluate(a, parameters, conditions) for a in args]
    if function == "Ref":
        return parameters[argument]
    if function == "Fn::Equals":
        return values[0] == values[1]
    if function == "Fn::Not":
        return not values[0]
    if function == "Fn::And":
        return all(values)
    if function == "Fn::Or":
        return any(values)
    if function == "Fn::Contains":
        return values[1] in values[0]
    if function == "Fn::Join":
        return values[0].join(values[1])
    raise AssertionError(f"no evaluator for {function}")


def _as_deployed(template: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The translated template as CloudFormation would deploy it with these parameter values: parameters
    substituted, Fn::If resolved, AWS::NoValue removed, resources and outputs of false conditions dropped."""
    parameters = _parameter_values(template, overrides)
    conditions = template.get("Conditions", {})
    truth = {name: bool(_evaluate({"Condition": name}, parameters, conditions)) for name in conditions}

    def resolve(value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in map(resolve, value) if item is not _REMOVED]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"} and value["Ref"] == "AWS::NoValue":
            return _REMOVED
        if set(value) == {"Ref"} and value["Ref"] in parameters:
            return parameters[value["Ref"]]
        if set(value) == {"Fn::If"}:
            condition, if_true, if_false = value["Fn::If"]
            return resolve(if_true if truth[condition] else if_false)
        resolved = {key: resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not _REMOVED}

    deployed = dict(template)
    for section in ("Resources", "Outputs"):
        deployed[section] = {
            name: resolve(entry) for name, entry in template.get(section, {}).items()
            if truth.get(entry.get("Condition", ""), True)
        }
    return deployed


def _referenced_resources(value: Any) -> set[str]:
    """Logical ids that Ref, Fn::GetAtt and Fn::Sub point at (parameters and pseudo parameters excluded by the
    caller, Fn::Sub's own variables excluded here)."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= _referenced_resources(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                found.add((item if isinstance(item, list) else item.split("."))[0])
            elif key == "Fn::Sub":
                text, variables = (item, {}) if isinstance(item, str) else (item[0], item[1])
                names = {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
                found |= names - set(variables)
                found |= _referenced_resources(variables)
            else:
                found |= _referenced_resources(item)
    return found


def _http_api_body(deployed: dict[str, Any]) -> dict[str, Any]:
    (api,) = [r for r in deployed["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Api"]
    return dict(api["Properties"]["Body"])


def _operations(body: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(path, method): operation for path, operations in body["paths"].items()
            for method, operation in operations.items()}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="module")
def transformed(monkeypatch_module: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch_module.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return _translate({})


@pytest.fixture(scope="module")
def monkeypatch_module() -> Any:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module", params=["default", "IAM", "JWT"])
def deployed(request: pytest.FixtureRequest, monkeypatch_module: pytest.MonkeyPatch) -> tuple[str, dict[str, Any]]:
    """(ApiAuth, the translated template as CloudFormation deploys it), ApiAuth left at its default, IAM or JWT."""
    monkeypatch_module.setenv("AWS_DEFAULT_REGION", "us-east-1")
    overrides = {"default": {}, "IAM": {"ApiAuth": "IAM"}, "JWT": JWT_PARAMETERS}[request.param]
    return overrides.get("ApiAuth", "IAM"), _as_deployed(_translate(overrides), overrides)


def test_iam_is_the_default(transformed: dict[str, Any]) -> None:
    assert transformed["Parameters"]["ApiAuth"]["Default"] == "IAM"
    assert set(transformed["Parameters"]["ApiAuth"]["AllowedValues"]) == {"IAM", "JWT"}


# Rights by role (docs/security.md, "Rights by role"): every route but the open ones belongs to exactly one role.
ROLE_ROUTES = {
    "read": {("/status/{process_id}", "get"), ("/jobs", "get"), ("/machines", "get"), ("/models", "get"),
             ("/models/{machine_name}/{indicator}", "get"), ("/openapi.json", "get"), ("/swagger", "get"),
             ("/retrains/{run_id}", "get"), ("/triggers", "get")},
    "train": {("/train", "post"), ("/validate", "post"), ("/retrain", "post"), ("/triggers/resolve", "post")},
    "predict": {("/predict", "post")},
    "promote": {("/models/{machine_name}/{indicator}/promote", "post")},
}
ROLE_OF_ROUTE = {route: role for role, routes in ROLE_ROUTES.items() for route in routes}


def jwt_scope(role: str) -> str:
    return f"modelforge/{role}"


def test_every_route_belongs_to_exactly_one_role(deployed: tuple[str, dict[str, Any]]) -> None:
    operations = _operations(_http_api_body(deployed[1]))
    in_roles = [route for routes in ROLE_ROUTES.values() for route in routes]

    assert len(in_roles) == len(set(in_roles)), "a route in two roles"
    assert set(operations) == set(in_roles) | OPEN_ROUTES
    assert not set(in_roles) & OPEN_ROUTES


def test_every_route_but_health_requires_the_chosen_authorization(deployed: tuple[str, dict[str, Any]]) -> None:
    """Under IAM every route but /health needs SigV4 (what a principal may invoke is its policy's business, see
    the next tests); under JWT each needs a token with its role's scope."""
    api_auth, template = deployed
    operations = _operations(_http_api_body(template))
    assert ("/train", "post") in operations and ("/health", "get") in operations
    for route, operation in operations.items():
        if route in OPEN_ROUTES:
            expected = [{"NONE": []}]
        elif api_auth == "JWT":
            expected = [{"JwtAuthorizer": [jwt_scope(ROLE_OF_ROUTE[route])]}]
        else:
            expected = [{"AWS_IAM": []}]
        assert operation.get("security") == expected, route


def test_routes_name_only_authorizers_the_api_defines(deployed: tuple[str, dict[str, Any]]) -> None:
    api_auth, template = deployed
    body = _http_api_body(template)
    schemes = body["components"]["securitySchemes"]
    assert schemes["AWS_IAM"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    for route, operation in _operations(body).items():
        for requirement in operation["security"]:
            for name in requirement:
                assert name == "NONE" or name in schemes, (route, name)
    if api_auth == "JWT":
        assert schemes["JwtAuthorizer"] == {
            "type": "oauth2",
            "x-amazon-apigateway-authorizer": {
                "type": "jwt",
                "identitySource": "$request.header.Authorization",
                "jwtConfiguration": {"issuer": JWT_ISSUER, "audience": ["client-a", "client-b"]},
            },
        }
    else:  # no JWT authorizer (with an empty issuer) is created when nothing uses it
        assert "JwtAuthorizer" not in schemes


def test_every_route_is_an_event_and_the_local_cloud_serves_the_same_routes(
    deployed: tuple[str, dict[str, Any]],
) -> None:
    """A path that DefinitionBody declares (for its security) but no function event routes would reach API
    Gateway without an integration; the local cloud reads its routes from the events."""
    operations = _operations(_http_api_body(deployed[1]))
    for route, operation in operations.items():
        assert operation["x-amazon-apigateway-integration"]["type"] == "aws_proxy", route
    local_routes = {(path, method.lower()) for spec in resolve_stack().functions.values()
                    for method, path in spec.http_routes}
    assert set(operations) == local_routes


def test_nothing_references_a_resource_that_is_not_deployed(deployed: tuple[str, dict[str, Any]]) -> None:
    template = deployed[1]
    resources = template["Resources"]
    known = set(resources) | set(template["Parameters"]) | _PSEUDO
    for section in ("Resources", "Outputs"):
        for name, entry in template[section].items():
            missing = _referenced_resources(entry) - known
            depends_on = entry.get("DependsOn", [])
            missing |= set([depends_on] if isinstance(depends_on, str) else depends_on) - set(resources)
            assert not missing, (section, name, missing)


@pytest.mark.parametrize(
    ("overrides", "accepted"),
    [
        ({}, True),
        (JWT_PARAMETERS, True),
        ({"ApiAuth": "JWT"}, False),
        ({**JWT_PARAMETERS, "JwtIssuer": ""}, False),
        ({**JWT_PARAMETERS, "JwtAudience": ""}, False),
    ],
)
def test_jwt_needs_an_issuer_and_an_audience(
    transformed: dict[str, Any], overrides: dict[str, Any], accepted: bool
) -> None:
    """The template's Rules, evaluated as CloudFormation does before it creates anything."""
    parameters = _parameter_values(transformed, overrides)
    conditions = transformed["Conditions"]
    results = [
        _evaluate(assertion["Assert"], parameters, conditions)
        for rule in transformed["Rules"].values()
        if _evaluate(rule.get("RuleCondition", True), parameters, conditions)
        for assertion in rule["Assertions"]
    ]
    assert all(results) is accepted
    pattern = transformed["Parameters"]["JwtIssuer"]["AllowedPattern"]
    assert re.fullmatch(pattern, JWT_ISSUER) and re.fullmatch(pattern, "")
    assert not re.fullmatch(pattern, "http://issuer.example")


def test_cors_is_closed_unless_configured(transformed: dict[str, Any]) -> None:
    api = next(r for r in transformed["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Api")
    cors = api["Properties"].get("CorsConfiguration")
    # CORS is emitted behind the CorsEnabled condition, whose default (no origins) is false.
    assert cors is None or cors.get("Fn::If", [None])[0] == "CorsEnabled"
    assert transformed["Conditions"]["CorsEnabled"] == {
        "Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "CorsAllowedOrigins"}]}, ""]}]}
    assert transformed["Parameters"]["CorsAllowedOrigins"]["Default"] == ""


def test_default_route_is_throttled(transformed: dict[str, Any]) -> None:
    stage = next(r for r in transformed["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Stage")
    settings = stage["Properties"]["DefaultRouteSettings"]
    assert settings["ThrottlingRateLimit"] > 0 and settings["ThrottlingBurstLimit"] > 0


# Where AWS accepts nothing but Resource "*" (no resource type in the Service Authorization Reference), the only
# exceptions to "every grant names its resource": Step Functions' log delivery actions, and the two managed
# policies SAM attaches (AWSLambdaBasicExecutionRole: logs:CreateLogGroup/CreateLogStream/PutLogEvents;
# AWSXrayWriteOnlyAccess: xray:PutTraceSegments/PutTelemetryRecords/GetSampling*, for Tracing: Active).
BATCH_CONDITIONS = {"BatchOn", "BatchGpuOn"}
STAR_ONLY_ACTIONS = {"logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
                     "logs:DeleteLogDelivery", "logs:ListLogDeliveries"}
MANAGED_POLICIES = {"function": {"AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess"},
                    "state machine": {"AWSXrayWriteOnlyAccess"}, "schedule": set()}


def test_policies_name_their_resources_and_no_wildcard_actions(transformed: dict[str, Any]) -> None:
    roles = 0
    for name, resource in transformed["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role" or resource.get("Condition") in BATCH_CONDITIONS:
            continue  # the Batch roles: test_batch_grants_are_exactly_what_its_code_and_sync_need
        roles += 1
        for statement in _statements(resource):
            actions = _as_list(statement["Action"])
            for action in actions:
                assert "*" not in action, (name, action)  # no service:*, no Get*, no GenerateDataKey*
            if statement["Resource"] == "*" or "*" in _as_list(statement["Resource"]):
                assert set(actions) <= STAR_ONLY_ACTIONS, (name, actions)
        kind = ("state machine" if name.endswith("StateMachineRole") else "schedule" if name == "RetrainScheduleRole"
                else "function")
        assert {arn.rsplit("/", 1)[-1] for arn in resource["Properties"].get("ManagedPolicyArns", [])} == (
            MANAGED_POLICIES[kind]), name
    # eleven functions (the retraining's four the latest), two state machines and the retraining schedule's role
    assert roles == 14


# The DriftFunction's role after the transform: each service's actions on exactly these resources, nothing else.
# It starts no retraining (only the retraining state machine does): no jobs table, no state machine.
DRIFT_SCOPE = {
    "dynamodb": {"ModelsTable"},  # the champion; last_drift_check on it
    "s3": {"ModelsBucket", "DataBucket"},  # training profiles; telemetry, captured predictions, failure events
    "sqs": {"DriftCheckFailuresQueue"},  # the OnFailure destination
}


def _statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [statement for policy in role["Properties"].get("Policies", [])
            for statement in policy["PolicyDocument"]["Statement"]]


def test_the_drift_function_may_touch_only_its_table_buckets_and_queue(
    transformed: dict[str, Any],
) -> None:
    resources = transformed["Resources"]
    role_id = resources["DriftFunction"]["Properties"]["Role"]["Fn::GetAtt"][0]
    role = resources[role_id]
    scope: dict[str, set[str]] = {}
    for statement in _statements(role):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        services = {action.split(":", 1)[0] for action in actions}
        assert len(services) == 1, statement
        (service,) = services
        targets = _referenced_resources(statement["Resource"]) - _PSEUDO
        assert statement["Effect"] == "Allow" and ("Condition" not in statement or service == "dynamodb")
        assert len(targets) == 1, statement  # each statement names one resource (and its objects or indexes)
        scope.setdefault(service, set()).update(targets)
        if service == "s3":
            assert all(action.split(":", 1)[1].startswith(("Get", "List")) for action in actions), actions
        if service == "dynamodb":
            assert not {"dynamodb:Scan", "dynamodb:PutItem"} & set(actions), actions  # one named model, no jobs
        if service == "sqs":
            assert actions == ["sqs:SendMessage"]

    assert scope == DRIFT_SCOPE
    assert not [statement for statement in _statements(role)
                if any(action.startswith("states:") for action in _as_list(statement["Action"]))]
    # Besides the policies above, only Lambda's own logging and X-Ray (Tracing: Active).
    assert {arn.rsplit("/", 1)[-1] for arn in role["Properties"]["ManagedPolicyArns"]} == {
        "AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess"}


@pytest.mark.parametrize(
    "overrides",
    [{}, {"RetrainScheduleExpression": "cron(0 3 * * ? *)"}],
    ids=["default", "nightly"],
)
def test_the_retrain_schedule_is_the_only_schedule_as_deployed(
    monkeypatch_module: pytest.MonkeyPatch, overrides: dict[str, str]
) -> None:
    """One daily path: EventBridge Scheduler starts the retraining state machine; no rule invokes a function
    (the drift function's old schedule, which started retrains with no trigger record, is gone)."""
    monkeypatch_module.setenv("AWS_DEFAULT_REGION", "us-east-1")
    template = _as_deployed(_translate(overrides), overrides)
    resources = template["Resources"]
    rules = [r for r in resources.values() if r["Type"] == "AWS::Events::Rule"
             and "ScheduleExpression" in r["Properties"]]
    permissions = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Permission"
                   and r["Properties"]["FunctionName"] == {"Ref": "DriftFunction"}]
    (schedule,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Scheduler::Schedule"]
    (invoke_config,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventInvokeConfig"
                        and r["Properties"]["FunctionName"] == {"Ref": "DriftFunction"}]
    variables = resources["DriftFunction"]["Properties"]["Environment"]["Variables"]

    assert rules == [] and permissions == []  # nothing may invoke the drift function on a schedule
    assert not [r for r in resources.values() if r["Type"] == "AWS::SQS::QueuePolicy"
                and r["Properties"]["Queues"] == [{"Ref": "DriftCheckFailuresQueue"}]]
    assert schedule["ScheduleExpression"] == overrides.get("RetrainScheduleExpression", load_default(
        "RetrainScheduleExpression"))
    assert schedule["Target"]["Arn"] == {"Ref": "RetrainStateMachine"}
    assert json.loads(schedule["Target"]["Input"]) == {"all": True, "source": "schedule"}
    assert schedule["Target"]["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["RetrainScheduleFailuresQueue", "Arn"]}}
    assert schedule["Target"]["RetryPolicy"]["MaximumRetryAttempts"] > 0
    # A by-hand asynchronous check that fails still reaches the drift function's queue (and its alarm).
    assert invoke_config["MaximumRetryAttempts"] == 1
    assert invoke_config["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["DriftCheckFailuresQueue", "Arn"]}
    assert not {"DRIFT_RETRAIN", "JOBS_TABLE_NAME", "STATE_MACHINE_ARN"} & set(variables)


def load_default(parameter: str) -> Any:
    template, errors = decode(str(TEMPLATE_PATH))
    assert not errors
    return template["Parameters"][parameter]["Default"]


# ---------------------------------------------------------------- alarms reach someone (issue 16, finding 1)

STACK = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
         "AWS::StackName": "modelforge-test", "AWS::URLSuffix": "amazonaws.com"}
FOREIGN_ACCOUNT = "210987654321"


def _text(value: Any) -> str:
    """A string property whose only intrinsics are pseudo parameters (Ref or Fn::Sub), as deployed in STACK."""
    if isinstance(value, str):
        return value
    if set(value) == {"Ref"} and value["Ref"] in STACK:
        return STACK[value["Ref"]]
    if set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        return re.sub(r"\$\{([^}]+)\}", lambda m: STACK[m.group(1)], value["Fn::Sub"])
    raise AssertionError(f"not a string of pseudo parameters: {value}")


def _iam_match(pattern: str, value: str) -> bool:
    """IAM's wildcards: * any run of characters (slashes and colons included), ? one character."""
    return re.fullmatch(".*".join(".".join(map(re.escape, part.split("?"))) for part in pattern.split("*")),
                        value) is not None


def _condition_holds(condition: dict[str, Any], context: dict[str, str]) -> bool:
    """The condition operators the stack's resource policies use, on a request with single-valued keys."""
    for operator, tests in condition.items():
        for key, expected in tests.items():
            actual = context.get(key)
            patterns = [_text(e) for e in _as_list(expected)]
            if actual is None:
                return False
            if operator in ("StringEquals", "ArnEquals") and actual not in patterns:
                return False
            if operator in ("StringLike", "ArnLike") and not any(_iam_match(p, actual) for p in patterns):
                return False
            if operator not in ("StringEquals", "ArnEquals", "StringLike", "ArnLike"):
                raise AssertionError(f"no evaluator for {operator}")
    return True


def _allows(statements: list[dict[str, Any]], service: str, action: str, context: dict[str, str]) -> bool:
    """Whether an Allow statement for this service principal grants the action in this request context (and no
    Deny refuses it)."""
    def applies(statement: dict[str, Any]) -> bool:
        principals = statement.get("Principal", {})
        return (principals == "*" or service in _as_list(principals.get("Service", []))) and any(
            _iam_match(pattern, action) for pattern in _as_list(statement["Action"])
        ) and _condition_holds(statement.get("Condition", {}), context)

    if any(s["Effect"] == "Deny" and applies(s) for s in statements):
        return False
    return any(s["Effect"] == "Allow" and applies(s) for s in statements)


def test_every_alarm_action_can_be_delivered(transformed: dict[str, Any]) -> None:
    """Every action of every alarm goes to a topic of this stack that CloudWatch may publish to: the topic's
    key is a customer-managed key of the stack (an AWS managed alias/aws/* key's policy cannot admit
    CloudWatch, so its alarms are dropped silently), whose policy lets cloudwatch.amazonaws.com encrypt for this
    account's alarms, and the topic's policy lets the alarm publish, and only this stack's alarms: a request
    for an alarm of another account (key and topic) or of another stack (topic) is refused."""
    resources = transformed["Resources"]
    alarms = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    topic_policies = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::SNS::TopicPolicy"]
    assert len(alarms) >= 5
    prefix = f"arn:aws:cloudwatch:{STACK['AWS::Region']}"
    for name, alarm in alarms.items():
        targets = [t for key in ("AlarmActions", "OKActions", "InsufficientDataActions") for t in alarm.get(key, [])]
        assert alarm.get("AlarmActions"), f"{name} notifies nobody"
        alarm_name = _text(alarm["AlarmName"])
        own = {"aws:SourceAccount": STACK["AWS::AccountId"],
               "aws:SourceArn": f"{prefix}:{STACK['AWS::AccountId']}:alarm:{alarm_name}"}
        foreign = [
            {**own, "aws:SourceAccount": FOREIGN_ACCOUNT,
             "aws:SourceArn": f"{prefix}:{FOREIGN_ACCOUNT}:alarm:{alarm_name}"},
            {**own, "aws:SourceArn": f"{prefix}:{STACK['AWS::AccountId']}:alarm:someone-else-{name}"},
        ]
        for target in targets:
            assert set(target) == {"Ref"} and resources[target["Ref"]]["Type"] == "AWS::SNS::Topic", (name, target)
            topic_id = target["Ref"]
            key = resources[topic_id]["Properties"].get("KmsMasterKeyId")
            assert isinstance(key, dict), (
                f"{topic_id} is encrypted with {key!r}, a key whose policy is not this stack's "
                "(alias/aws/sns cannot admit CloudWatch): the alarm's notifications would be dropped")
            (key_id,) = _referenced_resources(key)
            assert resources[key_id]["Type"] == "AWS::KMS::Key", (topic_id, key_id)
            key_props = resources[key_id]["Properties"]
            assert key_props["EnableKeyRotation"] is True, key_id
            key_statements = key_props["KeyPolicy"]["Statement"]
            root = {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
            assert any(s["Effect"] == "Allow" and s["Principal"] == root and s["Action"] == "kms:*"
                       for s in key_statements), f"{key_id}: the account cannot administer its key"
            for action in ("kms:GenerateDataKey", "kms:Decrypt"):
                assert _allows(key_statements, "cloudwatch.amazonaws.com", action, own), (name, key_id, action)
                # For this account's alarms only; which of them may publish is the topic policy's business.
                assert not _allows(key_statements, "cloudwatch.amazonaws.com", action, foreign[0]), (
                    name, key_id, action)
            topic_statements = [s for p in topic_policies if {"Ref": topic_id} in p["Topics"]
                                for s in p["PolicyDocument"]["Statement"]
                                if {"Ref": topic_id} in _as_list(s["Resource"])]
            assert _allows(topic_statements, "cloudwatch.amazonaws.com", "sns:Publish", own), (name, topic_id)
            for context in foreign:
                assert not _allows(topic_statements, "cloudwatch.amazonaws.com", "sns:Publish", context), (
                    name, topic_id, context)


# ---------------------------------------------------------------- rights by role under IAM (issue 16, finding 2)

ROLE_OUTPUTS = {"read": "ReadRoleInvokeResources", "train": "TrainRoleInvokeResources",
                "predict": "PredictRoleInvokeResources", "promote": "PromoteRoleInvokeResources"}
API_ID = "a1b2c3d4e5"
SECURITY_DOC = TEMPLATE_PATH.parent / "docs" / "security.md"


def _deployed_text(value: Any, names: dict[str, str]) -> str:
    """An output's value as deployed: Fn::Join and Fn::Sub over pseudo parameters, parameters and the API id."""
    if isinstance(value, str):
        return value
    if set(value) == {"Fn::Join"}:
        separator, items = value["Fn::Join"]
        return str(separator).join(_deployed_text(item, names) for item in items)
    if set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        return re.sub(r"\$\{([^}]+)\}", lambda m: names[m.group(1)], value["Fn::Sub"])
    if set(value) == {"Ref"}:
        return names[value["Ref"]]
    raise AssertionError(f"no resolver for {value}")


def _role_resources(template: dict[str, Any], stage: str) -> dict[str, list[str]]:
    names = {**STACK, "HttpApi": API_ID, "Stage": stage}
    return {role: _deployed_text(template["Outputs"][output]["Value"], names).split(",")
            for role, output in ROLE_OUTPUTS.items()}


def _request_arn(route: tuple[str, str], stage: str, api_id: str = API_ID) -> str:
    """What API Gateway authorizes for a request to the route: path parameters filled in."""
    path, method = route
    concrete = re.sub(r"\{[^}]+\}", "value-1", path)
    return (f"arn:aws:execute-api:{STACK['AWS::Region']}:{STACK['AWS::AccountId']}:{api_id}/{stage}/"
            f"{method.upper()}{concrete}")


@pytest.mark.parametrize("overrides", [{}, {"ApiAuth": "IAM", "Stage": "prod"}], ids=["default", "IAM"])
def test_each_roles_invoke_resources_allow_exactly_its_routes(
    monkeypatch_module: pytest.MonkeyPatch, overrides: dict[str, str]
) -> None:
    monkeypatch_module.setenv("AWS_DEFAULT_REGION", "us-east-1")
    template = _as_deployed(_translate(overrides), overrides)
    stage = overrides.get("Stage", template["Parameters"]["Stage"]["Default"])
    resources = _role_resources(template, stage)
    operations = _operations(_http_api_body(template))

    for route in operations:
        allowed_by = {role for role, arns in resources.items()
                      if any(_iam_match(arn, _request_arn(route, stage)) for arn in arns)}
        assert allowed_by == ({ROLE_OF_ROUTE[route]} if route in ROLE_OF_ROUTE else set()), route
        for other in (_request_arn(route, "prod" if stage != "prod" else "dev"),
                      _request_arn(route, stage, api_id="zzzzzzzzzz")):
            assert not any(_iam_match(arn, other) for arns in resources.values() for arn in arns), other
    for role, arns in resources.items():  # and no resource is dead weight
        for arn in arns:
            assert any(_iam_match(arn, _request_arn(route, stage)) for route in ROLE_ROUTES[role]), (role, arn)


def _documented_policies() -> dict[str, dict[str, Any]]:
    section = SECURITY_DOC.read_text().split("## Rights by role", 1)[1].split("\n## ", 1)[0]
    policies = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", section, flags=re.DOTALL)]
    return {statement["Sid"]: statement for policy in policies for statement in policy["Statement"]}


def test_the_documented_example_policies_are_the_templates(transformed: dict[str, Any]) -> None:
    documented = _documented_policies()
    resources = _role_resources(transformed, "<stage>")

    assert set(documented) == {f"Modelforge{role.capitalize()}" for role in ROLE_OUTPUTS}
    for role, arns in resources.items():
        statement = documented[f"Modelforge{role.capitalize()}"]
        assert (statement["Effect"], statement["Action"]) == ("Allow", "execute-api:Invoke"), role
        placeholders = {"<region>": STACK["AWS::Region"], "<account-id>": STACK["AWS::AccountId"],
                        "<api-id>": API_ID}
        filled = []
        for arn in statement["Resource"]:
            for placeholder, value in placeholders.items():
                arn = arn.replace(placeholder, value)
            filled.append(arn)
        assert filled == arns, role


# ---------------------------------------------------------------- cost guards (issue 16, finding 3)

RESERVED_CONCURRENCY = {"TrainingFunction": "TrainingReservedConcurrency", "GateFunction": "GateReservedConcurrency"}
ROUTE_THROTTLES = {  # route key -> (burst parameter, rate parameter)
    "POST /train": ("TrainRouteBurstLimit", "TrainRouteRateLimit"),
    "POST /models/{machine_name}/{indicator}/promote": ("PromoteRouteBurstLimit", "PromoteRouteRateLimit"),
}
TUNED = {"TrainingReservedConcurrency": "3", "GateReservedConcurrency": "0", "MaxJobsInFlight": "2",
         "TrainRouteRateLimit": "0.5", "TrainRouteBurstLimit": "2", "PromoteRouteRateLimit": "0.2",
         "PromoteRouteBurstLimit": "1"}


def test_the_cost_guards_are_on_by_default_and_consistent(transformed: dict[str, Any]) -> None:
    parameters = transformed["Parameters"]
    default = {name: float(parameters[name]["Default"]) for name in TUNED}
    stage = next(r for r in transformed["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Stage")
    fallback = stage["Properties"]["DefaultRouteSettings"]

    for name in TUNED:
        assert parameters[name]["Type"] == "Number", name
        assert parameters[name].get("Description"), name
    assert default["TrainingReservedConcurrency"] > 0 and default["GateReservedConcurrency"] > 0
    for name in RESERVED_CONCURRENCY.values():  # 0 means unreserved
        assert parameters[name]["MinValue"] == 0, name
    # A job the API accepts gets a training function, and a finished training a gate function.
    assert 1 <= default["MaxJobsInFlight"] <= default["TrainingReservedConcurrency"]
    assert default["GateReservedConcurrency"] >= default["TrainingReservedConcurrency"]
    for burst, rate in ROUTE_THROTTLES.values():  # the guarded routes are stricter than the default route
        assert 0 < default[rate] < fallback["ThrottlingRateLimit"], rate
        assert 0 < default[burst] < fallback["ThrottlingBurstLimit"], burst


@pytest.mark.parametrize("overrides", [{}, TUNED], ids=["defaults", "tuned"])
def test_the_cost_guards_reach_the_deployed_resources(
    monkeypatch_module: pytest.MonkeyPatch, overrides: dict[str, str]
) -> None:
    monkeypatch_module.setenv("AWS_DEFAULT_REGION", "us-east-1")
    template = _as_deployed(_translate(overrides), overrides)
    values = _parameter_values(template, overrides)
    resources = template["Resources"]
    (stage,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Stage"]
    route_keys = {f"{method.upper()} {path}" for path, method in _operations(_http_api_body(template))}

    for function, parameter in RESERVED_CONCURRENCY.items():
        assert resources[function]["Type"] == "AWS::Lambda::Function"
        reserved = resources[function]["Properties"].get("ReservedConcurrentExecutions")
        assert reserved == (None if values[parameter] == "0" else values[parameter]), function  # 0: unreserved
    assert set(stage["RouteSettings"]) == set(ROUTE_THROTTLES)
    for route_key, (burst, rate) in ROUTE_THROTTLES.items():
        assert route_key in route_keys, route_key  # a setting for a route that does not exist fails the deploy
        assert stage["RouteSettings"][route_key] == {"ThrottlingBurstLimit": values[burst],
                                                     "ThrottlingRateLimit": values[rate]}, route_key
    variables = resources["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["MAX_JOBS_IN_FLIGHT"] == values["MaxJobsInFlight"]


# ---------------------------------------------------------------- least privilege, exactly (issue 16, finding 4)

# Key prefixes the functions read and write: the buckets' grants are on these prefixes only.
PROCESSED = "processed"  # PROCESSED_DATA_PREFIX: telemetry and manifests (adapters/telemetry.py)
FAILURE_EVENTS = "failure_events"  # TrainingSettings.failure_events_prefix (adapters/failure_events.py)
MODELS = "model"  # MODEL_KEY_PREFIX: artifacts, reports, profiles, holdouts (logic/training_job.py)
CAPTURE = "capture"  # PredictSettings/DriftSettings.capture_prefix (adapters/prediction_capture.py)
NOT_POINTER_OR_HISTORY = {"ForAllValues:StringNotLike": {"dynamodb:LeadingKeys": ["champion#*", "history#*"]}}
NOT_HISTORY = {"ForAllValues:StringNotLike": {"dynamodb:LeadingKeys": ["history#*"]}}
ONLY_HISTORY = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["history#*"]}}
ONLY_MODEL_KEYS = {"StringLike": {"s3:prefix": [f"{MODELS}/*"]}}  # a listing of the models' keys only
LOG_GROUPS = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*"

# Every grant of every role, derived from the calls the code makes: (action, resource) -> its condition (None:
# unconditional). A resource is a logical id (its ARN), "<id>/<suffix>" (${id.Arn}/<suffix>) or a literal.
# The translated template must grant exactly these, each exactly once, and nothing else.
ROLE_GRANTS: dict[str, dict[tuple[str, str], dict[str, Any] | None]] = {
    "ApiFunction": {
        ("dynamodb:PutItem", "JobsTable"): None,  # JobStore.create (POST /train)
        ("dynamodb:GetItem", "JobsTable"): None,  # JobStore.get (GET /status)
        ("dynamodb:UpdateItem", "JobsTable"): None,  # JobStore.mark_failed (StartExecution failed)
        ("dynamodb:Query", "JobsTable/index/*"): None,  # JobStore.list: by_machine, by_status, by_created (GET /jobs)
        ("dynamodb:GetItem", "IdempotencyTable"): None,  # Powertools DynamoDBPersistenceLayer._get_record
        ("dynamodb:PutItem", "IdempotencyTable"): None,  # ... _put_record
        ("dynamodb:UpdateItem", "IdempotencyTable"): None,  # ... _update_record
        ("dynamodb:DeleteItem", "IdempotencyTable"): None,  # ... _delete_record (the submission failed)
        ("dynamodb:GetItem", "ModelsTable"): None,  # ModelRegistry.get_version, champion_pointer (GET /models/..)
        ("dynamodb:Query", "ModelsTable"): None,  # ModelRegistry.list_versions (GET /models), history
        # ModelRegistry.promote's transact_write_items: Update the pointer, the promoted and the archived version
        ("dynamodb:UpdateItem", "ModelsTable"): NOT_HISTORY,
        ("dynamodb:PutItem", "ModelsTable"): ONLY_HISTORY,  # ... and Put the history item
        ("s3:ListBucket", "DataBucket"): None,  # TelemetryCatalog.list_machines; a missing manifest is a 404
        ("s3:GetObject", f"DataBucket/{PROCESSED}/*"): None,  # TelemetryCatalog.describe (the manifest)
        ("s3:GetObject", f"ModelsBucket/{MODELS}/*"): None,  # ModelArtifactStore.get_verified before a promotion
        # ... GetObject with the recorded VersionId (items without one are read by key, above)
        ("s3:GetObjectVersion", f"ModelsBucket/{MODELS}/*"): None,
        ("states:StartExecution", "TrainingStateMachine"): None,  # ExecutionStarter.start (POST /train)
        ("states:StartExecution", "RetrainStateMachine"): None,  # POST /retrain
        # TriggerStore: create_run, get_run (POST /retrain, GET /retrains), get and transition (resolve)
        ("dynamodb:GetItem", "TriggersTable"): None,
        ("dynamodb:PutItem", "TriggersTable"): None,
        ("dynamodb:UpdateItem", "TriggersTable"): None,
        ("dynamodb:Query", "TriggersTable/index/*"): None,  # TriggerStore.list_triggers (GET /triggers)
        # ExecutionHistory.steps (GET /status's current_step), on the training state machine's executions
        ("states:GetExecutionHistory", "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:"
                                       "${TrainingStateMachine.Name}:*"): None,
    },
    "ValidateFunction": {
        ("s3:ListBucket", "DataBucket"): None,  # TelemetryCatalog.describe, wr.s3.read_parquet; a 404 not a 403
        ("s3:GetObject", f"DataBucket/{PROCESSED}/*"): None,  # TelemetryCatalog.describe, TelemetryStore.read
        ("s3:GetObject", f"DataBucket/{FAILURE_EVENTS}/*"): None,  # FailureEventStore.read (failure_events records)
    },
    "TrainingFunction": {
        ("dynamodb:GetItem", "JobsTable"): None,  # JobStore.get (train_for_job)
        ("dynamodb:PutItem", "ModelsTable"): NOT_POINTER_OR_HISTORY,  # ModelRegistry.put_version (a candidate)
        ("s3:ListBucket", "DataBucket"): None,  # wr.s3.read_parquet lists the dataset; missing events are a 404
        ("s3:GetObject", f"DataBucket/{PROCESSED}/*"): None,  # TelemetryStore.read (wr.s3.read_parquet)
        ("s3:GetObject", f"DataBucket/{FAILURE_EVENTS}/*"): None,  # FailureEventStore.read
        ("s3:PutObject", f"ModelsBucket/{MODELS}/*"): None,  # ModelArtifactStore.put (model, report, profile, holdout)
        # ModelArtifactStore.delete (registration failed): DeleteObject with the VersionId put returned, which
        # removes the bytes; a plain DeleteObject (no longer granted) only added a delete marker over them.
        ("s3:DeleteObjectVersion", f"ModelsBucket/{MODELS}/*"): None,
    },
    "GateFunction": {
        ("dynamodb:GetItem", "JobsTable"): None,  # JobStore.get (gate_challenger)
        ("dynamodb:GetItem", "ModelsTable"): None,  # ModelRegistry.get_version, champion
        ("dynamodb:UpdateItem", "ModelsTable"): NOT_HISTORY,  # ModelRegistry.reject; promote's pointer and versions
        ("dynamodb:PutItem", "ModelsTable"): ONLY_HISTORY,  # ModelRegistry.promote's history item
        ("s3:GetObject", f"ModelsBucket/{MODELS}/*"): None,  # ModelArtifactStore.get_verified (holdouts, models)
        ("s3:GetObjectVersion", f"ModelsBucket/{MODELS}/*"): None,  # ... of the recorded VersionId
    },
    "PredictFunction": {
        ("dynamodb:GetItem", "ModelsTable"): None,  # ChampionCache: champion_pointer, get_version
        ("s3:GetObject", f"ModelsBucket/{MODELS}/*"): None,  # ChampionCache: get_verified (the champion's model)
        ("s3:GetObjectVersion", f"ModelsBucket/{MODELS}/*"): None,  # ... of the recorded VersionId
        ("s3:PutObject", f"DataBucket/{CAPTURE}/*"): None,  # PredictionCaptureStore.put_rows (one object a flush)
    },
    "ReconcileFunction": {
        ("dynamodb:GetItem", "JobsTable"): None,  # JobStore.get (reconcile_execution)
        ("dynamodb:UpdateItem", "JobsTable"): None,  # JobStore.mark_failed
        # sweep_leftovers: the job's registry items (ModelRegistry.versions_trained_by, a Query of its versions) ...
        ("dynamodb:Query", "ModelsTable"): NOT_POINTER_OR_HISTORY,
        # ... its folder's versions and delete markers (ModelArtifactStore.versions: ListObjectVersions) ...
        ("s3:ListBucketVersions", "ModelsBucket"): ONLY_MODEL_KEYS,
        # ... and removing those no item references (ModelArtifactStore.delete_version: DeleteObject VersionId=)
        ("s3:DeleteObjectVersion", f"ModelsBucket/{MODELS}/*"): None,
        ("sqs:SendMessage", "ReconcileFailuresQueue"): None,  # EventInvokeConfig OnFailure (added by SAM)
    },
    "DriftFunction": {
        ("dynamodb:GetItem", "ModelsTable"): None,  # ModelRegistry.champion, get_version
        ("dynamodb:UpdateItem", "ModelsTable"): NOT_POINTER_OR_HISTORY,  # ModelRegistry.record_drift
        ("s3:ListBucket", "DataBucket"): None,  # wr.s3.read_parquet lists the dataset; a missing manifest is a 404
        ("s3:GetObject", f"DataBucket/{PROCESSED}/*"): None,  # TelemetryCatalog.describe, TelemetryStore.read
        ("s3:GetObject", f"ModelsBucket/{MODELS}/*"): None,  # ModelArtifactStore.get_verified (the profile)
        ("s3:GetObjectVersion", f"ModelsBucket/{MODELS}/*"): None,  # ... of the recorded VersionId
        ("s3:GetObject", f"DataBucket/{CAPTURE}/*"): None,  # PredictionCaptureStore.read (live recall)
        ("s3:GetObject", f"DataBucket/{FAILURE_EVENTS}/*"): None,  # FailureEventStore.read (live recall)
        ("sqs:SendMessage", "DriftCheckFailuresQueue"): None,  # EventInvokeConfig OnFailure (added by SAM)
    },
    "RetrainPlanFunction": {
        ("dynamodb:Scan", "ModelsTable"): None,  # ModelRegistry.list_champion_pointers
        ("dynamodb:GetItem", "ModelsTable"): None,  # ModelRegistry.champion_pointer (one model asked for)
        ("dynamodb:PutItem", "TriggersTable"): None,  # TriggerStore.create_run
        ("s3:PutObject", "DataBucket/retrain-runs/*"): None,  # RetrainItemsFile.put_items
    },
    "RetrainItemFunction": {
        ("dynamodb:GetItem", "ModelsTable"): None,  # ModelRegistry.champion
        ("dynamodb:UpdateItem", "ModelsTable"): NOT_POINTER_OR_HISTORY,  # ModelRegistry.record_drift
        ("dynamodb:GetItem", "TriggersTable"): None,  # TriggerStore.lock_holder
        ("dynamodb:PutItem", "TriggersTable"): None,  # acquire_lock (conditional), create, record_outcome
        ("dynamodb:UpdateItem", "TriggersTable"): None,  # transition (a job that could not start)
        ("dynamodb:DeleteItem", "TriggersTable"): None,  # release_lock (conditional)
        ("dynamodb:PutItem", "JobsTable"): None,  # JobStore.create (jobs_api.submit_training)
        ("dynamodb:UpdateItem", "JobsTable"): None,  # JobStore.mark_failed (StartExecution failed)
        ("s3:ListBucket", "DataBucket"): None,  # wr.s3.read_parquet lists the dataset; a missing manifest is a 404
        # TelemetryCatalog.describe, TelemetryStore.read (the drift window, and new_data's rows since)
        ("s3:GetObject", f"DataBucket/{PROCESSED}/*"): None,
        ("s3:GetObject", f"DataBucket/{CAPTURE}/*"): None,  # PredictionCaptureStore.read (live recall)
        # FailureEventStore.read (live recall, and new_data's failure events since)
        ("s3:GetObject", f"DataBucket/{FAILURE_EVENTS}/*"): None,
        ("s3:GetObject", f"ModelsBucket/{MODELS}/*"): None,  # ModelArtifactStore.get_verified (the profile)
        ("s3:GetObjectVersion", f"ModelsBucket/{MODELS}/*"): None,  # ... of the recorded VersionId
        ("states:StartExecution", "TrainingStateMachine"): None,  # ExecutionStarter.start (the retrain)
    },
    "RetrainSummaryFunction": {
        ("dynamodb:UpdateItem", "TriggersTable"): None,  # TriggerStore.finish_run
        ("dynamodb:Query", "TriggersTable/index/*"): None,  # TriggerStore.outcomes (by_run)
    },
    "TriggerEventsFunction": {
        ("dynamodb:GetItem", "TriggersTable"): None,  # TriggerStore.find
        ("dynamodb:UpdateItem", "TriggersTable"): None,  # TriggerStore.transition
        ("dynamodb:DeleteItem", "TriggersTable"): None,  # TriggerStore.release_lock
        ("sqs:SendMessage", "TriggerEventsFailuresQueue"): None,  # EventInvokeConfig OnFailure (added by SAM)
    },
    "RetrainStateMachine": {
        ("lambda:InvokeFunction", "RetrainPlanFunction"): None,  # Plan
        ("lambda:InvokeFunction", "RetrainItemFunction"): None,  # DecideModel, RecordItemFailure
        ("lambda:InvokeFunction", "RetrainSummaryFunction"): None,  # Summarize, RecordPlanFailure
        ("s3:GetObject", "DataBucket/retrain-runs/*"): None,  # the Distributed Map's ItemReader
        # the Distributed Map's child executions, of this state machine
        **{(action, f"arn:${{AWS::Partition}}:states:${{AWS::Region}}:${{AWS::AccountId}}:{kind}:"
                    "${AWS::StackName}-RetrainStateMachine*"): None
           for action in ("states:StartExecution", "states:DescribeExecution", "states:StopExecution")
           for kind in ("stateMachine", "execution")},
        **{(action, "*"): None for action in sorted(STAR_ONLY_ACTIONS)},
        ("logs:PutResourcePolicy", LOG_GROUPS): None,
        ("logs:DescribeResourcePolicies", LOG_GROUPS): None,
        ("logs:DescribeLogGroups", LOG_GROUPS): None,
    },
    "TrainingStateMachine": {
        ("lambda:InvokeFunction", "TrainingFunction"): None,  # TrainModel (arn:...:states:::lambda:invoke)
        ("lambda:InvokeFunction", "GateFunction"): None,  # GateChallenger
        ("dynamodb:UpdateItem", "JobsTable"): None,  # MarkJobRunning, MarkJobCompleted, MarkJobFailed
        # CloudWatch Logs delivery of the execution logs (Logging): the *LogDelivery actions accept only "*"; the
        # resource-policy and log-group reads take the account's log groups in the region.
        **{(action, "*"): None for action in sorted(STAR_ONLY_ACTIONS)},
        ("logs:PutResourcePolicy", LOG_GROUPS): None,
        ("logs:DescribeResourcePolicies", LOG_GROUPS): None,
        ("logs:DescribeLogGroups", LOG_GROUPS): None,
    },
}


def _grant_resource(value: Any) -> str:
    """A statement's resource in ROLE_GRANTS' notation. A SAM policy template's ARN (Fn::Sub of one variable,
    a Ref or a GetAtt .Name) becomes its resource's id plus what follows the variable, e.g. "DataBucket/*" or
    "TrainingFunction*", so a template that crept back shows up as grants ROLE_GRANTS lacks."""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], list):
        text, variables = value["Fn::Sub"]
        ((variable, target),) = variables.items()
        logical_id = target["Ref"] if "Ref" in target else target["Fn::GetAtt"][0]
        return str(logical_id) + text.split("${" + variable + "}", 1)[1]
    if value == "*":
        return "*"
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"} and value["Fn::GetAtt"][1] == "Arn":
        return str(value["Fn::GetAtt"][0])
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return str(value["Ref"])
    if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        match = re.fullmatch(r"\$\{([A-Za-z0-9]+)\.Arn\}/(.+)", value["Fn::Sub"])
        return f"{match.group(1)}/{match.group(2)}" if match else value["Fn::Sub"]
    raise AssertionError(f"a resource not named by logical id: {value}")


def _role_of(resources: dict[str, Any], logical_id: str) -> dict[str, Any]:
    props = resources[logical_id]["Properties"]
    role = props.get("Role") or props.get("RoleArn")
    return dict(resources[role["Fn::GetAtt"][0]])


def _granted(role: dict[str, Any]) -> dict[tuple[str, str], list[dict[str, Any] | None]]:
    granted: dict[tuple[str, str], list[dict[str, Any] | None]] = {}
    for statement in _statements(role):
        assert statement["Effect"] == "Allow", statement
        assert not {"NotAction", "NotResource"} & set(statement), statement
        for action in _as_list(statement["Action"]):
            for resource in _as_list(statement["Resource"]):
                granted.setdefault((action, _grant_resource(resource)), []).append(statement.get("Condition"))
    return granted


def test_every_role_has_exactly_the_grants_its_code_needs(transformed: dict[str, Any]) -> None:
    """The exact allow-list: every action a role has is in ROLE_GRANTS with the same resource and condition,
    granted once, and every grant ROLE_GRANTS lists is there. No DeleteItem, BatchWriteItem or Scan that no code
    calls, no PutObjectAcl or PutLifecycleConfiguration, no PutItem for the state machine."""
    resources = transformed["Resources"]
    owners = {name for name, r in resources.items()
              if r["Type"] in ("AWS::Lambda::Function", "AWS::StepFunctions::StateMachine")}
    assert owners == set(ROLE_GRANTS)
    for owner, expected in ROLE_GRANTS.items():
        granted = _granted(_role_of(resources, owner))
        extra = set(granted) - set(expected)
        missing = set(expected) - set(granted)
        assert not extra, f"{owner} may do what no code of it needs: {sorted(extra)}"
        assert not missing, f"{owner} lacks what its code calls: {sorted(missing)}"
        for grant, conditions in granted.items():
            assert conditions == [expected[grant]], (owner, grant, conditions)


def test_the_granted_prefixes_are_the_ones_the_functions_use(transformed: dict[str, Any]) -> None:
    from modelforge.settings import ApiSettings, DriftSettings, ReconcileSettings, TrainingSettings

    stack = resolve_stack()
    # The data contract's prefix is wiring bound to these grants, not an operator parameter: the template passes
    # none, so every function reads the code's one default, the prefix granted here.
    for name, settings in (("ApiFunction", ApiSettings), ("TrainingFunction", TrainingSettings),
                           ("DriftFunction", DriftSettings)):
        assert "PROCESSED_DATA_PREFIX" not in stack.functions[name].environment, name
        assert settings.from_env(stack.functions[name].environment).processed_data_prefix == PROCESSED, name
    training = TrainingSettings.from_env(stack.functions["TrainingFunction"].environment)
    from modelforge.logic.training_job import TrainingDependencies

    # MODEL_KEY_PREFIX is not passed either: the training function writes under TrainingDependencies' default,
    # and the reconciler sweeps under the same one.
    assert training.model_key_prefix is None
    assert ReconcileSettings.from_env(stack.functions["ReconcileFunction"].environment).model_key_prefix is None
    default_key_prefix = TrainingDependencies.__dataclass_fields__["model_key_prefix"].default
    assert (default_key_prefix, training.failure_events_prefix) == (MODELS, FAILURE_EVENTS)
    from modelforge.settings import PredictSettings

    # The capture prefix is wiring too: the prediction function writes and the drift function reads the granted one.
    predict = PredictSettings.from_env(stack.functions["PredictFunction"].environment)
    drift = DriftSettings.from_env(stack.functions["DriftFunction"].environment)
    assert predict.capture_bucket_name == drift.data_bucket_name == stack.buckets["DataBucket"]
    assert (predict.capture_prefix, drift.capture_prefix, drift.failure_events_prefix) == (
        CAPTURE, CAPTURE, FAILURE_EVENTS)


def _leading_key_allows(condition: dict[str, Any] | None, key: str) -> bool:
    if condition is None:
        return True
    ((operator, tests),) = condition.items()
    patterns = tests["dynamodb:LeadingKeys"]
    matched = any(_iam_match(p, key) for p in patterns)
    return {"ForAllValues:StringLike": matched, "ForAllValues:StringNotLike": not matched}[operator]


def test_only_the_gate_and_the_promote_path_write_champion_pointers_and_history(
    transformed: dict[str, Any],
) -> None:
    """Which roles' policies let them write which kind of item of the models table (by its partition key)."""
    resources = transformed["Resources"]
    granted = {owner: _granted(_role_of(resources, owner)) for owner in ROLE_GRANTS}

    def writers(action: str, key: str) -> set[str]:
        return {owner for owner, grants in granted.items()
                if any(_leading_key_allows(c, key) for c in grants.get((action, "ModelsTable"), []))}

    for kind, key in (("pointer", "champion#pump-1#status"), ("history", "history#pump-1#status"),
                      ("version", "pump-1#status")):
        expected = {
            "pointer": {"dynamodb:UpdateItem": {"ApiFunction", "GateFunction"}, "dynamodb:PutItem": set()},
            "history": {"dynamodb:UpdateItem": set(), "dynamodb:PutItem": {"ApiFunction", "GateFunction"}},
            "version": {"dynamodb:UpdateItem": {"ApiFunction", "GateFunction", "DriftFunction", "RetrainItemFunction"},
                        "dynamodb:PutItem": {"TrainingFunction"}},
        }[kind]
        for action, owners in expected.items():
            assert writers(action, key) == owners, (kind, action)
        for action in ("dynamodb:DeleteItem", "dynamodb:BatchWriteItem"):
            assert writers(action, key) == set(), (kind, action)


def test_only_the_training_role_writes_model_objects(transformed: dict[str, Any]) -> None:
    """By the roles' policies, and for every other principal of the account by the bucket's policy. Putting
    (and plain DeleteObject, a delete marker) is the training role's alone. Removing a version for good is
    the training role's (what a failed registration wrote) and the reconciler's (what a killed training left
    without a registry item, issue 16 finding 6), and no one else's: nobody else can delete a registered model."""
    resources = transformed["Resources"]
    write_actions = ("s3:PutObject", "s3:DeleteObject")
    remove_action = "s3:DeleteObjectVersion"
    may_remove = {"TrainingFunction", "ReconcileFunction"}
    for owner in ROLE_GRANTS:
        grants = _granted(_role_of(resources, owner))
        writes = {a for a, r in grants if a in (*write_actions, remove_action) and r.startswith("ModelsBucket")}
        expected = ({"s3:PutObject"} if owner == "TrainingFunction" else set()) | (
            {remove_action} if owner in may_remove else set())
        assert writes == expected, owner
    roles = {owner: resources[owner]["Properties"]["Role"] for owner in ("TrainingFunction", "ReconcileFunction")}
    (policy,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::S3::BucketPolicy"
                 and r["Properties"]["Bucket"] == {"Ref": "ModelsBucket"}]
    denies = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny" and s["Principal"] == "*"
              and s["Resource"] == {"Fn::Sub": f"${{ModelsBucket.Arn}}/{MODELS}/*"}]
    assert [(set(_as_list(s["Action"])), s["Condition"]) for s in denies] == [
        (set(write_actions), {"ArnNotEquals": {"aws:PrincipalArn": roles["TrainingFunction"]}}),
        ({remove_action}, {"ArnNotEquals": {"aws:PrincipalArn": [roles["TrainingFunction"],
                                                                 roles["ReconcileFunction"]]}})]


# ---------------------------------------------------------------- AWS Batch (issue 11)

BATCH_ON = {"BatchEnabled": "true", "BatchGpuEnabled": "true", "BatchImageUri": "123456789012.dkr.ecr.us-east-1."
            "amazonaws.com/modelforge:training", "BatchSubnetIds": "subnet-0123456789abcdef0",
            "BatchSecurityGroupIds": "sg-0123456789abcdef0"}


@pytest.fixture(scope="module")
def batch_deployed(monkeypatch_module: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch_module.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return _as_deployed(_translate(BATCH_ON), BATCH_ON)


def _of_type(template: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {name: r for name, r in template["Resources"].items() if r["Type"].startswith(prefix)}


def test_batch_is_off_by_default_and_then_deploys_nothing(deployed: tuple[str, dict[str, Any]]) -> None:
    template = deployed[1]
    assert not _of_type(template, "AWS::Batch::")
    assert not {name for name in template["Resources"] if name.startswith("Batch")}
    assert "TrainingStateMachineBatchPolicy" not in template["Resources"]
    machine = _of_type(template, "AWS::StepFunctions::StateMachine")["TrainingStateMachine"]
    substitutions = machine["Properties"]["DefinitionSubstitutions"]
    assert {substitutions[k] for k in ("CpuJobQueue", "CpuJobDefinition", "GpuJobQueue", "GpuJobDefinition")} == {
        "none"}
    assert {substitutions[k] for k in ("LargeJobQueue", "LargeJobDefinition")} == {"none"}


def test_batch_on_deploys_its_environments_queues_and_definitions(batch_deployed: dict[str, Any]) -> None:
    resources = batch_deployed["Resources"]
    assert set(_of_type(batch_deployed, "AWS::Batch::")) == {
        "BatchCpuComputeEnvironment", "BatchGpuComputeEnvironment", "BatchCpuJobQueue", "BatchGpuJobQueue",
        "BatchCpuJobDefinition", "BatchGpuJobDefinition",
        "BatchLargeComputeEnvironment", "BatchLargeJobQueue", "BatchLargeJobDefinition"}
    gpu = resources["BatchGpuComputeEnvironment"]["Properties"]["ComputeResources"]
    assert gpu["Ec2Configuration"] == [{"ImageType": "ECS_AL2023_NVIDIA"}]
    assert gpu["MinvCpus"] == 0 and "optimal" not in gpu["InstanceTypes"]
    assert set(gpu["InstanceTypes"]) == {"g5", "g6", "g6e"}
    assert resources["BatchCpuComputeEnvironment"]["Properties"]["ComputeResources"]["Type"] == "FARGATE"
    for queue in ("BatchCpuJobQueue", "BatchGpuJobQueue", "BatchLargeJobQueue"):
        (action,) = resources[queue]["Properties"]["JobStateTimeLimitActions"]
        assert (action["Action"], action["State"]) == ("CANCEL", "RUNNABLE")
        runnable = batch_deployed["Parameters"]["BatchRunnableTimeoutSeconds"]["Default"]
        assert str(action["MaxTimeSeconds"]) == str(runnable)
    for name in ("BatchCpuJobDefinition", "BatchGpuJobDefinition", "BatchLargeJobDefinition"):
        props = resources[name]["Properties"]
        assert int(props["Timeout"]["AttemptDurationSeconds"]) > 0
        assert props["RetryStrategy"]["EvaluateOnExit"] == [{"OnStatusReason": "Host EC2*", "Action": "RETRY"},
                                                            {"OnReason": "*", "Action": "EXIT"}]
        assert props["ContainerProperties"]["Command"] == ["python3", "-m", "modelforge.batch", "Ref::process_id"]
    gpu_requirements = resources["BatchGpuJobDefinition"]["Properties"]["ContainerProperties"]["ResourceRequirements"]
    assert {"Type": "GPU", "Value": "1"} in gpu_requirements


def test_batch_attempt_and_runnable_limits_fit_inside_the_task_and_the_execution() -> None:
    template, _ = decode(str(TEMPLATE_PATH))
    parameters = template["Parameters"]
    longest = parameters["BatchAttemptDurationSeconds"]["MaxValue"] + \
        parameters["BatchRunnableTimeoutSeconds"]["MaxValue"]
    definition = json.loads((TEMPLATE_PATH.parent / "state_machine/training.asl.json").read_text())
    for state in ("TrainOnBatch", "TrainOnBatchLarge", "TrainOnGpu"):
        assert longest < definition["States"][state]["TimeoutSeconds"] < 7200


BATCH_GRANTS: dict[str, set[tuple[str, str]]] = {
    "BatchJobRole": {  # what modelforge.batch calls: TrainingFunction's grants plus JobStore.record_outcome
        ("dynamodb:GetItem", "JobsTable"), ("dynamodb:UpdateItem", "JobsTable"), ("dynamodb:PutItem", "ModelsTable"),
        ("s3:ListBucket", "DataBucket"), ("s3:GetObject", "DataBucket/processed/*"),
        ("s3:GetObject", "DataBucket/failure_events/*"), ("s3:PutObject", "ModelsBucket/model/*"),
        ("s3:DeleteObjectVersion", "ModelsBucket/model/*")},
    "TrainingStateMachineBatchPolicy": {  # TrainOnBatch/TrainOnBatchLarge/TrainOnGpu (.sync), ReadBatchOutcome,
        # ReadBatchLog
        ("batch:SubmitJob", "BatchCpuJobQueue"), ("batch:SubmitJob", "BatchCpuJobDefinition"),
        ("batch:SubmitJob", "BatchLargeJobQueue"), ("batch:SubmitJob", "BatchLargeJobDefinition"),
        ("batch:SubmitJob", "BatchGpuJobQueue"), ("batch:SubmitJob", "BatchGpuJobDefinition"),
        ("batch:DescribeJobs", "*"), ("batch:TerminateJob", "*"),
        *{(action, "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/"
                   "StepFunctionsGetEventsForBatchJobsRule") for action in
          ("events:PutTargets", "events:PutRule", "events:DescribeRule")},
        ("dynamodb:GetItem", "JobsTable"),
        ("logs:GetLogEvents", "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
                              "/aws/batch/job:log-stream:*")},
}


def test_batch_grants_are_exactly_what_its_code_and_sync_need(batch_deployed: dict[str, Any]) -> None:
    resources = batch_deployed["Resources"]
    job_role = resources["BatchJobRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    policy = resources["TrainingStateMachineBatchPolicy"]["Properties"]
    assert policy["Roles"] == [{"Ref": "TrainingStateMachineRole"}] and "TrainingStateMachineRole" in resources
    for owner, statements in (("BatchJobRole", job_role),
                              ("TrainingStateMachineBatchPolicy", policy["PolicyDocument"]["Statement"])):
        granted = {(action, _grant_resource(resource)) for statement in statements
                   for action in _as_list(statement["Action"]) for resource in _as_list(statement["Resource"])}
        assert granted == BATCH_GRANTS[owner], owner
        assert all(statement["Effect"] == "Allow" for statement in statements)
    for role in ("BatchExecutionRole", "BatchInstanceRole"):
        assert "Policies" not in resources[role]["Properties"]  # only the AWS-managed ECS policy, nothing added


def test_the_large_class_is_the_fargate_job_on_memory_rich_ec2(batch_deployed: dict[str, Any]) -> None:
    resources, parameters = batch_deployed["Resources"], batch_deployed["Parameters"]
    compute = resources["BatchLargeComputeEnvironment"]["Properties"]["ComputeResources"]
    assert compute["Type"] == "EC2" and compute["MinvCpus"] == 0
    assert set(compute["InstanceTypes"]) == {"r6i", "r7i", "m6i"}  # named: "optimal" could pick GPU types
    assert compute["Ec2Configuration"] == [{"ImageType": "ECS_AL2023"}]
    assert compute["InstanceRole"] == {"Fn::GetAtt": ["BatchInstanceProfile", "Arn"]}
    assert compute["MaxvCpus"] >= parameters["BatchLargeVcpus"]["MaxValue"]
    queue = resources["BatchLargeJobQueue"]["Properties"]
    assert queue["ComputeEnvironmentOrder"] == [{"Order": 1, "ComputeEnvironment": {
        "Ref": "BatchLargeComputeEnvironment"}}]
    large, fargate = (resources[name]["Properties"] for name in ("BatchLargeJobDefinition", "BatchCpuJobDefinition"))
    assert large["PlatformCapabilities"] == ["EC2"] and fargate["PlatformCapabilities"] == ["FARGATE"]
    for key in ("Parameters", "Timeout", "RetryStrategy"):
        assert large[key] == fargate[key], key
    for key in ("Image", "Command", "JobRoleArn", "ExecutionRoleArn", "Environment"):
        assert large["ContainerProperties"][key] == fargate["ContainerProperties"][key], key
    requirements = {r["Type"]: str(r["Value"]) for r in large["ContainerProperties"]["ResourceRequirements"]}
    assert requirements == {"VCPU": str(parameters["BatchLargeVcpus"]["Default"]),
                            "MEMORY": str(parameters["BatchLargeMemoryMiB"]["Default"])}
    assert parameters["BatchLargeMemoryMiB"]["MinValue"] >= parameters["BatchCpuMemoryMiB"]["MaxValue"]
    substitutions = resources["TrainingStateMachine"]["Properties"]["DefinitionSubstitutions"]
    assert substitutions["LargeJobQueue"] == {"Ref": "BatchLargeJobQueue"}
    assert substitutions["LargeJobDefinition"] == {"Ref": "BatchLargeJobDefinition"}


def test_batch_on_without_gpu_and_with_spot_keeps_the_large_class_and_its_instances(
        monkeypatch_module: pytest.MonkeyPatch) -> None:
    monkeypatch_module.setenv("AWS_DEFAULT_REGION", "us-east-1")
    values = {**BATCH_ON, "BatchGpuEnabled": "false", "BatchUseSpot": "true"}
    resources = _as_deployed(_translate(values), values)["Resources"]
    assert set(_of_type({"Resources": resources}, "AWS::Batch::")) == {
        "BatchCpuComputeEnvironment", "BatchCpuJobQueue", "BatchCpuJobDefinition",
        "BatchLargeComputeEnvironment", "BatchLargeJobQueue", "BatchLargeJobDefinition"}
    assert {"BatchInstanceRole", "BatchInstanceProfile"} <= set(resources)
    compute = resources["BatchLargeComputeEnvironment"]["Properties"]["ComputeResources"]
    assert (compute["Type"], compute["AllocationStrategy"]) == ("SPOT", "SPOT_PRICE_CAPACITY_OPTIMIZED")
    (submit,) = [s for s in resources["TrainingStateMachineBatchPolicy"]["Properties"]["PolicyDocument"]["Statement"]
                 if s["Sid"] == "SubmitTraining"]
    assert {_grant_resource(r) for r in submit["Resource"]} == {
        "BatchCpuJobQueue", "BatchCpuJobDefinition", "BatchLargeJobQueue", "BatchLargeJobDefinition"}


def test_batch_on_references_only_deployed_resources(batch_deployed: dict[str, Any]) -> None:
    known = set(batch_deployed["Resources"]) | set(batch_deployed["Parameters"]) | _PSEUDO
    for name, entry in batch_deployed["Resources"].items():
        assert not _referenced_resources(entry) - known, name
