"""Which image tag is deployed, and prod's refusal of mutable tags."""

from __future__ import annotations

import pytest

from constructs_lib.errors import ConfigError, InputsError
from environments import DEV, PROD
from environments.release import Release


def test_image_tag_comes_from_the_environment_variable() -> None:
    assert (
        Release.from_environ({"IMAGE_TAG": "v1.4.2"}, revision=lambda: "abc").image_tag == "v1.4.2"
    )


def test_image_tag_defaults_to_the_git_commit() -> None:
    assert Release.from_environ({}, revision=lambda: "0123456789ab").image_tag == "0123456789ab"


def test_outside_git_the_tag_falls_back_to_latest_which_prod_refuses() -> None:
    release = Release.from_environ({}, revision=lambda: None)
    assert release.image_tag == "latest"
    release.validate_for(DEV)  # a development environment may follow latest
    with pytest.raises(
        ConfigError,
        match=r"^prod\.image_tag: got 'latest', production deploys an immutable tag: set IMAGE_TAG",
    ):
        release.validate_for(PROD)


def test_invalid_tag() -> None:
    with pytest.raises(ConfigError, match=r"^dev\.image_tag: got 'a b', use letters, digits"):
        Release("a b").validate_for(DEV)


def test_synthesis_stops_before_building_anything_with_latest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import main

    built: list[str] = []
    monkeypatch.setattr(main, "build_stacks", lambda *a, **k: built.append("stacks"))
    with pytest.raises(InputsError, match=r"^prod\.image_tag: got 'latest'"):
        main.build_app(environ={"IMAGE_TAG": "latest", "PCP_ALARM_EMAIL": "a@example.invalid"})
    assert built == []


@pytest.mark.parametrize("tag", ["main", "master", "nightly", "edge"])
def test_prod_refuses_every_moving_tag(tag: str) -> None:
    Release(tag).validate_for(DEV)
    with pytest.raises(ConfigError, match=rf"^prod\.image_tag: got '{tag}', production deploys"):
        Release(tag).validate_for(PROD)
