"""Demo people and teams for `make run`; running it again changes nothing."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from apps.accounts.models import Membership, Team, User
from apps.audit.services import record

DEMO_PASSWORD = "modelport-demo"  # noqa: S105  (a published demo login, refused in production)
ADMIN_USERNAME = "admin"

TEAMS = [
    ("fraud-detection", "Fraud Detection", "Card and payment fraud models."),
    ("recommendations", "Recommendations", "Ranking and recommendation models."),
    ("ml-platform", "ML Platform", "Runs the serving platform and this portal."),
    ("risk-review", "Model Risk Review", "Independent reviewers for production changes."),
]
PEOPLE = [
    # username, full name, staff, [(team, role)]
    ("alice", "Alice Martin", False, [("fraud-detection", "maintainer")]),
    ("bob", "Bob Chen", False, [("fraud-detection", "member"), ("recommendations", "member")]),
    ("carol", "Carol Okafor", False, [("risk-review", "maintainer")]),
    ("dan", "Dan Novak", False, [("risk-review", "member")]),
    (
        "erin",
        "Erin Walsh",
        False,
        [("ml-platform", "maintainer"), ("recommendations", "maintainer")],
    ),
]


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    note: str


@transaction.atomic
def seed_accounts() -> list[DemoLogin]:
    """Create the demo admin, people and teams if they are missing."""
    admin, created = User.objects.get_or_create(
        username=ADMIN_USERNAME,
        defaults={
            "is_staff": True,
            "is_superuser": True,
            "first_name": "Portal",
            "last_name": "Admin",
        },
    )
    if created:
        admin.set_password(DEMO_PASSWORD)
        admin.save(update_fields=["password"])
        record("seed", "user.created", admin, username=admin.username, staff=True)
    teams = {}
    for slug, name, description in TEAMS:
        team, created = Team.objects.get_or_create(
            slug=slug, defaults={"name": name, "description": description}
        )
        if created:
            record("seed", "team.created", team, name=name, slug=slug)
        teams[slug] = team
    for username, full_name, staff, memberships in PEOPLE:
        first, last = full_name.split(" ", 1)
        user, created = User.objects.get_or_create(
            username=username,
            defaults={
                "first_name": first,
                "last_name": last,
                "email": f"{username}@example.com",
                "is_staff": staff,
            },
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
            record("seed", "user.created", user, username=username, staff=staff)
        for slug, role in memberships:
            _, created = Membership.objects.get_or_create(
                team=teams[slug], user=user, defaults={"role": role}
            )
            if created:
                record("seed", "team.member_added", teams[slug], username=username, role=role)
    return [
        DemoLogin(ADMIN_USERNAME, DEMO_PASSWORD, "staff: everything, audit log, admin"),
        *[
            DemoLogin(username, DEMO_PASSWORD, ", ".join(f"{r} of {t}" for t, r in memberships))
            for username, _, _, memberships in PEOPLE
        ],
    ]
