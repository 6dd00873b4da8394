"""Recovery strategy __NAME__: retries timeouts and dependency failures
after `delay_ms` (default 50), up to `max_attempts` (default 2), then passes."""

from kaizen_sdk import Recovery, config
from wit_world.imports import types


class PatientRetry(Recovery):
    name = "__NAME__"
    version = "0.1.0"
    description = "Retry after a fixed delay"
    handled = ("timeout", "dependency")

    def choose(self, failure: types.Failure) -> types.RecoveryAction:
        if failure.attempt > config.int("max_attempts", 2):
            return types.RecoveryAction_Pass()
        return types.RecoveryAction_Retry(config.int("delay_ms", 50))


WitWorld = PatientRetry  # the class componentize-py serves
