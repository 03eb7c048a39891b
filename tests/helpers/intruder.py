"""A process holding one strategy runner's Redis credentials, the way the runner gets them
(REDIS_URL without a password, REDIS_USER, REDIS_PASSWORD_FILE), appending what it is told:
`python -m tests.helpers.intruder JSON`, JSON a list of [stream, {field: value}]. Prints one JSON
list, per XADD "ok" or the server's refusal (e.g. "NOPERM ...")."""

from __future__ import annotations

import json
import sys

import redis

from shared.redis_conn import redis_url


def main() -> None:
    client = redis.Redis.from_url(redis_url())
    outcomes = []
    for stream, fields in json.loads(sys.argv[1]):
        try:
            client.xadd(stream, fields)
            outcomes.append("ok")
        except redis.exceptions.NoPermissionError as exc:  # redis-py drops the NOPERM prefix
            outcomes.append(f"NOPERM {exc}")
        except redis.ResponseError as exc:
            outcomes.append(str(exc))
    client.close()
    print(json.dumps(outcomes))


if __name__ == "__main__":
    main()
