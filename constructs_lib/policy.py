"""IAM and resource policy documents as plain JSON, built in one place.

Policies are rendered with ``json.dumps``; CDKTF tokens (ARNs of resources in the
stack) inside the strings resolve to Terraform interpolations at synthesis.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Statement:
    """One policy statement. ``principals`` is only for resource policies."""

    actions: Sequence[str]
    resources: Sequence[str] = ("*",)
    """Unset: ``*`` (only meaningful in key and bucket policies, where it means "this")."""
    effect: str = "Allow"
    principals: Mapping[str, Any] | None = None
    """Unset: no principal (an identity policy)."""
    conditions: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Unset: unconditional."""
    sid: str | None = None

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.sid:
            out["Sid"] = self.sid
        out["Effect"] = self.effect
        if self.principals is not None:
            out["Principal"] = dict(self.principals)
        out["Action"] = list(self.actions)
        if self.resources:  # trust policies have none
            out["Resource"] = list(self.resources)
        if self.conditions:
            out["Condition"] = {k: dict(v) for k, v in self.conditions.items()}
        return out


def policy_document(*statements: Statement) -> str:
    """A JSON policy document holding ``statements`` in order."""
    return json.dumps({"Version": "2012-10-17", "Statement": [s.render() for s in statements]})


def assume_role_policy(service: str, *, source_account: str) -> str:
    """A trust policy letting ``service`` (e.g. ``ecs-tasks.amazonaws.com``) assume a role
    only on behalf of ``source_account`` (``aws:SourceAccount``: the confused-deputy guard;
    required, so no role of this project can be created without it)."""
    conditions = {"StringEquals": {"aws:SourceAccount": source_account}}
    return policy_document(
        Statement(
            actions=["sts:AssumeRole"],
            principals={"Service": service},
            resources=(),
            conditions=conditions,
        )
    )


def read_secrets(secret_arns: Sequence[str], *, kms_key_arn: str, region: str) -> list[Statement]:
    """Read these Secrets Manager secrets, decrypting with the key only through Secrets Manager."""
    return [
        Statement(actions=["secretsmanager:GetSecretValue"], resources=list(secret_arns)),
        Statement(
            actions=["kms:Decrypt"],
            resources=[kms_key_arn],
            conditions={
                "StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}
            },
        ),
    ]
