"""Recovery strategy __NAME__: retries timeouts and dependency failures
after `delay_ms` (default 50), up to `max_attempts` (default 2), then passes."""

import wit_world
from wit_world.imports import host, types


class WitWorld(wit_world.WitWorld):
    def describe(self) -> types.PluginInfo:
        return types.PluginInfo(name="__NAME__", kind=types.PluginKind.RECOVERY, version="0.1.0",
                                description="Retry after a fixed delay",
                                tunables=[], capabilities=[])

    def handles(self) -> list[types.ErrorClass]:
        return [types.ErrorClass_Timeout(), types.ErrorClass_Dependency()]

    def decide(self, failure: types.Failure) -> types.RecoveryAction:
        if failure.attempt > int(host.config("max_attempts") or 2):
            return types.RecoveryAction_Pass()
        return types.RecoveryAction_Retry(int(host.config("delay_ms") or 50))
