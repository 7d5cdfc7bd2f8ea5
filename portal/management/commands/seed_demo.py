from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.accounts.demo import seed_accounts
from apps.approvals.demo import seed_alias_policies
from apps.deployments.demo import seed_environments
from apps.simcluster.demo import CONTEXT, write_demo_kubeconfig


class Command(BaseCommand):
    help = "Create demo people, teams and data for trying the portal; safe to run again."

    def handle(self, *args: object, **options: object) -> None:
        if settings.PRODUCTION:
            raise CommandError("seed_demo refuses to run with PORTAL_ENV=production.")
        logins = seed_accounts()
        environments = seed_environments(
            kubeconfig_path=write_demo_kubeconfig(), kube_context=CONTEXT
        )
        seed_alias_policies()
        self.stdout.write(self.style.SUCCESS("Demo data is in place. Sign in with:"))
        for login in logins:
            self.stdout.write(f"  {login.username:<8} / {login.password}   ({login.note})")
        self.stdout.write(
            f"Environments {', '.join(env.slug for env in environments)} point at the SIMULATED "
            "cluster (manage.py simcluster)."
        )
