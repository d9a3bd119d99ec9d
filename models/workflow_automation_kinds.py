"""The kinds of triggers and actions, each declared once.

A kind says what the admin sees (its label), where it applies (the target models; empty:
every model that inherits ``workflow.automation.mixin``), what the admin fills in (its
parameter fields, and those it cannot do without) and how the engine treats it. Everything
else is derived from these tables: the selections, the kinds the form offers for a target,
the required-parameter checks, the queued and outbound sets, the display names, and the
parameters cleared when the kind of a trigger or an action changes.

A parameter is a field of the trigger or the action, or a *role* (``STAGE``, ``TAGS``...)
where the field depends on the target: opportunities move through ``crm.stage``, projects
through ``project.project.stage``. A role is played by the component's field tagged
``workflow_role=<role>`` whose comodel is that of the target's own field (its
``_workflow_stage_field``, ``_workflow_tag_field``, ...): the target model is asked, never
compared (see ``workflow.automation.mixin``).

Adding a kind: one entry here, its parameter fields on the component, its
``_execute_<kind>`` method (actions) or its event in the mixin's ``_workflow_event_fields``,
``_workflow_snapshot`` and ``_workflow_changed`` (triggers), and its lines in the form.
"""

from dataclasses import dataclass

# Roles: the parameter fields that depend on the target model
STAGE = "stage"  # a stage of the target (``_workflow_stage_field``)
FROM_STAGE = "from_stage"  # the stage a trigger's record comes from
TAGS = "tags"  # tags of the target (``_workflow_tag_field``)
SCOPE = "scope"  # what a workflow is scoped to (``_workflow_scope_field``, else the record itself)
ROLES = (STAGE, FROM_STAGE, TAGS, SCOPE)


@dataclass(frozen=True)
class Kind:
    code: str
    label: str
    targets: tuple = ()  # empty: every target
    parameters: tuple = ()  # the fields (or roles) the admin fills in for this kind
    required: tuple = ()  # those of them it cannot do without

    def applies_to(self, target):
        """Whether the kind is offered for ``target``; every kind while it is not known."""
        return not target or not self.targets or target in self.targets


@dataclass(frozen=True)
class ActionKind(Kind):
    # ``_execute_<kind>(records)`` runs it, on the whole batch; a kind that only writes the
    # records says what with ``_write_values_<kind>()`` instead (the same values on every
    # record, which the model may split per record), and may then be folded into the user's
    # own write (by naming convention)
    outbound: bool = False  # leaves the database: on test records it is recorded, not done
    queued: bool = False  # never run in the user's transaction (it cannot be rolled back)
    creates: bool = False  # creates records, named from a template


@dataclass(frozen=True)
class TriggerKind(Kind):
    scanned: bool = False  # found by the hourly scan, not by a write
    in_stage: bool = False  # fires on records in a stage: its delayed actions may require them to stay there
    activity: bool = False  # fired by an activity of the record
    display: str = ""  # the trigger's method giving its display name; empty: the label


def registry(*kinds):
    """``{code: kind}``, in the order of the form."""
    return {kind.code: kind for kind in kinds}


def selection(kinds):
    """The selection of a kind field."""
    return [(kind.code, kind.label) for kind in kinds.values()]


def kinds_of_target(kinds, target):
    """The codes of the kinds offered for ``target``."""
    return [kind.code for kind in kinds.values() if kind.applies_to(target)]


CRM = ("crm.lead",)
PROJECT = ("project.project",)

ACTION_KINDS = registry(
    ActionKind("assign_user", "Assign to a user", parameters=("user_id", "notify_assignee"), required=("user_id",)),
    ActionKind("assign_team", "Assign to a sales team", CRM, ("team_id",), ("team_id",)),
    ActionKind(
        "activity",
        "Add a follow-up",
        parameters=(
            "followup_mode", "activity_plan_id", "followup_effect", "followup_auto_complete", "activity_type_id",
            "activity_summary", "activity_note", "activity_deadline", "activity_deadline_unit",
            "activity_user_mode", "activity_user_id",
        ),
    ),
    ActionKind(
        "email",
        "Send an e-mail",
        parameters=("mail_template_id", "email_from_mode", "email_from"),
        required=("mail_template_id",),
        outbound=True,
    ),
    ActionKind("note", "Post an internal note", parameters=("note_body",), required=("note_body",)),
    ActionKind("add_tags", "Add tags", parameters=(TAGS,), required=(TAGS,)),
    ActionKind("remove_tags", "Remove tags", parameters=(TAGS,), required=(TAGS,)),
    ActionKind("set_stage", "Move to a stage", parameters=(STAGE,), required=(STAGE,)),
    ActionKind("mark_won", "Mark as won", CRM),
    ActionKind("mark_lost", "Mark as lost", CRM, ("lost_reason_id",)),
    ActionKind(
        "create_project",
        "Create a linked project",
        CRM,
        ("new_name", "new_user_mode", "new_user_id", "project_template_id", "project_stage_id"),
        creates=True,
    ),
    ActionKind(
        "copy_lead",
        "Copy into another pipeline",
        CRM,
        ("new_name", "new_team_id", "new_stage_id", "new_user_mode", "new_user_id"),
        ("new_team_id",),
        creates=True,
    ),
    ActionKind(
        "repeat_lead",
        "Create a repeat lead or opportunity",
        CRM,
        ("new_name", "new_lead_type", "new_team_id", "new_stage_id", "new_user_mode", "new_user_id"),
        creates=True,
    ),
    ActionKind("add_followers", "Add followers", parameters=("follower_user_ids", "follower_partner_ids")),
    ActionKind(
        "set_field",
        "Set a field to a value",
        parameters=(
            "set_field_id", "set_value", "set_value_boolean", "set_value_days", "set_selection_id", "set_value_res_id",
        ),
        required=("set_field_id",),
    ),
    ActionKind(
        "webhook",
        "Send a webhook",
        parameters=("webhook_url", "webhook_field_ids", "webhook_timeout", "webhook_retries"),
        required=("webhook_url",),
        outbound=True,
        queued=True,
    ),
)

# The "when completed" effects of a follow-up. Those that are also action kinds run the same
# ``_execute_<kind>`` method as those actions, with the same parameters.
FOLLOWUP_EFFECTS = registry(
    ActionKind("none", "Nothing"),
    ActionKind("set_stage", "Move to a stage", parameters=(STAGE,), required=(STAGE,)),
    ActionKind("mark_won", "Mark as won", CRM),
    ActionKind("mark_lost", "Mark as lost", CRM, ("lost_reason_id",)),
    ActionKind("close_project", "Close the project", PROJECT),
)

TRIGGER_KINDS = registry(
    TriggerKind("create", "Record created"),
    TriggerKind(
        "stage_reached", "Stage reached", parameters=(STAGE,), required=(STAGE,), in_stage=True,
        display="_display_stage_reached",
    ),
    TriggerKind(
        "stage_changed", "Stage goes from … to …", parameters=(FROM_STAGE, STAGE), in_stage=True,
        display="_display_stage_changed",
    ),
    TriggerKind("won", "Opportunity won", CRM),
    TriggerKind("lost", "Opportunity lost", CRM),
    TriggerKind("restored", "Opportunity restored", CRM),
    TriggerKind("project_closed", "Project closed", PROJECT),
    TriggerKind(
        "date",
        "Date reached",
        parameters=("date_field_id", "date_offset", "date_direction", "date_hour", "date_yearly", "date_catch_up"),
        required=("date_field_id",),
        scanned=True,
        display="_display_date",
    ),
    TriggerKind(
        "inactive",
        "No change for N days in a stage",
        parameters=(STAGE, "inactive_days", "date_catch_up"),
        required=(STAGE,),
        scanned=True,
        in_stage=True,
        display="_display_inactive",
    ),
    TriggerKind(
        "field_changed",
        "A field changes",
        parameters=(
            "changed_field_ids", "changed_from_selection_id", "changed_to_selection_id", "changed_from_ref",
            "changed_to_ref", "changed_from_boolean", "changed_to_boolean",
        ),
        required=("changed_field_ids",),
        display="_display_field_changed",
    ),
    TriggerKind(
        "activity_created", "Activity created", parameters=("activity_type_id",), activity=True,
        display="_display_activity",
    ),
    TriggerKind(
        "activity_done", "Activity done", parameters=("activity_type_id",), activity=True,
        display="_display_activity",
    ),
)


def role_field(model, role, comodel):
    """The name of the field of ``model`` tagged ``workflow_role=role`` holding ``comodel`` records, or None."""
    return next((
        name for name, field in model._fields.items()
        if getattr(field, "workflow_role", None) == role and field.comodel_name == comodel
    ), None)


def codes(kinds, flag):
    """The codes of the kinds that have ``flag`` set, as a tuple (usable in SQL)."""
    return tuple(kind.code for kind in kinds.values() if getattr(kind, flag))
