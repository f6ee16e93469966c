"""Every alarm of every stack has a section in docs/runbook.md, and every section is used."""

from __future__ import annotations

import re

from environments import SYSTEM_ENVIRONMENTS
from tests.support import NAMING, ROOT, EnvStack, Synth, UnitStack, resources

RUNBOOK = ROOT / "docs" / "runbook.md"
PLACEHOLDERS = {
    "<service>": "[a-z]+",
    "<node>": r"\d+(?:-\d+)?",  # node, or shard-node in a sharded queue
    "<port>": r"\d+",
    "<name>": "[a-z]+",
}
NOT_DEPLOYED = {"queue-ecpu": "a production-tier environment with a Serverless queue"}
"""Sections for alarms the constructs offer in a configuration no environment uses today."""


def runbook_keys() -> list[str]:
    """The alarm keys the runbook has a section for (``### `key` `` headings)."""
    return re.findall(r"^### `([^`]+)`$", RUNBOOK.read_text(), re.M)


def key_pattern(key: str) -> re.Pattern[str]:
    pattern = re.escape(key)
    for placeholder, regex in PLACEHOLDERS.items():
        pattern = pattern.replace(re.escape(placeholder), regex)
    return re.compile(f"^{pattern}$")


def alarm_keys(name: str, stack: dict[str, object]) -> set[str]:
    prefix = f"{name}-" if name in SYSTEM_ENVIRONMENTS else f"pcp-{name}-"
    alarms = resources(stack, "aws_cloudwatch_metric_alarm").values()  # type: ignore[arg-type]
    return {a["alarm_name"].removeprefix(prefix) for a in alarms}


def test_every_alarm_has_a_runbook_section(env_stack: EnvStack) -> None:
    name, stack = env_stack
    patterns = [key_pattern(k) for k in runbook_keys()]
    missing = sorted(k for k in alarm_keys(name, stack) if not any(p.match(k) for p in patterns))
    assert not missing, f"{name}: alarms without a section in docs/runbook.md: {missing}"


def test_every_seed_system_alarm_has_a_runbook_section(synth: Synth) -> None:
    patterns = [key_pattern(k) for k in runbook_keys()]
    for name in SYSTEM_ENVIRONMENTS:
        keys = alarm_keys(name, synth.stack(name))
        assert keys, name
        missing = sorted(k for k in keys if not any(p.match(k) for p in patterns))
        assert not missing, f"{name}: alarms without a section in docs/runbook.md: {missing}"


def test_every_sharded_queue_alarm_has_a_runbook_section(unit_stack: UnitStack) -> None:
    """No environment runs a sharded queue today; its node alarms are keyed shard-node."""
    from apps.common.contract import queue_access_string
    from constructs_lib.options import QueueMode
    from constructs_lib.queue import Queue, QueueProps, QueueSettings

    props = QueueProps(
        naming=NAMING,
        network=unit_stack.network(),
        key=unit_stack.key(),
        app_access_string=queue_access_string(),
        settings=QueueSettings(mode=QueueMode.SHARDED, shards=12),
    )
    keys = {a.key for a in Queue(unit_stack.stack, "queue", props=props).alarms()}
    assert "queue-12-2-memory" in keys
    patterns = [key_pattern(k) for k in runbook_keys()]
    assert sorted(k for k in keys if not any(p.match(k) for p in patterns)) == []


def test_every_runbook_section_names_an_alarm_some_stack_has(synth: Synth) -> None:
    keys = set().union(*(alarm_keys(n, synth.stack(n)) for n in synth.stacks if n != "bootstrap"))
    unused = [
        k
        for k in runbook_keys()
        if k not in NOT_DEPLOYED and not any(key_pattern(k).match(a) for a in keys)
    ]
    assert not unused, f"runbook sections for alarms no stack has: {unused}"


def test_each_section_says_what_it_means_what_to_check_and_how_to_recover() -> None:
    sections = re.split(r"^### ", RUNBOOK.read_text(), flags=re.M)[1:]
    for section in sections:
        title = section.splitlines()[0]
        if not title.startswith("`"):
            continue
        assert "**Means:**" in section, title
        for step in (1, 2, 3):
            assert re.search(rf"^{step}\. ", section, re.M), (title, step)
        assert "**Recover:**" in section, title
