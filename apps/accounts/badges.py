"""Badge tones of API token statuses and team roles."""

from apps.accounts.models import ApiToken, Membership

TONES: dict[str, str] = {
    ApiToken.Status.ACTIVE: "ok",
    ApiToken.Status.EXPIRED: "warn",
    ApiToken.Status.REVOKED: "danger",
    Membership.Role.MEMBER: "",
    Membership.Role.MAINTAINER: "accent",
}
