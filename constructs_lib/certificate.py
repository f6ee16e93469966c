"""A public ACM certificate, validated by DNS records in a Route 53 hosted zone.

ACM issues the certificate once it finds, for each name on it, a CNAME it chose in the
name's DNS. The certificate's ``domain_validation_options`` (a set, one entry per name)
say which: one Route 53 record is created per entry (``for_each`` over the set, keyed by
the name), and ``aws_acm_certificate_validation`` waits until ACM has issued the
certificate. :attr:`Certificate.arn` is the validation's ARN, so a listener using it is
created only once the certificate can be served.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from cdktf import TerraformIterator, TerraformResourceLifecycle, Token
from cdktf_cdktf_provider_aws.acm_certificate import AcmCertificate
from cdktf_cdktf_provider_aws.acm_certificate_validation import AcmCertificateValidation
from cdktf_cdktf_provider_aws.route53_record import Route53Record
from constructs import Construct

from .errors import ConfigError

__all__ = ["Certificate", "CertificateProps"]

VALIDATION_RECORD_TTL = 300
"""Seconds resolvers keep a validation record (ACM re-reads it for every renewal)."""
_LABELS = r"((?!-)[a-z0-9-]{1,63}(?<!-)\.)+([a-z]{2,63}|xn--[a-z0-9-]{1,59})"
HOST_NAME = re.compile(f"^{_LABELS}$")
"""A lower-case DNS host name (``app.example.com``): no scheme, no trailing dot."""
DOMAIN_NAME = re.compile(rf"^(\*\.)?{_LABELS}$")
"""A name ACM can issue a certificate for: a host name, or a wildcard as the whole first
label (``*.example.com``)."""


@dataclass(frozen=True)
class CertificateProps:
    domain_name: str
    """The certificate's subject, e.g. ``metabase.example.com`` (or ``*.example.com``)."""
    hosted_zone_id: str
    """The public Route 53 zone that holds ``domain_name`` and every alternative name: the
    validation records are created there."""
    subject_alternative_names: Sequence[str] = ()
    """Further names on the certificate, in the same zone. Unset: ``domain_name`` only."""
    region: str | None = None
    """Where the certificate is requested. Unset: the provider's region (where a load
    balancer using it must be); give ``us-east-1`` for a CloudFront certificate."""


class Certificate(Construct):
    """An ACM certificate for ``domain_name`` (and ``subject_alternative_names``), DNS
    validated in ``hosted_zone_id``, renewed by ACM for as long as the records stay.

    A change of names replaces the certificate: the new one is requested and validated
    before the old one is deleted (``create_before_destroy``), so listeners move to it
    without a gap.
    """

    def __init__(self, scope: Construct, id_: str, *, props: CertificateProps) -> None:
        super().__init__(scope, id_)
        self._validate(props)
        self.domain_name = props.domain_name
        self.certificate = AcmCertificate(
            self,
            "certificate",
            domain_name=props.domain_name,
            subject_alternative_names=list(props.subject_alternative_names) or None,
            validation_method="DNS",
            region=props.region,
            tags={"Name": props.domain_name},
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )
        # domain_validation_options is a set of objects, which for_each does not take:
        # cdktf turns it into a map keyed by the name, whose keys Terraform knows at plan
        # time (the names are in the configuration; only the records' values wait for ACM).
        options = TerraformIterator.from_complex_list(
            self.certificate.domain_validation_options, "domain_name"
        )
        self.validation_records = Route53Record(
            self,
            "validation-record",
            for_each=options,
            zone_id=props.hosted_zone_id,
            name=options.get_string("resource_record_name"),
            type=options.get_string("resource_record_type"),
            records=[options.get_string("resource_record_value")],
            ttl=VALIDATION_RECORD_TTL,
            # A wildcard and its apex (*.example.com, example.com) share one record.
            allow_overwrite=True,
        )
        """One CNAME per name on the certificate (a ``for_each`` resource)."""
        # cdktf writes the map as ``for ... in tolist(<set>)``; with two names or more the
        # set's elements are unknown at plan time and tolist() of it is unknown too, which
        # for_each refuses. Iterating the set itself keeps the keys (the names) known.
        certificate = (
            f"{self.certificate.terraform_resource_type}.{self.certificate.friendly_unique_id}"
        )
        self.validation_records.add_override(
            "for_each",
            f"${{{{ for dvo in {certificate}.domain_validation_options : "
            "dvo.domain_name => dvo }}",
        )
        records = TerraformIterator.from_resources(self.validation_records)
        self.validation = AcmCertificateValidation(
            self,
            "validation",
            certificate_arn=self.certificate.arn,
            validation_record_fqdns=Token.as_list(records.pluck_property("fqdn")),
            region=props.region,
        )
        self.arn: str = self.validation.certificate_arn
        """The certificate's ARN, known once ACM has issued it: what a listener takes."""

    def _validate(self, props: CertificateProps) -> None:
        where = self.node.path
        names = [props.domain_name, *props.subject_alternative_names]
        for field_, name in [
            ("domain_name", props.domain_name),
            *(("subject_alternative_names", n) for n in props.subject_alternative_names),
        ]:
            if not Token.is_unresolved(name) and not DOMAIN_NAME.fullmatch(name):
                raise ConfigError(
                    where,
                    field_,
                    repr(name),
                    "give a lower-case DNS name such as app.example.com (a wildcard only "
                    "as the whole first label: *.example.com), without scheme or dot at "
                    "the end",
                )
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ConfigError(
                where, "subject_alternative_names", ", ".join(repeated), "name each once"
            )
        if not props.hosted_zone_id:
            raise ConfigError(
                where,
                "hosted_zone_id",
                repr(props.hosted_zone_id),
                "give the public Route 53 zone of the names: ACM validates through it",
            )
