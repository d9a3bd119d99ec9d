import base64
import json
import os
from datetime import timedelta
from pathlib import Path
from unittest.mock import patch

from odoo import Command, fields
from odoo.tests import HttpCase, get_db_name, new_test_user, tagged
from odoo.tests.common import ChromeBrowser
from odoo.tools import config

SCREENSHOT_SIGNAL = "cwa-screenshot:"
# With CWA_SCREENSHOTS=1, the tours refresh the README's screenshots in the addon.
README_SCREENSHOTS = Path(__file__).resolve().parents[1] / "static" / "description" / "screenshots"


class WorkflowAutomationTourCase(HttpCase):
    """Shared setup of the tours: the demo pipeline Sales, its stages, a customer."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Only each class's own workflows fire (the demo ones stay as they are once rolled back).
        cls.env["workflow.automation"].search([("active", "=", True)]).write({"active": False})
        cls.sales_team = cls.env.ref("sales_team.team_sales_department")
        cls.stage_new = cls.env.ref("crm.stage_lead1")
        cls.stage_qualified = cls.env.ref("crm.stage_lead2")
        cls.stage_proposition = cls.env.ref("crm.stage_lead3")
        cls.customer = cls.env["res.partner"].create({"name": "Tour Customer", "email": "tour@customer.example.com"})

    @classmethod
    def create_qualified_workflow(cls, name, actions):
        """A switched-on workflow of the tours' pipeline: when an opportunity reaches Qualified, ``actions``."""
        return cls.create_tour_stage_workflow(name, cls.stage_qualified, actions)

    @classmethod
    def create_tour_stage_workflow(cls, name, stage, actions):
        """A switched-on workflow of the tours' pipeline: when an opportunity reaches ``stage``, ``actions``."""
        return cls.env["workflow.automation"].create({
            "name": name,
            "target": "crm.lead",
            "team_ids": [Command.set(cls.sales_team.ids)],
            "active": True,
            "trigger_ids": [Command.create({
                "kind": "stage_reached",
                "stage_id": stage.id,
                "action_ids": [Command.create(action) for action in actions],
            })],
        })

    def start_workflow_form_tour(self, name, tour):
        """Run ``tour`` as the admin on the form of a new switched-off workflow ``name``, with one
        trigger (Qualified reached); return the workflow."""
        workflow = self.env["workflow.automation"].create({
            "name": name,
            "target": "crm.lead",
            "trigger_ids": [Command.create({"kind": "stage_reached", "stage_id": self.stage_qualified.id})],
        })
        self.start_tour(
            f"/odoo/action-crm_workflow_automation.workflow_automation_action_crm/{workflow.id}", tour, login="admin"
        )
        return workflow


@tagged("post_install", "-at_install")
class TestWorkflowAutomationTours(WorkflowAutomationTourCase):
    """Browser tours: the list toggle of a workflow, and a workflow fired by a kanban drag."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.call_type = cls.env.ref("mail.mail_activity_data_call")

        # "All documents": she still sees the card, with its activity, once the workflow
        # reassigned it (an own-documents salesperson's hand-off: test_tours_handoff.py).
        cls.sales_user = new_test_user(
            cls.env,
            login="cwa_tour_sales",
            name="Tour Salesperson",
            groups="sales_team.group_sale_salesman_all_leads",
        )
        cls.owner = new_test_user(
            cls.env,
            login="cwa_tour_owner",
            name="Tour Owner",
            groups="sales_team.group_sale_salesman",
        )
        cls.lead = cls.env["crm.lead"].create({
            "name": "Tour opportunity",
            "type": "opportunity",
            "partner_id": cls.customer.id,
            "team_id": cls.sales_team.id,
            "user_id": cls.sales_user.id,
            "stage_id": cls.stage_new.id,
        })

        # Built switched off (a switched-on workflow is locked), switched on at the end.
        cls.workflow = cls.env["workflow.automation"].create({
            "name": "Tour workflow",
            "target": "crm.lead",
            "team_ids": [Command.set(cls.sales_team.ids)],
            "active": False,
        })
        cls.trigger = cls.env["workflow.automation.trigger"].create({
            "workflow_id": cls.workflow.id,
            "kind": "stage_reached",
            "stage_id": cls.stage_qualified.id,
        })
        cls.assign_action, cls.activity_action = cls.env["workflow.automation.action"].create([
            {
                "trigger_id": cls.trigger.id,
                "sequence": 1,
                "kind": "assign_user",
                "user_id": cls.owner.id,
            },
            {
                "trigger_id": cls.trigger.id,
                "sequence": 2,
                "kind": "activity",
                "activity_type_id": cls.call_type.id,
                "activity_summary": "Call {{ object.partner_id.name }}",
                "activity_deadline": 2,
                "activity_user_mode": "owner",
            },
        ])
        cls.workflow.write({"active": True})

    def _active_trackings(self):
        """(old, new) values of the tracked field "On" of the workflow, oldest first."""
        trackings = self.env["mail.tracking.value"].sudo().search(
            [
                ("mail_message_id.model", "=", "workflow.automation"),
                ("mail_message_id.res_id", "=", self.workflow.id),
                ("field_id.name", "=", "active"),
            ],
            order="id",
        )
        return [(bool(t.old_value_integer), bool(t.new_value_integer)) for t in trackings]

    def test_toggle_tour(self):
        trackings_before = self._active_trackings()

        self.start_tour(
            "/odoo/action-crm_workflow_automation.workflow_automation_action_crm",
            "crm_workflow_automation_toggle_tour",
            login="admin",
        )

        self.workflow.invalidate_recordset()
        self.assertTrue(self.workflow.active, "the workflow is switched on again")
        self.assertEqual(
            self._active_trackings()[len(trackings_before):],
            [(True, False), (False, True)],
            "the chatter tracks the switch off, then on",
        )
        # Switched on again, it still fires.
        self.lead.write({"stage_id": self.stage_qualified.id})
        self.assertEqual(self.lead.user_id, self.owner)

    def test_kanban_tour(self):
        self.start_tour(
            "/odoo/action-crm.crm_lead_action_pipeline",
            "crm_workflow_automation_kanban_tour",
            login=self.sales_user.login,
        )

        self.env.invalidate_all()
        lead = self.lead
        self.assertEqual(lead.stage_id, self.stage_qualified, "the drag moved the opportunity")
        self.assertEqual(lead.user_id, self.owner, "the workflow reassigned the opportunity")

        activity = lead.activity_ids
        self.assertEqual(len(activity), 1, "the workflow scheduled one activity")
        self.assertEqual(activity.summary, "Call Tour Customer")
        self.assertEqual(activity.activity_type_id, self.call_type)
        self.assertEqual(activity.user_id, self.owner, "the activity goes to the new owner")

        runs = self.env["workflow.automation.run"].search([
            ("workflow_id", "=", self.workflow.id),
            ("res_model", "=", "crm.lead"),
            ("res_id", "=", lead.id),
        ])
        self.assertEqual(runs.action_id, self.assign_action | self.activity_action)
        self.assertEqual(set(runs.mapped("state")), {"done"})
        self.assertEqual(runs.user_id, self.sales_user, "the runs name the user who dragged")

    def test_set_field_tour(self):
        workflow = self.start_workflow_form_tour("Tour set field", "crm_workflow_automation_set_field_tour")
        action = workflow.trigger_ids.action_ids
        self.assertEqual(action.kind, "set_field")
        self.assertEqual(action.set_field_id, self.env["ir.model.fields"]._get("crm.lead", "user_id"))
        self.assertEqual(action.set_value_res_id, self.owner.id)

class ScreenshotTourCase(WorkflowAutomationTourCase):
    """Tours that save screenshots: a step logs ``cwa-screenshot:<name>`` (see
    static/tests/tours/screenshot.js); the page is captured with Chrome's
    ``Page.captureScreenshot``, saved as ``<name>.png``, then the tour goes on."""

    browser_size = "1440,900"

    @staticmethod
    def screenshot_folder():
        if os.environ.get("CWA_SCREENSHOTS"):
            return README_SCREENSHOTS
        return Path(config["screenshots"]) / get_db_name() / "crm_workflow_automation"

    def start_tour_with_screenshots(self, url_path, tour_name, **kwargs):
        """Run the tour; return the paths of the screenshots it saved."""
        folder = self.screenshot_folder()
        folder.mkdir(parents=True, exist_ok=True)
        saved = []
        handle_console = ChromeBrowser._handle_console

        def save(browser, name, future):
            path = folder / f"{name}.png"
            path.write_bytes(base64.b64decode(future.result()["data"]))
            saved.append(path)
            browser._websocket_send("Runtime.evaluate", params={
                "expression": f"document.body.dataset.cwaScreenshot = {json.dumps(name)}",
            })

        def on_console(browser, type, args=None, stackTrace=None, **kw):  # noqa: A002 - Chrome's name
            text = browser._from_remoteobject(args[0]) if args else ""
            if isinstance(text, str) and text.startswith(SCREENSHOT_SIGNAL):
                name = text.removeprefix(SCREENSHOT_SIGNAL)
                future = browser._websocket_send("Page.captureScreenshot", with_future=True)
                future.add_done_callback(lambda done: save(browser, name, done))
            return handle_console(browser, type, args, stackTrace, **kw)

        with patch.object(ChromeBrowser, "_handle_console", on_console):
            self.start_tour(url_path, tour_name, **{"login": "admin", **kwargs})
        return saved

    def assert_screenshots(self, saved, names):
        self.assertEqual([path.name for path in saved], [f"{name}.png" for name in names])
        for path in saved:
            self.assertEqual(path.read_bytes()[:8], b"\x89PNG\r\n\x1a\n", path)

    def runs(self, workflow):
        return self.env["workflow.automation.run"].search([("workflow_id", "=", workflow.id)])


@tagged("post_install", "-at_install")
class TestTestModeTour(ScreenshotTourCase):
    """An admin tests a switched-off workflow through the wizard and the kanban."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        template = cls.env["mail.template"].create({
            "name": "Tour proposal",
            "model_id": cls.env["ir.model"]._get_id("crm.lead"),
            "subject": "Our proposal for {{ object.name }}",
            "body_html": "<p>Hello {{ object.partner_id.name }}</p>",
            "partner_to": "{{ object.partner_id.id }}",
        })
        cls.workflow = cls.env["workflow.automation"].create({
            "name": "Tour draft",
            "target": "crm.lead",
            "team_ids": [Command.set(cls.sales_team.ids)],
            "trigger_ids": [
                Command.create({
                    "kind": "stage_reached",
                    "stage_id": cls.stage_qualified.id,
                    "action_ids": [Command.create({
                        "kind": "activity",
                        "activity_type_id": cls.env.ref("mail.mail_activity_data_call").id,
                        "activity_summary": "Call {{ object.partner_id.name }}",
                    })],
                }),
                Command.create({
                    "kind": "stage_reached",
                    "stage_id": cls.stage_proposition.id,
                    "action_ids": [Command.create({"kind": "email", "mail_template_id": template.id})],
                }),
            ],
        })

    def test_test_mode_tour(self):
        saved = self.start_tour_with_screenshots(
            "/odoo/action-crm_workflow_automation.workflow_automation_action_crm",
            "crm_workflow_automation_test_mode_tour",
        )

        self.assert_screenshots(saved, ["test_wizard", "test_record", "test_kanban", "test_workflow", "test_runs"])
        self.env.invalidate_all()
        lead = self.env["crm.lead"].search([("workflow_test_id", "=", self.workflow.id)])
        self.assertEqual((lead.name, lead.partner_id, lead.stage_id), ("Tour test deal", self.customer,
                                                                        self.stage_proposition))
        self.assertFalse(self.workflow.active, "tested while switched off")
        runs = self.runs(self.workflow)
        self.assertEqual(sorted(runs.mapped("action_kind")), ["activity", "email"])
        self.assertEqual(set(runs.mapped("state")), {"done"})
        self.assertTrue(all(runs.mapped("is_test")))
        self.assertFalse(lead.message_ids.filtered(lambda m: m.subject == "Our proposal for Tour test deal"),
                         "the e-mail was not sent")


@tagged("post_install", "-at_install")
class TestUsageTour(ScreenshotTourCase):
    """An admin opens the usage report."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        other_company = cls.env["res.company"].create({"name": "Tour Other Co"})
        foreign_team = cls.env["crm.team"].create({"name": "Foreign", "company_id": other_company.id})
        salesman = new_test_user(cls.env, login="cwa_usage_sales", groups="sales_team.group_sale_salesman")
        cls.working, cls.failing = cls.env["workflow.automation"].create([
            {
                "name": name,
                "target": "crm.lead",
                "team_ids": [Command.set(cls.sales_team.ids)],
                "trigger_ids": [Command.create({
                    "kind": "stage_reached", "stage_id": stage.id, "action_ids": actions,
                })],
            }
            for name, stage, actions in [
                ("Tour follow-up", cls.stage_qualified, [
                    Command.create({"kind": "note", "note_body": "Qualified: {{ object.name }}"}),
                    Command.create({"kind": "note", "note_body": "Still there?", "delay": 3}),
                ]),
                ("Tour failing", cls.stage_proposition, [
                    # a pipeline of another company: fails for leads of a salesperson of this one
                    Command.create({"kind": "assign_team", "team_id": foreign_team.id}),
                    Command.create({"kind": "note", "note_body": "Assigned"}),
                ]),
            ]
        ])
        (cls.working | cls.failing).write({"active": True})
        leads = cls.env["crm.lead"].create([
            {"name": f"Usage deal {index}", "type": "opportunity", "team_id": cls.sales_team.id,
             "stage_id": cls.stage_new.id, "user_id": salesman.id, "company_id": cls.env.company.id}
            for index in range(10)
        ])
        leads.write({"stage_id": cls.stage_qualified.id})
        leads[:4].write({"stage_id": cls.stage_proposition.id})
        # spread the runs over the last days, as a week of use would
        now = fields.Datetime.now()
        for index, run in enumerate(cls.env["workflow.automation.run"].search(
            [("workflow_id", "in", (cls.working | cls.failing).ids), ("state", "!=", "scheduled")]
        )):
            run.date = now - timedelta(days=index * index % 6)

    def test_usage_tour(self):
        self.assertEqual(self.failing.run_failed_count, 4)
        saved = self.start_tour_with_screenshots(
            "/odoo/action-crm_workflow_automation.workflow_automation_action_crm",
            "crm_workflow_automation_usage_tour",
        )
        self.assert_screenshots(saved, ["usage_graph", "usage_pivot", "failed_run", "usage_list"])
