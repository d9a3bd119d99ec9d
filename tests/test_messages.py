from odoo.tests import tagged
from odoo.tools import html2plaintext, mute_logger

from .common import OutboundCase, WorkflowAutomationCase, closed_port_url, load_french

ACTION_LOGGER = "odoo.addons.crm_workflow_automation.models.workflow_automation_action"
BROKEN_BODY = '<p>Hello <t t-out="object.no_such_field"/>, "see" &amp; sign</p>'


class FrenchCase(WorkflowAutomationCase):
    """With French active and this module's French terms loaded, a French salesman and a
    French workflow manager."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        load_french(cls.env)
        cls.salesman_fr = cls.new_salesman("wa_salesman_fr", name="Sacha Vendeur", lang="fr_FR")
        cls.manager_fr = cls.new_workflow_manager("wa_manager_fr", name="Françoise Manager", lang="fr_FR")
        cls.partner_fr = cls.env["res.partner"].create({"name": "Dupont SA", "lang": "fr_FR"})

    @staticmethod
    def as_user(records, user):
        """``records`` in a request of ``user``: their rights and their language."""
        return records.with_user(user).with_context(lang=user.lang)

    @staticmethod
    def followed_by(workflow, users):
        workflow.message_unsubscribe(partner_ids=workflow.message_partner_ids.ids)
        workflow.message_subscribe(partner_ids=users.partner_id.ids)

    @staticmethod
    def notices(workflow):
        return workflow.message_ids.filtered(lambda message: message.subtype_id.name == "Discussions")


@tagged("post_install", "-at_install")
class TestFailureText(FrenchCase):
    """A failed run and the followers' notice say in one sentence what failed, where and why."""

    @mute_logger(ACTION_LOGGER)
    def test_a_broken_email_template_is_named_with_the_missing_field(self):
        template = self.create_template(name="Proposal", body_html=BROKEN_BODY)
        workflow = self.create_stage_workflow(
            self.stage_qualified, [{"kind": "email", "mail_template_id": template.id}], name="Proposals"
        )
        lead = self.create_leads()
        self.drag(lead, {"stage_id": self.stage_qualified.id}, self.salesman)

        run = self.runs(workflow)
        sentence = "Template “Proposal”: field “no_such_field” does not exist on Lead/Opportunity"
        self.assertEqual((run.state, run.message), ("failed", sentence))
        notice = self.notices(workflow)
        self.assertEqual(len(notice), 1)
        self.assertEqual(notice.author_id, self.env.ref("base.partner_root"), "posted by the system")
        self.assertIn(
            f"The action “Send an e-mail” failed on 1 record(s), such as “Opportunity 0”: {sentence}",
            html2plaintext(notice.body),
        )
        for text in (run.message, notice.body):
            for leak in ("Traceback", "/opt/", "File ", "&amp;", "&#34;", "&lt;"):
                self.assertNotIn(leak, text)

    @mute_logger(ACTION_LOGGER)
    def test_a_broken_text_names_its_field(self):
        workflow = self.create_stage_workflow(self.stage_qualified, [
            {"kind": "note", "note_body": "Dear {{ object.partner_id.no_such_field }}"},
        ])
        self.drag(self.create_leads(), {"stage_id": self.stage_qualified.id}, self.salesman)
        self.assertEqual(
            self.runs(workflow).message,
            "Template “Note text”: field “no_such_field” does not exist on Contact",
        )

    @mute_logger(ACTION_LOGGER)
    def test_other_errors_are_one_line(self):
        workflow = self.create_stage_workflow(self.stage_qualified, [
            {"kind": "note", "note_body": "{{ 1 / 0 }}"},
        ])
        self.drag(self.create_leads(), {"stage_id": self.stage_qualified.id}, self.salesman)
        self.assertEqual(self.runs(workflow).message, "Template “Note text”: ZeroDivisionError: division by zero")


@tagged("post_install", "-at_install")
class TestWebhookFailureText(OutboundCase):
    def test_a_failed_webhook_names_its_url(self):
        url = closed_port_url()
        workflow = self.create_stage_workflow(
            self.stage_qualified, [{"kind": "webhook", "webhook_url": url, "webhook_retries": 0}]
        )
        self.drag(self.create_leads(), {"stage_id": self.stage_qualified.id}, self.salesman)
        self.run_queue()
        run = self.runs(workflow)
        self.assertEqual(run.state, "failed")
        self.assertTrue(run.message.startswith(f"The webhook to {url} failed after 1 attempt(s): "), run.message)
        self.assertNotIn("Traceback", run.message)


@tagged("post_install", "-at_install")
class TestRetry(WorkflowAutomationCase):
    def test_a_retry_that_fails_again_says_so(self):
        foreign_team = self.create_foreign_team()
        workflow = self.create_stage_workflow(
            self.stage_qualified, [{"kind": "assign_team", "team_id": foreign_team.id, "delay": 1}]
        )
        self.drag(self.create_leads(), {"stage_id": self.stage_qualified.id}, self.salesman)
        run = self.runs(workflow)
        with mute_logger(ACTION_LOGGER):
            run.action_run_now()
            self.assertEqual(run.state, "failed")
            result = run.action_retry()
        self.assertEqual(run.state, "failed")
        self.assertEqual(result["type"], "ir.actions.client")
        self.assertEqual(result["tag"], "display_notification")
        self.assertEqual(result["params"]["type"], "danger")
        self.assertIn(run.message, result["params"]["message"])
        self.assertIn("Opportunity 0", result["params"]["message"])

        foreign_team.company_id = self.company
        result = run.action_retry()
        self.assertEqual(run.state, "done")
        self.assertFalse(isinstance(result, dict) and result.get("tag") == "display_notification")


@tagged("post_install", "-at_install")
class TestLanguage(FrenchCase):
    """Texts built at run time are in the language of who reads them, not of who triggered."""

    def test_placeholders_render_in_each_records_language(self):
        workflow = self.create_stage_workflow(self.stage_qualified, [
            {"kind": "note", "note_body": "Call {{ object.partner_id.name }}"},
        ], active=False)
        workflow.trigger_ids.action_ids.update_field_translations(
            "note_body", {"fr_FR": "Appeler {{ object.partner_id.name }}"}
        )
        workflow.active = True
        french, english = self.create_leads(2, user_id=self.salesman_fr.id)
        french.partner_id = self.partner_fr
        leads = self.as_user(french | english, self.salesman_fr)
        leads.write({"stage_id": self.stage_qualified.id})
        self.assertIn("Appeler Dupont SA", french.message_ids[0].body)
        self.assertIn("Call Acme Corp", english.message_ids[0].body)

    def test_an_activity_is_written_in_its_responsibles_language(self):
        workflow = self.create_stage_workflow(self.stage_qualified, [{
            "kind": "activity", "activity_type_id": self.activity_call.id,
            "activity_summary": "Call {{ object.partner_id.name }}",
        }], active=False)
        workflow.trigger_ids.action_ids.update_field_translations(
            "activity_summary", {"fr_FR": "Appeler {{ object.partner_id.name }}"}
        )
        workflow.active = True
        lead = self.create_leads(user_id=self.salesman_fr.id)
        lead.write({"stage_id": self.stage_qualified.id})  # by an English administrator
        self.assertEqual(lead.activity_ids.summary, "Appeler Acme Corp")

    def test_the_failure_notice_speaks_the_followers_language(self):
        workflow = self.create_stage_workflow(self.stage_qualified, [
            {"kind": "assign_team", "team_id": self.create_foreign_team().id},
            {"kind": "note", "note_body": "after"},
        ], name="Relance")
        self.followed_by(workflow, self.manager_fr)
        lead = self.create_leads()
        with mute_logger(ACTION_LOGGER), self.assertNoLogs("odoo.tools.translate", "WARNING"):
            lead.with_user(self.salesman).write({"stage_id": self.stage_qualified.id})  # in English
        body = html2plaintext(self.notices(workflow).body)
        self.assertIn("L'action “Assigner à une équipe commerciale” a échoué sur 1 enregistrement(s)", body)
        skipped = self.runs(workflow, "skipped")
        self.assertEqual(skipped.message, "Une action précédente de ce déclencheur a échoué.")

    def test_run_messages_are_not_in_the_triggering_users_language(self):
        """The followers of the workflow (here its English creator) read its runs."""
        workflow = self.create_stage_workflow(self.stage_qualified, [
            {"kind": "email", "mail_template_id": self.create_template().id},
        ], active=False)
        test_lead = self.create_test_record(workflow, stage_id=self.stage_new.id)
        test_lead.write({"user_id": self.salesman_fr.id, "team_id": self.team_a.id})
        self.as_user(test_lead, self.salesman_fr).write({"stage_id": self.stage_qualified.id})
        self.assertEqual(self.runs(workflow).mapped("message"), ["test: not sent"])
