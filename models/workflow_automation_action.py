import logging
from collections import deque
from contextlib import contextmanager
from copy import copy

from dateutil.relativedelta import relativedelta
from markupsafe import Markup

from odoo import Command, _, api, fields, models, tools

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

# Kinds whose effect leaves the database (a message to a customer, a call to another
# system): on test records they are recorded, not sent (DESIGN.md principle 9).
OUTBOUND_KINDS = frozenset({"email", "sms", "webhook"})

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
            ("activity", "Schedule an activity"),
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
        "a record without one gets the user who triggered the workflow.",
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
    )
    def _check_parameters(self):
        for action in self:
            target = action.workflow_id.target
            if target not in ACTION_KINDS[action.kind]:
                action._raise_invalid("kind", _("this action is not available for this target."))
            required = REQUIRED_PARAMETERS.get(action.kind, {}).get(target)
            if required and not action[required]:
                action._raise_invalid(required, _("this action needs a value here."))
            if action.mail_template_id and action.mail_template_id.model != target:
                action._raise_invalid("mail_template_id", _("the template is made for another model."))
            if action.kind == "set_stage" and target == "crm.lead":
                action._check_stage_in_scope("stage_id")

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

    def _execute_safely(self, records):
        """Run on the batch in a savepoint; on failure, isolate the failing records.

        Return ``(errors, notes)``: ``{record id: error text}`` for the records the action
        failed on, and ``{record id: text}`` that the action reported for the others
        (an ``_execute_<kind>`` method may return such notes, e.g. a webhook's response).
        """
        self.ensure_one()
        error, notes = self._execute_in_savepoint(records)
        if not error:
            return {}, notes
        errors = {}
        if len(records) > 1:
            for record in records:
                record_error, record_notes = self._execute_in_savepoint(record)
                if record_error:
                    errors[record.id] = record_error
                notes.update(record_notes)
        else:
            errors = {records.id: error}
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

    def _execute_in_savepoint(self, records):
        """Return ``(error text or None, notes)``."""
        try:
            with self._savepoint():
                notes = self._execute(records)
        except Exception as error:  # noqa: BLE001 - any failure must spare the user's write
            _logger.warning("Workflow action %s failed on %s: %s", self.id, records, error)
            return str(error) or error.__class__.__name__, {}
        return None, notes

    def _execute(self, records):
        """Run the action on ``records``; return ``{record id: note}``.

        On test records, an effect that would leave the database is recorded instead.
        """
        held = records.filtered("workflow_test_id") if self.kind in OUTBOUND_KINDS else records.browse()
        notes = self._record_not_sent(held) if held else {}
        if records - held:
            notes.update(getattr(self, f"_execute_{self.kind}")(records - held) or {})
        return notes

    def _record_not_sent(self, records):
        """Say in each test record's chatter what would have been sent, in one batch.

        An outbound kind may describe its effect with ``_describe_<kind>(records)``
        (``{record id: text}``); it runs as the real action would, so that an error
        in, say, the e-mail's template fails the test run as it would fail a real one.
        """
        describe = getattr(self, f"_describe_{self.kind}", None)
        texts = describe(records) if describe else dict.fromkeys(records.ids, self.display_name)
        records._message_log_batch({
            record_id: Markup("<p>%s</p>") % _(
                "Test record, not sent: %(effect)s (workflow “%(workflow)s”).",
                effect=text,
                workflow=self.workflow_id.name,
            )
            for record_id, text in texts.items()
        })
        return dict.fromkeys(records.ids, _("test: not sent"))

    def _describe_email(self, records):
        subjects = self.mail_template_id._render_field("subject", records.ids)
        return {record_id: _("the e-mail “%s”", subject) for record_id, subject in subjects.items()}

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
        stage = self.stage_id if self.target == "crm.lead" else self.project_stage_id
        records.write({"stage_id": stage.id})

    def _execute_mark_won(self, records):
        records.action_set_won()

    def _execute_mark_lost(self, records):
        records.action_set_lost(lost_reason_id=self.lost_reason_id.id)

    def _execute_note(self, records):
        bodies = self._render(self.note_body, records)
        for record in records:
            record.message_post(body=bodies[record.id], subtype_xmlid="mail.mt_note")

    def _execute_activity(self, records):
        summaries = self._render(self.activity_summary or "", records)
        notes = self._render(self.activity_note or "", records)
        deadline = fields.Date.context_today(self) + relativedelta(
            **{self.activity_deadline_unit: self.activity_deadline}
        )
        model_id = self.env["ir.model"]._get_id(records._name)
        self.env["mail.activity"].create([
            {
                "res_model_id": model_id,
                "res_id": record.id,
                "activity_type_id": self.activity_type_id.id,
                "summary": summaries[record.id],
                "note": notes[record.id],
                "date_deadline": deadline,
                "user_id": self._activity_responsible(record).id,
            }
            for record in records
        ])

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
