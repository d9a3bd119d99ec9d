import json
import threading
from datetime import date, datetime, timedelta
from unittest.mock import patch

import psycopg2

from odoo import SUPERUSER_ID, Command, api, fields
from odoo.exceptions import ValidationError
from odoo.tests import tagged
from odoo.tools import config

from .common import (
    WEBHOOK_ALLOWED_HOSTS,
    CommittedWorkflowCase,
    OutboundCase,
    WebhookEndpoint,
    closed_port_url,
    messages_containing,
)


@tagged("post_install", "-at_install")
class TestWebhook(OutboundCase):
    """Webhooks POSTed to a real HTTP server on 127.0.0.1, by the queue of delayed actions."""

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
        self.qualify(lead, self.salesman)
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
        lead = self.qualify(user=self.salesman)
        self.assertFalse(self.endpoint.received, "nothing is sent during the user's write")
        run = self.runs(workflow)
        self.assertEqual(run.state, "scheduled")
        self.assertLessEqual(run.date_due, fields.Datetime.now(), "due at once")
        self.assertFalse(messages_containing(lead, "Scheduled by"),
                         "an immediate webhook is not announced in the chatter")
        cron = self.env.ref("crm_workflow_automation.workflow_automation_run_cron")
        trigger = self.env["ir.cron.trigger"].search([("cron_id", "=", cron.id)], order="id desc", limit=1)
        self.assertLessEqual(trigger.call_at, fields.Datetime.now(), "the queue is woken at once")
        self.run_queue()
        self.assertEqual((run.state, run.message), ("done", "HTTP 200: slow"))
        self.assertEqual(self.endpoint.payloads[0]["id"], lead.id)

    def failed_message(self, problem, attempts=1):
        return f"The webhook to {self.endpoint.url} failed after {attempts} attempt(s): {problem}."

    def make_due(self, run):
        """Travel to the run's due date (in the data, for a run rescheduled in the future)."""
        self.assertGreater(run.date_due, fields.Datetime.now(), "rescheduled later, not slept on")
        run.date_due = fields.Datetime.now() - timedelta(seconds=1)

    def test_endpoint_down_fails_the_runs_only(self):
        workflow = self.webhook_workflow(url=closed_port_url(), webhook_retries=0)
        leads = self.qualify(user=self.salesman, count=3)
        self.run_queue()
        self.assertEqual(leads.stage_id, self.stage_qualified, "the user's change is kept")
        runs = self.runs(workflow).sorted("res_id")
        self.assertEqual(set(runs.mapped("state")), {"failed"})
        for run in runs:
            self.assertRegex(run.message, r"^The webhook to http://127\.0\.0\.1:\d+/hook failed after 1 attempt\(s\): "
                                          r"connection failed \(.*\)\.$")
        # one transaction per webhook: the first failure is told, the others counted for the next message
        self.assertIn("The action “Send a webhook” failed on 1 record(s)", workflow.message_ids[0].body)

    def test_slow_endpoint_times_out(self):
        workflow = self.webhook_workflow(webhook_timeout=1, webhook_retries=0)
        self.endpoint.responses = [(200, "too late", 3)]
        lead = self.qualify(user=self.salesman)
        self.run_queue()
        run = self.runs(workflow)
        self.assertEqual((run.state, run.message), ("failed", self.failed_message("no answer within 1 seconds")))
        self.assertEqual(lead.stage_id, self.stage_qualified)

    def test_server_error_is_rescheduled_with_a_growing_delay(self):
        """No retry while the run is locked: a new due date, later each time (1, then 2 minutes)."""
        workflow = self.webhook_workflow(webhook_retries=2)
        self.endpoint.responses = [(500, "busy", 0), (503, "still busy", 0)]
        self.qualify(user=self.salesman)
        run = self.runs(workflow)
        for attempt, (problem, minutes) in enumerate([("HTTP 500: busy", 1), ("HTTP 503: still busy", 2)], 1):
            start = fields.Datetime.now()
            self.run_queue()
            self.assertEqual((run.state, run.attempt_count), ("scheduled", attempt))
            self.assertEqual(len(self.endpoint.received), attempt)
            self.assertGreaterEqual(run.date_due, start + timedelta(minutes=minutes))
            self.assertLess(run.date_due, start + timedelta(minutes=minutes, seconds=30))
            self.assertTrue(run.message.startswith(
                f"The webhook to {self.endpoint.url} failed at attempt {attempt} of 3 ({problem}): next attempt on "
            ), run.message)
            self.make_due(run)
        self.run_queue()
        self.assertEqual((run.state, run.message, run.attempt_count), ("done", "HTTP 200: ok (attempt 3)", 3))
        self.assertEqual(self.endpoint.payloads[0], self.endpoint.payloads[2])

    def test_server_error_after_the_retries_fails_the_run(self):
        workflow = self.webhook_workflow(webhook_retries=1)
        self.endpoint.responses = [(503, "down", 0), (502, "still down", 0)]
        self.qualify(user=self.salesman)
        self.run_queue()
        run = self.runs(workflow)
        self.make_due(run)
        self.run_queue()
        self.assertEqual((run.state, run.message), ("failed", self.failed_message("HTTP 502: still down", 2)))

    def test_client_error_is_not_retried_and_its_answer_is_truncated(self):
        workflow = self.webhook_workflow(webhook_retries=2)
        self.endpoint.responses = [(404, "x" * 2000, 0)]
        self.qualify(user=self.salesman)
        self.run_queue()
        run = self.runs(workflow)
        self.assertEqual(run.state, "failed")
        self.assertEqual(run.message, self.failed_message(f"HTTP 404: {'x' * 500}…"))
        self.assertEqual(len(self.endpoint.received), 1, "a retry would get the same answer")

    def test_batch_of_records_is_sent_record_by_record(self):
        workflow = self.webhook_workflow()
        self.endpoint.responses = [(200, "ok", 0), (400, "bad", 0), (200, "ok", 0)]
        leads = self.qualify(user=self.salesman, count=3)
        self.run_queue()
        self.assertEqual(len(self.endpoint.received), 3, "nothing sent twice when one record fails")
        self.assertEqual(sorted(payload["id"] for payload in self.endpoint.payloads), sorted(leads.ids))
        self.assertEqual(sorted(self.runs(workflow).mapped("state")), ["done", "done", "failed"])

    def test_every_post_carries_its_run_as_idempotency_key(self):
        workflow = self.webhook_workflow()
        self.qualify(user=self.salesman, count=2)
        self.run_queue()
        uuid = self.env["ir.config_parameter"].get_param("database.uuid")
        runs = self.runs(workflow)
        self.assertEqual(
            sorted(headers["Idempotency-Key"] for headers in self.endpoint.headers),
            sorted(f"{uuid}-{run.id}" for run in runs),
        )

    def test_a_batch_of_webhooks_stops_at_its_time_budget(self):
        """The cron's time limit is 14 s: a batch may take 7 s. A webhook whose worst case (connecting,
        then waiting for the answer, 3 s each) no longer fits is left due, and the cron called again."""
        workflow = self.webhook_workflow(webhook_timeout=3)
        self.endpoint.responses = [(200, "slow", 2)] * 3
        self.qualify(user=self.salesman, count=3)
        cron = self.env.ref("crm_workflow_automation.workflow_automation_run_cron")
        Trigger = self.env["ir.cron.trigger"]
        triggers = Trigger.search([("cron_id", "=", cron.id)])
        with patch.dict(config.options, {"limit_time_real_cron": 14}):
            self.run_queue()
        self.assertEqual(len(self.endpoint.received), 1, "after 2 s, 2 + 6 s no longer fit in 7 s")
        self.assertEqual(len(self.runs(workflow, "scheduled")), 2, "left due for the next batch")
        woken = Trigger.search([("cron_id", "=", cron.id)]) - triggers
        self.assertLessEqual(min(woken.mapped("call_at")), fields.Datetime.now(), "the cron runs again at once")

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
class TestWebhookDelivery(CommittedWorkflowCase):
    """A worker killed after a POST never sends it again: on real, separately committed cursors."""

    def setUp(self):
        super().setUp()
        self.endpoint = WebhookEndpoint()
        self.addCleanup(self.endpoint.stop)
        with self.registry.cursor() as cr:
            api.Environment(cr, SUPERUSER_ID, {})["ir.config_parameter"].set_param(WEBHOOK_ALLOWED_HOSTS, "127.0.0.1")
        self.addCleanup(self.commit_param, WEBHOOK_ALLOWED_HOSTS, False)
        self.ids = self.commit_stage_workflow(
            "Webhook test", {"kind": "webhook", "webhook_url": self.endpoint.url, "webhook_retries": 0},
            ["Hook 0", "Hook 1"],
        )

    def commit_param(self, key, value):
        with self.registry.cursor() as cr:
            api.Environment(cr, SUPERUSER_ID, {})["ir.config_parameter"].set_param(key, value)

    def run_cron_in_a_worker(self, worker):
        """Run the queue's cron in a thread of its own, on its own connection, committing as in
        production; ``worker`` gets its backend pid once started, and the error it died of."""

        def work():
            try:
                with self.registry.cursor() as cr:
                    cr.execute("SELECT pg_backend_pid()")
                    worker["pid"] = cr.fetchone()[0]
                    api.Environment(cr, SUPERUSER_ID, {})["workflow.automation.run"]._cron_execute_due_runs()
            except Exception as error:  # noqa: BLE001 - a killed worker dies; the test looks at how
                worker["error"] = error

        thread = threading.Thread(target=work)
        thread.start()
        thread.join()

    def test_a_killed_worker_never_sends_a_delivered_post_again(self):
        worker = {}

        def kill_the_worker_on_the_second_post(count):
            if count == 2:
                with self.registry.cursor() as cr:
                    cr.execute("SELECT pg_terminate_backend(%s)", [worker["pid"]])

        self.endpoint.on_request = kill_the_worker_on_the_second_post
        self.run_cron_in_a_worker(worker)  # dies after its second POST, before recording it
        self.endpoint.on_request = None
        self.assertEqual(len(self.endpoint.received), 2)
        self.assertIsInstance(worker.get("error"), psycopg2.Error, "the worker was killed")
        survivor = {}
        self.run_cron_in_a_worker(survivor)  # another worker takes what is still due
        self.assertNotIn("error", survivor)
        first, second = self.ids["leads"]
        self.assertEqual([payload["id"] for payload in self.endpoint.payloads], [first, second, second],
                         "the first POST was recorded as sent before the second went: only the second is sent again")
        keys = [headers["Idempotency-Key"] for headers in self.endpoint.headers]
        self.assertEqual(keys[1], keys[2], "the receiver can drop the duplicate of the POST in flight")
        self.assertNotEqual(keys[0], keys[1])
        with self.registry.cursor() as cr:
            runs = api.Environment(cr, SUPERUSER_ID, {})["workflow.automation.run"].search(
                [("workflow_id", "=", self.ids["workflow"])]
            )
            self.assertEqual(runs.mapped("state"), ["done", "done"])


@tagged("post_install", "-at_install")
class TestEmail(OutboundCase):
    def email_workflow(self, template=None, **action):
        return self.create_stage_workflow(
            self.stage_qualified,
            [{"kind": "email", "mail_template_id": (template or self.create_template()).id, **action}],
        )

    def sent_message(self, lead):
        return lead.message_ids.filtered(lambda m: m.subject == "Your project Opportunity 0")

    def test_sent_as_the_triggering_user_whatever_the_template_says(self):
        self.email_workflow(self.create_template(email_from="{{ object.user_id.email_formatted }}"))
        lead = self.qualify(user=self.sales_manager)  # of a lead owned by the salesman, another user
        message = self.sent_message(lead)
        self.assertEqual(message.author_id, self.sales_manager.partner_id)
        self.assertEqual(message.email_from, self.sales_manager.email_formatted)
        self.assertIn(self.partner, message.partner_ids)

    def test_delayed_email_is_sent_as_the_triggering_user(self):
        workflow = self.email_workflow(delay=1, delay_unit="hours")
        lead = self.qualify(user=self.sales_manager)
        self.runs(workflow).action_run_now()  # by an administrator
        message = self.sent_message(lead)
        self.assertEqual(message.author_id, self.sales_manager.partner_id)
        self.assertEqual(message.email_from, self.sales_manager.email_formatted)

    def test_sent_from_a_fixed_address(self):
        self.email_workflow(email_from_mode="fixed", email_from="Sales <sales@example.com>")
        message = self.sent_message(self.qualify(user=self.sales_manager))
        self.assertEqual(message.email_from, "Sales <sales@example.com>")

    def test_template_error_fails_that_run_only(self):
        workflow = self.email_workflow(self.create_template(subject="{{ object.name / 0 }}"))
        lead = self.qualify(user=self.sales_manager)
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
