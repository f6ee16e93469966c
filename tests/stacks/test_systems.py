"""The seed systems' stacks (Metabase, Dekart), read from the session's synthesis: the
standards every system is held to, then each system's own points."""

from __future__ import annotations

import importlib
import json
import re
from typing import Any

import pytest

from constructs_lib.options import WorkspaceRole
from environments import SYSTEM_ENVIRONMENTS, dekart, metabase
from environments.systems import WorkspaceSettings
from stacks.dekart import workspace_environment
from tests.support import ROOT, Synth, containers, named, one, resources

SYSTEM_STACKS = tuple(SYSTEM_ENVIRONMENTS)
RDS_CA_PATH = "/etc/ssl/rds/rds-ca-bundle.pem"


@pytest.fixture(scope="module", params=SYSTEM_STACKS)
def system_stack(request: pytest.FixtureRequest, synth: Synth) -> tuple[str, dict[str, Any]]:
    return request.param, synth.stack(request.param)


def balanced(stack: dict[str, Any]) -> dict[str, Any]:
    """The ECS service behind the system's load balancer (Panintelligence's dashboard; the
    only service of the others)."""
    (found,) = [s for s in resources(stack, "aws_ecs_service").values() if s.get("load_balancer")]
    return found


def container(stack: dict[str, Any]) -> dict[str, Any]:
    """The load-balanced service's container."""
    name = balanced(stack)["name"].rsplit("-", 1)[-1]
    return containers(stack)[name]


def environment(stack: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(stack)["environment"]}


def secrets(stack: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["valueFrom"] for s in container(stack).get("secrets", [])}


ENGINE_TLS_PARAMETER = {
    "postgres": ("rds.force_ssl", "1"),
    "mariadb": ("require_secure_transport", "1"),
}
OWNER_FUNCTION = {"postgres": "pg-owner", "mariadb": "mariadb-owner"}


def listener(stack: dict[str, Any], port: int) -> dict[str, Any]:
    (found,) = [x for x in resources(stack, "aws_lb_listener").values() if x["port"] == port]
    return found


def policies(stack: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(p["policy"]) for p in resources(stack, "aws_iam_role_policy").values()]


def statements(stack: dict[str, Any], role_name: str) -> list[dict[str, Any]]:
    roles = {lid: r for lid, r in resources(stack, "aws_iam_role").items()}
    (role_id,) = [lid for lid, r in roles.items() if r["name"] == role_name]
    found: list[dict[str, Any]] = []
    for policy in resources(stack, "aws_iam_role_policy").values():
        if policy["role"] == f"${{aws_iam_role.{role_id}.id}}":
            found += json.loads(policy["policy"])["Statement"]
    return found


# --- what every system is held to -----------------------------------------------------------


def test_each_system_environment_has_its_stack_and_state_key(synth: Synth) -> None:
    for name in SYSTEM_STACKS:
        stack = synth.stack(name)
        assert stack["terraform"]["backend"]["s3"]["key"] == f"{name}/terraform.tfstate"
    for platform in ("dev", "test", "stage", "prod"):
        key = synth.stack(platform)["terraform"]["backend"]["s3"]["key"]
        assert key == f"{platform}/terraform.tfstate"


def test_region_and_azs_follow_the_config(system_stack: tuple[str, dict[str, Any]]) -> None:
    name, stack = system_stack
    config = SYSTEM_ENVIRONMENTS[name]
    (provider,) = stack["provider"]["aws"]
    assert provider["region"] == config.region
    azs = sorted(s["availability_zone"] for s in resources(stack, "aws_subnet").values())
    assert azs == sorted(config.network.availability_zones * 2)


def test_tasks_are_private(system_stack: tuple[str, dict[str, Any]]) -> None:
    _, stack = system_stack
    private = {
        f"${{aws_subnet.{lid}.id}}"
        for lid, s in resources(stack, "aws_subnet").items()
        if s["tags"]["tier"] == "private"
    }
    for service in resources(stack, "aws_ecs_service").values():
        network = service["network_configuration"]
        assert network["assign_public_ip"] is False
        assert set(network["subnets"]) == private


def test_credentials_only_through_value_from(system_stack: tuple[str, dict[str, Any]]) -> None:
    _, stack = system_stack
    for each in containers(stack).values():
        env = {e["name"] for e in each["environment"]}
        assert not [k for k in env if re.search(r"PASS|PSWD|TOKEN|SECRET|LICEN[CS]E", k)]
    assert secrets(stack), "the database password comes from a secret"
    for value_from in secrets(stack).values():
        assert value_from.startswith("${aws_secretsmanager_secret.") or value_from.startswith(
            "${data.aws_secretsmanager_secret."
        )


def test_database_is_tls_only_encrypted_private(
    system_stack: tuple[str, dict[str, Any]],
) -> None:
    name, stack = system_stack
    config = SYSTEM_ENVIRONMENTS[name]
    db = one(stack, "aws_db_instance")
    assert db["engine"] == config.database.engine.value
    assert db["storage_encrypted"] is True
    assert db["kms_key_id"].startswith("${aws_kms_key.")
    assert db["publicly_accessible"] is False
    assert db["multi_az"] is config.database.multi_az
    assert db["deletion_protection"] is config.database.deletion_protection
    assert db["backup_retention_period"] == config.database.backup_retention_days
    params = {p["name"]: p["value"] for p in one(stack, "aws_db_parameter_group")["parameter"]}
    parameter, value = ENGINE_TLS_PARAMETER[db["engine"]]
    # Refused plaintext everywhere but where config validation allowed TLS_OFFERED.
    assert params[parameter] == (value if config.database.transport.required else "0")
    assert config.database.transport.required is not name.startswith("panintelligence")


def test_the_application_verifies_the_database_certificate(
    system_stack: tuple[str, dict[str, Any]],
) -> None:
    """Through a connection URL (``sslmode=verify-full&sslrootcert=``) or the service's own
    variables (Metaflow's ``MF_METADATA_DB_SSL_MODE`` and root certificate path).
    Panintelligence documents no TLS setting for its repository connection: the server
    offers TLS (required once hardened) and the image's JVM trusts the RDS CAs (README, known
    limitation)."""
    name, stack = system_stack
    if name.startswith("panintelligence"):
        dockerfile = (ROOT / "images" / "panintelligence" / "Dockerfile").read_text()
        assert "keytool -importcert" in dockerfile
        assert "/etc/ssl/rds/rds-ca-bundle.pem" in dockerfile
        return
    env = environment(stack)
    urls = [v for v in env.values() if "sslmode=" in v]
    if urls:
        (url,) = urls
        assert "sslmode=verify-full" in url
        assert f"sslrootcert={RDS_CA_PATH}" in url
    else:
        assert env["MF_METADATA_DB_SSL_MODE"] == "verify-full"
        assert env["MF_METADATA_DB_SSL_ROOT_CERT_PATH"] == RDS_CA_PATH


def test_no_wildcard_actions(system_stack: tuple[str, dict[str, Any]]) -> None:
    _, stack = system_stack
    for document in policies(stack):
        for statement in document["Statement"]:
            actions = statement["Action"]
            for action in [actions] if isinstance(actions, str) else actions:
                assert "*" not in action, (statement, action)


def test_logs_are_encrypted_and_retained(system_stack: tuple[str, dict[str, Any]]) -> None:
    _, stack = system_stack
    groups = resources(stack, "aws_cloudwatch_log_group")
    assert groups
    for group in groups.values():
        assert group["retention_in_days"] > 0, group["name"]
        assert group.get("kms_key_id"), group["name"]


def test_every_alarm_notifies_the_topic(system_stack: tuple[str, dict[str, Any]]) -> None:
    name, stack = system_stack
    topic = "${aws_sns_topic." + next(iter(resources(stack, "aws_sns_topic"))) + ".arn}"
    alarms = resources(stack, "aws_cloudwatch_metric_alarm")
    for alarm in alarms.values():
        assert topic in alarm["alarm_actions"], alarm["alarm_name"]
    covered = json.dumps([a.get("dimensions", {}) for a in alarms.values()])
    assert f'"ServiceName": "{name}-' in covered
    engine = SYSTEM_ENVIRONMENTS[name].database.engine.value
    assert f'"DBInstanceIdentifier": "{name}-{engine}"' in covered
    assert '"LoadBalancer": "${aws_lb.' in covered


def test_prod_alarms_reach_someone(synth: Synth) -> None:
    for name in ("metabase-prod", "dekart-prod"):
        (subscription,) = resources(synth.stack(name), "aws_sns_topic_subscription").values()
        assert subscription["protocol"] == "email"


def test_images_come_from_the_stacks_own_immutable_repository(
    system_stack: tuple[str, dict[str, Any]],
) -> None:
    name, stack = system_stack
    for repository in resources(stack, "aws_ecr_repository").values():
        assert repository["image_tag_mutability"] == "IMMUTABLE"
        assert repository["image_scanning_configuration"]["scan_on_push"] is True
    for each in containers(stack).values():
        assert each["image"].endswith(f":{SYSTEM_ENVIRONMENTS[name].image_tag}")
        assert each["image"].startswith("${aws_ecr_repository.")


@pytest.mark.parametrize("system", ["metabase", "dekart", "metaflow", "panintelligence"])
def test_dockerfile_builds_the_pinned_release(system: str) -> None:
    module = importlib.import_module(f"environments.{system}")
    dockerfile = (ROOT / "images" / system / "Dockerfile").read_text()
    (base,) = re.findall(r"^FROM (\S+)$", dockerfile, re.M)
    release = re.search(r"^ARG RELEASE=(\S+)$", dockerfile, re.M)
    tag = base.rsplit(":", 1)[1]
    assert (release.group(1) if release and tag == "${RELEASE}" else tag) == module.IMAGE_TAG
    assert f"COPY --chmod=0444 apps/common/certs/rds-ca-bundle.pem {RDS_CA_PATH}" in dockerfile


def test_the_database_admits_only_the_service(system_stack: tuple[str, dict[str, Any]]) -> None:
    name, stack = system_stack
    engine = SYSTEM_ENVIRONMENTS[name].database.engine.value
    groups = {lid: g["name"] for lid, g in resources(stack, "aws_security_group").items()}
    db_group = next(lid for lid, n in groups.items() if n == f"{name}-{engine}")
    ingress = [
        r
        for r in resources(stack, "aws_vpc_security_group_ingress_rule").values()
        if r["security_group_id"] == f"${{aws_security_group.{db_group}.id}}"
    ]
    sources = sorted(groups[r["referenced_security_group_id"].split(".")[1]] for r in ingress)
    port = {"postgres": 5432, "mariadb": 3306}[engine]
    assert all(r["from_port"] == port for r in ingress)
    clients = [balanced(stack)["name"], f"{name}-{OWNER_FUNCTION[engine]}"]
    if name.startswith("panintelligence"):
        clients.append(f"{name}-scheduler")  # the scheduler reads the repository too
    assert sources == sorted(clients)


def test_service_starts_after_its_database_owner(system_stack: tuple[str, dict[str, Any]]) -> None:
    _, stack = system_stack
    service = balanced(stack)
    (invocation,) = [i for i in resources(stack, "aws_lambda_invocation") if "owner" in i]
    assert f"aws_lambda_invocation.{invocation}" in service["depends_on"]


# --- production tier ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["metabase-prod", "dekart-prod"])
def test_prod_is_https_with_redirect(synth: Synth, name: str) -> None:
    stack = synth.stack(name)
    listeners = {x["port"]: x for x in resources(stack, "aws_lb_listener").values()}
    assert listeners[443]["protocol"] == "HTTPS"
    assert listeners[443]["ssl_policy"].startswith("ELBSecurityPolicy-TLS13")
    (redirect,) = listeners[80]["default_action"]
    assert redirect["type"] == "redirect"
    assert redirect["redirect"]["protocol"] == "HTTPS"
    assert redirect["redirect"]["status_code"] == "HTTP_301"
    alb = one(stack, "aws_lb")
    assert alb["internal"] is False
    assert alb["enable_deletion_protection"] is True
    assert alb["access_logs"]["enabled"] is True


@pytest.mark.parametrize("name", ["metabase-dev", "dekart-dev"])
def test_dev_without_a_domain_is_internal_http(synth: Synth, name: str) -> None:
    stack = synth.stack(name)
    alb = one(stack, "aws_lb")
    assert alb["internal"] is True
    (listener,) = resources(stack, "aws_lb_listener").values()
    assert listener["port"] == 80
    cidrs = {
        r.get("cidr_ipv4") for r in resources(stack, "aws_vpc_security_group_ingress_rule").values()
    }
    assert "0.0.0.0/0" not in cidrs
    assert "172.16.0.0/12" in cidrs


def test_prod_database_and_service_are_highly_available(synth: Synth) -> None:
    for name in ("metabase-prod", "dekart-prod"):
        stack = synth.stack(name)
        assert len(resources(stack, "aws_subnet")) == 6
        db = one(stack, "aws_db_instance")
        assert db["multi_az"] is True
        assert db["deletion_protection"] is True
        assert db["skip_final_snapshot"] is False
        assert db["backup_retention_period"] >= 7
    metabase_service = one(synth.stack("metabase-prod"), "aws_ecs_service")
    assert metabase_service["desired_count"] >= 2
    assert one(synth.stack("dekart-prod"), "aws_ecs_service")["desired_count"] == 1


# --- Metabase -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["metabase-dev", "metabase-prod"])
def test_metabase_task(synth: Synth, name: str) -> None:
    stack = synth.stack(name)
    task = one(stack, "aws_ecs_task_definition")
    assert (task["cpu"], task["memory"]) == ("512", "1024")
    c = container(stack)
    assert c["portMappings"][0]["containerPort"] == 3000
    assert c["user"] == "2000:2000"
    assert c["readonlyRootFilesystem"] is True
    assert "healthCheck" not in c
    assert {m["containerPath"] for m in c["mountPoints"]} == {"/tmp", "/plugins"}
    env = environment(stack)
    assert env["MB_DB_TYPE"] == "postgres"
    assert env["MB_DB_DBNAME"] == "metabase"
    assert env["MB_DB_PORT"] == "5432"
    assert env["MB_DB_USER"] == "metabase"
    assert env["MB_DB_HOST"].startswith("${aws_db_instance.")
    assert env["MB_DB_CONNECTION_URI"].startswith("jdbc:postgresql://${aws_db_instance.")
    assert secrets(stack)["MB_DB_PASS"].endswith(":password::")
    target_group = one(stack, "aws_lb_target_group")
    assert target_group["port"] == 3000
    assert target_group["health_check"]["path"] == "/api/health"


def test_metabase_prod_uses_the_given_certificate_and_scales_on_cpu(synth: Synth) -> None:
    stack = synth.stack("metabase-prod")
    https = listener(stack, 443)
    assert https["certificate_arn"] == metabase.PROD.web.certificate_arn
    assert not resources(stack, "aws_acm_certificate")
    env = environment(stack)
    assert env["MB_SITE_URL"] == "https://metabase.example.com"
    (policy,) = resources(stack, "aws_appautoscaling_policy").values()
    spec = policy["target_tracking_scaling_policy_configuration"]
    assert spec["predefined_metric_specification"]["predefined_metric_type"] == (
        "ECSServiceAverageCPUUtilization"
    )
    service = one(stack, "aws_ecs_service")
    # Versions never serve side by side (Metabase migrates its database at start).
    assert service["deployment_minimum_healthy_percent"] == 0
    assert service["deployment_maximum_percent"] == 100
    assert service["health_check_grace_period_seconds"] == 300


# --- Dekart ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dekart-dev", "dekart-prod"])
def test_dekart_task(synth: Synth, name: str) -> None:
    stack = synth.stack(name)
    c = container(stack)
    assert c["portMappings"][0]["containerPort"] == 8080
    assert c["user"] == "1000:1000"
    env = environment(stack)
    (storage,) = [lid for lid in resources(stack, "aws_s3_bucket") if lid.startswith("storage")]
    bucket = f"${{aws_s3_bucket.{storage}.bucket}}"
    assert env["DEKART_STORAGE"] == "S3"
    assert env["DEKART_DATASOURCE"] == "ATHENA"
    assert env["DEKART_CLOUD_STORAGE_BUCKET"] == bucket
    assert env["DEKART_ATHENA_CATALOG"] == "AwsDataCatalog"
    assert env["DEKART_ATHENA_S3_OUTPUT_LOCATION"] == f"{bucket}/athena"
    (workgroup,) = resources(stack, "aws_athena_workgroup")
    assert env["DEKART_ATHENA_WORKGROUP"] == f"${{aws_athena_workgroup.{workgroup}.name}}"
    assert env["DEKART_POSTGRES_URL"].startswith("postgres://dekart@${aws_db_instance.")
    assert env["AWS_REGION"] == "eu-central-1"
    assert set(secrets(stack)) == {"PGPASSWORD", "DEKART_MAPBOX_TOKEN", "DEKART_LICENSE_KEY"}
    assert one(stack, "aws_lb_target_group")["health_check"]["path"] == "/health"


def test_dekart_prod_signs_in_with_cognito_before_forwarding(synth: Synth) -> None:
    stack = synth.stack("dekart-prod")
    https = listener(stack, 443)
    actions = sorted(https["default_action"], key=lambda a: a["order"])
    assert [a["type"] for a in actions] == ["authenticate-cognito", "forward"]
    cognito = actions[0]["authenticate_cognito"]
    pool = next(iter(resources(stack, "aws_cognito_user_pool")))
    assert cognito["user_pool_arn"] == f"${{aws_cognito_user_pool.{pool}.arn}}"
    assert "openid" in cognito["scope"]


def test_dekart_prod_certificate_is_validated_by_dns_and_named_in_route53(synth: Synth) -> None:
    stack = synth.stack("dekart-prod")
    certificate = one(stack, "aws_acm_certificate")
    assert certificate["domain_name"] == "dekart.example.com"
    assert certificate["validation_method"] == "DNS"
    validation = next(iter(resources(stack, "aws_acm_certificate_validation")))
    https = listener(stack, 443)
    assert https["certificate_arn"] == (
        f"${{aws_acm_certificate_validation.{validation}.certificate_arn}}"
    )
    records = named(stack, "aws_route53_record")
    assert records["dekart.example.com"]["type"] == "A"
    assert records["dekart.example.com"]["zone_id"] == dekart.PROD.web.hosted_zone_id


@pytest.mark.parametrize("name", ["dekart-dev", "dekart-prod"])
def test_dekart_iam_is_scoped_to_its_workgroup_catalog_and_buckets(synth: Synth, name: str) -> None:
    stack = synth.stack(name)
    granted = statements(stack, f"{name}-dekart-task")
    by_action: dict[str, set[str]] = {}
    for statement in granted:
        for action in statement["Action"]:
            by_action.setdefault(action, set()).update(statement["Resource"])
    workgroup = next(iter(resources(stack, "aws_athena_workgroup")))
    assert by_action["athena:StartQueryExecution"] == {f"${{aws_athena_workgroup.{workgroup}.arn}}"}
    assert not [a for a in by_action if a.startswith("athena:") and "Get*" in a]
    for resource in by_action["glue:GetTable"]:
        assert re.search(
            r":glue:eu-central-1:\$\{data\.aws_caller_identity\.\w+\.account_id\}:"
            r"(catalog|database/geodata|table/geodata/\*)$",
            resource,
        ), resource
    assert "arn:aws:s3:::example-geodata-lake/*" in by_action["s3:GetObject"]
    assert not [r for rs in by_action.values() for r in rs if r == "*"]


@pytest.mark.parametrize("name", ["dekart-dev", "dekart-prod"])
def test_dekart_reaches_aws_through_endpoints(synth: Synth, name: str) -> None:
    stack = synth.stack(name)
    services = {
        e["service_name"].rsplit(".", 1)[-1]
        if e["vpc_endpoint_type"] == "Gateway"
        else e["service_name"].split("eu-central-1.", 1)[1]
        for e in resources(stack, "aws_vpc_endpoint").values()
    }
    assert services == {"s3", "ecr.api", "ecr.dkr", "logs", "secretsmanager", "athena"}


@pytest.mark.parametrize("name", ["dekart-dev", "dekart-prod"])
def test_dekart_workgroup_enforces_encrypted_results_and_a_scan_cap(
    synth: Synth, name: str
) -> None:
    stack = synth.stack(name)
    configuration = one(stack, "aws_athena_workgroup")["configuration"]
    assert configuration["enforce_workgroup_configuration"] is True
    assert configuration["bytes_scanned_cutoff_per_query"] == 100 * 1024**3
    result = configuration["result_configuration"]
    assert result["encryption_configuration"]["encryption_option"] == "SSE_KMS"
    assert result["output_location"].endswith("/athena/")


@pytest.mark.parametrize("name", ["metabase-prod", "dekart-prod"])
def test_internet_facing_load_balancers_sit_behind_a_regional_firewall(
    synth: Synth, name: str
) -> None:
    stack = synth.stack(name)
    acl_id, acl = next(iter(resources(stack, "aws_wafv2_web_acl").items()))
    assert acl["scope"] == "REGIONAL"
    assert "provider" not in acl  # the stack's region, not us-east-1
    association = one(stack, "aws_wafv2_web_acl_association")
    assert association["web_acl_arn"] == f"${{aws_wafv2_web_acl.{acl_id}.arn}}"
    assert association["resource_arn"].startswith("${aws_lb.")
    logging = one(stack, "aws_wafv2_web_acl_logging_configuration")
    assert logging["resource_arn"] == f"${{aws_wafv2_web_acl.{acl_id}.arn}}"


@pytest.mark.parametrize("name", ["metabase-dev", "dekart-dev"])
def test_internal_load_balancers_have_no_firewall(synth: Synth, name: str) -> None:
    assert not resources(synth.stack(name), "aws_wafv2_web_acl")


@pytest.mark.parametrize("name", ["metabase-prod", "dekart-prod"])
def test_the_firewall_counts_large_bodies_instead_of_blocking_saves(
    synth: Synth, name: str
) -> None:
    acl = one(synth.stack(name), "aws_wafv2_web_acl")
    (common,) = [r for r in acl["rule"] if r["name"] == "AWSManagedRulesCommonRuleSet"]
    overrides = common["statement"]["managed_rule_group_statement"]["rule_action_override"]
    assert overrides == [{"name": "SizeRestrictions_BODY", "action_to_use": {"count": {}}}]


def test_no_firewall_log_records_cookies_or_credentials(synth: Synth) -> None:
    logged = 0
    for name, stack in synth.stacks.items():
        for logging in resources(stack, "aws_wafv2_web_acl_logging_configuration").values():
            headers = {f["single_header"]["name"] for f in logging["redacted_fields"]}
            assert headers == {"authorization", "cookie"}, name
            logged += 1
    # dev, test, stage, prod and every internet-facing system
    assert logged == 4 + sum(
        1 for c in SYSTEM_ENVIRONMENTS.values() if c.serves_web and c.web.public
    )


def test_metabase_vpc_spans_three_azs_in_every_environment(synth: Synth) -> None:
    for name in ("metabase-dev", "metabase-prod"):
        azs = {s["availability_zone"] for s in resources(synth.stack(name), "aws_subnet").values()}
        assert azs == {"eu-west-1a", "eu-west-1b", "eu-west-1c"}, name
        assert resources(synth.stack(name), "aws_nat_gateway"), name


@pytest.mark.parametrize("name", ["metabase-prod", "dekart-prod"])
def test_a_replacing_deploy_does_not_page(synth: Synth, name: str) -> None:
    """Both replace their tasks on deploy (versions never side by side): the running-task
    alarm waits out a deploy (stop, pull, start-up grace) before it fires."""
    stack = synth.stack(name)
    service = one(stack, "aws_ecs_service")
    assert service["deployment_maximum_percent"] == 100
    assert service["availability_zone_rebalancing"] == "DISABLED"
    (alarm,) = [
        a
        for a in resources(stack, "aws_cloudwatch_metric_alarm").values()
        if a["alarm_name"].startswith(f"{name}-running-")
    ]
    grace = service["health_check_grace_period_seconds"]
    assert alarm["evaluation_periods"] * alarm["period"] > grace + 30


def test_athena_originals_expire_and_the_rest_of_the_bucket_is_kept(synth: Synth) -> None:
    stack = synth.stack("dekart-prod")
    (lifecycle,) = [
        r
        for lid, r in resources(stack, "aws_s3_bucket_lifecycle_configuration").items()
        if lid.startswith("storage")
    ]
    rules = {r["id"]: r for r in lifecycle["rule"]}
    assert rules["expire-athena"]["filter"][0]["prefix"] == "athena/"
    assert rules["expire-athena"]["expiration"][0]["days"] == 7
    assert "expiration" not in rules["housekeeping"]


@pytest.mark.parametrize(
    ("name", "path"),
    [("dekart-dev", "through VPC endpoints"), ("dekart-prod", "through VPC endpoints and NAT")],
)
def test_the_egress_says_how_aws_is_reached(synth: Synth, name: str, path: str) -> None:
    stack = synth.stack(name)
    service_egress = [
        r["description"]
        for lid, r in resources(stack, "aws_vpc_security_group_egress_rule").items()
        if lid.startswith("dekart_egress-aws-apis")
    ]
    assert service_egress == [f"AWS APIs (ECR, Secrets Manager, CloudWatch) over HTTPS {path}"]
    (owner_egress,) = [
        r["description"]
        for lid, r in resources(stack, "aws_vpc_security_group_egress_rule").items()
        if lid.startswith("db-owner_egress-aws-apis")
    ]
    assert owner_egress == f"Secrets Manager over HTTPS {path}"


def test_dekart_without_sign_in_has_no_nat_and_no_identity_mode(synth: Synth) -> None:
    stack = synth.stack("dekart-dev")
    assert not resources(stack, "aws_nat_gateway")
    env = {e["name"]: e["value"] for e in containers(stack)["dekart"]["environment"]}
    assert "DEKART_REQUIRE_AMAZON_OIDC" not in env


@pytest.mark.parametrize("name", ["dekart-dev", "dekart-prod"])
def test_dekart_users_join_as_editors_and_nobody_administers(synth: Synth, name: str) -> None:
    """Left unset, Dekart 0.23 makes every user an administrator of the shared workspace
    (members, roles, connections): the task names the role, and no administrator."""
    env = {e["name"]: e["value"] for e in containers(synth.stack(name))["dekart"]["environment"]}
    assert env["DEKART_DEFAULT_WORKSPACE_ROLE"] == "editor"
    assert "DEKART_DEFAULT_WORKSPACE_ADMIN" not in env


def test_dekart_names_the_configured_workspace_administrator() -> None:
    workspace = WorkspaceSettings("maps.admin@example.com", WorkspaceRole.VIEWER)
    assert workspace_environment(workspace) == {
        "DEKART_DEFAULT_WORKSPACE_ROLE": "viewer",
        "DEKART_DEFAULT_WORKSPACE_ADMIN": "maps.admin@example.com",
    }


def test_dekart_with_sign_in_knows_each_user_and_can_fetch_the_load_balancer_keys(
    synth: Synth,
) -> None:
    """Dekart verifies the load balancer's signed identity (x-amzn-oidc-data) with the keys
    at public-keys.auth.elb.<region>.amazonaws.com: on the internet, no VPC endpoint."""
    stack = synth.stack("dekart-prod")
    env = {e["name"]: e["value"] for e in containers(stack)["dekart"]["environment"]}
    assert (env["DEKART_REQUIRE_AMAZON_OIDC"], env["AWS_REGION"]) == ("1", "eu-central-1")
    # The one way out: HTTPS (443) to any address, from the task's own group ...
    groups = {f"${{aws_security_group.{lid}.id}}": g["name"] for lid, g in resources(
        stack, "aws_security_group").items()}  # fmt: skip
    egress = [
        (r["cidr_ipv4"], r["ip_protocol"], r["from_port"], r["to_port"])
        for r in resources(stack, "aws_vpc_security_group_egress_rule").values()
        if groups[r["security_group_id"]] == "dekart-prod-dekart" and "cidr_ipv4" in r
    ]
    assert egress == [("0.0.0.0/0", "tcp", 443, 443)]
    # ... routed through a NAT gateway in each AZ (AWS APIs stay on the endpoints).
    nats = resources(stack, "aws_nat_gateway")
    assert len(nats) == 3
    private_tables = {
        lid for lid, t in resources(stack, "aws_route_table").items() if "private" in lid
    }
    nat_routes = [
        r
        for r in resources(stack, "aws_route").values()
        if r.get("nat_gateway_id") and r["route_table_id"].split(".")[1] in private_tables
    ]
    assert len(nat_routes) == 3
    assert {r["destination_cidr_block"] for r in nat_routes} == {"0.0.0.0/0"}


@pytest.mark.parametrize("name", ["dekart-dev", "dekart-prod"])
def test_dekart_may_delete_what_it_unpublishes_in_its_bucket_only(synth: Synth, name: str) -> None:
    stack = synth.stack(name)
    (results,) = [
        s for s in statements(stack, f"{name}-dekart-task") if s["Sid"] == "ResultsAndStorage"
    ]
    assert "s3:DeleteObject" in results["Action"]
    (bucket,) = [
        lid for lid, b in resources(stack, "aws_s3_bucket").items() if lid.startswith("storage")
    ]
    assert results["Resource"] == [f"${{aws_s3_bucket.{bucket}.arn}}/*"]


def test_lake_formation_and_data_keys_are_granted_only_when_configured(synth: Synth) -> None:
    from dataclasses import replace

    from cdktf import App, Testing

    from environments.state import StateConfig
    from stacks.dekart import DekartStack

    key = "arn:aws:kms:eu-central-1:123456789012:key/data"
    config = replace(
        dekart.DEV, athena=replace(dekart.ATHENA, lake_formation=True, data_kms_key_arns=(key,))
    )
    stack = DekartStack(App(), config=config, state=StateConfig())
    doc = json.loads(Testing.synth(stack))
    granted = {s["Sid"]: s for s in statements(doc, "dekart-dev-dekart-task")}
    assert granted["LakeFormationGovernedTables"]["Action"] == ["lakeformation:GetDataAccess"]
    assert granted["DecryptTheDataThroughS3"]["Resource"] == [key]
    assert granted["DecryptTheDataThroughS3"]["Condition"] == {
        "StringEquals": {"kms:ViaService": "s3.eu-central-1.amazonaws.com"}
    }
    shipped = {
        s.get("Sid") for s in statements(synth.stack("dekart-dev"), "dekart-dev-dekart-task")
    }
    assert "LakeFormationGovernedTables" not in shipped


# --- data sources and replaceable target groups (variant stacks) ---------------------------


def test_data_sources_get_one_egress_rule_each_from_the_application(
    synth: Synth, system_variants: dict[str, dict[str, Any]]
) -> None:
    from tests.support import VARIANT_DATA_SOURCES

    stack = system_variants["metabase-dev"]
    groups = {f"${{aws_security_group.{lid}.id}}": g["name"] for lid, g in resources(
        stack, "aws_security_group").items()}  # fmt: skip
    rules = {
        lid: r
        for lid, r in resources(stack, "aws_vpc_security_group_egress_rule").items()
        if "data-source" in lid
    }
    found = {
        (
            r["description"].removeprefix("data source "),
            r["from_port"],
            r["to_port"],
            r["ip_protocol"],
            r.get("cidr_ipv4"),
            r.get("referenced_security_group_id"),
            groups[r["security_group_id"]],
        )
        for r in rules.values()
    }
    assert found == {
        (name, port, port, "tcp", cidr, group, "metabase-dev-metabase")
        for name, port, cidr, group in VARIANT_DATA_SOURCES
    }
    shipped = resources(synth.stack("metabase-dev"), "aws_vpc_security_group_egress_rule")
    assert not [lid for lid in shipped if "data-source" in lid]


def test_a_replaced_target_group_never_collides_with_the_old_one(
    synth: Synth, system_variants: dict[str, dict[str, Any]]
) -> None:
    """The variant moves Metabase's container port and its VPC's range: both replace the
    target group, whose successor is created before the old one is destroyed."""
    from tests.support import VARIANT_METABASE_PORT

    old = one(synth.stack("metabase-dev"), "aws_lb_target_group")
    new = one(system_variants["metabase-dev"], "aws_lb_target_group")
    assert (old["port"], new["port"]) == (3000, VARIANT_METABASE_PORT)
    assert old["lifecycle"] == new["lifecycle"] == {"create_before_destroy": True}
    assert "name" not in old
    assert old["name_prefix"] == new["name_prefix"] == "mede-"
    assert old["tags"]["Name"] == "metabase-dev-web-3000"
    # AWS refuses a second group of one name in a region: with create_before_destroy, the
    # successor is created while the old group exists, so neither may have a fixed name
    # (the provider gives each name_prefix a unique suffix). The VPC change alone kept the
    # old fixed name (metabase-dev-web-<port>) and failed.
    assert "name" not in new


@pytest.mark.parametrize("name", ["metabase-prod", "dekart-prod", "panintelligence-prod"])
def test_every_web_target_group_has_a_generated_name(synth: Synth, name: str) -> None:
    group = one(synth.stack(name), "aws_lb_target_group")
    assert "name" not in group
    assert 1 <= len(group["name_prefix"]) <= 6
