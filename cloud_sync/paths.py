"""Where a box's sync identity lives, importable without the cryptography stack (the agent
checks it at start to decide whether sync runs at all)."""

from __future__ import annotations

import os

FILE_NAME = "identity.json"


def identity_dir(store_path: str) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(store_path)), "sync")


def identity_path(store_path: str) -> str:
    return os.path.join(identity_dir(store_path), FILE_NAME)
