"""Reads template.yaml and resolves it the way CloudFormation would for one local stack, so the local cloud
and the tests take table keys, bucket names, handlers and the state machine definition from the template."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = REPO_ROOT / "template.yaml"

CONDITION_FUNCTIONS = ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Condition")

# Lambda's defaults when a function sets neither (and Globals do not either).
DEFAULT_MEMORY_MB = 128
DEFAULT_TIMEOUT_S = 3


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that turns short-form intrinsics (!Ref, !Sub, !GetAtt, ...) into their long forms."""


def _construct_intrinsic(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    with path.open() as handle:
        return yaml.load(handle, Loader=_CfnLoader)


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str
    arn: str
    handler: str
    package_type: str
    memory_mb: int
    timeout_s: int
    environment: dict[str, str]
    http_routes: tuple[tuple[str, str], ...] = ()  # (METHOD, /path/{param})
    event_patterns: tuple[dict[str, Any], ...] = ()  # EventBridge rules that target this function


@dataclass(frozen=True)
class BatchJobDefinitionSpec:
    """A Batch job definition as the local cloud runs it: a local process with the container's environment,
    command, memory and attempt duration (localcloud/batch.py)."""

    logical_id: str
    name: str
    command: tuple[str, ...]
    environment: dict[str, str]
    vcpus: float
    memory_mib: int
    attempt_duration_s: int
    parameters: dict[str, str]


@dataclass(frozen=True)
class BatchQueueSpec:
    logical_id: str
    name: str
    runnable_timeout_s: int | None  # JobStateTimeLimitActions: cancel after this long RUNNABLE
    runnable_reason: str
    # The most MaxvCpus of its compute environments: a job asking more can never be placed (None: unknown).
    max_vcpus: float | None = None


@dataclass(frozen=True)
class ScheduleSpec:
    """A function's ``Schedule`` (an EventBridge rule) or ``ScheduleV2`` (an EventBridge Scheduler schedule)
    event, resolved: what SAM creates for it and what it delivers to the function."""

    logical_id: str  # SAM's rule or schedule (<function><event>), or an AWS::Scheduler::Schedule (RetrainSchedule)
    event_name: str
    kind: str  # Schedule | ScheduleV2
    function_logical_id: str
    function_name: str
    name: str
    arn: str
    expression: str  # rate(...) or cron(...)
    input: str | None  # the constant JSON the target is given; None: the service's own event
    enabled: bool = True
    group: str | None = None  # ScheduleV2: the schedule group (None: the default group)
    # What it starts: a function (a SAM event) or, for an AWS::Scheduler::Schedule resource, a state machine
    # (function_logical_id and function_name then name the state machine).
    target_kind: str = "function"  # function | state_machine
    target_arn: str | None = None
    timezone: str = "UTC"  # ScheduleExpressionTimezone: what a cron(...) expression's hours mean


@dataclass(frozen=True)
class TableSpec:
    logical_id: str
    name: str
    properties: dict[str, Any]


@dataclass(frozen=True)
class StateMachineSpec:
    logical_id: str
    name: str
    arn: str
    definition: dict[str, Any]


@dataclass
class LocalStack:
    """One resolved stack: what the local cloud creates and what the tests read."""

    stack_name: str
    region: str
    account_id: str
    parameters: dict[str, Any]
    tables: dict[str, TableSpec] = field(default_factory=dict)
    buckets: dict[str, str] = field(default_factory=dict)  # logical id -> bucket name
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    state_machines: dict[str, StateMachineSpec] = field(default_factory=dict)
    schedules: dict[str, ScheduleSpec] = field(default_factory=dict)  # logical id -> schedule
    batch_job_definitions: dict[str, BatchJobDefinitionSpec] = field(default_factory=dict)  # BatchEnabled only
    batch_queues: dict[str, BatchQueueSpec] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)

    def function_by_name(self, name_or_arn: str) -> FunctionSpec:
        name = name_or_arn.split(":function:", 1)[-1].split(":", 1)[0]
        for spec in self.functions.values():
            if name in (spec.name, spec.logical_id):
                return spec
        raise KeyError(f"no function named {name_or_arn} in the template")

    def schedule(self, name: str) -> ScheduleSpec:
        return find_schedule(self.schedules, name)


def find_schedule(schedules: Mapping[str, ScheduleSpec], name: str) -> ScheduleSpec:
    """A schedule by its logical id (RetrainSchedule), its rule's (or schedule's) name or ARN, or its
    function's name or logical id when that function has exactly one schedule."""
    for spec in schedules.values():
        if name in (spec.logical_id, spec.name, spec.arn):
            return spec
    of_function = [s for s in schedules.values() if name in (s.function_logical_id, s.function_name)]
    if len(of_function) == 1:
        return of_function[0]
    if of_function:
        raise KeyError(f"{name} has several schedules, name one: {', '.join(s.logical_id for s in of_function)}")
    raise KeyError(f"no schedule named {name} in the template (schedules: {', '.join(sorted(schedules)) or 'none'})")


class _Resolver:
    def __init__(
        self,
        template: dict[str, Any],
        stack_name: str,
        region: str,
        account_id: str,
        parameter_overrides: dict[str, Any],
    ) -> None:
        self.template = template
        self.resources: dict[str, Any] = template["Resources"]
        self.pseudo = {
            "AWS::StackName": stack_name,
            "AWS::Region": region,
            "AWS::AccountId": account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": None,
        }
        self.parameters = {
            name: parameter_overrides.get(name, spec.get("Default"))
            for name, spec in template.get("Parameters", {}).items()
        }
        self.stack_name, self.region, self.account_id = stack_name, region, account_id

    # -- physical names and attributes
    def physical_name(self, logical_id: str) -> str:
        resource = self.resources[logical_id]
        props = resource.get("Properties", {})
        kind = resource["Type"]
        explicit = {
            "AWS::S3::Bucket": "BucketName",
            "AWS::DynamoDB::Table": "TableName",
            "AWS::Serverless::Function": "FunctionName",
            "AWS::Logs::LogGroup": "LogGroupName",
            "AWS::Serverless::StateMachine": "Name",
        }.get(kind)
        if explicit and explicit in props:
            return str(self.resolve(props[explicit]))
        return f"{self.stack_name}-{logical_id}"

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        kind = self.resources[name]["Type"]
        if kind == "AWS::Serverless::StateMachine":
            return self.state_machine_arn(name)
        if kind in ("AWS::Serverless::HttpApi", "AWS::Serverless::LayerVersion"):
            return f"local-{name}"
        return self.physical_name(name)

    def get_att(self, logical_id: str, attribute: str) -> Any:
        kind = self.resources[logical_id]["Type"]
        name = self.physical_name(logical_id)
        if kind == "AWS::Serverless::Function" and attribute == "Arn":
            return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{name}"
        if kind == "AWS::Serverless::StateMachine":
            return {"Name": name, "Arn": self.state_machine_arn(logical_id)}[attribute]
        if kind == "AWS::S3::Bucket" and attribute == "Arn":
            return f"arn:aws:s3:::{name}"
        if kind == "AWS::DynamoDB::Table" and attribute == "Arn":
            return f"arn:aws:dynamodb:{self.region}:{self.account_id}:table/{name}"
        if kind == "AWS::IAM::Role" and attribute == "Arn":
            return f"arn:aws:iam::{self.account_id}:role/{name}"
        if kind == "AWS::Logs::LogGroup" and attribute == "Arn":
            return f"arn:aws:logs:{self.region}:{self.account_id}:log-group:{name}:*"
        raise KeyError(f"unsupported GetAtt {logical_id}.{attribute}")

    def state_machine_arn(self, logical_id: str) -> str:
        return f"arn:aws:states:{self.region}:{self.account_id}:stateMachine:{self.physical_name(logical_id)}"

    # -- intrinsic functions
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(logical, attribute)
            if key == "Fn::Sub":
                return self.sub(arg)
            if key == "Fn::Join":
                separator, items = arg
                return separator.join(str(self.resolve(i)) for i in self.resolve(items))
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::If":
                name, when_true, when_false = arg
                return self.resolve(when_true if self.condition(name) else when_false)
            if key in CONDITION_FUNCTIONS:
                return self.evaluate(value)
        return {k: self.resolve(v) for k, v in value.items()}

    def condition(self, name: str) -> bool:
        return bool(self.evaluate(self.template.get("Conditions", {})[name]))

    def evaluate(self, expression: Any) -> Any:
        """A condition expression, as CloudFormation evaluates it (parameters compared as strings)."""
        if not isinstance(expression, dict) or len(expression) != 1:
            return self.resolve(expression)
        ((key, arg),) = expression.items()
        if key == "Condition":
            return self.condition(arg)
        if key == "Fn::Equals":
            left, right = (self.evaluate(a) for a in arg)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self.evaluate(arg[0])
        if key == "Fn::And":
            return all(self.evaluate(a) for a in arg)
        if key == "Fn::Or":
            return any(self.evaluate(a) for a in arg)
        return self.resolve(expression)

    def sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical, attribute = name.split(".", 1)
                return str(self.get_att(logical, attribute))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}!]+)\}", replace, text)


def resolve_stack(
    *,
    stack_name: str = "modelforge-local",
    region: str = "us-east-1",
    account_id: str = "123456789012",
    parameter_overrides: dict[str, Any] | None = None,
    template_path: Path = TEMPLATE_PATH,
) -> LocalStack:
    template = load_template(template_path)
    r = _Resolver(template, stack_name, region, account_id, parameter_overrides or {})
    stack = LocalStack(stack_name=stack_name, region=region, account_id=account_id, parameters=r.parameters)
    globals_fn = template.get("Globals", {}).get("Function", {})

    for logical_id, resource in r.resources.items():
        kind, props = resource["Type"], resource.get("Properties", {})
        if "Condition" in resource and not r.condition(resource["Condition"]):
            continue  # not deployed with these parameters
        if kind == "AWS::Batch::JobDefinition":
            stack.batch_job_definitions[logical_id] = _job_definition_spec(r, logical_id, r.resolve(props))
        elif kind == "AWS::Batch::JobQueue":
            stack.batch_queues[logical_id] = _queue_spec(r, logical_id, props)
        elif kind == "AWS::DynamoDB::Table":
            stack.tables[logical_id] = TableSpec(logical_id, r.physical_name(logical_id), r.resolve(props))
        elif kind == "AWS::S3::Bucket":
            stack.buckets[logical_id] = r.physical_name(logical_id)
        elif kind == "AWS::Serverless::Function":
            stack.functions[logical_id] = _function_spec(r, logical_id, props, globals_fn)
            for schedule in _schedule_specs(r, stack.functions[logical_id], props):
                stack.schedules[schedule.logical_id] = schedule
        elif kind == "AWS::Serverless::StateMachine":
            definition_text = (template_path.parent / props["DefinitionUri"]).read_text()
            substitutions = r.resolve(props.get("DefinitionSubstitutions", {}))
            for key, value in substitutions.items():
                definition_text = definition_text.replace("${" + key + "}", str(value))
            unresolved = re.findall(r"\$\{[A-Za-z0-9_]+\}", definition_text)
            if unresolved:
                raise ValueError(f"{logical_id}: substitutions not defined in the template: {unresolved}")
            stack.state_machines[logical_id] = StateMachineSpec(
                logical_id,
                r.physical_name(logical_id),
                r.state_machine_arn(logical_id),
                json.loads(definition_text),
            )

    for logical_id, resource in r.resources.items():
        if resource["Type"] == "AWS::Scheduler::Schedule":
            schedule = _scheduler_resource(r, stack, logical_id, resource.get("Properties", {}))
            stack.schedules[schedule.logical_id] = schedule

    for name, output in template.get("Outputs", {}).items():
        try:
            stack.outputs[name] = str(r.resolve(output["Value"]))
        except KeyError:
            continue  # outputs that only exist in AWS (the API's real URL) are filled in by the local cloud
    return stack


def _function_spec(
    r: _Resolver, logical_id: str, props: dict[str, Any], globals_fn: dict[str, Any]
) -> FunctionSpec:
    environment = {
        **r.resolve(globals_fn.get("Environment", {}).get("Variables", {})),
        **r.resolve(props.get("Environment", {}).get("Variables", {})),
    }
    package_type = props.get("PackageType", "Zip")
    handler = props["ImageConfig"]["Command"][0] if package_type == "Image" else props["Handler"]
    routes = tuple(
        (str(event["Properties"]["Method"]).upper(), str(event["Properties"]["Path"]))
        for event in props.get("Events", {}).values()
        if event.get("Type") == "HttpApi"
    )
    patterns = tuple(
        r.resolve(event["Properties"]["Pattern"])
        for event in props.get("Events", {}).values() if event.get("Type") == "EventBridgeRule"
    )
    name = r.physical_name(logical_id)
    return FunctionSpec(
        logical_id=logical_id,
        name=name,
        arn=r.get_att(logical_id, "Arn"),
        handler=handler,
        package_type=package_type,
        memory_mb=int(r.resolve(props.get("MemorySize", globals_fn.get("MemorySize", DEFAULT_MEMORY_MB)))),
        timeout_s=int(r.resolve(props.get("Timeout", globals_fn.get("Timeout", DEFAULT_TIMEOUT_S)))),
        environment={k: str(v) for k, v in environment.items() if v is not None},
        http_routes=routes,
        event_patterns=patterns,
    )


def _job_definition_spec(r: _Resolver, logical_id: str, props: dict[str, Any]) -> BatchJobDefinitionSpec:
    container = props["ContainerProperties"]
    requirements = {item["Type"]: item["Value"] for item in container.get("ResourceRequirements", [])}
    return BatchJobDefinitionSpec(
        logical_id=logical_id, name=r.physical_name(logical_id), command=tuple(container["Command"]),
        environment={item["Name"]: str(item["Value"]) for item in container.get("Environment", [])},
        vcpus=float(requirements.get("VCPU", 1)), memory_mib=int(requirements.get("MEMORY", 2048)),
        attempt_duration_s=int(props["Timeout"]["AttemptDurationSeconds"]),
        parameters={k: str(v) for k, v in props.get("Parameters", {}).items()})


def _queue_spec(r: _Resolver, logical_id: str, raw: dict[str, Any]) -> BatchQueueSpec:
    props = r.resolve(raw)
    actions = [a for a in props.get("JobStateTimeLimitActions", []) if a["State"] == "RUNNABLE"]
    # The environments by logical id (before Ref resolves them to names), for their MaxvCpus.
    environments = [order["ComputeEnvironment"].get("Ref") for order in raw.get("ComputeEnvironmentOrder", [])
                    if isinstance(order.get("ComputeEnvironment"), dict)]
    max_vcpus = [float(r.resolve(r.resources[name]["Properties"]["ComputeResources"]["MaxvCpus"]))
                 for name in environments if name in r.resources]
    return BatchQueueSpec(logical_id=logical_id, name=r.physical_name(logical_id),
                          runnable_timeout_s=int(actions[0]["MaxTimeSeconds"]) if actions else None,
                          runnable_reason=str(actions[0].get("Reason", "")) if actions else "",
                          max_vcpus=max(max_vcpus) if max_vcpus else None)


SCHEDULE_EVENTS = ("Schedule", "ScheduleV2")


def _schedule_specs(r: _Resolver, function: FunctionSpec, props: dict[str, Any]) -> list[ScheduleSpec]:
    """The function's Schedule and ScheduleV2 events, as SAM turns them into an AWS::Events::Rule (Schedule)
    or an AWS::Scheduler::Schedule (ScheduleV2) named <function><event>."""
    found = []
    for event_name, event in props.get("Events", {}).items():
        kind = event.get("Type")
        if kind not in SCHEDULE_EVENTS:
            continue
        # Only what the local cloud uses (the retry policy and dead-letter queue are AWS's alone).
        properties = {key: r.resolve(value) for key, value in event.get("Properties", {}).items()
                      if key in ("Schedule", "ScheduleExpression", "Input", "Name", "Enabled", "State", "GroupName")}
        logical_id = f"{function.logical_id}{event_name}"
        name = str(properties.get("Name") or f"{r.stack_name}-{logical_id}")
        if kind == "Schedule":
            expression = properties["Schedule"]
            arn = f"arn:aws:events:{r.region}:{r.account_id}:rule/{name}"
            # SAM: Enabled (a boolean) or State (ENABLED | DISABLED); neither means enabled.
            enabled = (properties.get("State", "ENABLED") == "ENABLED"
                       and str(properties.get("Enabled", True)).lower() != "false")
        else:
            expression = properties["ScheduleExpression"]
            group = properties.get("GroupName") or "default"
            arn = f"arn:aws:scheduler:{r.region}:{r.account_id}:schedule/{group}/{name}"
            enabled = properties.get("State", "ENABLED") == "ENABLED"
        payload = properties.get("Input")
        group = properties.get("GroupName") if kind == "ScheduleV2" else None
        found.append(ScheduleSpec(
            logical_id=logical_id, event_name=event_name, kind=kind, function_logical_id=function.logical_id,
            function_name=function.name, name=name, arn=arn, expression=str(expression),
            input=None if payload is None else str(payload), enabled=bool(enabled),
            group=None if group is None else str(group)))
    return found


def _scheduler_resource(r: _Resolver, stack: LocalStack, logical_id: str, props: dict[str, Any]) -> ScheduleSpec:
    """An AWS::Scheduler::Schedule resource aimed at one of the stack's state machines (the retraining's)."""
    target = r.resolve({k: v for k, v in props["Target"].items() if k in ("Arn", "Input")})  # not the role, DLQ
    machines = [m for m in stack.state_machines.values() if m.arn == target["Arn"]]
    if not machines:
        raise ValueError(f"{logical_id}: the local cloud runs schedules of the stack's state machines only")
    (machine,) = machines
    name = str(r.resolve(props.get("Name") or f"{r.stack_name}-{logical_id}"))
    group = props.get("GroupName")
    return ScheduleSpec(
        logical_id=logical_id, event_name=logical_id, kind="ScheduleV2", function_logical_id=machine.logical_id,
        function_name=machine.name, name=name,
        arn=f"arn:aws:scheduler:{r.region}:{r.account_id}:schedule/{group or 'default'}/{name}",
        expression=str(r.resolve(props["ScheduleExpression"])),
        input=None if target.get("Input") is None else str(target["Input"]),
        enabled=str(r.resolve(props.get("State", "ENABLED"))) == "ENABLED",
        group=None if group is None else str(r.resolve(group)), target_kind="state_machine",
        target_arn=machine.arn, timezone=str(r.resolve(props.get("ScheduleExpressionTimezone", "UTC"))))
