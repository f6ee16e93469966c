"""Credential rotation while the producer and consumer run under load.

The services run as processes with the task definitions' environment (their credentials
come from the world's Secrets Manager); the rotation function's four steps run as
Secrets Manager would call them, against the same Secrets Manager, MariaDB (alternating
users) and Redis (two passwords, ElastiCache's ``ModifyUser`` done with ``ACL SETUSER``).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable

import pymysql
import pytest
import redis
from appsupport import (
    Proc,
    backlog_zero,
    db_values,
    start_consumer,
    wait_until,
)

from apps.common.config import Env, load_redis
from apps.common.credentials import Credentials
from apps.devtools.servers import LocalQueueUsers, World, free_port, wait_port
from apps.rotate.handler import MySqlAlternatingUsers, RedisTwoPasswords, Target, rotate

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


def run_rotation(world: World, target: Target, secret_id: str) -> str:
    """Play Secrets Manager's part: a new version token, then the four steps in order."""
    sm = world.secrets.client()
    token = str(uuid.uuid4())
    for step in STEPS:
        rotate(sm, target, step, secret_id, token)
    return token


def mysql_target(world: World, database: str) -> MySqlAlternatingUsers:
    master = json.loads(
        world.secrets.client().get_secret_value(
            SecretId=world.master_secret, VersionStage="AWSCURRENT"
        )["SecretString"]
    )
    return MySqlAlternatingUsers(
        master=Credentials(master["username"], master["password"]),
        host="127.0.0.1", port=world.maria.port, database=database, tls="verify",
        tls_ca=str(world.tls.ca),
    )  # fmt: skip


def redis_target(world: World) -> RedisTwoPasswords:
    settings = load_redis(Env({**world.app_env("unused"), "REDIS_CREDENTIALS_SECRET": ""}))
    return RedisTwoPasswords(LocalQueueUsers(world.redis, world.queue_user.name), settings)


def current(world: World, secret: str) -> Credentials:
    reply = world.secrets.client().get_secret_value(SecretId=secret, VersionStage="AWSCURRENT")
    data = json.loads(reply["SecretString"])
    return Credentials(data["username"], data["password"])


def db_login_works(world: World, login: Credentials, database: str) -> bool:
    try:
        conn = pymysql.connect(
            host="127.0.0.1", port=world.maria.port, user=login.username,
            password=login.password, database=database, ssl=world.tls.client_context(),
        )  # fmt: skip
    except pymysql.err.OperationalError:
        return False
    conn.close()
    return True


def redis_login_works(world: World, login: Credentials) -> bool:
    client = redis.Redis(
        host="127.0.0.1", port=world.redis.port, username=login.username,
        password=login.password, ssl=True, ssl_ca_certs=str(world.tls.ca),
    )  # fmt: skip
    try:
        return bool(client.ping())
    except redis.AuthenticationError:
        return False
    finally:
        client.close()


def test_rotation_keeps_the_previous_login_until_the_next_one(
    world: World, env: dict[str, str]
) -> None:
    database = env["DB_NAME"]
    first_db = current(world, world.db_secret)
    first_queue = current(world, world.queue_secret)

    run_rotation(world, mysql_target(world, database), world.db_secret)
    run_rotation(world, redis_target(world), world.queue_secret)
    second_db = current(world, world.db_secret)
    second_queue = current(world, world.queue_secret)
    assert second_db.username != first_db.username  # the partner user
    assert second_queue.username == first_queue.username
    assert second_db.password != first_db.password
    assert second_queue.password != first_queue.password
    for login in (first_db, second_db):
        assert db_login_works(world, login, database)
    for login in (first_queue, second_queue):
        assert redis_login_works(world, login)

    run_rotation(world, mysql_target(world, database), world.db_secret)
    run_rotation(world, redis_target(world), world.queue_secret)
    third_db = current(world, world.db_secret)
    assert third_db.username == first_db.username
    assert not db_login_works(world, first_db, database)  # retired by the second rotation
    assert not redis_login_works(world, first_queue)
    assert db_login_works(world, second_db, database)
    assert db_login_works(world, third_db, database)
    assert redis_login_works(world, second_queue)
    assert redis_login_works(world, current(world, world.queue_secret))


def test_rotation_steps_are_idempotent(world: World, env: dict[str, str]) -> None:
    """Secrets Manager retries a step that timed out: running each twice changes nothing."""
    sm = world.secrets.client()
    target = mysql_target(world, env["DB_NAME"])
    token = str(uuid.uuid4())
    for step in STEPS:
        rotate(sm, target, step, world.db_secret, token)
        if step == "createSecret":
            pending = sm.get_secret_value(
                SecretId=world.db_secret, VersionId=token, VersionStage="AWSPENDING"
            )["SecretString"]
        rotate(sm, target, step, world.db_secret, token)
    now = sm.get_secret_value(SecretId=world.db_secret, VersionStage="AWSCURRENT")
    assert now["VersionId"] == token
    assert now["SecretString"] == pending
    assert db_login_works(world, current(world, world.db_secret), env["DB_NAME"])


def _post(url: str, value: int) -> int:
    req = urllib.request.Request(  # noqa: S310
        url, data=json.dumps({"count": value}).encode(),
        headers={"Content-Type": "application/json", "Idempotency-Key": f"rot-{value}"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


@pytest.mark.crash
def test_rotation_under_load_fails_no_request_and_loses_nothing(
    world: World,
    env: dict[str, str],
    consumer_env: dict[str, str],
    spawn: Callable[..., Proc],
) -> None:
    database = env["DB_NAME"]
    _consumer, consumer_url = start_consumer(spawn, consumer_env)
    port = free_port()
    producer = spawn(
        "apps.producer",
        {**env, "PORT": str(port), "BIND_HOST": "127.0.0.1", "THREADS": "4",
         "CONSUMER_URL": consumer_url},
    )  # fmt: skip
    wait_port(port, timeout_s=30, proc=producer.popen)  # type: ignore[arg-type]
    url = f"http://127.0.0.1:{port}/count"

    accepted: list[int] = []
    failed: list[tuple[int, int]] = []
    retried = [0]
    stop = threading.Event()

    def load() -> None:
        value = 0
        while not stop.is_set():
            value += 1
            status = _post(url, value)
            if status != 202:  # one client retry, with the same idempotency key
                retried[0] += 1
                time.sleep(0.2)
                status = _post(url, value)
            (accepted.append(value) if status == 202 else failed.append((value, status)))

    loader = threading.Thread(target=load)
    loader.start()
    try:
        first_db = current(world, world.db_secret)
        first_queue = current(world, world.queue_secret)
        for _ in range(2):  # the second rotation retires the credentials the apps started with
            time.sleep(1.5)
            run_rotation(world, mysql_target(world, database), world.db_secret)
            run_rotation(world, redis_target(world), world.queue_secret)
        assert not db_login_works(world, first_db, database)
        assert not redis_login_works(world, first_queue)
        # Force new logins: every pooled connection of the apps is dropped.
        admin = world.redis.client()
        admin.client_kill_filter(user=world.queue_user.name)
        admin.close()
        conn = world.maria.root_connect()
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM information_schema.processlist WHERE user LIKE 'app%'")
            for (pid,) in cur.fetchall():
                cur.execute(f"KILL {int(pid)}")
        conn.close()
        time.sleep(3)
    finally:
        stop.set()
        loader.join(60)

    assert not failed, (
        f"{len(failed)} requests failed after one retry: {failed[:5]}\n{producer.logs()}"
    )
    assert len(accepted) > 50
    observer = world.redis.client(decode_responses=True)  # the harness's admin user
    assert wait_until(lambda: backlog_zero(observer), 60, 0.2), _consumer.logs()
    observer.close()
    stored = Counter(db_values(world.maria))
    assert stored == Counter(accepted), "values lost or duplicated"
    print(f"{len(accepted)} accepted, {retried[0]} client retries, 4 rotations")


def test_concurrent_queue_logins_after_a_rotation_are_never_refused(
    world: World, env: dict[str, str]
) -> None:
    """16 threads open connections at once with a login two rotations old: the first to be
    refused reads the secret again, and a thread refused before that read must retry with
    the new login, not give up because the cache already holds it (5 trials)."""
    from apps.common import credentials, redisq

    settings = load_redis(Env(env))
    assert settings.credentials_secret
    refused: list[str] = []
    for _trial in range(5):
        credentials.forget()
        warm = redisq.make_redis(settings)
        redisq.ping_for(warm, settings.stream)  # caches the current login
        warm.close()
        for _ in range(2):  # the second rotation retires the cached login
            run_rotation(world, redis_target(world), world.queue_secret)
        time.sleep(1.2)  # rotations are not within a second of a start: the cache may be re-read
        barrier = threading.Barrier(16)

        def login(barrier: threading.Barrier = barrier) -> None:
            client = redisq.make_redis(settings)
            barrier.wait()
            try:
                redisq.ping_for(client, settings.stream)
            except redis.RedisError as exc:
                refused.append(f"{type(exc).__name__}: {exc}")
            finally:
                client.close()

        threads = [threading.Thread(target=login) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert refused == []
