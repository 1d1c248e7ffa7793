"""The ``[execution]`` settings section."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.config import load_settings
from engine.core.errors import ConfigError
from engine.execution import ChildPricing, ExecutionConfig, RestartPolicy


def test_the_execution_section_is_read_from_the_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(
        '[execution]\non_restart = "cancel"\nchild_pricing = "touch"\n'
        'touch_offset = 0.01\npov_max_clip = "none"\n'
    )
    execution = load_settings(config_path=path, env={}).execution
    assert (execution.on_restart, execution.child_pricing) == (
        RestartPolicy.CANCEL,
        ChildPricing.TOUCH,
    )
    assert (execution.touch_offset, execution.pov_max_clip) == (Decimal("0.01"), None)


def test_the_defaults_resume_algos_after_a_restart():
    assert load_settings(env={}).execution == ExecutionConfig()
    assert ExecutionConfig().on_restart is RestartPolicy.RESUME


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"TICKDECK_EXECUTION__ON_RESTART": "later"},
            "config: execution.on_restart: must be one of resume, cancel, got 'later' "
            "(from TICKDECK_EXECUTION__ON_RESTART)",
        ),
        (
            {"TICKDECK_EXECUTION__TWAP_SLICES": "0"},
            "config: execution.twap_slices: must be 1 or more, got 0 "
            "(from TICKDECK_EXECUTION__TWAP_SLICES)",
        ),
    ],
)
def test_a_bad_execution_value_is_one_sentence_naming_the_key(env, message):
    with pytest.raises(ConfigError) as raised:
        load_settings(env=env)
    assert str(raised.value) == message
