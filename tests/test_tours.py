from odoo import Command
from odoo.tests import HttpCase, new_test_user, tagged


@tagged("post_install", "-at_install")
class TestWorkflowAutomationTours(HttpCase):
    """Browser tours: the list toggle of a workflow, and a workflow fired by a kanban drag."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Only this class's workflows fire (the demo ones stay as they are once rolled back).
        cls.env["workflow.automation"].search([("active", "=", True)]).write({"active": False})

        cls.stage_new = cls.env.ref("crm.stage_lead1")
        cls.stage_qualified = cls.env.ref("crm.stage_lead2")
        cls.sales_team = cls.env.ref("sales_team.team_sales_department")
        cls.call_type = cls.env.ref("mail.mail_activity_data_call")

        # "All documents": a salesperson restricted to their own opportunities could not read
        # one back once the workflow reassigned it, and the kanban drag would fail.
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
        cls.customer = cls.env["res.partner"].create({"name": "Tour Customer"})
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
        workflow = self.env["workflow.automation"].create({
            "name": "Tour set field",
            "target": "crm.lead",
            "trigger_ids": [Command.create({"kind": "stage_reached", "stage_id": self.stage_qualified.id})],
        })
        self.start_tour(
            f"/odoo/action-crm_workflow_automation.workflow_automation_action_crm/{workflow.id}",
            "crm_workflow_automation_set_field_tour",
            login="admin",
        )
        action = workflow.trigger_ids.action_ids
        self.assertEqual(action.kind, "set_field")
        self.assertEqual(action.set_field_id, self.env["ir.model.fields"]._get("crm.lead", "user_id"))
        self.assertEqual(action.set_value_res_id, self.owner.id)
