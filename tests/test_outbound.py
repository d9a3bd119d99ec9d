import json
from datetime import date, datetime

from odoo import Command, fields
from odoo.exceptions import ValidationError
from odoo.tests import tagged

from ..models.workflow_automation_run import OUTBOUND_BATCH_SIZE
from .common import OutboundCase, closed_port_url


@tagged("post_install", "-at_install")
class TestWebhook(OutboundCase):
    """Webhooks POSTed to a real HTTP server on 127.0.0.1, by the queue of delayed actions."""

    def webhook_workflow(self, url=None, target="crm.lead", kind="stage_reached", active=True, **action):
        trigger = {"kind": kind, "stage_id": self.stage_qualified.id} if kind == "stage_reached" else {"kind": kind}
        return self.create_workflow(
            [{**trigger, "actions": [{"kind": "webhook", "webhook_url": url or self.endpoint.url, **action}]}],
            name="Tell the ERP",
            target=target,
            active=active,
        )

    def qualify(self, leads=None):
        leads = leads or self.create_leads()
        leads.with_user(self.salesman).write({"stage_id": self.stage_qualified.id})
        return leads

    def test_test_record_is_not_sent_but_noted(self):
        """A switched-off workflow acts on its test record: the webhook is recorded, not POSTed."""
        workflow = self.webhook_workflow(active=False)
        test_lead = self.create_test_record(workflow, stage_id=self.stage_new.id)
        test_lead.stage_id = self.stage_qualified
        self.run_queue()
        self.assertEqual(self.endpoint.received, [])
        self.assertEqual(self.runs(workflow).mapped("message"), ["test: not sent"])
        self.assertIn(f"the webhook to {self.endpoint.url}", test_lead.message_ids[0].body)

    def test_posts_the_chosen_fields_as_json(self):
        field_names = ["name", "stage_id", "tag_ids", "date_deadline", "date_automation_last", "expected_revenue",
                       "priority", "description", "partner_id", "lost_reason_id", "active"]
        workflow = self.webhook_workflow(webhook_field_ids=[
            Command.set([self.env["ir.model.fields"]._get("crm.lead", name).id for name in field_names])
        ])
        lead = self.create_leads(
            tag_ids=[Command.set(self.tag.ids)], date_deadline=date(2026, 5, 1), expected_revenue=1200.5,
            priority="2", description="<p>Big one</p>", date_automation_last=datetime(2026, 4, 2, 13, 30),
        )
        self.qualify(lead)
        self.run_queue()
        run = self.runs(workflow)
        self.assertEqual((run.state, run.message), ("done", "HTTP 200: ok"))
        [(content_type, payload)] = self.endpoint.received
        self.assertEqual(content_type, "application/json")
        self.assertEqual(payload, {
            "model": "crm.lead",
            "id": lead.id,
            "workflow": {"id": workflow.id, "name": "Tell the ERP"},
            "trigger": {"id": workflow.trigger_ids.id, "name": "Stage reached: Qualified"},
            "user": {"id": self.salesman.id, "name": "Sally Sales"},
            "record": {
                "name": "Opportunity 0",
                "stage_id": {"id": self.stage_qualified.id, "name": "Qualified"},
                "tag_ids": self.tag.ids,
                "date_deadline": "2026-05-01",
                "date_automation_last": "2026-04-02T13:30:00+00:00",
                "expected_revenue": 1200.5,
                "priority": "2",
                "description": "<p>Big one</p>",
                "partner_id": {"id": self.partner.id, "name": "Acme Corp"},
                "lost_reason_id": None,
                "active": True,
            },
        })

    def test_the_user_never_waits_for_the_endpoint(self):
        workflow = self.webhook_workflow()
        self.endpoint.responses = [(200, "slow", 3)]
        lead = self.qualify()
        self.assertFalse(self.endpoint.received, "nothing is sent during the user's write")
        run = self.runs(workflow)
        self.assertEqual(run.state, "scheduled")
        self.assertLessEqual(run.date_due, fields.Datetime.now(), "due at once")
        self.assertFalse(lead.message_ids.filtered(lambda m: "Scheduled by" in (m.body or "")),
                         "an immediate webhook is not announced in the chatter")
        cron = self.env.ref("crm_workflow_automation.workflow_automation_run_cron")
        trigger = self.env["ir.cron.trigger"].search([("cron_id", "=", cron.id)], order="id desc", limit=1)
        self.assertLessEqual(trigger.call_at, fields.Datetime.now(), "the queue is woken at once")
        self.run_queue()
        self.assertEqual((run.state, run.message), ("done", "HTTP 200: slow"))
        self.assertEqual(self.endpoint.payloads[0]["id"], lead.id)

    def test_endpoint_down_fails_the_runs_only(self):
        url = closed_port_url()
        workflow = self.webhook_workflow(url=url, webhook_retries=1)
        leads = self.qualify(self.create_leads(3))
        self.run_queue()
        self.assertEqual(leads.stage_id, self.stage_qualified, "the user's change is kept")
        runs = self.runs(workflow).sorted("res_id")
        self.assertEqual(set(runs.mapped("state")), {"failed"})
        self.assertRegex(runs[0].message, rf"^Webhook to {url}: connection failed \(.*\), after 2 attempt\(s\)\.$")
        # the endpoint did not answer: the rest of the batch is not tried (and does not wait)
        for run in runs[1:]:
            self.assertTrue(run.message.startswith(f"Webhook to {url}: Not sent: the endpoint did not answer for an"))
        self.assertIn("failed on 3 record(s)", workflow.message_ids[0].body)

    def test_slow_endpoint_times_out(self):
        workflow = self.webhook_workflow(webhook_timeout=1, webhook_retries=0)
        self.endpoint.responses = [(200, "too late", 3)]
        lead = self.qualify()
        self.run_queue()
        run = self.runs(workflow)
        self.assertEqual(run.state, "failed")
        self.assertEqual(
            run.message, f"Webhook to {self.endpoint.url}: no answer within 1 seconds, after 1 attempt(s)."
        )
        self.assertEqual(lead.stage_id, self.stage_qualified)

    def test_server_error_is_retried(self):
        workflow = self.webhook_workflow(webhook_retries=2)
        self.endpoint.responses = [(500, "busy", 0)]
        self.qualify()
        self.run_queue()
        run = self.runs(workflow)
        self.assertEqual((run.state, run.message), ("done", "HTTP 200: ok (attempt 2)"))
        self.assertEqual(len(self.endpoint.received), 2)
        self.assertEqual(self.endpoint.payloads[0], self.endpoint.payloads[1])

    def test_server_error_after_the_retries_fails_the_run(self):
        workflow = self.webhook_workflow(webhook_retries=1)
        self.endpoint.responses = [(503, "down", 0), (502, "still down", 0)]
        self.qualify()
        self.run_queue()
        run = self.runs(workflow)
        self.assertEqual(run.state, "failed")
        self.assertEqual(run.message, f"Webhook to {self.endpoint.url}: HTTP 502: still down, after 2 attempt(s).")

    def test_client_error_is_not_retried_and_its_answer_is_truncated(self):
        workflow = self.webhook_workflow(webhook_retries=2)
        self.endpoint.responses = [(404, "x" * 2000, 0)]
        self.qualify()
        self.run_queue()
        run = self.runs(workflow)
        self.assertEqual(run.state, "failed")
        self.assertEqual(run.message, f"Webhook to {self.endpoint.url}: HTTP 404: {'x' * 500}…, after 1 attempt(s).")
        self.assertEqual(len(self.endpoint.received), 1, "a retry would get the same answer")

    def test_batch_of_records_is_sent_record_by_record(self):
        workflow = self.webhook_workflow()
        self.endpoint.responses = [(200, "ok", 0), (400, "bad", 0), (200, "ok", 0)]
        leads = self.qualify(self.create_leads(3))
        self.run_queue()
        self.assertEqual(len(self.endpoint.received), 3, "nothing sent twice when one record fails")
        self.assertEqual(sorted(payload["id"] for payload in self.endpoint.payloads), sorted(leads.ids))
        self.assertEqual(sorted(self.runs(workflow).mapped("state")), ["done", "done", "failed"])

    def test_the_queue_sends_a_limited_number_of_webhooks_per_batch(self):
        workflow = self.webhook_workflow()
        self.qualify(self.create_leads(OUTBOUND_BATCH_SIZE + 5))
        self.run_queue()  # one batch in tests: the cron commits between batches otherwise
        self.assertEqual(len(self.endpoint.received), OUTBOUND_BATCH_SIZE)
        self.assertEqual(len(self.runs(workflow, "scheduled")), 5, "left for the next batch")

    def test_project_webhook(self):
        workflow = self.webhook_workflow(
            target="project.project", kind="create",
            webhook_field_ids=[Command.set(self.env["ir.model.fields"]._get("project.project", "name").ids)],
        )
        project = self.env["project.project"].create({"name": "Rollout"})
        self.run_queue()
        self.assertEqual(self.runs(workflow).state, "done")
        self.assertEqual(self.endpoint.payloads, [{
            "model": "project.project", "id": project.id,
            "workflow": {"id": workflow.id, "name": "Tell the ERP"},
            "trigger": {"id": workflow.trigger_ids.id, "name": "Record created"},
            "user": {"id": self.env.user.id, "name": self.env.user.name},
            "record": {"name": "Rollout"},
        }])

    def test_sample_payload_shows_the_document(self):
        self.create_leads()
        workflow = self.webhook_workflow(
            active=False, webhook_field_ids=[Command.set(self.env["ir.model.fields"]._get("crm.lead", "name").ids)]
        )
        sample = json.loads(workflow.trigger_ids.action_ids.webhook_sample_payload)
        self.assertEqual(set(sample), {"model", "id", "workflow", "trigger", "user", "record"})
        self.assertEqual(list(sample["record"]), ["name"])

    def test_bad_settings_are_refused_at_save(self):
        cases = [
            ({"webhook_url": "ftp://files.example.com/hook"}, "URL", "enter an http:// or https:// address"),
            ({"webhook_url": "file:///etc/passwd"}, "URL", "enter an http:// or https:// address"),
            ({"webhook_url": "hooks.example.com/odoo"}, "URL", "enter an http:// or https:// address"),
            ({"webhook_url": "https://"}, "URL", "enter an http:// or https:// address"),
            ({"webhook_timeout": 0}, "Timeout", "the timeout must be between 1 and 30 seconds"),
            ({"webhook_retries": 6}, "Retries", "the number of retries must be between 0 and 5"),
            ({"webhook_field_ids": [Command.set(self.env["ir.model.fields"]._get("res.partner", "name").ids)]},
             "Fields to send", "“Name” cannot be sent: choose fields of the target, other than files"),
        ]
        for values, field, message in cases:
            with self.subTest(values=values), self.assertRaisesRegex(
                ValidationError, f"Workflow “Tell the ERP”, action “Send a webhook”, field “{field}”: {message}"
            ):
                self.webhook_workflow(active=False, **values)


@tagged("post_install", "-at_install")
class TestEmail(OutboundCase):
    def email_workflow(self, template=None, **action):
        return self.create_stage_workflow(
            self.stage_qualified,
            [{"kind": "email", "mail_template_id": (template or self.create_template()).id, **action}],
        )

    def qualify(self, user):
        lead = self.create_leads()  # owned by the salesman, another user
        lead.with_user(user).write({"stage_id": self.stage_qualified.id})
        return lead

    def sent_message(self, lead):
        return lead.message_ids.filtered(lambda m: m.subject == "Your project Opportunity 0")

    def test_sent_as_the_triggering_user_whatever_the_template_says(self):
        self.email_workflow(self.create_template(email_from="{{ object.user_id.email_formatted }}"))
        lead = self.qualify(self.sales_manager)
        message = self.sent_message(lead)
        self.assertEqual(message.author_id, self.sales_manager.partner_id)
        self.assertEqual(message.email_from, self.sales_manager.email_formatted)
        self.assertIn(self.partner, message.partner_ids)

    def test_delayed_email_is_sent_as_the_triggering_user(self):
        workflow = self.email_workflow(delay=1, delay_unit="hours")
        lead = self.qualify(self.sales_manager)
        self.runs(workflow).action_run_now()  # by an administrator
        message = self.sent_message(lead)
        self.assertEqual(message.author_id, self.sales_manager.partner_id)
        self.assertEqual(message.email_from, self.sales_manager.email_formatted)

    def test_sent_from_a_fixed_address(self):
        self.email_workflow(email_from_mode="fixed", email_from="Sales <sales@example.com>")
        message = self.sent_message(self.qualify(self.sales_manager))
        self.assertEqual(message.email_from, "Sales <sales@example.com>")

    def test_template_error_fails_that_run_only(self):
        workflow = self.email_workflow(self.create_template(subject="{{ object.name / 0 }}"))
        lead = self.qualify(self.sales_manager)
        run = self.runs(workflow)
        self.assertEqual(run.state, "failed")
        self.assertTrue(run.message.startswith("Template “Follow-up”: "), run.message)
        self.assertEqual(lead.stage_id, self.stage_qualified, "the user's change is kept")

    def test_preview_opens_odoo_template_preview(self):
        template = self.create_template()
        action = self.email_workflow(template).trigger_ids.action_ids
        self.create_leads()
        window = action.action_preview_template()
        self.assertEqual((window["res_model"], window["target"]), ("mail.template.preview", "new"))
        preview = self.env["mail.template.preview"].with_context(**window["context"]).create({})
        self.assertEqual(preview.mail_template_id, template)
        self.assertEqual(preview.subject, f"Your project {preview.resource_ref.name}")
