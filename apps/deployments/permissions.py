"""Who may see and change environments; views, API and templates all ask these."""

import rules

# Environments name clusters and credentials: everyone signed in may look, staff change them.
can_view_environments = rules.is_authenticated
can_manage_environments = rules.is_authenticated & rules.is_staff
