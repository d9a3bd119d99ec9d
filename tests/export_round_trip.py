"""The same change, made wherever a workflow was installed: in the test database
(``tests/test_export.py``) and in a fresh database made by ``odoo-bin`` (``tests/slow_test_export.py``,
which runs this file in ``odoo-bin shell``). Plain functions of an environment: no test framework."""

from datetime import date, datetime, timedelta

from freezegun import freeze_time

from odoo.addons.crm_workflow_automation.wizards.workflow_automation_export import SITE_MODELS, WorkflowDataFile

NOW = "2026-03-02 08:00"
# The date of the leads that date triggers fire on
LEAD_DATE = date(2026, 4, 1)
BIG_AMOUNT = 100000  # above the thresholds of the presets watching an amount


def components(workflow):
    return [workflow, *[part for trigger in workflow.trigger_ids for part in (trigger, *trigger.action_ids)]]


def structure(env, workflow, site=True):
    """Every value an export takes (with the users, pipelines, ... of the database if ``site``),
    records by name: the file's own records are made anew."""
    fields_of = WorkflowDataFile(env, False).exported_fields
    return [
        {field.name: comparable(env, record, field) for field in fields_of(record._name)
         if field.name not in ("company_id", "trigger_id") and (site or field.comodel_name not in SITE_MODELS)}
        for record in components(workflow)
    ]


def comparable(env, record, field):
    value = record[field.name]
    if field.type == "many2one_reference":
        return value and env[record[field.model_field]].browse(value).display_name
    if field.type in ("many2one", "many2many"):
        return sorted(value.mapped("display_name"))
    if field.type == "one2many":
        return len(value)
    return value


def fill_blanks(env, workflow, user, team):
    """What a preset, or an exported workflow, leaves to the admin: a stage, a date field, a user,
    a pipeline."""
    for trigger in workflow.trigger_ids:
        if trigger.kind == "stage_reached" and not trigger.stage_id:
            trigger.stage_id = env.ref("crm.stage_lead3")
        if trigger.kind == "date" and not trigger.date_field_id:
            trigger.date_field_id = env["ir.model.fields"]._get("crm.lead", "date_deadline")
        for action in trigger.action_ids:
            if action.kind == "assign_user" and not action.user_id:
                action.user_id = user
            if action.activity_user_mode == "user" and not action.activity_user_id:
                action.activity_user_id = user
            if action.kind == "add_followers" and not (action.follower_user_ids or action.follower_partner_ids):
                action.follower_user_ids = user
            team_field = {"copy_lead": "new_team_id", "assign_team": "team_id"}.get(action.kind)
            if team_field and not action[team_field]:
                action[team_field] = team


def fire_same_change(env, workflow, team, user, partner):
    """Switch ``workflow`` on and make, for each trigger, the change firing it (as ``user``, on
    records of ``team`` and ``partner``); its runs, and the records fired on."""
    workflow.active = True
    records = env[workflow.target]
    for trigger in workflow.trigger_ids:
        records |= fire_trigger(env, trigger, team, user, partner)
    workflow.active = False
    runs = env["workflow.automation.run"].search([("workflow_id", "=", workflow.id)])
    runs = runs.sorted(lambda run: (run.trigger_id.sequence, run.trigger_id.id, run.id))
    return [(run.trigger_id.kind, run.action_id.kind, run.state) for run in runs], records


def fire_trigger(env, trigger, team, user, partner):
    if trigger.target == "project.project":
        return env["project.project"].create({"name": "Round trip"})
    stage = trigger.from_stage_id or env.ref("crm.stage_lead1")
    lead = env["crm.lead"].create({
        "name": "Opportunity 0", "type": "opportunity", "team_id": (trigger.workflow_id.team_ids[:1] or team).id,
        "stage_id": stage.id, "partner_id": partner.id, "user_id": user.id, "expected_revenue": 25000,
        **({trigger.date_field_id.name: LEAD_DATE} if trigger.kind == "date" else {}),
    })
    if trigger.kind in ("stage_reached", "stage_changed"):
        lead.with_user(user).write({"stage_id": trigger.stage_id.id})
    elif trigger.kind == "won":
        lead.action_set_won()
    elif trigger.kind == "lost":
        lead.action_set_lost()
    elif trigger.kind == "date":
        scan_at_occurrence(env, trigger)
    elif trigger.kind == "field_changed":  # the amounts that the presets' conditions ask for
        lead.with_user(user).write({field.name: BIG_AMOUNT for field in trigger.changed_field_ids})
    return lead


def scan_at_occurrence(env, trigger):
    """The hourly scan now, then at the hour of the occurrence of the lead's date."""
    shift = timedelta(days=trigger.date_offset * (-1 if trigger.date_direction == "before" else 1))
    with freeze_time(NOW):
        env["workflow.automation.trigger"]._cron_scan_date_triggers()
    with freeze_time(datetime(LEAD_DATE.year, LEAD_DATE.month, LEAD_DATE.day, trigger.date_hour) + shift
                     + timedelta(minutes=30)):
        env["workflow.automation.trigger"]._cron_scan_date_triggers()
