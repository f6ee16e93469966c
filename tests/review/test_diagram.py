"""The architecture diagram: AZ clusters, NAT routing, tiers and security-group edges.

Expectations are derived from the synthesized JSON independently of the diagram code,
then looked up in the SVG (node ids are resource addresses, edge ids ``tail->head``) or,
for cluster membership, in the DOT text.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support import Synth, resources
from tools.review.diagram import diagram, diagram_source
from tools.review.model import Resource, Stack, parse_stack

SVG = "{http://www.w3.org/2000/svg}"
XLINK_TITLE = "{http://www.w3.org/1999/xlink}title"
ALL_STACKS = ("bootstrap", "dev", "test", "stage", "prod")
NOT_DRAWN = (
    "aws_iam_",
    "aws_cloudwatch_",
    "aws_vpc_security_group_ingress_rule",
    "aws_vpc_security_group_egress_rule",
    "aws_security_group_rule",
    "aws_secretsmanager_",
)
"""Never nodes (KMS keys only where there is no VPC: the bootstrap stack's state key)."""


@dataclass
class Item:
    classes: set[str]
    text: str
    tooltip: str | None


@dataclass
class Drawing:
    """What the SVG shows: nodes, edges and clusters by their ``id``."""

    nodes: dict[str, Item] = field(default_factory=dict)
    edges: dict[str, Item] = field(default_factory=dict)
    clusters: dict[str, Item] = field(default_factory=dict)

    def edge(self, tail: str, head: str) -> Item:
        found = self.edges.get(f"{tail}->{head}")
        assert found is not None, f"no edge {tail} -> {head}; edges: {sorted(self.edges)}"
        return found

    def edges_into(self, head: str) -> set[str]:
        return {key.split("->")[0] for key in self.edges if key.endswith(f"->{head}")}


def drawing(svg: str) -> Drawing:
    root = ET.fromstring(svg)  # noqa: S314 - our own Graphviz output, not untrusted input
    assert root.tag == f"{SVG}svg"
    out = Drawing()
    for group in root.iter(f"{SVG}g"):
        classes = set((group.get("class") or "").split())
        text = " ".join(t.text or "" for t in group.iter(f"{SVG}text"))
        links = [a.get(XLINK_TITLE) for a in group.iter(f"{SVG}a")]
        item = Item(classes, text, links[0] if links else None)
        if "node" in classes:
            out.nodes[group.get("id", "")] = item
        elif "edge" in classes and "layout" not in classes:
            out.edges[group.get("id", "")] = item
        elif "cluster" in classes:
            out.clusters[group.get("id", "")] = item
    return out


def cluster_block(dot: str, az: str) -> str:
    """The DOT text of the AZ cluster ``az`` (its opening line to its closing brace)."""
    lines = dot.splitlines()
    (start,) = [
        i
        for i, line in enumerate(lines)
        if "subgraph" in line and line.rstrip().endswith(f'_{az}" {{')
    ]
    indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
    end = lines.index(f"{indent}}}", start)
    return "\n".join(lines[start : end + 1])


def address(type_: str, logical_id: str) -> str:
    return f"{type_}.{logical_id}"


def nat_routes(stack: dict[str, Any]) -> dict[str, set[str]]:
    """NAT gateway address -> the private subnets whose default route uses it (from JSON)."""
    table_of = {
        v["subnet_id"]: v["route_table_id"]
        for v in resources(stack, "aws_route_table_association").values()
    }
    out: dict[str, set[str]] = {
        address("aws_nat_gateway", k): set() for k in resources(stack, "aws_nat_gateway")
    }
    for route in resources(stack, "aws_route").values():
        if route["destination_cidr_block"] != "0.0.0.0/0" or "nat_gateway_id" not in route:
            continue
        nat = re.search(r"aws_nat_gateway\.([^.]+)\.", route["nat_gateway_id"])
        assert nat
        for subnet_ref, table in table_of.items():
            if table == route["route_table_id"]:
                subnet = re.search(r"aws_subnet\.([^.]+)\.", subnet_ref)
                assert subnet
                out[address("aws_nat_gateway", nat.group(1))].add(
                    address("aws_subnet", subnet.group(1))
                )
    return out


def the(stack: dict[str, Any], type_: str, **match: str) -> str:
    """The address of the one resource of ``type_`` whose attributes end with ``match``."""
    found = [
        address(type_, k)
        for k, v in resources(stack, type_).items()
        if all(str(v.get(key, "")).endswith(value) for key, value in match.items())
    ]
    assert len(found) == 1, f"{type_} {match}: {found}"
    return found[0]


@pytest.fixture(scope="module")
def stacks(synth: Synth) -> dict[str, Stack]:
    return {name: parse_stack(name, synth.stack(name)) for name in ALL_STACKS}


@pytest.fixture(scope="module")
def prod(stacks: dict[str, Stack]) -> Drawing:
    return drawing(diagram(stacks["prod"]))


@pytest.fixture(scope="module")
def prod_dot(stacks: dict[str, Stack]) -> str:
    return diagram_source(stacks["prod"])


def test_prod_has_one_cluster_per_az_with_its_subnets_and_nat(
    synth: Synth, prod: Drawing, prod_dot: str
) -> None:
    stack = synth.stack("prod")
    azs = sorted({s["availability_zone"] for s in resources(stack, "aws_subnet").values()})
    assert len(azs) == 3
    zone_clusters = {k for k, v in prod.clusters.items() if "cluster-az" in v.classes}
    assert zone_clusters == {f"az-{az}" for az in azs}
    subnets = resources(stack, "aws_subnet")
    for az in azs:
        block = cluster_block(prod_dot, az)
        inside = {k for k, v in subnets.items() if v["availability_zone"] == az}
        assert len(inside) == 2  # one public, one private
        for logical in subnets:
            assert (address("aws_subnet", logical) in block) == (logical in inside), (az, logical)
        for logical, subnet in subnets.items():
            if logical in inside:
                assert subnet["cidr_block"] in prod.nodes[address("aws_subnet", logical)].text
        nats = [
            k
            for k, v in resources(stack, "aws_nat_gateway").items()
            if v["subnet_id"].split(".")[1] in inside
        ]
        assert len(nats) == 1
        assert address("aws_nat_gateway", nats[0]) in block


def test_prod_links_each_private_subnet_to_the_nat_of_its_az(synth: Synth, prod: Drawing) -> None:
    stack = synth.stack("prod")
    routes = nat_routes(stack)
    assert len(routes) == 3
    nat_nodes = {k for k in prod.nodes if k.startswith("aws_nat_gateway.")}
    assert nat_nodes == set(routes)
    az_of = {
        address("aws_subnet", k): v["availability_zone"]
        for k, v in resources(stack, "aws_subnet").items()
    }
    for nat, private in routes.items():
        assert len(private) == 1
        assert prod.edges_into(nat) == private
        for subnet in private:
            edge = prod.edge(subnet, nat)
            assert "route" in edge.classes
            assert "0.0.0.0/0" in edge.text
            nat_subnet = resources(stack, "aws_nat_gateway")[nat.split(".", 1)[1]]["subnet_id"]
            assert az_of[subnet] == az_of[address("aws_subnet", nat_subnet.split(".")[1])]


def test_prod_routes_public_subnets_to_the_internet_gateway(synth: Synth, prod: Drawing) -> None:
    stack = synth.stack("prod")
    igw = the(stack, "aws_internet_gateway")
    public = {
        address("aws_subnet", k)
        for k, v in resources(stack, "aws_subnet").items()
        if v["tags"]["tier"] == "public"
    }
    assert len(public) == 3
    assert {t for t in prod.edges_into(igw) if "route" in prod.edge(t, igw).classes} == public


def test_dev_routes_every_private_subnet_through_its_one_nat(
    stacks: dict[str, Stack], synth: Synth
) -> None:
    stack = synth.stack("dev")
    routes = nat_routes(stack)
    (nat,) = routes
    private = {
        address("aws_subnet", k)
        for k, v in resources(stack, "aws_subnet").items()
        if v["tags"]["tier"] == "private"
    }
    assert len(private) == 2
    assert routes[nat] == private
    dev = drawing(diagram(stacks["dev"]))
    assert {k for k in dev.nodes if k.startswith("aws_nat_gateway.")} == {nat}
    assert dev.edges_into(nat) == private
    for subnet in private:
        assert "route" in dev.edge(subnet, nat).classes


def test_prod_draws_the_alb_services_with_cloud_map_names_and_the_data_tier(
    synth: Synth, prod: Drawing
) -> None:
    stack = synth.stack("prod")
    (namespace,) = [
        v["name"] for v in resources(stack, "aws_service_discovery_private_dns_namespace").values()
    ]
    alb = prod.nodes[the(stack, "aws_lb")]
    assert "ALB" in alb.text
    assert "internal" in alb.text
    assert "app" in alb.classes
    for service in ("producer", "consumer"):
        node = prod.nodes[the(stack, "aws_ecs_service", name=f"-{service}")]
        assert f"{service}.{namespace}" in node.text
        assert f"-{service}" in node.text
    (db,) = resources(stack, "aws_db_instance").values()
    database = prod.nodes[the(stack, "aws_db_instance")]
    assert db["engine"] in database.text
    assert db["instance_class"] in database.text
    assert ("Multi-AZ" if db["multi_az"] else "Single-AZ") in database.text
    cache = prod.nodes[the(stack, "aws_elasticache_replication_group")]
    assert "ElastiCache" in cache.text
    assert {"data"} <= database.classes & cache.classes


def test_prod_tiers_are_clusters_inside_the_vpc(synth: Synth, prod_dot: str) -> None:
    stack = synth.stack("prod")
    vpc = the(stack, "aws_vpc")
    lines = prod_dot.splitlines()
    (vpc_line,) = [
        i for i, line in enumerate(lines) if line.startswith(f'\tsubgraph "cluster_vpc_{vpc}"')
    ]
    vpc_end = lines.index("\t}", vpc_line)
    inside = "\n".join(lines[vpc_line:vpc_end])
    for tier, members in (
        (
            "app",
            [
                the(stack, "aws_lb"),
                *(address("aws_ecs_service", k) for k in resources(stack, "aws_ecs_service")),
            ],
        ),
        ("data", [the(stack, "aws_db_instance"), the(stack, "aws_elasticache_replication_group")]),
    ):
        (start,) = [
            i for i, line in enumerate(lines) if line.startswith(f'\t\tsubgraph "cluster_{tier}_')
        ]
        assert vpc_line < start < vpc_end
        block = "\n".join(lines[start : lines.index("\t\t}", start)])
        for member in members:
            assert f'\t\t\t"{member}" [' in block, (tier, member)
    for edge_only in (the(stack, "aws_cloudfront_distribution"), the(stack, "aws_wafv2_web_acl")):
        assert edge_only not in inside


def test_prod_security_group_edges_follow_the_ingress_rules(synth: Synth, prod: Drawing) -> None:
    stack = synth.stack("prod")
    alb = the(stack, "aws_lb")
    producer = the(stack, "aws_ecs_service", name="-producer")
    consumer = the(stack, "aws_ecs_service", name="-consumer")
    database = the(stack, "aws_db_instance")
    cache = the(stack, "aws_elasticache_replication_group")
    for tail, head, port in (
        (alb, producer, "5080/tcp"),
        (producer, database, "3306/tcp"),
        (consumer, database, "3306/tcp"),
        (producer, cache, "6379/tcp"),
        (producer, consumer, "8081/tcp"),
    ):
        edge = prod.edge(tail, head)
        assert "sg" in edge.classes, (tail, head)
        assert port in edge.text, (tail, head, edge.text)
    # Only what a rule allows: nothing reaches the database from the load balancer.
    assert f"{alb}->{database}" not in prod.edges
    assert database in prod.nodes
    # One edge per (source group, target group) pair: each group here has one owner.
    pairs = {
        (r["referenced_security_group_id"], r["security_group_id"])
        for r in resources(stack, "aws_vpc_security_group_ingress_rule").values()
    }
    assert len([v for v in prod.edges.values() if "sg" in v.classes]) == len(pairs)


def test_cloudfront_reaches_the_alb_through_its_vpc_origin(synth: Synth, prod: Drawing) -> None:
    stack = synth.stack("prod")
    distribution = the(stack, "aws_cloudfront_distribution")
    vpc_origin = the(stack, "aws_cloudfront_vpc_origin")
    alb = the(stack, "aws_lb")
    assert "/api/*" in prod.edge(distribution, vpc_origin).text
    into_alb = prod.edge(vpc_origin, alb)
    assert {"origin", "sg"} <= into_alb.classes  # CloudFront's VPC-origin group, port 80
    assert "80/tcp" in into_alb.text
    bucket = the(
        stack, "aws_s3_bucket", bucket="-frontend-${data.aws_caller_identity.caller.account_id}"
    )
    assert "origin" in prod.edge(distribution, bucket).classes
    assert "attach" in prod.edge(the(stack, "aws_wafv2_web_acl"), distribution).classes
    for node in (distribution, bucket, the(stack, "aws_wafv2_web_acl")):
        assert "edge-service" in prod.nodes[node].classes


def test_prod_nodes_carry_addresses_and_construct_paths_and_stay_few(
    synth: Synth, prod: Drawing
) -> None:
    stack = synth.stack("prod")
    alb = the(stack, "aws_lb")
    path = resources(stack, "aws_lb")[alb.split(".", 1)[1]]["//"]["metadata"]["path"]
    assert path == "prod/load-balancer/alb"
    assert prod.nodes[alb].tooltip == "load-balancer/alb"
    for node in prod.nodes:
        assert not node.startswith((*NOT_DRAWN, "aws_kms_", "aws_ecs_task_definition")), node
    assert 15 <= len(prod.nodes) <= 40
    assert len(prod.edges) <= 45


@pytest.mark.parametrize("name", ALL_STACKS)
def test_every_stack_renders_a_valid_svg(stacks: dict[str, Stack], name: str) -> None:
    stack = stacks[name]
    picture = drawing(diagram(stack))
    assert picture.nodes
    known = set(stack.resources)
    for node in picture.nodes:
        assert node in known or node.split(":", 1)[0] in ("internet", "source", "note"), node
        assert not node.startswith(NOT_DRAWN), node


def test_bootstrap_says_what_it_holds(stacks: dict[str, Stack], synth: Synth) -> None:
    stack = synth.stack("bootstrap")
    assert not resources(stack, "aws_vpc")
    picture = drawing(diagram(stacks["bootstrap"]))
    assert not [c for c in picture.clusters.values() if "cluster-vpc" in c.classes]
    for logical, bucket in resources(stack, "aws_s3_bucket").items():
        assert bucket["bucket"] in picture.nodes[address("aws_s3_bucket", logical)].text
    note = picture.nodes["note:contents"].text
    assert "no VPC" in note
    assert "aws_s3_bucket_versioning" in note


def tiny(*items: tuple[str, str, dict[str, Any]]) -> Stack:
    stack = Stack(name="tiny", region="xx-test-1")
    for type_, name, attrs in items:
        resource = Resource(type=type_, name=name, attrs=attrs, path=f"tiny/{name}")
        stack.resources[resource.address] = resource
    return stack


def test_a_hand_built_stack_renders() -> None:
    stack = tiny(
        ("aws_vpc", "main", {"cidr_block": "10.9.0.0/16", "tags": {"Name": "tiny-vpc"}}),
        (
            "aws_subnet",
            "a",
            {
                "vpc_id": "${aws_vpc.main.id}",
                "availability_zone": "xx-test-1a",
                "cidr_block": "10.9.1.0/24",
            },
        ),
        (
            "aws_subnet",
            "b",
            {
                "vpc_id": "${aws_vpc.main.id}",
                "availability_zone": "xx-test-1b",
                "cidr_block": "10.9.2.0/24",
            },
        ),
        ("aws_security_group", "web", {"name": "tiny-web", "vpc_id": "${aws_vpc.main.id}"}),
        (
            "aws_vpc_security_group_ingress_rule",
            "https",
            {
                "security_group_id": "${aws_security_group.web.id}",
                "cidr_ipv4": "10.0.0.0/8",
                "ip_protocol": "tcp",
                "from_port": 443,
                "to_port": 443,
            },
        ),
    )
    picture = drawing(diagram(stack))
    assert {k for k, v in picture.clusters.items() if "cluster-az" in v.classes} == {
        "az-xx-test-1a",
        "az-xx-test-1b",
    }
    assert "10.9.1.0/24" in picture.nodes["aws_subnet.a"].text
    assert "10.9.2.0/24" in picture.nodes["aws_subnet.b"].text
    assert picture.nodes["aws_subnet.a"].tooltip == "a"
    # No resource owns the group: the group itself stands in, the CIDR is a node.
    assert "tiny-web" in picture.nodes["aws_security_group.web"].text
    edge = picture.edge("source:cidr:10.0.0.0/8", "aws_security_group.web")
    assert "sg" in edge.classes
    assert "443/tcp" in edge.text
    assert "aws_vpc_security_group_ingress_rule.https" not in picture.nodes
    dot = diagram_source(stack)
    assert "aws_subnet.a" in cluster_block(dot, "xx-test-1a")
    assert "aws_subnet.b" not in cluster_block(dot, "xx-test-1a")


def test_an_empty_stack_renders() -> None:
    picture = drawing(diagram(Stack(name="empty")))
    assert "no resources" in picture.nodes["note:contents"].text
