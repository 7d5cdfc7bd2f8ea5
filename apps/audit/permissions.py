import rules

can_view_audit_log = rules.is_staff
