"""Write the admin's password into Airflow's SimpleAuthManager passwords file (run by ``airflow-init``).

SimpleAuthManager reads its users from ``AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS`` (``name:role,...``) and
their passwords from the JSON file ``AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE``; a user missing
from the file gets a random password, printed once in the api-server's log. This script puts
``_AIRFLOW_WWW_USER_USERNAME`` / ``_AIRFLOW_WWW_USER_PASSWORD`` into the file, so that the admin's password
is the one you chose, and keeps the passwords of the other users. Standard library only: ``airflow-init``
runs it as root, before Airflow's own packages are on its path.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

USERS_ENV = "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"
FILE_ENV = "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
USERNAME_ENV = "_AIRFLOW_WWW_USER_USERNAME"
PASSWORD_ENV = "_AIRFLOW_WWW_USER_PASSWORD"  # noqa: S105 - the name of the variable


def write_passwords(environ: dict[str, str]) -> Path:
    """Set the admin's password in the passwords file named by the environment; return the file.

    Raises:
        SystemExit: naming the variable to set when one is missing or the admin is not a configured user.
    """
    missing = [name for name in (USERS_ENV, FILE_ENV, USERNAME_ENV, PASSWORD_ENV) if not environ.get(name)]
    if missing:
        raise SystemExit(f"simple_auth_passwords: set {', '.join(missing)} (see .env.example)")
    username, path = environ[USERNAME_ENV], Path(environ[FILE_ENV])
    users = [entry.split(":")[0].strip() for entry in environ[USERS_ENV].split(",") if entry.strip()]
    if username not in users:
        raise SystemExit(
            f"simple_auth_passwords: {USERNAME_ENV}={username!r} is not among {USERS_ENV}={environ[USERS_ENV]!r}; "
            f"add '{username}:admin' to it"
        )
    passwords: dict[str, str] = {}
    if path.is_file() and path.read_text(encoding="utf-8").strip():
        passwords = json.loads(path.read_text(encoding="utf-8"))
    passwords[username] = environ[PASSWORD_ENV]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(passwords) + "\n", encoding="utf-8")
    path.chmod(0o660)
    return path


if __name__ == "__main__":
    written = write_passwords(dict(os.environ))
    print(f"admin password of {os.environ[USERNAME_ENV]!r} written to {written}", file=sys.stderr)
