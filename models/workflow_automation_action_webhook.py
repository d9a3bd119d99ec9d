"""The "send a webhook" action: its settings, checks and document. The queue sends it
(``workflow_automation_run_webhook.py``) through ``services/webhook_transport.py``."""

import contextlib
import json

import pytz

from odoo import _, api, fields, models
from odoo.exceptions import AccessError

from ..services import webhook_transport


class WorkflowAutomationAction(models.Model):
    _inherit = "workflow.automation.action"

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

    @api.constrains("kind", "webhook_url", "webhook_timeout", "webhook_retries", "webhook_field_ids")
    def _check_webhook(self):
        for action in self.filtered(lambda a: a.kind == "webhook"):
            problem = webhook_transport.url_problem(action.webhook_url or "", action._webhook_allowed_hosts())
            if problem:
                action._raise_invalid("webhook_url", f"{self.env._(problem)}.")
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

    def _describe_webhook(self, records):
        return dict.fromkeys(records.ids, _("the webhook to %s", self.webhook_url))

    def _webhook_payload(self, record):
        """The JSON document sent for ``record``: who, what, and the chosen fields."""
        user = self.env.user
        return {
            "model": record._name,
            "id": record.id,
            # _origin: the sample payload of an action being edited, whose records are unsaved copies
            "workflow": {"id": self.workflow_id._origin.id, "name": self.workflow_id.name},
            "trigger": {"id": self.trigger_id._origin.id, "name": self.trigger_id.display_name},
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

    def _webhook_allowed_hosts(self):
        """The hosts webhooks may call although they are not public (a system parameter)."""
        hosts = self.env["ir.config_parameter"].sudo().get_param(webhook_transport.ALLOWED_HOSTS_PARAMETER) or ""
        return {host.strip().strip("[]").lower() for host in hosts.split(",") if host.strip()}

    def _post_webhook(self, record, headers):
        """POST ``record``'s document once, with ``headers``; return the answer's text.

        Raise ``webhook_transport.WebhookError``: whether to try again is the queue's decision.
        """
        self.ensure_one()
        answer = webhook_transport.post(
            self.webhook_url,
            json.dumps(self._webhook_payload(record), default=str),
            {"Content-Type": "application/json", **headers},
            self.webhook_timeout,
            self._webhook_allowed_hosts(),
        )
        return self.env._(answer)
