"""The cluster-aware client (``REDIS_CLUSTER=on``) against a real three-primary cluster:
what a ``QueueMode.SHARDED`` queue deploys.

The cluster (:class:`RedisClusterServers`) speaks only TLS, the ``default`` user is off and
the application user has the access string a sharded queue gives it (the contract's plus
:data:`~apps.common.contract.CLUSTER_CLIENT_ACL`; ``tests/constructs/test_queue.py`` shows
the construct grants exactly that and sets ``REDIS_CLUSTER=on``). The producer, the
consumer and the replay tool run as real processes with the ``dev`` task definitions'
environment and ``REDIS_CLUSTER=on``; the URL they get is the first node's, while
``{counts}`` lives on another one.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from appsupport import (
    CONSUMER_TUNING,
    DB_NAME,
    DEAD_STREAM,
    STREAM,
    Proc,
    db_values,
    fix_cause,
    free_port,
    localize,
    reject_values,
    replay,
    start_consumer,
    task_environment,
    wait_port,
    wait_until,
)

from apps.common import contract, credentials, redisq
from apps.common.config import Env, load_redis
from apps.common.contract import EnvVar
from apps.devtools.servers import ClusterWorld, RedisClusterServers, start_cluster_world

SLOT = redis.cluster.key_slot(STREAM.encode())

TUNING = {**CONSUMER_TUNING, "BATCH_SIZE": "20"}


@pytest.fixture(scope="module")
def cworld(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterWorld]:
    w = start_cluster_world(tmp_path_factory.mktemp("cluster3"))
    yield w
    w.stop()


@pytest.fixture
def nodes(cworld: ClusterWorld, monkeypatch: pytest.MonkeyPatch) -> RedisClusterServers:
    """The cluster, emptied, with a fresh database and un-rotated credentials."""
    assert cworld.cluster is not None
    cworld.cluster.flushall()
    cworld.reset_credentials()
    cworld.provision_database(DB_NAME, drop=True)
    for name, value in cworld.secrets.runtime_env().items():
        monkeypatch.setenv(name, value)
    credentials.forget()
    return cworld.cluster


def service_env(cworld: ClusterWorld, synth: Any, container: str, cluster: str) -> dict[str, str]:
    env = localize(task_environment(synth.stack("dev"), container), cworld, DB_NAME)
    return {**env, EnvVar.REDIS_CLUSTER: cluster}


def serve_producer(spawn: Callable[..., Proc], env: dict[str, str]) -> str:
    port = free_port()
    proc = spawn("apps.producer", {**env, "PORT": str(port), "BIND_HOST": "127.0.0.1"})
    wait_port(port, 30, proc.popen)
    return f"http://127.0.0.1:{port}"


def post(base: str, value: int, key: str) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(  # noqa: S310 - a local URL
        f"{base}/count",
        data=json.dumps({"count": value}).encode(),
        headers={"Content-Type": "application/json", contract.IDEMPOTENCY_HEADER: key},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


class Poster(threading.Thread):
    """A client posting 1, 2, 3, ... each under its own key, retrying a 503 whose
    outcome is ``unknown`` or ``not_accepted`` with the same key (as a client should)."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.accepted: list[int] = []
        self.retried_503 = 0
        self.other: list[tuple[int, dict[str, Any]]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        value = 0
        while not self.stop.is_set():
            value += 1
            key = uuid.uuid4().hex
            for _ in range(200):
                status, body = post(self.base, value, key)
                if status == 202:
                    self.accepted.append(value)
                    break
                if status == 503 and body.get("outcome") in {"unknown", "not_accepted"}:
                    self.retried_503 += 1
                    time.sleep(0.05)
                    continue
                self.other.append((status, body))
                return
            time.sleep(0.005)


def admin_stream_len(nodes: RedisClusterServers) -> int:
    return admin_len(nodes, STREAM)


def test_setting_is_read_and_validated() -> None:
    base = {"REDIS_URL": "rediss://cache:6379"}
    assert load_redis(Env(base)).cluster is False
    assert load_redis(Env({**base, "REDIS_CLUSTER": "on"})).cluster is True
    assert load_redis(Env({**base, "REDIS_CLUSTER": "OFF"})).cluster is False
    with pytest.raises(Exception, match="REDIS_CLUSTER"):
        load_redis(Env({**base, "REDIS_CLUSTER": "yes"}))


def test_services_store_every_value_once_across_a_slot_migration(
    cworld: ClusterWorld, nodes: RedisClusterServers, synth: Any, spawn: Callable[..., Proc]
) -> None:
    if nodes.owner(SLOT) == 0:  # keep {counts} away from the node in the URL
        nodes.migrate_slot(SLOT, 1)
    producer = serve_producer(spawn, service_env(cworld, synth, "producer", "on"))
    consumer_env = {**service_env(cworld, synth, "consumer", "on"), **TUNING}
    consumer, consumer_url = start_consumer(spawn, consumer_env)
    poster = Poster(producer)
    poster.start()
    try:
        assert wait_until(lambda: len(poster.accepted) >= 60, 60), poster.other
        source = nodes.owner(SLOT)
        target = 2 if source == 1 else 1
        before = len(poster.accepted)
        moved = nodes.migrate_slot(SLOT, target, batch=5, pause_s=0.02)
        assert moved > 10  # the stream and the idempotency records went across
        assert nodes.owner(SLOT) == target
        # The services go on against the new owner.
        assert wait_until(lambda: len(poster.accepted) >= before + 60, 60), poster.other
    finally:
        poster.stop.set()
        poster.join(60)
    assert not poster.is_alive()
    assert poster.other == []
    accepted = sorted(poster.accepted)
    assert accepted == list(range(1, len(accepted) + 1))
    assert wait_until(lambda: len(db_values(cworld.maria)) >= len(accepted), 60)
    time.sleep(1)  # anything stored twice would show now
    stored = sorted(db_values(cworld.maria))
    assert stored == accepted, (len(stored), len(accepted))
    assert consumer.popen.poll() is None, consumer.logs()
    status, health = _get(f"{consumer_url}{contract.HEALTH_PATH}")
    assert status == 200, health
    assert wait_until(lambda: admin_stream_len(nodes) == 0, 30)


def test_runbook_replay_with_the_cluster_client_stores_a_fixed_dead_letter_once(
    cworld: ClusterWorld, nodes: RedisClusterServers, synth: Any, spawn: Callable[..., Proc]
) -> None:
    """The runbook's dead-letter path on a sharded queue: the consumer dead-letters a value
    the database refuses, the cause is fixed, ``python -m apps.consumer.replay`` (as the
    app user, with the task's variables) puts it back, and it is stored once."""
    if nodes.owner(SLOT) == 0:
        nodes.migrate_slot(SLOT, 1)
    reject_values(cworld.maria, "NEW.value = 13")
    consumer_env = {**service_env(cworld, synth, "consumer", "on"), **TUNING}
    start_consumer(spawn, consumer_env)
    producer = serve_producer(spawn, service_env(cworld, synth, "producer", "on"))
    for value in (12, 13, 14):
        assert post(producer, value, f"order-{value}")[0] == 202
    assert wait_until(lambda: admin_len(nodes, DEAD_STREAM) == 1, 30)
    assert wait_until(lambda: sorted(db_values(cworld.maria)) == [12, 14], 30)
    fix_cause(cworld.maria)

    listed = replay(consumer_env, "--list")
    assert listed.code == 0, listed.err
    ((letter,),) = [listed.out]
    assert (letter["key"], letter["value"], letter["replayable"]) == ("order-13", 13, True)
    done = replay(consumer_env, "--all")
    assert done.code == 0, done.err
    assert [r["action"] for r in done.out] == ["replayed"]
    assert wait_until(lambda: sorted(db_values(cworld.maria)) == [12, 13, 14], 30)
    assert admin_len(nodes, DEAD_STREAM) == 0
    time.sleep(1)  # a second store would show now
    assert sorted(db_values(cworld.maria)) == [12, 13, 14]


def admin_len(nodes: RedisClusterServers, stream: str) -> int:
    node = nodes.nodes[nodes.owner(SLOT)]
    admin = node.client(decode_responses=True)
    try:
        return int(admin.xlen(stream))
    finally:
        admin.close()


def test_producer_is_not_ready_while_the_streams_shard_is_down(
    cworld: ClusterWorld, nodes: RedisClusterServers, synth: Any, spawn: Callable[..., Proc]
) -> None:
    """Readiness asks the node that holds ``{counts}``: a bare PING would go to the
    cluster's default node (the first primary), another shard than the stream's here."""
    if nodes.owner(SLOT) == 0:  # node 0 serves slot 0: the client's default node
        nodes.migrate_slot(SLOT, 1)
    producer = serve_producer(spawn, service_env(cworld, synth, "producer", "on"))
    ready = f"{producer}{contract.READINESS_PATH}"
    assert _get(ready, timeout_s=30)[0] == 200
    owner = nodes.nodes[nodes.owner(SLOT)].proc
    assert owner is not None
    owner.send_signal(signal.SIGSTOP)  # the stream's shard stops answering
    try:
        status, body = _get(ready, timeout_s=30)
        assert status == 503, body
        assert body["ready"] is False
        assert body["error"].startswith("queue unreachable")
    finally:
        owner.send_signal(signal.SIGCONT)
    assert wait_until(lambda: _get(ready, timeout_s=30)[0] == 200, 30)


def _get(url: str, timeout_s: float = 5) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - a local URL
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def test_client_keeps_tls_login_and_transactions_on_every_node(
    cworld: ClusterWorld, nodes: RedisClusterServers, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        "REDIS_URL": cworld.redis.url,
        "REDIS_TLS_CA": str(cworld.tls.ca),
        "REDIS_CREDENTIALS_SECRET": cworld.queue_secret,
        "REDIS_CLUSTER": "on",
    }
    client = redisq.make_redis(load_redis(Env(env)))
    try:
        assert client.ping()
        done = redisq.enqueue(client, STREAM, 5)
        assert redisq.enqueue(client, STREAM, 5, key=done.key).replayed
        client.xgroup_create(STREAM, "g", id="0")
        reply: Any = client.xreadgroup("g", "c", {STREAM: ">"}, count=10)
        ((_, entries),) = reply
        pipe = client.pipeline(transaction=True)
        pipe.xack(STREAM, "g", entries[0][0])
        pipe.xdel(STREAM, entries[0][0])
        assert pipe.execute() == [1, 1]
        cluster = redisq.ClusterClient.cluster(client)  # type: ignore[arg-type]
        assert len(cluster.get_nodes()) == 3
        for node in cluster.get_nodes():  # every node's connections as make_redis sets them
            pool = cluster.get_redis_connection(node).connection_pool
            assert pool.connection_class is redisq._RetryLoginSSLConnection
            kwargs = pool.connection_kwargs
            assert kwargs["ssl_cert_reqs"] == "required"
            assert kwargs["ssl_check_hostname"]
            assert kwargs["ssl_ca_certs"] == str(cworld.tls.ca)
            assert kwargs["health_check_interval"] == redisq.HEALTH_CHECK_INTERVAL_S
            assert isinstance(kwargs["credential_provider"], redisq._Login)
            assert kwargs["retry"].get_retries() == 0
            assert kwargs["decode_responses"] is True
        assert cluster.retry.get_retries() == 0
        # A rotation: the cached login is refused on every node, then re-read.
        new = "rotated-" + uuid.uuid4().hex
        for node in nodes.nodes:
            node.set_passwords(cworld.queue_user, [new])
        cworld.secrets.put(cworld.queue_secret, cworld.queue_user.name, new)
        client.connection_pool.disconnect()
        time.sleep(1.1)  # the secret is re-read at most once a second
        assert client.ping()  # PING goes to every node: each logs in again
        assert redisq.enqueue(client, STREAM, 6).entry_id
    finally:
        client.close()
        for node in nodes.nodes:
            node.set_passwords(cworld.queue_user, [cworld.queue_user.password])


def test_without_the_setting_the_node_in_the_url_answers_moved(
    cworld: ClusterWorld, nodes: RedisClusterServers, synth: Any, spawn: Callable[..., Proc]
) -> None:
    if nodes.owner(SLOT) == 0:
        nodes.migrate_slot(SLOT, 1)
    producer = serve_producer(spawn, service_env(cworld, synth, "producer", "off"))
    status, body = post(producer, 1, "k1")
    assert status == 503, body
    assert body["outcome"] == "not_accepted"  # MOVED: refused, nothing ran
    env = {
        "REDIS_URL": cworld.redis.url,
        "REDIS_TLS_CA": str(cworld.tls.ca),
        "REDIS_USERNAME": cworld.queue_user.name,
        "REDIS_PASSWORD": cworld.queue_user.password,
    }
    plain = redisq.make_redis(load_redis(Env(env)))
    try:
        with pytest.raises(redis.exceptions.MovedError):
            plain.xlen(STREAM)
    finally:
        plain.close()


def test_contract_access_string_alone_refuses_the_topology_query(
    cworld: ClusterWorld, nodes: RedisClusterServers
) -> None:
    """Why a sharded queue grants :data:`~apps.common.contract.CLUSTER_CLIENT_ACL`: with
    only the contract's plain access string the cluster client cannot learn the topology
    (CLUSTER SLOTS is refused)."""
    password = uuid.uuid4().hex
    for node in nodes.nodes:
        admin = node.client()
        try:
            rules = contract.queue_access_string().split()
            admin.execute_command("ACL", "SETUSER", "bare", "reset", *rules, f">{password}")
        finally:
            admin.close()
    env = {
        "REDIS_URL": cworld.redis.url,
        "REDIS_TLS_CA": str(cworld.tls.ca),
        "REDIS_USERNAME": "bare",
        "REDIS_PASSWORD": password,
        "REDIS_CLUSTER": "on",
    }
    client = redisq.make_redis(load_redis(Env(env)))
    with pytest.raises(redis.exceptions.NoPermissionError, match="cluster"):
        client.ping()
