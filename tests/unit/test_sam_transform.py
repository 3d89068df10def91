"""The template goes through the real SAM translator, as `sam deploy` would (cfn-lint 1.x validates SAM
resources against their schema but no longer runs the transform, so only this catches e.g. an intrinsic
where SAM needs a literal)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cfnlint.decode import decode
from samtranslator.translator.transform import transform

from localcloud.template import TEMPLATE_PATH


class _NoManagedPolicies:
    def load(self) -> dict[str, str]:
        return {}


@pytest.fixture(scope="module")
def transformed(monkeypatch_module: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch_module.setenv("AWS_DEFAULT_REGION", "us-east-1")
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
    return dict(transform(template, {}, _NoManagedPolicies()))


@pytest.fixture(scope="module")
def monkeypatch_module() -> Any:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def _routes(transformed: dict[str, Any]) -> dict[tuple[str, str], Any]:
    api = next(r for r in transformed["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Api")
    return {(path, method): op.get("security") for path, ops in api["Properties"]["Body"]["paths"].items()
            for method, op in ops.items()}


def test_every_route_but_health_requires_iam(transformed: dict[str, Any]) -> None:
    routes = _routes(transformed)
    assert ("/train", "post") in routes
    for (path, _method), security in routes.items():
        expected = [{"NONE": []}] if path == "/health" else [{"AWS_IAM": []}]
        assert security == expected, path


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


def test_policies_name_one_resource_and_no_wildcard_data_actions(transformed: dict[str, Any]) -> None:
    for name, resource in transformed["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for policy in resource["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                for action in actions:
                    service = action.split(":", 1)[0]
                    if service in ("dynamodb", "s3", "states", "lambda", "sqs"):
                        assert not action.endswith(":*"), (name, action)
                        assert statement["Resource"] != "*", (name, action)
