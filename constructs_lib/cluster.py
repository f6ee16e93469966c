"""The ECS cluster of an environment and its Cloud Map namespace."""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.ecs_cluster import EcsCluster, EcsClusterSetting
from cdktf_cdktf_provider_aws.ecs_cluster_capacity_providers import (
    EcsClusterCapacityProviders,
    EcsClusterCapacityProvidersDefaultCapacityProviderStrategy,
)
from cdktf_cdktf_provider_aws.service_discovery_private_dns_namespace import (
    ServiceDiscoveryPrivateDnsNamespace,
)
from constructs import Construct

from .encryption import EncryptionKey
from .logs import log_group
from .naming import Naming
from .network import Network
from .settings import DEFAULT_LOG_RETENTION_DAYS


@dataclass(frozen=True)
class ClusterProps:
    naming: Naming
    network: Network
    """Where the cluster's services run (its private subnets) and the namespace lives."""
    key: EncryptionKey
    """Encrypts the Container Insights log group."""
    namespace_name: str
    """Private DNS namespace for service discovery, e.g. ``dev.pcp.internal``."""
    log_retention_days: int = DEFAULT_LOG_RETENTION_DAYS
    """Retention of Container Insights performance logs. Unset: 30 days."""
    container_insights: str = "enhanced"
    """``enhanced``, ``enabled`` or ``disabled``. Unset: enhanced (per-task metrics)."""


class Cluster(Construct):
    """Fargate-only ECS cluster with Container Insights and a private Cloud Map namespace.

    The Container Insights log group is created here, encrypted and with a retention,
    instead of being left for ECS to create without either. A service placed in the
    cluster (``FargateService(cluster=...)``) takes the network, the namespace, the naming
    and the account from it.
    """

    def __init__(self, scope: Construct, id_: str, *, props: ClusterProps) -> None:
        super().__init__(scope, id_)
        self.naming = props.naming
        self.network = props.network
        self.key = props.key
        self.name = props.naming.name("cluster")
        # Container Insights writes here; made first, encrypted and with a retention.
        insights = f"/aws/ecs/containerinsights/{self.name}/performance"
        days, key = props.log_retention_days, props.key.arn
        self.insights_log_group = log_group(
            self, "insights-log-group", name=insights, retention_days=days, kms_key_arn=key
        )
        self.cluster = EcsCluster(
            self,
            "cluster",
            name=self.name,
            setting=[EcsClusterSetting(name="containerInsights", value=props.container_insights)],
            depends_on=[self.insights_log_group],
        )
        EcsClusterCapacityProviders(
            self,
            "capacity-providers",
            cluster_name=self.cluster.name,
            capacity_providers=["FARGATE"],
            default_capacity_provider_strategy=[
                EcsClusterCapacityProvidersDefaultCapacityProviderStrategy(
                    capacity_provider="FARGATE", weight=1, base=0
                )
            ],
        )
        self.namespace = ServiceDiscoveryPrivateDnsNamespace(
            self,
            "namespace",
            name=props.namespace_name,
            vpc=props.network.vpc.id,
            description=f"{props.naming.prefix}: service discovery",
        )
        self.namespace_name = props.namespace_name
        self.arn: str = self.cluster.arn
