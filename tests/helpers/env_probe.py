"""A strategy that records, each time the runner makes it, whether the process holds any value of
the file ENV_PROBE_SECRETS (one a line; a file: the values are in no environment) in os.environ: user code sees what the runner's process sees.

The runner makes a strategy twice: checking the bots file (before the config, and `.env`, are
loaded) and when it starts the bot; the last line written is the running bot's view."""

from __future__ import annotations

import json
import os

from tests.helpers.scripted import Scripted


class EnvProbe(Scripted):
    name = "env_probe"

    def __init__(self) -> None:
        with open(os.environ["ENV_PROBE_SECRETS"], encoding="utf-8") as fh:
            secrets = [line for line in fh.read().splitlines() if line]
        seen = sorted(name for name, value in os.environ.items() if value in secrets)
        with open(os.environ["ENV_PROBE_OUT"], "a", encoding="utf-8") as out:
            out.write(json.dumps(seen) + "\n")
