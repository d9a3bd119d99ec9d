import contextlib
import json
import logging
import time
from collections import deque
from contextlib import contextmanager
from copy import copy
from urllib.parse import urlsplit

import pytz
import requests
from dateutil.relativedelta import relativedelta

from odoo import Command, _, api, fields, models, tools
from odoo.exceptions import AccessError

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
    "webhook": ("crm.lead", "project.project"),
}
# Effects that leave the database cannot be rolled back: the user never waits for them (they
# always go through the queue of delayed actions) and a batch is never replayed.
OUTBOUND_KINDS = ("webhook",)
# A webhook response kept on its run, in characters
WEBHOOK_RESPONSE_SIZE = 500
# Answers worth another attempt; other non-2xx answers would be the same the next time
WEBHOOK_RETRY_STATUSES = (408, 425, 429)

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
    "webhook": {"crm.lead": "webhook_url", "project.project": "webhook_url"},
}


class WebhookError(Exception):
    """A webhook not delivered; ``answered`` is False when the endpoint did not answer at all."""

    def __init__(self, message, answered):
        super().__init__(message)
        self.answered = answered


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
            ("webhook", "Send a webhook"),
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
        help="The user who triggered: the e-mail comes from that user's name and address (for a delayed "
        "e-mail too), whatever the template says. A fixed address: for example a shared mailbox.",
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
    # Webhook
    webhook_url = fields.Char(
        string="URL", help="An http:// or https:// address; the record is sent to it as JSON in a POST request."
    )
    webhook_field_ids = fields.Many2many(
        "ir.model.fields",
        "workflow_automation_action_webhook_field_rel",
        "action_id",
        "field_id",
        string="Fields to send",
        domain="[('model', '=', target), ('ttype', '!=', 'binary')]",
        help="Sent under \"record\", with the record's id and model, the workflow, the trigger and the user "
        "who triggered it.",
    )
    webhook_timeout = fields.Integer(
        string="Timeout", default=10, help="Seconds to wait for the answer to each attempt (1 to 30)."
    )
    webhook_retries = fields.Integer(
        string="Retries",
        default=2,
        help="Further attempts (0 to 5) when the endpoint does not answer, times out or answers with a "
        "server error (5xx), 408 or 429.",
    )
    webhook_sample_payload = fields.Text(string="Sample payload", compute="_compute_webhook_sample_payload")

    @api.depends("kind")
    def _compute_display_name(self):
        kinds = dict(self._fields["kind"]._description_selection(self.env))
        for action in self:
            action.display_name = kinds.get(action.kind, "")

    @api.depends("kind", "webhook_field_ids", "trigger_id", "target")
    @api.depends_context("uid")
    def _compute_webhook_sample_payload(self):
        """What would be sent for a record the admin can read (the latest one)."""
        self.webhook_sample_payload = False
        for action in self.filtered(lambda a: a.kind == "webhook" and a.target):
            Model = self.env[action.target]
            sample = Model.search([], limit=1) if Model.has_access("read") else Model
            with contextlib.suppress(AccessError):  # a field of a group the admin is not in
                action.webhook_sample_payload = sample and json.dumps(action._webhook_payload(sample), indent=4)

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

    def _is_queued(self):
        """Delayed actions, and outbound ones, which the user must not wait for, run in the queue."""
        self.ensure_one()
        return bool(self.delay) or self.kind in OUTBOUND_KINDS

    @api.constrains("activity_deadline")
    def _check_activity_deadline(self):
        for action in self.filtered(lambda a: a.activity_deadline < 0):
            action._raise_invalid("activity_deadline", _("the deadline cannot be negative."))

    @api.constrains("kind", "webhook_url", "webhook_timeout", "webhook_retries", "webhook_field_ids")
    def _check_webhook(self):
        for action in self.filtered(lambda a: a.kind == "webhook"):
            url = urlsplit(action.webhook_url or "")
            if url.scheme not in ("http", "https") or not url.hostname:
                action._raise_invalid("webhook_url", _("enter an http:// or https:// address."))
            if not 1 <= action.webhook_timeout <= 30:
                action._raise_invalid("webhook_timeout", _("the timeout must be between 1 and 30 seconds."))
            if not 0 <= action.webhook_retries <= 5:
                action._raise_invalid("webhook_retries", _("the number of retries must be between 0 and 5."))
            wrong = action.webhook_field_ids.filtered(
                lambda f, action=action: f.model != action.target or f.ttype == "binary"
            )
            if wrong:
                action._raise_invalid(
                    "webhook_field_ids",
                    _(
                        "“%s” cannot be sent: choose fields of the target, other than files.",
                        wrong[0].field_description,
                    ),
                )

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
        Webhooks are sent record by record and never replayed: a sent request cannot be
        rolled back.
        """
        self.ensure_one()
        if self.kind == "webhook":
            errors, notes = self._send_webhooks(records)
        else:
            errors, notes = self._execute_isolating_failures(records)
        if errors:
            self.workflow_id._notify_failure(self, next(iter(errors.values())), len(errors))
        return errors, notes

    def _execute_isolating_failures(self, records):
        """The batch at once; if it fails, record by record, to find the failing ones."""
        error, notes = self._execute_in_savepoint(records)
        if not error:
            return {}, notes
        if len(records) == 1:
            return {records.id: error}, {}
        errors = {}
        for record in records:
            record_error, record_notes = self._execute_in_savepoint(record)
            if record_error:
                errors[record.id] = record_error
            notes.update(record_notes)
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
                notes = getattr(self, f"_execute_{self.kind}")(records) or {}
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
        records.with_context(mail_create_nosubscribe=True).message_post_with_source(
            self.mail_template_id,
            message_type="auto_comment",
            subtype_xmlid="mail.mt_comment",
            **self._email_sender(),
        )

    def _email_sender(self):
        """The chosen sender, over the template's own "From" (the queue keeps the triggering user)."""
        if self.email_from_mode == "fixed":
            return {"email_from": self.email_from}
        return {"email_from": self.env.user.email_formatted, "author_id": self.env.user.partner_id.id}

    def action_preview_template(self):
        """Odoo's own preview of the e-mail template, on a record of the target."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("mail.mail_template_preview_action")
        action["context"] = {"default_mail_template_id": self.mail_template_id.id}
        return action

    # ------------------------------------------------------------------
    # Webhooks
    # ------------------------------------------------------------------

    def _webhook_payload(self, record):
        """The JSON document sent for ``record``: who, what, and the chosen fields."""
        user = self.env.user
        return {
            "model": record._name,
            "id": record.id,
            "workflow": {"id": self.workflow_id.id, "name": self.workflow_id.name},
            "trigger": {"id": self.trigger_id.id, "name": self.trigger_id.display_name},
            "user": {"id": user.id, "name": user.name},
            "record": {field.name: self._webhook_value(record, field.name) for field in self.webhook_field_ids},
        }

    @api.model
    def _webhook_value(self, record, field_name):
        """A field's value as JSON: a many2one as id and name, x2many as ids, dates in ISO 8601
        (date and time in UTC), an empty value as null."""
        field_type = record._fields[field_name].type
        value = record[field_name]
        if field_type in ("one2many", "many2many"):
            return value.ids
        if field_type == "many2one":
            return {"id": value.id, "name": value.display_name} if value else None
        if field_type == "reference":
            return {"model": value._name, "id": value.id, "name": value.display_name} if value else None
        if field_type == "boolean":
            return value
        if value is False:  # the empty value of the other types
            return None
        if field_type == "datetime":
            return pytz.utc.localize(value).isoformat()
        if field_type == "date":
            return value.isoformat()
        return str(value) if field_type == "html" else value

    def _send_webhooks(self, records):
        """POST each record's payload; return ``(errors, notes)`` by record id.

        Once the endpoint has not answered at all (refused, timed out), the rest of the batch
        is not tried: those runs fail at once, to be retried, instead of each waiting in vain.
        """
        errors, notes = {}, {}
        unreachable = None
        with requests.Session() as session:
            for record in records:
                if unreachable:
                    errors[record.id] = _(
                        "Not sent: the endpoint did not answer for an earlier record (%s).", unreachable
                    )
                    continue
                try:
                    notes[record.id] = self._post_webhook(session, self._webhook_payload(record))
                except WebhookError as error:
                    errors[record.id] = str(error)
                    unreachable = None if error.answered else str(error)
                except Exception as error:  # noqa: BLE001 - a field that fails to compute fails its run only
                    _logger.warning("Webhook of action %s failed on %s: %s", self.id, record, error)
                    errors[record.id] = str(error) or error.__class__.__name__
        return errors, notes

    def _post_webhook(self, session, payload):
        """POST ``payload``, retrying what may pass next time; return the answer, raise WebhookError."""
        data = json.dumps(payload, default=str)
        attempts = self.webhook_retries + 1
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                time.sleep(attempt - 1)  # 1 s, 2 s, ...: a moment for the endpoint to recover
            try:
                response = session.post(
                    self.webhook_url, data=data, headers={"Content-Type": "application/json"},
                    timeout=self.webhook_timeout, allow_redirects=False,
                )
            except requests.Timeout:
                problem, answered = _("no answer within %s seconds", self.webhook_timeout), False
            except requests.RequestException as error:
                problem, answered = _("connection failed (%s)", error), False
            else:
                answer = self._webhook_answer(response)
                if 200 <= response.status_code < 300:
                    return answer if attempt == 1 else _("%(answer)s (attempt %(attempt)s)", answer=answer,
                                                         attempt=attempt)
                problem, answered = answer, True
                if response.status_code < 500 and response.status_code not in WEBHOOK_RETRY_STATUSES:
                    break
        raise WebhookError(_("%(problem)s, after %(count)s attempt(s).", problem=problem, count=attempt), answered)

    @api.model
    def _webhook_answer(self, response):
        body = response.text
        if len(body) > WEBHOOK_RESPONSE_SIZE:
            body = body[:WEBHOOK_RESPONSE_SIZE] + "…"
        return _("HTTP %(status)s: %(body)s", status=response.status_code, body=body)
