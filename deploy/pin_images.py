"""Base images pinned by digest: `FROM python:3.11-slim@sha256:...`, `image: redis:7-alpine@sha256:...`.

A tag can be moved to other content at any time; a digest cannot. The tag stays beside the digest
for the reader (Docker uses only the digest then). Stdlib only, run with any python3:

    python3 deploy/pin_images.py --check   # exit 1 and list every image not pinned by digest
    python3 deploy/pin_images.py           # pin them: ask Docker Hub for each tag's digest, rewrite

The digest asked for is the multi-platform index's (the Docker-Content-Digest of the tag's
manifest list), so one pin serves x86_64 and the Raspberry Pi's arm64 alike. To move to a newer
image: delete the `@sha256:...` part and run the second command again.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = ("Dockerfile", "docker-compose.yml", "deploy/compose*.yml")  # globs, from the checkout's root
# `FROM image[:tag][@digest] [AS name]` and compose's `image: ...`; our own image (automata:...) is built here.
LINE = re.compile(r"^(?P<lead>\s*(?:FROM\s+(?:--platform=\S+\s+)?|image:\s*))(?P<ref>[^\s#]+)", re.MULTILINE)
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
OWN = ("automata:",)
ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)


def unpinned(text: str) -> list[tuple[int, str]]:
    """(line number, reference) of each pulled image not pinned by digest."""
    found = []
    for m in LINE.finditer(text):
        ref = m["ref"].strip("\"'")
        if ref.startswith(OWN) or DIGEST.search(ref):
            continue
        found.append((text.count("\n", 0, m.start()) + 1, ref))
    return found


def docker_hub_digest(ref: str) -> str:
    """The digest Docker Hub serves for `name:tag` now (the registry API, no docker needed)."""
    name, _, tag = ref.partition(":")
    repo = name if "/" in name else f"library/{name}"
    token_url = f"https://auth.docker.io/token?service=registry.docker.io&scope=repository:{repo}:pull"
    with urllib.request.urlopen(token_url, timeout=30) as resp:
        token = json.load(resp)["token"]
    request = urllib.request.Request(
        f"https://registry-1.docker.io/v2/{repo}/manifests/{tag or 'latest'}",
        method="HEAD",
        headers={"Authorization": f"Bearer {token}", "Accept": ACCEPT},
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        digest = resp.headers["Docker-Content-Digest"]
    if not digest or not DIGEST.search("@" + digest):
        raise RuntimeError(f"{ref}: the registry answered no sha256 digest ({digest!r})")
    return digest


def pin(text: str, resolve: Callable[[str], str]) -> str:
    """`text` with each unpinned reference followed by @<its digest>."""

    def one(m: re.Match[str]) -> str:
        ref = m["ref"]
        bare = ref.strip("\"'")
        if bare.startswith(OWN) or DIGEST.search(bare):
            return m[0]
        return m["lead"] + ref.replace(bare, f"{bare}@{resolve(bare)}")

    return LINE.sub(one, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report unpinned images; exit 1 if any")
    parser.add_argument("files", nargs="*", type=Path, help=f"default: {', '.join(FILES)}")
    args = parser.parse_args(argv)
    paths = args.files or sorted({p for pattern in FILES for p in ROOT.glob(pattern)})
    bad = 0
    for path in paths:
        text = path.read_text()
        if args.check:
            for line, ref in unpinned(text):
                print(f"{path}:{line}: {ref} is not pinned by digest (python3 deploy/pin_images.py pins it)")
                bad += 1
        elif unpinned(text):
            path.write_text(pin(text, docker_hub_digest))
            print(f"{path}: pinned")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
