import logging
from collections import deque
from contextlib import contextmanager
from copy import copy

from dateutil.relativedelta import relativedelta
from markupsafe import Markup

from odoo import Command, _, api, fields, models, tools
from odoo.exceptions import UserError
from odoo.tools.misc import format_date

from .workflow_automation_mixin import DEPTH_CONTEXT_KEY

_logger = logging.getLogger(__name__)

# kind -> the targets it is offered for
ACTION_KINDS = {
    "assign_user": ("crm.lead", "project.project"),
    "assign_team": ("crm.lead",),
    "activity": ("crm.lead", "project.project"),
    "email": ("crm.lead", "project.project"),
    "note": ("crm.lead", "project.project"),
    "add_tags": ("crm.lead", "project.project"),
    "remove_tags": ("crm.lead", "project.project"),
    "set_stage": ("crm.lead", "project.project"),
    "mark_won": ("crm.lead",),
    "mark_lost": ("crm.lead",),
}

# kind -> the parameter fields it cannot do without (per target where they differ)
REQUIRED_PARAMETERS = {
    "assign_user": {"crm.lead": "user_id", "project.project": "user_id"},
    "assign_team": {"crm.lead": "team_id"},
    "activity": {"crm.lead": "activity_type_id", "project.project": "activity_type_id"},
    "email": {"crm.lead": "mail_template_id", "project.project": "mail_template_id"},
    "note": {"crm.lead": "note_body", "project.project": "note_body"},
    "add_tags": {"crm.lead": "tag_ids", "project.project": "project_tag_ids"},
    "remove_tags": {"crm.lead": "tag_ids", "project.project": "project_tag_ids"},
    "set_stage": {"crm.lead": "stage_id", "project.project": "project_stage_id"},
}

# "When completed" effect of a follow-up -> the targets it is offered for. The effects
# that are also action kinds run the same ``_execute_<kind>`` method as those actions.
FOLLOWUP_EFFECTS = {
    "set_stage": ("crm.lead", "project.project"),
    "mark_won": ("crm.lead",),
    "mark_lost": ("crm.lead",),
    "close_project": ("project.project",),
}


class WorkflowAutomationAction(models.Model):
    _name = "workflow.automation.action"
    _inherit = ["workflow.automation.component"]
    _description = "Workflow Automation Action"
    _order = "sequence, id"

    trigger_id = fields.Many2one("workflow.automation.trigger", required=True, ondelete="cascade", index=True)
    workflow_id = fields.Many2one(related="trigger_id.workflow_id", store=True, index=True)
    target = fields.Selection(related="trigger_id.workflow_id.target")
    sequence = fields.Integer(default=10)
    kind = fields.Selection(
        [
            ("assign_user", "Assign to a user"),
            ("assign_team", "Assign to a sales team"),
            ("activity", "Add a follow-up"),
            ("email", "Send an e-mail"),
            ("note", "Post an internal note"),
            ("add_tags", "Add tags"),
            ("remove_tags", "Remove tags"),
            ("set_stage", "Move to a stage"),
            ("mark_won", "Mark as won"),
            ("mark_lost", "Mark as lost"),
        ],
        string="Action",
        required=True,
    )
    # When
    delay = fields.Integer(help="Run this action this long after the trigger; 0 runs it at once.")
    delay_unit = fields.Selection(
        [("minutes", "Minutes"), ("hours", "Hours"), ("days", "Days"), ("weeks", "Weeks"), ("months", "Months")],
        default="days",
        required=True,
    )
    require_same_stage = fields.Boolean(
        string="Only if still in the stage",
        default=True,
        help="For a delayed action of a stage trigger: when the delay is over, run only if the record "
        "is still in the stage where it was scheduled; otherwise the run is skipped.",
    )
    # Assign
    user_id = fields.Many2one("res.users", ondelete="restrict")
    notify_assignee = fields.Boolean(
        string="Notify the new owner",
        help="Send Odoo's \"you have been assigned\" notification for each record. Off by default, "
        "as for Odoo's own automatic lead assignment: a batch would send one message per record.",
    )
    team_id = fields.Many2one("crm.team", string="Sales team", ondelete="restrict")
    # Follow-up: one activity, or an activity plan
    followup_mode = fields.Selection(
        [("activity", "Schedule one activity"), ("plan", "Apply an activity plan")],
        string="Follow-up",
        default="activity",
        required=True,
    )
    activity_plan_id = fields.Many2one(
        "mail.activity.plan",
        string="Activity plan",
        ondelete="restrict",
        domain="[('res_model', '=', target)]",
        help="Odoo's sequence of activities, applied as the “Schedule activity” dialog applies it: "
        "each activity's deadline and responsible come from the plan.",
    )
    followup_effect = fields.Selection(
        [
            ("none", "Nothing"),
            ("set_stage", "Move to a stage"),
            ("mark_won", "Mark as won"),
            ("mark_lost", "Mark as lost"),
            ("close_project", "Close the project"),
        ],
        string="When completed",
        default="none",
        required=True,
        help="Done when the last open activity of this follow-up on a record is marked done, and only "
        "if the record is still in the stage where the follow-up was added. Closing a project moves it "
        "to its first folded stage.",
    )
    followup_auto_complete = fields.Boolean(
        string="Complete when the record leaves the stage",
        help="When the record moves to another stage, the open activities of this follow-up are marked "
        "done automatically (without running the “When completed” effect).",
    )
    # Activity
    activity_type_id = fields.Many2one("mail.activity.type", ondelete="restrict")
    activity_summary = fields.Char(
        string="Summary", translate=True, help="Accepts placeholders such as {{ object.name }}."
    )
    activity_note = fields.Text(string="Note", translate=True, help="Accepts placeholders such as {{ object.name }}.")
    activity_deadline = fields.Integer(string="Deadline after", help="Deadline counted from the trigger.")
    activity_deadline_unit = fields.Selection(
        [("days", "Days"), ("weeks", "Weeks")], string="Deadline unit", default="days", required=True
    )
    activity_user_mode = fields.Selection(
        [("owner", "Record owner"), ("user", "Chosen user")],
        string="Responsible",
        default="owner",
        required=True,
        help="The owner is the salesperson (opportunities) or the project manager (projects); "
        "a record without one gets the user who triggered the workflow. For a plan, the responsible "
        "of its activities assigned “on demand”.",
    )
    activity_user_id = fields.Many2one("res.users", string="Responsible user", ondelete="restrict")
    # E-mail
    mail_template_id = fields.Many2one(
        "mail.template", string="E-mail template", ondelete="restrict", domain="[('model', '=', target)]"
    )
    email_from_mode = fields.Selection(
        [("user", "The user who triggered"), ("fixed", "A fixed address")],
        string="Send as",
        default="user",
        required=True,
    )
    email_from = fields.Char(string="Sender address", help="For example a shared mailbox: Sales <sales@example.com>")
    # Note
    note_body = fields.Text(string="Note text", translate=True, help="Accepts placeholders such as {{ object.name }}.")
    # Tags
    tag_ids = fields.Many2many("crm.tag", string="Tags")
    project_tag_ids = fields.Many2many("project.tags", string="Project tags")
    # Stage and outcome
    stage_id = fields.Many2one("crm.stage", ondelete="restrict")
    project_stage_id = fields.Many2one("project.project.stage", string="Project stage", ondelete="restrict")
    lost_reason_id = fields.Many2one("crm.lost.reason", string="Lost reason", ondelete="restrict")

    @api.depends("kind")
    def _compute_display_name(self):
        kinds = dict(self._fields["kind"]._description_selection(self.env))
        for action in self:
            action.display_name = kinds.get(action.kind, "")

    # ------------------------------------------------------------------
    # Validation
    # ------------------------------------------------------------------

    def _error_location(self):
        return _(
            "Workflow “%(workflow)s”, action “%(action)s”",
            workflow=self.workflow_id.display_name,
            action=self.display_name,
        )

    @api.constrains(
        "kind", "trigger_id", "user_id", "team_id", "activity_type_id", "mail_template_id",
        "note_body", "tag_ids", "project_tag_ids", "stage_id", "project_stage_id",
        "followup_mode", "activity_plan_id", "followup_effect",
    )
    def _check_parameters(self):
        for action in self:
            target = action.workflow_id.target
            if target not in ACTION_KINDS[action.kind]:
                action._raise_invalid("kind", _("this action is not available for this target."))
            for required in action._required_parameters():
                if not action[required]:
                    action._raise_invalid(required, _("this action needs a value here."))
            if action.mail_template_id and action.mail_template_id.model != target:
                action._raise_invalid("mail_template_id", _("the template is made for another model."))
            if "set_stage" in (action.kind, action._followup_effect()) and target == "crm.lead":
                action._check_stage_in_scope("stage_id")

    def _followup_effect(self):
        """The "when completed" effect: follow-ups only have one."""
        return self.followup_effect if self.kind == "activity" else "none"

    def _required_parameters(self):
        """The parameter fields this action cannot do without."""
        if self.kind == "activity" and self.followup_mode == "plan":
            required = ["activity_plan_id"]
        else:
            required = [REQUIRED_PARAMETERS.get(self.kind, {}).get(self.target)]
        if self._followup_effect() == "set_stage":
            required.append(REQUIRED_PARAMETERS["set_stage"][self.target])
        return [field_name for field_name in required if field_name]

    @api.constrains("kind", "trigger_id", "followup_mode", "activity_plan_id", "followup_effect")
    def _check_followup(self):
        for action in self.filtered(lambda a: a.kind == "activity"):
            if action.target not in FOLLOWUP_EFFECTS.get(action.followup_effect, (action.target,)):
                action._raise_invalid("followup_effect", _("this effect is not available for this target."))
            plan = action.activity_plan_id
            if action.followup_mode != "plan" or not plan:
                continue
            if plan.res_model != action.target:
                action._raise_invalid("activity_plan_id", _("the plan is made for another model."))
            if not plan.template_ids:
                action._raise_invalid("activity_plan_id", _("the plan has no activities."))
            if plan.company_id and plan.company_id != action.workflow_id.company_id:
                action._raise_invalid("activity_plan_id", _("the plan belongs to another company."))

    @api.constrains("delay")
    def _check_delay(self):
        for action in self.filtered(lambda a: a.delay < 0):
            action._raise_invalid("delay", _("the delay cannot be negative."))

    def _due_date(self, start):
        return start + relativedelta(**{self.delay_unit: self.delay})

    @api.constrains("activity_deadline")
    def _check_activity_deadline(self):
        for action in self.filtered(lambda a: a.activity_deadline < 0):
            action._raise_invalid("activity_deadline", _("the deadline cannot be negative."))

    @api.constrains("email_from_mode", "email_from")
    def _check_email_from(self):
        for action in self.filtered(lambda a: a.kind == "email" and a.email_from_mode == "fixed"):
            if not tools.email_normalize(action.email_from or ""):
                action._raise_invalid("email_from", _("enter a valid e-mail address."))

    # ------------------------------------------------------------------
    # Execution (DESIGN.md principles 3 and 4)
    # ------------------------------------------------------------------

    def _execute_safely(self, records, kind=None):
        """Run on the batch in a savepoint; on failure, isolate the failing records.

        ``kind`` is what to run, the action's own kind by default (or a follow-up's
        "when completed" effect). Return ``(errors, notes)``: ``{record id: error text}``
        for the records the action failed on, and ``{record id: text}`` that the action
        reported for the others (an ``_execute_<kind>`` method may return such notes,
        e.g. a webhook's response).
        """
        self.ensure_one()
        kind = kind or self.kind
        error, notes = self._execute_in_savepoint(records, kind)
        if not error:
            return {}, notes
        errors = {}
        if len(records) > 1:
            for record in records:
                record_error, record_notes = self._execute_in_savepoint(record, kind)
                if record_error:
                    errors[record.id] = record_error
                notes.update(record_notes)
        else:
            errors = {records.id: error}
        if errors:
            self.workflow_id._notify_failure(self, next(iter(errors.values())), len(errors))
        return errors, notes

    @contextmanager
    def _savepoint(self):
        """A savepoint that leaves the precommit hooks (mail tracking) to the commit.

        Odoo's default savepoint runs them on entering, which posts the tracking message
        of every record of the batch one by one, in the middle of the user's write. Here
        the ORM is flushed, and the hooks' state is put back if the action fails.
        """
        precommit = self.env.cr.precommit
        self.env.flush_all()
        funcs = deque(precommit._funcs)
        data = {key: copy(value) for key, value in precommit.data.items()}
        try:
            with self.env.cr.savepoint(flush=False):
                yield
                self.env.flush_all()
        except Exception:
            self.env.transaction.clear()  # the cache may hold values that were rolled back
            precommit._funcs, precommit.data = funcs, data
            raise

    def _execute_in_savepoint(self, records, kind):
        """Return ``(error text or None, notes)``."""
        try:
            with self._savepoint():
                notes = getattr(self, f"_execute_{kind}")(records) or {}
        except Exception as error:  # noqa: BLE001 - any failure must spare the user's write
            _logger.warning("Workflow action %s failed on %s: %s", self.id, records, error)
            return str(error) or error.__class__.__name__, {}
        return None, notes

    def _render(self, template_src, records):
        """Render ``{{ object.field }}`` placeholders with Odoo's sandboxed inline templates."""
        return self.env["mail.render.mixin"]._render_template(
            template_src, records._name, records.ids, engine="inline_template"
        )

    def _tags_field_value(self, command):
        tags = self.tag_ids if self.target == "crm.lead" else self.project_tag_ids
        return {"tag_ids": [command(tag.id) for tag in tags]}

    def _execute_assign_user(self, records):
        records.with_context(mail_auto_subscribe_no_notify=not self.notify_assignee)._workflow_assign_user(
            self.user_id
        )

    def _execute_assign_team(self, records):
        records.write({"team_id": self.team_id.id})

    def _execute_add_tags(self, records):
        records.write(self._tags_field_value(Command.link))

    def _execute_remove_tags(self, records):
        records.write(self._tags_field_value(Command.unlink))

    def _execute_set_stage(self, records):
        records._workflow_set_stage(self.stage_id if self.target == "crm.lead" else self.project_stage_id)

    def _execute_close_project(self, records):
        records._workflow_close()

    def _execute_mark_won(self, records):
        records.action_set_won()

    def _execute_mark_lost(self, records):
        records.action_set_lost(lost_reason_id=self.lost_reason_id.id)

    def _execute_note(self, records):
        bodies = self._render(self.note_body, records)
        for record in records:
            record.message_post(body=bodies[record.id], subtype_xmlid="mail.mt_note")

    def _execute_activity(self, records):
        """Add the follow-up: one activity, or the activities of a plan."""
        if self.followup_mode == "plan":
            self._apply_activity_plan(records)
        else:
            self._schedule_activity(records)
        if self.followup_auto_complete:
            records._workflow_set_followup_pending(True)

    def _schedule_activity(self, records):
        summaries = self._render(self.activity_summary or "", records)
        notes = self._render(self.activity_note or "", records)
        deadline = fields.Date.context_today(self) + relativedelta(
            **{self.activity_deadline_unit: self.activity_deadline}
        )
        self.env["mail.activity"].create([
            self._followup_activity_vals(
                record, self.activity_type_id, self._activity_responsible(record), deadline,
                summaries[record.id], notes[record.id],
            )
            for record in records
        ])

    def _apply_activity_plan(self, records):
        """Apply the plan as Odoo's "Schedule activity" dialog does (``mail.activity.schedule``):
        each template's responsible and deadline, and a chatter line listing them; here
        with one creation and one batch of chatter lines for all the records."""
        plan = self.activity_plan_id
        vals_list = []
        bodies = {}
        for record in records:
            lines = []
            for template in plan.template_ids:
                responsible = template._determine_responsible(self._activity_responsible(record), record)
                if responsible["error"]:
                    raise UserError(responsible["error"])
                user = responsible["responsible"]
                deadline = template._get_date_deadline()
                vals_list.append(self._followup_activity_vals(
                    record, template.activity_type_id, user, deadline, template.summary, template.note
                ))
                lines.append(_(
                    "%(activity)s, assigned to %(name)s, due on the %(deadline)s",
                    activity=template.summary or template.activity_type_id.name,
                    name=user.name,
                    deadline=format_date(self.env, deadline),
                ))
            bodies[record.id] = Markup("<p>%s</p><ul>%s</ul>") % (
                _("The plan “%s” has been started", plan.name),
                Markup().join(Markup("<li>%s</li>") % line for line in lines),
            )
        self.env["mail.activity"].create(vals_list)
        records._message_log_batch(bodies)

    def _followup_activity_vals(self, record, activity_type, user, deadline, summary, note):
        """An activity of this follow-up, remembering the action and the record's stage."""
        return {
            "res_model_id": self.env["ir.model"]._get_id(record._name),
            "res_id": record.id,
            "activity_type_id": activity_type.id,
            "summary": summary,
            "note": note,
            "date_deadline": deadline,
            "user_id": user.id,
            "workflow_action_id": self.id,
            "workflow_stage_ref": record.stage_id.id,
        }

    def _activity_responsible(self, record):
        if self.activity_user_mode == "user" and self.activity_user_id:
            return self.activity_user_id
        return record.user_id or self.env.user

    def _execute_email(self, records):
        sender = {"email_from": self.email_from} if self.email_from_mode == "fixed" else {}
        records.with_context(mail_create_nosubscribe=True).message_post_with_source(
            self.mail_template_id,
            message_type="auto_comment",
            subtype_xmlid="mail.mt_comment",
            **sender,
        )

    # ------------------------------------------------------------------
    # Follow-ups completed: the "when completed" effect
    # ------------------------------------------------------------------

    def _complete_followup(self, records, stage_refs, user):
        """Run the effect on ``records``, whose last open activity of this follow-up ``user``
        just marked done; ``stage_refs``: ``{record id: its stage when the follow-up was added}``.

        Return the values of the runs: done, failed (the user's "mark done" stays), or
        skipped with the reason.
        """
        self.ensure_one()
        Run = self.env["workflow.automation.run"]
        skipped = {
            record.id: reason
            for record in records
            if (reason := Run._followup_skip_reason(self, record, stage_refs[record.id]))
        }
        to_run = records.filtered(lambda record: record.id not in skipped)
        errors = {}
        if to_run:
            actors = self.trigger_id._actors(to_run, self.env.context.get(DEPTH_CONTEXT_KEY, 0) + 1)
            errors, _notes = self.with_env(actors.env)._execute_safely(actors, self.followup_effect)
        effect = dict(self._fields["followup_effect"]._description_selection(self.env))[self.followup_effect]
        done = _("Follow-up completed: %s.", effect)
        return [
            Run._prepare_followup_effect_vals(
                self, record, user, stage_refs[record.id],
                "skipped" if record.id in skipped else "failed" if record.id in errors else "done",
                skipped.get(record.id) or errors.get(record.id) or done,
            )
            for record in records
        ]
