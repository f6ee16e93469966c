"""Certificate construct: an ACM certificate validated by DNS records in Route 53.

One unit stack (a name and two alternative names, in another region) is synthesized
once for the module; an HTTPS listener takes the certificate's ARN.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from constructs_lib.errors import ConfigError
from tests.support import UnitStack, new_unit_stack, one, resources

if TYPE_CHECKING:
    from constructs_lib.certificate import Certificate

ZONE = "Z0123456789ABCDEFGHIJ"
NAMES = ("metabase.example.com", "*.metabase.example.com", "bi.example.com")


def _build(**overrides: Any) -> tuple[UnitStack, Certificate]:
    from constructs_lib.certificate import Certificate, CertificateProps

    values: dict[str, Any] = {"domain_name": NAMES[0], "hosted_zone_id": ZONE, **overrides}
    unit = new_unit_stack()
    return unit, Certificate(unit.stack, "cert", props=CertificateProps(**values))


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    from cdktf import TerraformOutput
    from cdktf_cdktf_provider_aws.lb_listener import LbListener

    unit, cert = _build(subject_alternative_names=list(NAMES[1:]), region="us-east-1")
    TerraformOutput(unit.stack, "arn", value=cert.arn)
    LbListener(
        unit.stack,
        "listener",
        load_balancer_arn="arn:aws:elasticloadbalancing:eu-central-1:123456789012:lb/x",
        port=443,
        protocol="HTTPS",
        certificate_arn=cert.arn,
        default_action=[
            {"type": "fixed-response", "fixed_response": {"content_type": "text/plain"}}
        ],
    )
    return unit.synth()


def _id(doc: dict[str, Any], type_: str) -> str:
    (logical_id,) = resources(doc, type_)
    return logical_id


def test_the_certificate_is_dns_validated_and_replaced_create_before_destroy(
    doc: dict[str, Any],
) -> None:
    cert = one(doc, "aws_acm_certificate")
    assert cert["domain_name"] == NAMES[0]
    assert cert["subject_alternative_names"] == list(NAMES[1:])
    assert cert["validation_method"] == "DNS"
    assert cert["region"] == "us-east-1"
    assert cert["lifecycle"] == {"create_before_destroy": True}
    assert cert["tags"] == {"Name": NAMES[0]}


def test_one_validation_record_per_name_from_the_validation_options_set(
    doc: dict[str, Any],
) -> None:
    record = one(doc, "aws_route53_record")
    cert = _id(doc, "aws_acm_certificate")
    # A set of objects is no for_each argument: a map keyed by the name (known at plan
    # time) of the set's elements is. Not through tolist(): with several names (as here)
    # the set's elements are unknown at plan time, tolist() of it is unknown, and
    # Terraform refuses the for_each (reproduced with Terraform 1.11).
    assert record["for_each"] == (
        "${{ for dvo in aws_acm_certificate."
        + cert
        + ".domain_validation_options : dvo.domain_name => dvo }}"
    )
    assert record["zone_id"] == ZONE
    assert record["name"] == "${each.value.resource_record_name}"
    assert record["type"] == "${each.value.resource_record_type}"
    assert record["records"] == ["${each.value.resource_record_value}"]
    assert record["ttl"] == 300
    assert record["allow_overwrite"] is True  # *.a.example.com and a.example.com share one


def test_the_validation_waits_for_every_record_and_its_arn_is_what_listeners_use(
    doc: dict[str, Any],
) -> None:
    validation = one(doc, "aws_acm_certificate_validation")
    cert = _id(doc, "aws_acm_certificate")
    records = _id(doc, "aws_route53_record")
    assert validation["certificate_arn"] == f"${{aws_acm_certificate.{cert}.arn}}"
    assert validation["validation_record_fqdns"] == (
        f"${{[ for key, val in aws_route53_record.{records}: val.fqdn]}}"
    )
    assert validation["region"] == "us-east-1"
    arn = f"${{aws_acm_certificate_validation.{_id(doc, 'aws_acm_certificate_validation')}.certificate_arn}}"
    assert doc["output"]["arn"]["value"] == arn
    assert one(doc, "aws_lb_listener")["certificate_arn"] == arn


def test_without_alternative_names_or_region_neither_is_set() -> None:
    unit, _ = _build()
    doc = unit.synth()
    cert = one(doc, "aws_acm_certificate")
    assert "subject_alternative_names" not in cert
    assert "region" not in cert
    assert "region" not in one(doc, "aws_acm_certificate_validation")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"domain_name": "https://a.example.com"}, r"^unit/cert\.domain_name: got 'https://"),
        ({"domain_name": "A.example.com"}, r"domain_name: got 'A\.example\.com', give a lower"),
        ({"domain_name": "a.example.com."}, r"domain_name: got 'a\.example\.com\.'"),
        ({"subject_alternative_names": ["a.*.example.com"]}, r"subject_alternative_names: got"),
        (
            {"subject_alternative_names": [NAMES[0]]},
            r"subject_alternative_names: got metabase\.example\.com, name each once",
        ),
        ({"hosted_zone_id": ""}, r"hosted_zone_id: got '', give the public Route 53 zone"),
    ],
)
def test_invalid_configuration_is_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _build(**overrides)
