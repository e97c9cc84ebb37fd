"""The three roles, as groups with their permissions. A user may hold several."""

SUPPORT_LEAD, SHIFT_MANAGER, ADMIN = "Support lead", "Shift manager", "Admin"
LEAD_PERMISSIONS = ["queues.add_reroute", "queues.view_rule"]
MANAGER_PERMISSIONS = LEAD_PERMISSIONS + ["queues.view_all_reroutes", "queues.run_handover",
                                          "queues.add_rule", "queues.change_rule", "queues.delete_rule"]
ADMIN_PERMISSIONS = MANAGER_PERMISSIONS + [
    "queues.export_reroutes", "queues.view_reroute", "queues.view_rerouteevent",
    "auth.view_user", "auth.add_user", "auth.change_user", "auth.delete_user",
    "auth.view_group", "axes.view_accessattempt", "axes.delete_accessattempt", "axes.view_accessfailurelog",
    "queues.manage_all_tokens", "queues.manage_notifications",
]
ROLES = {SUPPORT_LEAD: LEAD_PERMISSIONS, SHIFT_MANAGER: MANAGER_PERMISSIONS, ADMIN: ADMIN_PERMISSIONS}


def roles_ensure(Group, Permission) -> None:
    """Create the role groups with exactly their permissions (models passed in, so migrations can call it)."""
    for name, codes in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set([
            Permission.objects.get(content_type__app_label=code.split(".")[0], codename=code.split(".")[1])
            for code in codes
        ])
