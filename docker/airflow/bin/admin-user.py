"""The admin user of the FAB auth manager: created, or its password reset when it exists.

One process where the Airflow CLI needs three (`users list`, then `users create` or `users
reset-password`, then `users list` again to check), each importing Airflow and building the FAB
app: about 3 s apiece on a 2-core machine, on the critical path of every bring-up. It then checks
that the password now matches, so a run that exits 0 left a user who can log in.

Usage: admin-user.py USERNAME, the password as one line on stdin (never argv or the environment).
"""

import sys

from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder
from airflow.providers_manager import ProvidersManager
from werkzeug.security import check_password_hash

ADMIN_ROLE = "Admin"


def read_password() -> str:
    password = sys.stdin.readline().removesuffix("\n")
    if not password:
        raise SystemExit("admin-user: expected the password as one line on stdin, got nothing")
    return password


def converge(username: str, password: str) -> str:
    """Creates `username` as an Admin with `password`, or resets its password; says which."""
    # Provider settings (the FAB app's [fab] config_file) load with the providers, as in the CLI.
    ProvidersManager().initialize_providers_configuration()
    with get_application_builder() as appbuilder:
        security = appbuilder.sm
        user = security.find_user(username=username)
        if user is None:
            role = security.find_role(ADMIN_ROLE)
            if role is None:
                raise SystemExit(
                    f"admin-user: role {ADMIN_ROLE} is missing: migrate the database first"
                )
            created = security.add_user(
                username, "Airflow", "Admin", f"{username}@vpe.invalid", role, password
            )
            if not created:
                raise SystemExit(f"admin-user: creating user {username} failed")
            done = f"created admin user {username}"
        else:
            security.reset_password(user.id, password)
            done = f"admin user {username} exists; reset its password"
        user = security.find_user(username=username)
        if user is None or not check_password_hash(user.password, password):
            raise SystemExit(f"admin-user: user {username} does not accept the new password")
        return done


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[1]:
        print("usage: admin-user.py USERNAME < password", file=sys.stderr)
        return 2
    print(f"admin-user: {converge(argv[1], read_password())}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
