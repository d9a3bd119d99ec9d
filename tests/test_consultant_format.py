import io
from html import escape

from odoo.tests import tagged
from odoo.tools import convert, file_path

from .common import WorkflowAutomationCase

SAMPLE = "crm_workflow_automation/tests/data/consultant_workflow.xml"
BAD_RECORD = """<?xml version="1.0" encoding="utf-8"?>
<odoo>
    <record id="workflow_automation_broken" model="workflow.automation">
        <field name="name">Broken</field>
        <field name="target">crm.lead</field>
        <field name="trigger_ids" eval="[Command.create({%s})]"/>
    </record>
</odoo>
"""


@tagged("post_install", "-at_install")
class TestConsultantFormat(WorkflowAutomationCase):
    """A workflow written as an XML data file, as a consultant ships it in an addon."""

    def load(self, xml_file, module="my_consulting"):
        convert.convert_xml_import(self.env, module, xml_file, idref={}, mode="init")

    def load_broken_trigger(self, trigger_values):
        xml = io.BytesIO((BAD_RECORD % escape(trigger_values)).encode())
        xml.name = "my_consulting/data/broken.xml"
        with self.assertRaises(convert.ParseError) as caught:
            self.load(xml)
        return str(caught.exception)

    def test_sample_file_installs_a_working_workflow(self):
        self.load(file_path(SAMPLE))
        workflow = self.env.ref("my_consulting.workflow_automation_big_deal_qualified")
        self.assertTrue(workflow.active)
        stage_trigger, date_trigger = workflow.trigger_ids
        self.assertEqual(stage_trigger.stage_id, self.stage_qualified)
        self.assertEqual(
            stage_trigger.action_ids.mapped("kind"), ["assign_user", "activity", "email"]
        )
        self.assertEqual(stage_trigger.action_ids[2].delay, 3)
        self.assertEqual(date_trigger.date_field_id.name, "date_deadline")

        sales = self.env.ref("sales_team.team_sales_department")
        big, small = self.create_leads(2, team=sales, stage=self.stage_new)
        big.expected_revenue, small.expected_revenue = 25000, 500
        (big | small).stage_id = self.stage_qualified

        self.assertEqual(big.user_id, self.env.ref("base.user_admin"))
        self.assertEqual(small.user_id, self.salesman)
        self.assertEqual(big.activity_ids.summary, "Call Acme Corp about Opportunity 0")
        reminder = self.runs(workflow, "scheduled")
        self.assertEqual(reminder.res_id, big.id)
        self.assertEqual(reminder.action_id.mail_template_id.name, "Quote reminder")

    def test_unknown_stage_fails_naming_record_and_reference(self):
        message = self.load_broken_trigger("'kind': 'stage_reached', 'stage_id': ref('crm.stage_missing')")
        self.assertIn("crm.stage_missing", message)
        self.assertIn("workflow_automation_broken", message)

    def test_unknown_field_fails_naming_record_and_reference(self):
        message = self.load_broken_trigger(
            "'kind': 'date', 'date_field_id': ref('crm.field_crm_lead__date_missing')"
        )
        self.assertIn("crm.field_crm_lead__date_missing", message)
        self.assertIn("workflow_automation_broken", message)

    def test_condition_on_unknown_field_fails_naming_workflow_and_field(self):
        message = self.load_broken_trigger("'kind': 'create', 'filter_domain': \"[('no_such_field', '=', 1)]\"")
        self.assertIn("broken.xml:3", message)
        self.assertIn("Workflow “Broken”, field “Condition”", message)
        self.assertIn("no_such_field", message)

    def test_unknown_template_fails_naming_record_and_reference(self):
        message = self.load_broken_trigger(
            "'kind': 'create', 'action_ids': [Command.create({'kind': 'email', "
            "'mail_template_id': ref('my_consulting.mail_template_missing')})]"
        )
        self.assertIn("my_consulting.mail_template_missing", message)
        self.assertIn("workflow_automation_broken", message)

    def test_missing_parameter_fails_naming_workflow_and_field(self):
        message = self.load_broken_trigger(
            "'kind': 'create', 'action_ids': [Command.create({'kind': 'assign_team'})]"
        )
        self.assertIn("broken.xml:3", message)
        self.assertIn("Workflow “Broken”, action “Assign to a sales team”, field “Sales team”", message)

    def test_readme_shows_the_sample_file(self):
        with open(file_path("crm_workflow_automation/README.md"), encoding="utf-8") as readme, open(
            file_path(SAMPLE), encoding="utf-8"
        ) as sample:
            self.assertIn(sample.read().strip(), readme.read())
